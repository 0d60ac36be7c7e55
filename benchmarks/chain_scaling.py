"""Chain throughput (chain-generations/s) vs number of chains, on 1 vs 8 (fake CPU or real) devices, + memory/chain.

python -m benchmarks.chain_scaling [--models=gaussian,gmm --max_chains=65536 --device_counts=1,8]
Each device count runs in its own subprocess (XLA_FLAGS must be set before jax is imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from absl import app, flags


def measure(model_name: str, chains: int, generations: int, max_block: int) -> dict:
    """Steady-state chain-generations/s and state bytes per chain for one (model, chains) point."""
    import importlib

    import jax
    import numpy as np

    from collapse_jax.host import devices, runner, sweep

    config = importlib.import_module(f"experiments.configs.{model_name}").get_config()
    mesh = devices.chain_mesh()
    block = max(1, min(-(-chains // mesh.size), max_block))
    overrides = {
        "seeds": chains,
        "num_generations": 2 * generations,
        "chunk_generations": generations,
        "chain_block": block,
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
    }
    config = runner.as_config(overrides, config)
    group = sweep.expand(config)[0]
    engine = runner.build_engine(group)
    knobs = runner.padded_knobs(group.knobs, block * mesh.size)
    device_knobs = devices.shard_chains(knobs, mesh)
    init_all, chunk_all = engine.compile(mesh)
    started = time.perf_counter()
    state, _ = init_all(device_knobs)
    state, metrics = chunk_all(state, device_knobs, np.int32(1))
    jax.block_until_ready(metrics)
    compile_and_first = time.perf_counter() - started
    started = time.perf_counter()
    state, metrics = chunk_all(state, device_knobs, np.int32(1 + generations))
    jax.block_until_ready(metrics)
    seconds = time.perf_counter() - started
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
    return {
        "model": model_name,
        "chains": chains,
        "devices": mesh.size,
        "block": block,
        "chain_generations_per_s": chains * generations / seconds,
        "compile_and_first_chunk_s": compile_and_first,
        "state_bytes_per_chain": state_bytes / len(knobs["seed"]),
    }


def _define_flags() -> None:
    """Command-line flags, defined only when this file is the program (the suite imports `measure`)."""
    flags.DEFINE_list("models", ["gaussian", "gmm"], "Model configs (experiments/configs/<name>.py).")
    flags.DEFINE_integer("max_chains", 65_536, "Largest chain count (powers of 4 from 1).")
    flags.DEFINE_list("device_counts", ["1", "8"], "Fake CPU device counts to compare.")
    flags.DEFINE_integer("generations", 20, "Timed generations per point (after a warm-up chunk).")
    flags.DEFINE_integer("max_block", 4096, "chain_block = min(chains per device, this).")
    flags.DEFINE_bool("worker", False, "Internal: run the measurements in this process and print JSON.")


def main(argv):
    del argv
    f = flags.FLAGS
    counts = [4**i for i in range(20) if 4**i <= f.max_chains]
    if f.worker:
        for model in f.models:
            for chains in counts:
                print(json.dumps(measure(model, chains, f.generations, f.max_block)), flush=True)
        return
    rows = []
    for device_count in f.device_counts:
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={device_count}"}
        command = [
            sys.executable,
            "-m",
            "benchmarks.chain_scaling",
            "--worker",
            f"--models={','.join(f.models)}",
            f"--max_chains={f.max_chains}",
            f"--generations={f.generations}",
            f"--max_block={f.max_block}",
        ]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        rows += [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    print(
        f"{'model':9s} {'devices':>7s} {'chains':>7s} {'block':>6s} {'chain-gens/s':>13s} {'compile+1st s':>13s} "
        f"{'state B/chain':>13s}"
    )
    for row in rows:
        print(
            f"{row['model']:9s} {row['devices']:7d} {row['chains']:7d} {row['block']:6d} "
            f"{row['chain_generations_per_s']:13.0f} {row['compile_and_first_chunk_s']:13.2f} "
            f"{row['state_bytes_per_chain']:13.0f}"
        )


if __name__ == "__main__":
    _define_flags()
    app.run(main)
