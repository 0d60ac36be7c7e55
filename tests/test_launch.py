"""launch.sweep: the SLURM array script (text, bash -n, its signal/requeue logic) and the local backend end to end."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import resumes

from collapse_jax.analysis import aggregate, results, sweep_report
from collapse_jax.host import runner
from collapse_jax.host.runner import PREEMPTED_EXIT_CODE
from experiments.configs import gaussian
from launch import shards, slurm

REPO = shards.REPO_ROOT
# Shrunk Gaussian settings every launched shard shares (seconds per shard on a 2-core CPU).
SMALL = ["--config.chain_block=8", "--config.make_plots=False", "--config.model.test_size=1000"]
SMALL += ["--config.checkpoint_every=1"]


def launch(root: str, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "launch.sweep",
        "--config=experiments/configs/gaussian.py",
        f"--workdir={root}",
        *flags,
    ]


BASE = {"chain_block": 8, "make_plots": False, "model.test_size": 1000, "checkpoint_every": 1}


def small_config(**overrides):
    """The shipped Gaussian config with SMALL's settings and `overrides` (dotted paths), as the shards see it."""
    return runner.as_config({**BASE, **overrides}, gaussian.get_config())


def planned(tmp_path, num_jobs: int = 4, **overrides):
    """A sweep planned as `launch.sweep --config.<path>=<value> ...` with BASE and `overrides` would plan it."""
    config = small_config(**overrides)
    return shards.plan(config, gaussian.__file__, None, {**BASE, **overrides}, num_jobs, str(tmp_path / "sweep"))


def test_sbatch_script_has_the_array_range_and_resources_and_parses_with_bash_n(tmp_path):
    manifest, _ = planned(tmp_path, 4, seeds=8, **{"regime.name": "replace", "regime.real_fraction": 0.0})
    resources = slurm.Resources(
        partition="gpu", time="02:00:00", gpus=2, cpus=8, mem="64G", signal_seconds=120, max_concurrent=2
    )
    path = slurm.write_script(manifest, str(tmp_path / "sweep"), resources, python="/opt/venv/bin/python")
    text = open(path).read()
    subprocess.run(["bash", "-n", path], check=True)
    directives = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    root = str(tmp_path / "sweep")
    assert directives == [
        "#SBATCH --job-name=collapse",
        "#SBATCH --array=0-3%2",  # one array task per shard, at most 2 at once
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --time=02:00:00",
        f"#SBATCH --output={root}/slurm_logs/%A_%a.out",
        "#SBATCH --open-mode=append",
        "#SBATCH --signal=B:USR1@120",
        "#SBATCH --partition=gpu",
        "#SBATCH --gres=gpu:2",
        "#SBATCH --mem=64G",
        "#SBATCH --requeue",
    ]
    assert '-m experiments.main --config="$SHARD_DIR/config.py" --workdir="$SHARD_DIR"' in text
    assert f'if [ "$STATUS" -eq {PREEMPTED_EXIT_CODE} ]; then' in text
    assert 'scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"' in text
    no_requeue = slurm.script(manifest, root, slurm.Resources(requeue=False))
    assert "#SBATCH --no-requeue" in no_requeue and "scontrol" not in no_requeue


