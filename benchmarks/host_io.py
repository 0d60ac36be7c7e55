"""Host I/O cost: marginal seconds per generation late vs early in one run, and a large run's wall time, RSS and disk.

python -m benchmarks.host_io                      # (a) 4,000 Gaussian chains to G = 2,020: late / early ratio
python -m benchmarks.host_io --scale              # (b) 1M chains x 1,000 generations, record_every = 10, one main run
python -m benchmarks.host_io --scale --chains=100000 --generations=200   # (b) sized down
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_SCALE = flags.DEFINE_bool("scale", False, "Run (b), the large experiments.main run, instead of (a).")
_CHAINS = flags.DEFINE_integer("chains", None, "Chains: (a) 4,000, (b) 1,000,000 by default.")
_GENERATIONS = flags.DEFINE_integer("generations", None, "(a) 2,020, (b) 1,000 by default.")
_RECORD_EVERY = flags.DEFINE_integer("record_every", None, "config.record_every: (a) 1, (b) 10 by default.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the run writes (default: a temporary directory, removed).")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gaussian_overrides(chains: int, generations: int, record_every: int) -> dict:
    """One static group of `chains` Gaussian chains; chunk and checkpoint settings stay the shipped defaults."""
    return {
        "seeds": chains,
        "num_generations": generations,
        "record_every": record_every,
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "make_plots": False,
    }


def marginal_cost(chains: int, generations: int, record_every: int, workdir: str) -> dict:
    """(a) Seconds per generation over generations 20-520 and 520-G of one runner.run with a workdir."""
    from collapse_jax.host import runner
    from experiments.configs import gaussian

    finished_at = {}  # generation -> time the chunk ending there was written (metrics, checkpoint started)
    progress = runner._progress

    def timed(group, generation, *args):
        finished_at[generation] = time.perf_counter()
        progress(group, generation, *args)

    runner._progress = timed
    try:
        config = runner.as_config(gaussian_overrides(chains, generations, record_every), gaussian.get_config())
        runner.run(config, workdir)
    finally:
        runner._progress = progress
    early = (finished_at[520] - finished_at[20]) / 500
    late = (finished_at[generations] - finished_at[520]) / (generations - 520)
    return {
        "early_ms_per_generation": 1e3 * early,
        "late_ms_per_generation": 1e3 * late,
        "late_over_early": late / early,
    }


def disk_bytes(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(directory) for f in files)


def scale_run(chains: int, generations: int, record_every: int, workdir: str) -> dict:
    """(b) One experiments.main run: wall seconds, peak RSS of the run's process, bytes on disk by folder."""
    overrides = gaussian_overrides(chains, generations, record_every)
    command = [sys.executable, "-m", "experiments.main", "--config=experiments/configs/gaussian.py"]
    command += [f"--workdir={workdir}", *[f"--config.{k}={v}" for k, v in overrides.items()]]
    print("command:", " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB
    folders = {name: disk_bytes(os.path.join(workdir, name)) for name in ("metrics", "checkpoints", "artifacts")}
    return {
        "chains": chains,
        "generations": generations,
        "record_every": record_every,
        "wall_s": wall,
        "peak_rss_bytes": peak_rss,
        "peak_rss_bytes_per_chain": peak_rss / chains,
        "disk_bytes": disk_bytes(workdir),
        "disk_bytes_by_folder": folders,
    }


def main(argv: list[str]) -> None:
    del argv
    scale = _SCALE.value
    chains = _CHAINS.value or (1_000_000 if scale else 4_000)
    generations = _GENERATIONS.value or (1_000 if scale else 2_020)
    record_every = _RECORD_EVERY.value or (10 if scale else 1)
    with tempfile.TemporaryDirectory(dir=_WORKDIR.value) as workdir:
        workdir = os.path.join(workdir, "run")
        if scale:
            result = scale_run(chains, generations, record_every, workdir)
        else:
            result = {
                "chains": chains,
                "generations": generations,
                **marginal_cost(chains, generations, record_every, workdir),
            }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    app.run(main)
