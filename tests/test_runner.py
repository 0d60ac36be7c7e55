"""The host loop: record_every keeps the right columns, event generations are exact, a full disk stops cleanly."""

import glob
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import assert_resumed

from collapse_jax.analysis import results
from collapse_jax.host import runner
from collapse_jax.store import metric_log
from experiments.configs import discrete

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_same_metrics(a, b):
    assert a.metrics.keys() == b.metrics.keys()
    np.testing.assert_array_equal(a.generations, b.generations)
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)


def test_record_every_keeps_generation_zero_every_kth_and_the_last_with_unchanged_values(gaussian_config, tmp_path):
    every = runner.simulate(runner.as_config({"num_generations": 10}, gaussian_config))
    config = runner.as_config({"num_generations": 10, "record_every": 4}, gaussian_config)
    sparse = runner.run(config, str(tmp_path / "w"))
    np.testing.assert_array_equal(sparse.generations, [0, 4, 8, 10])
    for name, values in every.metrics.items():
        np.testing.assert_array_equal(sparse.metrics[name], values[:, [0, 4, 8, 10]], err_msg=name)
    assert (
        len(np.fromfile(os.path.join(metric_log.directory(str(tmp_path / "w"), 0), "generations.i32"), np.int32)) == 4
    )
    with pytest.raises(ValueError, match="config.record_every"):
        sparse.require_every_generation("this figure")


def test_absorption_and_failure_generations_are_exact_whatever_record_every(tmp_path):
    overrides = {
        "model.num_outcomes": 3,
        "samples_per_generation": 12,
        "regime.name": "replace",
        "num_generations": 40,
        "seeds": 16,
        "chain_block": 16,
        "chunk_generations": 7,
        "checkpoint_every": 7,
        "make_plots": False,
    }
    config = runner.as_config(overrides, discrete.get_config())
    every = runner.simulate(config)
    absorbed = every.metrics["absorbed"] >= 1
    exact = np.where(absorbed.any(axis=1), absorbed.argmax(axis=1), -1)
    assert (exact > 0).sum() >= 4  # the claim is tested on chains that absorb mid-run
    np.testing.assert_array_equal(every.event_generation["absorbed"], exact)
    sparse_config = runner.as_config({"record_every": 10}, config)
    workdir = str(tmp_path / "w")
    # Stopped at 20 then extended (events past the checkpoint are dropped and found again on resume).
    runner.run(runner.as_config({"num_generations": 20}, sparse_config), workdir)
    sparse = runner.run(sparse_config, workdir)
    assert_resumed(workdir, 20, 40)
    np.testing.assert_array_equal(sparse.generations, [0, 10, 20, 30, 40])
    for name in ("absorbed", "failed"):
        np.testing.assert_array_equal(sparse.event_generation[name], every.event_generation[name], err_msg=name)


def test_a_failed_chain_has_its_failure_generation(gaussian_config):
    mixed = runner.simulate(runner.as_config({"model.sampling_bias": (1.0, 1e39)}, gaussian_config))
    bad = mixed.knobs["sampling_bias"] == 1e39
    assert (mixed.event_generation["failed"][bad] >= 0).all() and (mixed.event_generation["failed"][~bad] == -1).all()


def test_record_every_below_one_is_a_one_line_error(gaussian_config):
    with pytest.raises(ValueError, match=r"^config.record_every: must be an integer >= 1"):
        runner.simulate(runner.as_config({"record_every": 0}, gaussian_config))


FULL_DISK_RUN = """
import errno, sys
from absl import app
from collapse_jax.store import metric_log
from collapse_jax.host import cli
from experiments import main

original, writes = metric_log.write_slab, []

def full_disk(path, slab):
    writes.append(path)
    if len(writes) > {fail_after}:  # half of this chunk's slab lands, then the disk is full
        with open(path, "ab") as handle:
            handle.write(slab.tobytes()[: slab.nbytes // 2])
        raise OSError(errno.ENOSPC, "No space left on device", path)
    original(path, slab)

metric_log.write_slab = full_disk
sys.argv = ["main", "--config=experiments/configs/gaussian.py", "--workdir={workdir}"] + {flags}
app.run(main.main, argv=cli.define_config_flag(sys.argv, main.CONFIG_HELP))
"""


def test_a_full_disk_is_one_line_leaves_no_temporary_file_and_resumes_bit_identically(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    flags = {
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "seeds": 8,
        "chain_block": 8,
        "num_generations": 6,
        "chunk_generations": 2,
        "checkpoint_every": 2,
        "make_plots": False,
        "model.test_size": 1000,
    }
    metric_files = 7  # 6 metrics and the generations file
    # Appends: generation 0, then generations 1-2, 3-4 (the disk fills there, on its third file), 5-6.
    script = FULL_DISK_RUN.format(
        fail_after=2 * metric_files + 2, workdir=workdir, flags=[f"--config.{k}={v}" for k, v in flags.items()]
    )
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "out of disk space writing" in errors[0] and "metrics/group_000" in errors[0] and "bytes needed" in errors[0]
    assert not glob.glob(os.path.join(workdir, "**", "*.tmp*"), recursive=True)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints", "group_000"))) == ["0", "2"]
    # The half-written slab was cut back: the files end at generation 2, the latest checkpoint.
    np.testing.assert_array_equal(results.load(workdir).event_generation["failed"], -1)
    folder = metric_log.directory(workdir, 0)
    assert os.path.getsize(os.path.join(folder, "trace_ratio.f32")) == 3 * 8 * 4
    # Space freed: the same config resumes (the command line made the swept fields 1-tuples).
    config = runner.as_config({**flags, "regime.name": ("replace",), "regime.real_fraction": (0.0,)}, gaussian_config)
    resumed = runner.run(config, workdir)
    assert_resumed(workdir, 2, 6)
    assert_same_metrics(runner.simulate(config), resumed)
