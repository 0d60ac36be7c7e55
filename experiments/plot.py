"""Regenerate plots and report.md of any workdir (finished or partial) from its saved results.

python -m experiments.plot --workdir=/tmp/gaussian
"""

import sys

from absl import app, flags

from collapse_jax.analysis import plots, results

_WORKDIR = flags.DEFINE_string("workdir", None, "A run's workdir.")
flags.mark_flags_as_required(["workdir"])


def main(argv: list[str]) -> None:
    del argv
    try:
        loaded = results.load(_WORKDIR.value)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(plots.write_report(_WORKDIR.value, loaded))


if __name__ == "__main__":
    app.run(main)