def test_dry_run_prints_the_script_and_writes_one_wrapper_config_per_shard(tmp_path):
    root = str(tmp_path / "sweep")
    flags = [
        "--num_jobs=3",
        "--backend=slurm",
        "--dry_run",
        "--config.seeds=5",
        "--config.regime.real_fraction=(0.0, 0.1)",
    ]
    out = subprocess.run(launch(root, *flags), cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "#SBATCH --array=0-2\n" in out and f"sbatch {root}/sweep.sbatch" in out
    manifest = aggregate.load_manifest(root)
    # 2 regimes x 2 real fractions x 5 seeds = 20 chains in ranges of 6, 7, 7 (sweep.expand's contiguous split).
    assert manifest["total_chains"] == 20
    assert [(s["chain_low"], s["chain_high"]) for s in manifest["shards"]] == [(0, 6), (6, 13), (13, 20)]
    assert manifest["overrides"] == {"regime.real_fraction": [0.0, 0.1], "seeds": 5}
    wrapper = open(os.path.join(root, "shard_001", "config.py")).read()
    assert "config.num_shards = 3" in wrapper and "config.shard_index = 1" in wrapper
    # Relaunching into ROOT with other overrides would mix two sweeps: refused in one line.
    other = subprocess.run(launch(root, "--num_jobs=3", "--dry_run", "--config.seeds=6"), cwd=REPO, capture_output=True)
    assert other.returncode == 2 and other.stderr.decode().strip().splitlines() == [
        f"error: --workdir: {root} holds a sweep launched with different overrides; relaunch it with "
        "the same flags to resume, or use a new --workdir"
    ]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num_jobs=21"], "--num_jobs: 21 exceeds the sweep's 20 chains"),
        (["--num_jobs=0"], "--num_jobs: must be an integer >= 1"),
        (["--num_jobs=2", "--backend=slurm", "--time=4h"], "--time: '4h' is not an sbatch time"),
        (["--num_jobs=2", "--backend=slurm", "--mem=lots"], "--mem: 'lots' is not an sbatch memory size"),
        (["--num_jobs=2", "--config.regime.real_fraction=2.0"], "config.regime.real_fraction: must be a finite number"),
        (["--num_jobs=2", "--parallel=0"], "--parallel: must be >= 1"),
    ],
)
def test_bad_launch_input_is_one_line_naming_the_flag(tmp_path, flags, message):
    done = subprocess.run(
        launch(str(tmp_path / "s"), "--dry_run", "--config.seeds=5", *flags), cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_local_backend_runs_shards_that_aggregate_to_the_single_job_run(tmp_path):
    root = str(tmp_path / "sweep")
    sweep = {"seeds": 3, "regime.name": "replace", "regime.real_fraction": (0.0, 0.2), "num_generations": 4}
    flags = [f"--config.{k}={v}" for k, v in sweep.items()] + ["--num_jobs=2", "--parallel=2", *SMALL]
    subprocess.run(launch(root, *flags), cwd=REPO, check=True, capture_output=True, timeout=300)
    whole = runner.simulate(small_config(**sweep))
    sweep_report.report([root])
    table = aggregate.read_table(os.path.join(root, "results.parquet"))
    assert len(table["chain_id"]) == whole.num_chains * 5  # 6 chains (2 real fractions x 3 seeds) x 5 generations
    for name, values in whole.metrics.items():
        np.testing.assert_array_equal(table[name], values[table["chain_id"], table["generation"]], err_msg=name)
    np.testing.assert_array_equal(table["real_fraction"], whole.knobs["real_fraction"][table["chain_id"]])
    assert all(aggregate.read_exit_status(os.path.join(root, f"shard_{i:03d}")) == 0 for i in range(2))


def _wait_for_checkpoints(workdir: str, count: int, process: subprocess.Popen) -> None:
    """Wait until `count` checkpoints are committed (Orbax renames a finished save to its generation's number)."""
    checkpoints = os.path.join(workdir, "checkpoints", "group_000")
    deadline = time.time() + 240
    while not (os.path.isdir(checkpoints) and sum(name.isdigit() for name in os.listdir(checkpoints)) >= count):
        assert time.time() < deadline and process.poll() is None, "the shard never checkpointed"
        time.sleep(0.05)


LONG = {
    "seeds": 8,
    "num_generations": 60,
    "chunk_generations": 1,
    "regime.name": "replace",
    "regime.real_fraction": 0.0,
}


@pytest.fixture(scope="module")
def long_single_job() -> results.Results:
    """The uninterrupted single-job run the preempted-and-resumed shards must reproduce bit for bit."""
    return runner.simulate(small_config(**{**LONG, "chunk_generations": 20}))


def test_sigterm_to_a_local_shard_restarts_it_and_the_results_are_bit_identical(tmp_path, long_single_job):
    root = str(tmp_path / "sweep")
    flags = [f"--config.{k}={v}" for k, v in LONG.items()] + ["--num_jobs=1", *SMALL]
    launcher = subprocess.Popen(launch(root, *flags), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    shard = os.path.join(root, "shard_000")
    _wait_for_checkpoints(shard, 3, launcher)
    with open(os.path.join(shard, ".lock")) as handle:
        os.kill(int(handle.read()), signal.SIGTERM)  # the lock holds the running shard's pid
    out, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 0
    assert "shard 0: exit 0, preemption restarts 1" in out.decode()
    merged, _ = aggregate.load_sources(
        [aggregate.Source("sweep", os.path.join(root, f"shard_{i:03d}")) for i in (0, 1)]
    )
    np.testing.assert_array_equal(merged.chain_ids, np.arange(8))
    # The restarted shard continued from the checkpoint its SIGTERM wrote (past the 3 awaited), not from generation 0.
    ((resume,),) = [resumes(shard)]
    assert resume["from_generation"] >= 2 and resume["to_generation"] == LONG["num_generations"], resume
    for name, values in long_single_job.metrics.items():
        np.testing.assert_array_equal(merged.metrics[name], values, err_msg=name)


def test_array_script_forwards_usr1_exits_75_and_requeues_then_resumes_bit_identically(tmp_path, long_single_job):
    """No SLURM here: the generated script runs under plain bash with scontrol replaced by a recorder on PATH."""
    manifest, shard_list = planned(tmp_path, 1, **LONG)
    root = str(tmp_path / "sweep")
    shards.write(manifest, shard_list, root)
    path = slurm.write_script(manifest, root, slurm.Resources())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/bash\necho "$@" >> {tmp_path}/scontrol_calls\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": "0"}
    env["SLURM_ARRAY_JOB_ID"] = "4242"
    task = subprocess.Popen(["bash", path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_checkpoints(shard_list[0].workdir, 3, task)
    task.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@seconds delivers to the batch shell
    assert task.wait(timeout=120) == PREEMPTED_EXIT_CODE
    assert open(tmp_path / "scontrol_calls").read() == "requeue 4242_0\n"
    assert aggregate.read_exit_status(shard_list[0].workdir) == PREEMPTED_EXIT_CODE
    assert np.isnan(results.load(shard_list[0].workdir).metrics["trace_ratio"][:, -1]).all()  # stopped early
    # The requeued task reruns the same script: it resumes and finishes without another requeue.
    subprocess.run(["bash", path], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert open(tmp_path / "scontrol_calls").read() == "requeue 4242_0\n"
    ((resume,),) = [resumes(shard_list[0].workdir)]
    assert resume["from_generation"] >= 2 and resume["to_generation"] == LONG["num_generations"], resume
    resumed = results.load(shard_list[0].workdir)
    for name, values in long_single_job.metrics.items():
        np.testing.assert_array_equal(resumed.metrics[name], values, err_msg=name)
