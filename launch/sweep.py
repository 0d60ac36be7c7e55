"""Split a config's sweep into N shard jobs under ROOT and run them here (--backend=local) or on SLURM (array job).

python -m launch.sweep --config=experiments/configs/gaussian.py --num_jobs=4 --workdir=/tmp/sweep [--dry_run]
    [--backend=local|slurm] [--config.seeds=1000 ...]   then   python -m experiments.report --workdir=/tmp/sweep
"""

from __future__ import annotations

import shlex
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from collapse_jax.host import cli
from collapse_jax.host.runner import PREEMPTED_EXIT_CODE
from launch import local, shards, slurm

CONFIG_HELP = "Experiment config file; --config.<field>=... overrides."
_WORKDIR = flags.DEFINE_string("workdir", None, "ROOT: holds sweep.json and one workdir per shard (ROOT/shard_<i>).")
_NUM_JOBS = flags.DEFINE_integer("num_jobs", None, "Shards: contiguous ranges of the sweep's global chain ids.")
_BACKEND = flags.DEFINE_enum("backend", "local", ["local", "slurm"], "Run shards here, or submit a SLURM array.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Write ROOT's files and print the commands / sbatch script only.")
_PYTHON = flags.DEFINE_string("python", sys.executable, "Interpreter the shards run with.")
# Local backend.
_PARALLEL = flags.DEFINE_integer("parallel", 2, "local: shards running at once.")
_MAX_RESTARTS = flags.DEFINE_integer("max_restarts", 3, "local: reruns of a shard that exits 75 (preempted).")
# SLURM backend: flags win over config.slurm.<field>, which wins over the defaults of launch.slurm.Resources.
_PARTITION = flags.DEFINE_string("partition", None, "slurm: partition.")
_ACCOUNT = flags.DEFINE_string("account", None, "slurm: account.")
_TIME = flags.DEFINE_string("time", None, "slurm: time limit per array task (default 04:00:00).")
_GPUS = flags.DEFINE_integer("gpus", None, "slurm: GPUs per array task (--gres=gpu:N; default 0).")
_CPUS = flags.DEFINE_integer("cpus", None, "slurm: CPUs per array task (default 4).")
_MEM = flags.DEFINE_string("mem", None, "slurm: memory per array task, e.g. 32G (default: the partition's).")
_REQUEUE = flags.DEFINE_bool("requeue", None, "slurm: requeue an array task that was preempted (default true).")
_SIGNAL = flags.DEFINE_integer("signal", None, "slurm: seconds before the time limit to send USR1 (default 300).")
_MAX_CONCURRENT = flags.DEFINE_integer("max_concurrent", None, "slurm: array tasks running at once (%N).")
flags.mark_flags_as_required(["workdir", "num_jobs"])


def resources(config) -> slurm.Resources:
    """SLURM resources from flags, then config.slurm, then defaults."""
    section = config.get("slurm")
    from_config = section.to_dict() if section is not None else {}
    given = {
        "partition": _PARTITION.value,
        "account": _ACCOUNT.value,
        "time": _TIME.value,
        "gpus": _GPUS.value,
        "cpus": _CPUS.value,
        "mem": _MEM.value,
        "requeue": _REQUEUE.value,
        "signal_seconds": _SIGNAL.value,
        "max_concurrent": _MAX_CONCURRENT.value,
    }
    unknown = set(from_config) - set(slurm.Resources.__dataclass_fields__)
    if unknown:
        allowed = ", ".join(slurm.Resources.__dataclass_fields__)
        raise ValueError(f"config.slurm.{sorted(unknown)[0]}: unknown field; allowed: {allowed}")
    merged = {**from_config, **{k: v for k, v in given.items() if v is not None}}
    return slurm.Resources(**merged)


def launch() -> int:
    """Plan and write the sweep, then run or submit it; returns the process exit status."""
    config = flags.FLAGS.config
    config_file, argument = cli.config_file_from_argv(sys.argv)
    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    root = _WORKDIR.value
    manifest, shard_list = shards.plan(config, config_file, argument, overrides, _NUM_JOBS.value, root)
    # Every flag is checked before ROOT is touched.
    slurm_resources = resources(config) if _BACKEND.value == "slurm" else None
    if slurm_resources is not None:
        slurm_resources.validate()
    for flag, value, minimum in (("parallel", _PARALLEL.value, 1), ("max_restarts", _MAX_RESTARTS.value, 0)):
        if value < minimum:
            raise ValueError(f"--{flag}: must be >= {minimum}, got {value}")
    shards.write(manifest, shard_list, root)
    logging.info("%d chains in %d shards under %s", manifest["total_chains"], len(shard_list), root)
    if slurm_resources is not None:
        path = slurm.write_script(manifest, root, slurm_resources, _PYTHON.value)
        if _DRY_RUN.value:
            with open(path) as handle:
                print(handle.read(), end="")
            print(f"# written to {path}; submit with: sbatch {path}")
            return 0
        print(slurm.submit(path))
        return 0
    if _DRY_RUN.value:
        for shard in shard_list:
            print(shlex.join(shards.command(shard, _PYTHON.value)))
        return 0
    outcomes = local.run(shard_list, _PARALLEL.value, _MAX_RESTARTS.value, _PYTHON.value)
    for outcome in outcomes:
        print(f"shard {outcome.index}: exit {outcome.status}, preemption restarts {outcome.restarts}")
    statuses = {outcome.status for outcome in outcomes}
    if statuses == {0}:
        print(f"all shards finished; aggregate with: python -m experiments.report --workdir={root}")
        return 0
    # Preempted shards (75) resume when the same command is run again; anything else is a real failure.
    return PREEMPTED_EXIT_CODE if statuses <= {0, PREEMPTED_EXIT_CODE} else 1


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        status = launch()
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status)


if __name__ == "__main__":
    app.run(main, argv=cli.define_config_flag(sys.argv, CONFIG_HELP))
