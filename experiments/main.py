"""Entry point: run (or resume) the experiment a config file describes, then write plots and report.md.

python -m experiments.main --config=experiments/configs/gaussian.py --workdir=/tmp/gaussian [--config.field=value]
"""

import sys

from absl import app, flags, logging

from collapse_jax.host import cli

CONFIG_HELP = (
    "Experiment config file (experiments/configs/*.py); --config.<field>=value overrides a field. List the fields: "
    "python -m experiments.settings --model=NAME, or add --dry_run to print this config's resolved settings."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, plots and report.md.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address",
    None,
    "host:port of process 0 for a multi-host run (under SLURM with several tasks it is detected automatically).",
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-host run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in a multi-host run.")
_DRY_RUN = flags.DEFINE_bool(
    "dry_run",
    False,
    "Print every setting (value, default, doc), the static groups with their chains and compiles, and the memory and "
    "disk each needs; write nothing and exit 0.",
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = flags.FLAGS.config  # defined in __main__ from the config file, loaded once
    if not _DRY_RUN.value and not _WORKDIR.value:
        cli.exit_with_error("--workdir: missing (the directory for checkpoints, metrics, plots and report.md)")
    cli.validate_or_exit(config)  # a bad field is reported before the slow imports (Orbax, Flax, matplotlib)
    import jax

    from collapse_jax.analysis import plots
    from collapse_jax.host import devices, plan, runner
    from collapse_jax.store import workdir_io

    cli.quiet_library_logs()
    try:
        devices.apply_cpu_devices(config.get("cpu_devices", 1))
    except ValueError as error:
        cli.exit_with_error(str(error))
    devices.maybe_initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    logging.info("JAX devices: %s", jax.devices())
    try:
        if _DRY_RUN.value:
            print(plan.describe(config))
            return
        results = runner.run(config, _WORKDIR.value)
    except runner.Preempted as stop:
        logging.warning("%s; rerun the same command to resume", stop)
        sys.exit(runner.PREEMPTED_EXIT_CODE)
    except (ValueError, FileNotFoundError, workdir_io.OutOfDiskSpace) as error:
        # Bad input, or a full disk: one line naming the field or path, no traceback (the last checkpoint is intact).
        cli.exit_with_error(str(error))
    failed = int(results.failed.sum())
    if failed:
        logging.warning(
            "%d of %d chains failed (non-finite); they are flagged in results.failed", failed, results.num_chains
        )
    if config.get("make_plots", True) and devices.is_primary():
        report = plots.write_report(_WORKDIR.value, results)
        logging.info("Plots and report: %s", report)


if __name__ == "__main__":
    app.run(main, argv=cli.define_config_flag(sys.argv, CONFIG_HELP))
