"""A workdir written by an older layout of the package (tests/fixtures/workdir_1becdbd) resumes bit-identically."""

import os
import shutil
import subprocess
import sys

import numpy as np
from compile_setting import production_env
from conftest import assert_resumed

from collapse_jax.analysis import results

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "workdir_1becdbd")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The flags the fixture was made with (HOW_MADE.txt), except the horizon, which the resume extends from 6 to 8.
FLAGS = [
    "--config=experiments/configs/gaussian.py",
    "--config.seeds=4",
    "--config.chain_block=4",
    "--config.make_plots=False",
    "--config.chunk_generations=3",
    "--config.checkpoint_every=3",
    "--config.num_generations=8",
]


def _main(workdir: str) -> str:
    command = [sys.executable, "-m", "experiments.main", f"--workdir={workdir}", *FLAGS]
    # The fixture's bits were written under production compile settings: both runs use them.
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=production_env())
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_a_workdir_from_the_flat_layout_resumes_to_the_bits_of_a_fresh_run(tmp_path):
    old = str(tmp_path / "old")
    shutil.copytree(FIXTURE, old)
    before = results.load(old)
    assert before.metrics["trace_ratio"].shape[-1] == 7  # generations 0..6 as written by the old code
    log = _main(old)
    # Both groups continue from the old checkpoint (a silent fresh start would also match the bits).
    assert log.count("resumed from the checkpoint at generation 6") == 2, log[-2000:]
    assert_resumed(old, 6, 8, groups=2)
    _main(str(tmp_path / "fresh"))
    resumed, fresh = results.load(old), results.load(str(tmp_path / "fresh"))
    assert resumed.metrics.keys() == fresh.metrics.keys()
    for name, values in fresh.metrics.items():
        assert values.shape[-1] == 9, name
        np.testing.assert_array_equal(resumed.metrics[name], values, err_msg=name)
    # The generations the old code wrote are kept as they were, not recomputed differently.
    np.testing.assert_array_equal(before.metrics["trace_ratio"], fresh.metrics["trace_ratio"][..., :7])
