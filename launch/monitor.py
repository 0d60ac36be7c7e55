"""Live TensorBoard view of a running sweep or run: poll its workdirs, append summaries of newly finished generations.

python -m launch.monitor --workdir=ROOT [--interval=60] [--once]   and   tensorboard --logdir ROOT
"""

from __future__ import annotations

import os
import sys
import time

from absl import app, flags

from collapse_jax.host import monitoring

_WORKDIR = flags.DEFINE_string("workdir", None, "A sweep ROOT (launch.sweep), a run workdir, or a folder of runs.")
_INTERVAL = flags.DEFINE_float("interval", 60.0, "Seconds between polls.")
_ONCE = flags.DEFINE_bool("once", False, "Summarize what exists and exit (no polling).")
flags.mark_flags_as_required(["workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not monitoring.available():
        print("error: TensorBoard monitoring needs tensorboardX: pip install -e '.[monitor]'", file=sys.stderr)
        sys.exit(2)
    if not os.path.isdir(_WORKDIR.value):
        print(f"error: --workdir: {_WORKDIR.value} is not a directory", file=sys.stderr)
        sys.exit(2)
    try:
        while not monitoring.poll(_WORKDIR.value) and not _ONCE.value:
            time.sleep(_INTERVAL.value)
    finally:
        monitoring.close_all()


if __name__ == "__main__":
    app.run(main)
