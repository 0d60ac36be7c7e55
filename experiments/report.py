"""Aggregate a sweep (its shards under ROOT) or several run workdirs into one table and one report.md with plots.

python -m experiments.report --workdir=ROOT [--workdir=OTHER ... --output=DIR] [--format=auto|parquet|csv] [--noplots]
"""

import sys

from absl import app, flags

from collapse_jax.analysis import sweep_report

_WORKDIRS = flags.DEFINE_multi_string(
    "workdir", None, "A sweep ROOT (launch.sweep), a run workdir, or a folder of runs."
)
_OUTPUT = flags.DEFINE_string("output", None, "Where report.md, plots/ and the table go (default: see report()).")
_PLOTS = flags.DEFINE_bool("plots", True, "Draw the figures (--noplots: table and report.md only, for quick checks).")
_FORMAT = flags.DEFINE_enum("format", "auto", ["auto", "parquet", "csv"], "Table format (auto: Parquet if pyarrow).")
flags.mark_flags_as_required(["workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        print(sweep_report.report(_WORKDIRS.value, _OUTPUT.value, _FORMAT.value, _PLOTS.value))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
