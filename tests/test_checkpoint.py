"""Resume and reliability: bit-identical resume, refused config changes, corrupt checkpoints, workdir lock, kill -9."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import assert_resumed

from collapse_jax.analysis import results
from collapse_jax.host import runner
from collapse_jax.store import workdir_io


def assert_same_metrics(a, b):
    assert a.metrics.keys() == b.metrics.keys()
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)


@pytest.mark.production_bits  # chunks of 3 vs 2 generations
def test_resume_is_bit_identical_to_an_uninterrupted_run(gaussian_config, tmp_path):
    straight = runner.run(gaussian_config, str(tmp_path / "straight"))
    part = runner.as_config({"num_generations": 3}, gaussian_config)
    runner.run(part, str(tmp_path / "resumed"))
    half = results.load(str(tmp_path / "resumed"))
    assert np.isnan(half.metrics["trace_ratio"]).sum() == 0 and half.metrics["trace_ratio"].shape[1] == 4
    # Extend to 6 generations with another chunk length K: identical bits.
    resumed = runner.run(runner.as_config({"chunk_generations": 2}, gaussian_config), str(tmp_path / "resumed"))
    # It resumed: every group continued from its checkpoint at generation 3 and computed generations 4..6 only.
    with open(tmp_path / "resumed" / workdir_io.RUN_FILE) as handle:
        run_record = json.load(handle)
    groups = len(run_record["groups"])
    assert groups >= 1
    assert run_record["resumes"] == [{"group": g, "from_generation": 3, "to_generation": 6} for g in range(groups)]
    assert_same_metrics(straight, resumed)


def test_resume_of_a_raw_accumulating_pool_matches_the_in_memory_run(gaussian_config, tmp_path):
    config = runner.as_config({"regime.name": "accumulate_subsample", "regime.real_fraction": 0.2}, gaussian_config)
    runner.run(runner.as_config({"num_generations": 2}, config), str(tmp_path / "w"))
    # The pool buffer grows when num_generations is extended; the drawn subsamples must be unchanged.
    resumed = runner.run(config, str(tmp_path / "w"))
    assert_resumed(str(tmp_path / "w"), 2, 6)
    assert_same_metrics(runner.simulate(config), resumed)


def test_resume_with_a_changed_config_is_refused_and_leaves_results_untouched(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    runner.run(gaussian_config, workdir)
    before = {n: os.path.getmtime(os.path.join(workdir, n)) for n in ("run.json", "metrics/group_000/failed.f32")}
    for overrides, field in (
        ({"seeds": 9}, "seeds"),
        ({"regime.name": "accumulate"}, "regime.name"),
        ({"samples_per_generation": 50}, "samples_per_generation"),
        ({"num_generations": 4}, "num_generations"),
    ):
        with pytest.raises(ValueError, match=f"config.{field}"):
            runner.run(runner.as_config(overrides, gaussian_config), workdir)
    assert before == {n: os.path.getmtime(os.path.join(workdir, n)) for n in before}


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    straight = runner.run(gaussian_config, workdir)
    latest = os.path.join(workdir, "checkpoints", "group_000", "6")
    for root, _, files in os.walk(latest):
        for name in files:
            with open(os.path.join(root, name), "wb") as handle:
                handle.write(b"garbage")
    resumed = runner.run(gaussian_config, workdir)
    # From the checkpoint before the corrupt one (saved at chunk ends: 3 generations a chunk), recomputing 4..6 only.
    assert_resumed(workdir, 3, 6)
    assert_same_metrics(straight, resumed)
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "corrupt_group_000_6"))  # kept aside, not deleted


def test_a_second_run_on_a_held_workdir_is_refused(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    groups = runner.sweep.expand(gaussian_config)
    with workdir_io.claim(workdir, gaussian_config, groups):
        with pytest.raises(ValueError, match="held by a live run"):
            runner.run(gaussian_config, workdir)


def _cli_command(workdir: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "experiments.main",
        "--config=experiments/configs/gaussian.py",
        f"--workdir={workdir}",
        "--config.regime.name=replace",
        "--config.regime.real_fraction=0.0",
        "--config.seeds=8",
        "--config.chain_block=8",
        "--config.num_generations=100",
        "--config.chunk_generations=1",
        "--config.checkpoint_every=1",
        "--config.make_plots=False",
        "--config.model.test_size=1000",
    ]


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _checkpoints(workdir: str) -> list[int]:
    """The committed checkpoints' generations (Orbax renames a finished save to its generation's number)."""
    folder = os.path.join(workdir, "checkpoints", "group_000")
    return sorted(int(name) for name in os.listdir(folder) if name.isdigit()) if os.path.isdir(folder) else []


def _start_and_signal(workdir: str, signum: int) -> int:
    """Start the CLI run, send `signum` once a checkpoint past generation 0 is committed, return its exit status."""
    process = subprocess.Popen(_cli_command(workdir), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while max(_checkpoints(workdir), default=0) < 2:
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"no checkpoint past generation 1 before the signal (exit {process.wait()})")
        time.sleep(0.05)
    process.send_signal(signum)
    return process.wait()


def test_kill_minus_9_mid_run_then_rerun_resumes_to_the_same_results(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    assert _start_and_signal(workdir, signal.SIGKILL) == -signal.SIGKILL
    partial = results.load(workdir)
    assert np.isnan(partial.metrics["trace_ratio"][:, -1]).all()  # killed before the end
    latest = _checkpoints(workdir)[-1]
    command = _cli_command(workdir)
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    assert_resumed(workdir, latest, 100)  # from the newest committed checkpoint, not from generation 0
    config = runner.as_config({"num_generations": 100, "chunk_generations": 50}, gaussian_config)
    assert_same_metrics(runner.simulate(config), results.load(workdir))


def test_sigterm_checkpoints_exits_for_requeue_and_resumes_bit_identically(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    assert _start_and_signal(workdir, signal.SIGTERM) == runner.PREEMPTED_EXIT_CODE
    stopped_at = results.load(workdir).metrics["trace_ratio"]
    finished = np.flatnonzero(~np.isnan(stopped_at).any(axis=0))[-1]
    assert finished < 100
    # The stop checkpointed exactly the generations it reported, so nothing is recomputed differently on resume.
    assert str(finished) in os.listdir(os.path.join(workdir, "checkpoints", "group_000"))
    subprocess.run(_cli_command(workdir), cwd=REPO, check=True, stdout=subprocess.DEVNULL, timeout=300)
    assert_resumed(workdir, int(finished), 100)
    config = runner.as_config({"num_generations": 100, "chunk_generations": 50}, gaussian_config)
    assert_same_metrics(runner.simulate(config), results.load(workdir))


def test_non_scalar_outputs_are_saved_as_per_generation_artifacts(gaussian_config, tmp_path, monkeypatch):
    from collapse_jax.models import gaussian
    from collapse_jax.store import artifacts

    original = gaussian.GaussianModel.evaluate

    def with_artifact(self, params, samples, reference, knobs):
        return {**original(self, params, samples, reference, knobs), "samples": samples}

    monkeypatch.setattr(gaussian.GaussianModel, "evaluate", with_artifact)
    monkeypatch.setattr(gaussian.GaussianModel, "evaluate_uses_samples", True)  # so the engine hands them over
    # The contract: non-scalar outputs are declared as artifact_names (evaluate's keys are checked at trace time).
    monkeypatch.setattr(gaussian.GaussianModel, "artifact_names", ("samples",), raising=False)
    workdir = str(tmp_path / "w")
    run = runner.run(gaussian_config, workdir)
    assert "samples" not in run.metrics
    for generation in range(gaussian_config.num_generations):
        ids, samples = artifacts.load(workdir, "samples", generation)
        assert samples.shape == (8, 100, 1) and list(ids) == list(range(8))
        # Replace, rho = 0, MLE: fit g + 1 is the moments of generation g's samples (the artifact is what trained it).
        np.testing.assert_allclose(
            samples[:, :, 0].mean(axis=1) ** 2, run.metrics["mean_sq_error"][:, generation + 1], rtol=1e-3, atol=1e-7
        )
        np.testing.assert_allclose(
            samples[:, :, 0].var(axis=1), run.metrics["trace_ratio"][:, generation + 1], rtol=1e-4
        )
