"""Shared fixtures: small, fast configs built from the shipped experiment configs; the suite's compile setting."""

import compile_setting

compile_setting.apply()  # before anything starts jax's backend: XLA_FLAGS is read once, at its start

import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

# generator = "auto" caches its measurements per machine: the tests (and their subprocesses) use a cache of their own.
os.environ["COLLAPSE_JAX_CACHE"] = tempfile.mkdtemp(prefix="collapse_jax_test_cache_")

import ml_collections  # noqa: E402
import pytest  # noqa: E402

from collapse_jax.host import runner  # noqa: E402
from collapse_jax.store import workdir_io  # noqa: E402
from experiments.configs import gaussian  # noqa: E402


def resumes(workdir: str) -> list[dict]:
    """run.json's record of every resume of `workdir`: [{"group", "from_generation", "to_generation"}], oldest first."""
    with open(os.path.join(workdir, workdir_io.RUN_FILE)) as handle:
        return json.load(handle).get("resumes", [])


def assert_resumed(workdir: str, from_generation: int, to_generation: int, groups: int | None = None) -> None:
    """The workdir's one resume: every group continued from its checkpoint at `from_generation` (> 0) and computed
    generations from_generation + 1 .. to_generation only. A runner that silently restarted from generation 0 records
    no resume, so a bit comparison after this assertion compares a resumed run, not a second straight one."""
    assert from_generation > 0
    if groups is None:  # every static group of the run
        with open(os.path.join(workdir, workdir_io.RUN_FILE)) as handle:
            groups = len(json.load(handle)["groups"])
    expected = [{"group": g, "from_generation": from_generation, "to_generation": to_generation} for g in range(groups)]
    assert resumes(workdir) == expected, resumes(workdir)


@pytest.fixture
def gaussian_config() -> ml_collections.ConfigDict:
    """The shipped Gaussian config shrunk to a single static group and a few chains (seconds to run)."""
    overrides = {
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "seeds": 8,
        "num_generations": 6,
        "chunk_generations": 3,
        "chain_block": 8,
        "checkpoint_every": 1,
        "make_plots": False,
        "model.test_size": 1000,
    }
    return runner.as_config(overrides, gaussian.get_config())
