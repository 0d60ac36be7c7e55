"""Every benchmark at sizes that fit the backend, one table (name, value, unit, ratio, target, PASS/MISS), and JSON.

python -m benchmarks.suite [--quick] [--json=PATH] [--only=engine,end_to_end,...]
CPU --quick: a few minutes on 2 cores; on a GPU: 10^4-10^6 chains, the Fashion-MNIST VAE, the OPT-125m-size LM.
A benchmark that cannot run here (a missing dataset, no scikit-learn) leaves one SKIP row saying why.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import os
import time
import traceback

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks import end_to_end, engine_vs_reference, lm_throughput, references, report
from benchmarks.timing import ChunkTimer, engine_config, engine_timer, interleaved_best, print_table, row, write_json
from collapse_jax.host import runner, sweep
from collapse_jax.models import _threefry
from experiments.configs import gaussian

# name -> setting per size class ("cpu_quick", "cpu", "accelerator_quick", "accelerator").
SIZES = {
    # family -> (chains, generations per chunk) for engine vs reference
    "engine": {
        "cpu_quick": {"gaussian": (2_000, 10), "discrete": (256, 10), "gmm": (8, 2)},
        "cpu": {"gaussian": (10_000, 10), "discrete": (1_024, 50), "gmm": (32, 5)},
        "accelerator_quick": {"gaussian": (100_000, 10), "discrete": (10_000, 50), "gmm": (1_024, 5)},
        "accelerator": {"gaussian": (1_000_000, 10), "discrete": (100_000, 50), "gmm": (4_096, 5)},
    },
    # (chains, G1, G2, rounds) of the end-to-end marginal time
    "end_to_end": {
        "cpu_quick": (10_000, 10, 210, 2),  # see end_to_end.run: the difference must dwarf start-up noise
        "cpu": (10_000, 50, 650, 2),
        "accelerator_quick": (10_000, 50, 250, 1),
        "accelerator": (1_000_000, 20, 100, 2),
    },
    # chain counts and timed generations of the chain-scaling sweep (Gaussian, one device)
    "scaling": {
        "cpu_quick": ([256, 4_096], 10),
        # 10^6 chains take ~0.8 s a generation on the 2-core CPU: ~1 min for the warm-up and two timed chunks.
        "cpu": ([10_000, 100_000, 1_000_000], 20),
        "accelerator_quick": ([10_000, 100_000, 1_000_000], 10),
        "accelerator": ([10_000, 100_000, 1_000_000], 20),
    },
    # (chains, chunks) of the host-share profile (runner.run beside its bare compiled chunk, chunks and checkpoints as
    # shipped: "auto")
    "host": {
        "cpu_quick": (10_000, 3),
        "cpu": (10_000, 5),
        "accelerator_quick": (100_000, 3),
        "accelerator": (1_000_000, 5),
    },
    # gmm_vs_sklearn (chains, EM iterations, sklearn fits)
    "sklearn": {
        "cpu_quick": (32, 20, 8),
        "cpu": (256, 50, 32),
        "accelerator_quick": (256, 50, 8),
        "accelerator": (4_096, 50, 32),
    },  # fmt: skip
    # VAE (config module, chains, steps per fit, time one-by-one too)
    "vae": {
        "cpu_quick": ("vae_digits", 2, 20, False),
        "cpu": ("vae_digits", 8, 200, True),
        "accelerator_quick": ("vae_fashion_mnist", 4, 50, False),
        "accelerator": ("vae_fashion_mnist", 8, 200, True),
    },
    # LM (config module, chain counts, training steps per timed call)
    "lm": {
        "cpu_quick": ("lm_tiny", [1], 4),
        "cpu": ("lm_tiny", [1, 4, 8], 32),
        "accelerator_quick": ("lm_opt125m", [1], 8),
        "accelerator": ("lm_opt125m", [1, 4], 32),
    },
    # matmul peak side
    "matmul": {"cpu_quick": 1_024, "cpu": 2_048, "accelerator_quick": 8_192, "accelerator": 8_192},
}


def matmul_rows(size: int) -> tuple[list[dict], dict]:
    """Measured peak of a square matmul in float32 and bfloat16 (the MFU denominators)."""
    peaks = {dtype: lm_throughput.matmul_peak_flops(size, getattr(jnp, dtype)) for dtype in ("float32", "bfloat16")}
    rows = [row(f"matmul peak {dtype} ({size}^2)", peak / 1e9, "GFLOP/s") for dtype, peak in peaks.items()]
    return rows, peaks


def engine_rows(sizes: dict, repeats: int) -> list[dict]:
    """Engine / reference per family, plus chain-generations/s, compile seconds and state bytes per chain."""
    rows = []
    for family, (chains, generations) in sizes.items():
        compared = engine_vs_reference.BENCHMARKS[family](chains, generations, repeats)
        rows += compared
        first = compared[0]
        rows += [
            row(f"{family} engine ({chains} chains, shipped block)", first["chain_generations_per_s"], "chain-gens/s"),
            row(f"{family} engine compile (init + chunk)", first["compile_s"], "s"),
            row(f"{family} engine state per chain", first["state_bytes_per_chain"], "bytes"),
        ]
    return rows


def floor_rows(chains: int, repeats: int) -> list[dict]:
    """The Gaussian chains' draws alone, and the fused step's ratio to them, 10 generations per chunk."""
    import numpy as np

    knobs = {"seed": np.arange(chains, dtype=np.int32), "sampling_bias": np.ones(chains, np.float32)}
    # Both with the engine's generator (the unrolled threefry: jax.random.normal's values).
    floor = references.RandomFloor(100, 10, normal_draws="unrolled")
    fused = references.GaussianReference(samples_per_generation=100, chunk_generations=10, normal_draws="unrolled")
    best = interleaved_best(
        {"floor": ChunkTimer(*floor.compile(), knobs, 10), "fused": ChunkTimer(*fused.compile(), knobs, 10)}, repeats
    )
    return [
        row(f"RNG floor ({chains} chains x 100 normals, all summed)", best["floor"] * 1e3, "ms/generation"),
        row("fused step / RNG floor", best["fused"] * 1e3, "ms/generation", best["fused"] / best["floor"]),
    ]


def scaling_rows(counts: list[int], generations: int) -> list[dict]:
    """Gaussian chain-generations/s at each chain count on one device, the shipped config with chain_block "auto",
    chunks of `generations`; the counts' timed chunks interleaved, two rounds, the best of each kept."""
    timers, blocks = {}, {}
    for chains in counts:
        timers[chains], engine, _ = engine_timer(engine_config(gaussian, chains, generations, None))
        blocks[chains] = engine.chain_block
    best = interleaved_best(timers, 2)
    rates = [chains / best[chains] for chains in counts]
    rows = [row(f"chain scaling gaussian {chains} chains (block {blocks[chains]})", rate, "chain-gens/s")
            for chains, rate in zip(counts, rates)]  # fmt: skip
    # The per-chain rate should stay flat: the largest count's rate against the smallest's (target >= 0.9).
    rows.append(row(f"chain scaling {counts[-1]} / {counts[0]} chains, per-chain rate", rates[-1], "chain-gens/s",
                    rates[-1] / rates[0], 0.9, at_most=False))  # fmt: skip
    return rows


def generator_rows(sizes: dict, repeats: int) -> list[dict]:
    """Each family's compiled chunk with either bit-identical generator (what generator = "auto" measures in a run):
    the ratio is jax.random's time over the unrolled Threefry's (> 1: the unrolled one is faster here)."""
    rows = []
    for module in ("gaussian", "discrete"):
        chains, chunk = sizes[module]
        config = engine_config(importlib.import_module(f"experiments.configs.{module}"), chains, chunk, None)
        group = sweep.expand(config)[0]
        engine = runner.build_engine(group)
        knobs = runner.padded_knobs(group.knobs, engine.chain_block)
        timers = {
            name: ChunkTimer(*dataclasses.replace(engine, generator=name).compile(), knobs, chunk)
            for name in _threefry.GENERATORS
        }
        best = interleaved_best(timers, repeats)
        ratio = best["jax"] / best["unrolled"]
        rows.append(row(f"generator {module} {chains} chains: jax.random / unrolled", best["jax"] * 1e3,
                        "ms/generation", ratio, unrolled_ms=best["unrolled"] * 1e3))  # fmt: skip
    return rows


def host_rows(chains: int, chunks: int) -> list[dict]:
    """The share of a run's chunk spent beyond the compiled chunk itself (benchmarks/host_profile.measure), with the
    shipped chunk length and checkpoint cadence."""
    from benchmarks import host_profile

    result = host_profile.measure(chains, chunks, "auto", "auto", 3)
    return [row(f"host share of a chunk ({chains} chains, chunk auto = {result['chunk']}, checkpoints auto)",
                result["run_ms_per_generation"], "ms/generation", result["host_share"], 0.1,
                bare_ms=result["bare_ms_per_generation"])]  # fmt: skip


def sklearn_rows(chains: int, iterations: int, fits: int) -> list[dict]:
    """Vmapped JAX EM vs a scikit-learn loop, per fit (ratio = sklearn / JAX: the speed-up)."""
    from benchmarks import gmm_vs_sklearn

    result = gmm_vs_sklearn.compare(chains, iterations, 1000, 2, fits, 1, 3)
    speedup = result["sklearn_per_fit_s"] / result["jax_per_fit_s"]
    return [row(f"gmm EM per fit, JAX vmapped ({chains} x {iterations} it.) vs sklearn", result["jax_per_fit_s"] * 1e3,
                "ms/fit", speedup, sklearn_ms=result["sklearn_per_fit_s"] * 1e3)]  # fmt: skip


def vae_rows(module: str, chains: int, steps: int, sequential: bool) -> list[dict]:
    """Training images/s of the VAE config, vmapped chains vs one chain (ratio: vmapped / one-by-one when timed)."""
    from benchmarks import vae_throughput

    config = importlib.import_module(f"experiments.configs.{module}").get_config()
    result = vae_throughput.throughput(config, chains, steps, repeats=2, sequential=sequential)
    ratio = result["images_per_s_vmapped"] / result["images_per_s_one_by_one"] if sequential else None
    return [
        row(f"vae {module} training, {chains} chains vmapped", result["images_per_s_vmapped"], "images/s", ratio),
        row(f"vae {module} training, 1 chain", result["images_per_s_one_chain"], "images/s"),
        row(f"vae {module} compile ({chains} chains)", result["compile_vmapped_s"], "s"),
    ]


def lm_rows(module: str, chain_counts: list[int], steps: int, peaks: dict) -> list[dict]:
    """Training and sampling tokens/s of the config's network on random tokens; MFU vs the measured peak."""
    config = importlib.import_module(f"experiments.configs.{module}").get_config()
    network = lm_throughput.network_of(config)
    blocks = lm_throughput.random_blocks(network, max(256, config.model.batch_size), config.model.block_length)
    rows = []
    for chains in chain_counts:
        result = lm_throughput.throughput(network, blocks, config.model.batch_size, chains, steps, peaks[network.dtype])
        label = f"lm {module} ({result['params'] / 1e6:.1f}M params, {chains} chains)"
        rows += [
            row(f"{label} training", result["train_tokens_per_s"], "tokens/s"),
            row(f"{label} MFU vs {network.dtype} peak", 100 * result["mfu"], "%"),
            row(f"{label} sampling", result["sample_tokens_per_s"], "tokens/s"),
        ]
    return rows


def statistics_rows(quick: bool) -> list[dict]:
    """benchmarks/statistics_sampling.py's rows, when that module exists and offers suite_rows(quick)."""
    try:
        module = importlib.import_module("benchmarks.statistics_sampling")
    except ImportError:
        return [row("sufficient-statistics sampling", float("nan"), "", status_note="SKIP: module not present")]
    if not hasattr(module, "suite_rows"):
        return [row("sufficient-statistics sampling", float("nan"), "", status_note="SKIP: no suite_rows(quick)")]
    return module.suite_rows(quick)


def _guarded(name: str, build) -> list[dict]:
    """Run one benchmark; an error becomes a SKIP row naming it, so the rest of the suite still runs."""
    started = time.perf_counter()
    try:
        rows = build()
    except Exception as error:  # noqa: BLE001 - any failure of one benchmark must not lose the others
        traceback.print_exc()
        rows = [row(name, float("nan"), "", status_note=f"SKIP: {type(error).__name__}: {str(error)[:120]}")]
    for r in rows:
        if r.get("status_note"):
            r["status"] = "SKIP"
    print(f"[suite] {name}: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def run(quick: bool, only: list[str] | None = None) -> tuple[list[dict], dict]:
    """(rows, header) of every benchmark at the sizes for this backend."""
    backend = jax.default_backend()
    size = ("cpu" if backend == "cpu" else "accelerator") + ("_quick" if quick else "")
    repeats = 3
    header = {
        "backend": backend,
        "device": jax.devices()[0].device_kind,
        "devices": jax.device_count(),
        "sizes": size,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": os.getloadavg(),
        "cpu_count": os.cpu_count(),
    }
    peaks = {"float32": float("nan"), "bfloat16": float("nan")}
    rows = []

    def matmul():
        nonlocal peaks
        matmul_table, peaks = matmul_rows(SIZES["matmul"][size])
        return matmul_table

    chains, short, long, rounds = SIZES["end_to_end"][size]
    benchmarks = {
        "matmul": matmul,
        "engine": lambda: engine_rows(SIZES["engine"][size], repeats),
        "floor": lambda: floor_rows(SIZES["engine"][size]["gaussian"][0], repeats),
        "generator": lambda: generator_rows(SIZES["engine"][size], repeats),
        "end_to_end": lambda: end_to_end.measure(chains, short, long, 20, rounds),
        "end_to_end_noplots": lambda: end_to_end.measure(chains, short, long, 20, rounds, plots=False),
        "scaling": lambda: scaling_rows(*SIZES["scaling"][size]),
        "host": lambda: host_rows(*SIZES["host"][size]),
        "sklearn": lambda: sklearn_rows(*SIZES["sklearn"][size]),
        "vae": lambda: vae_rows(*SIZES["vae"][size]),
        "lm": lambda: lm_rows(*SIZES["lm"][size], peaks),
        "statistics": lambda: statistics_rows(quick),
        "report": lambda: report.small_run_rows(repeats),  # regenerating a small run's report: <= 2 s on any backend
    }
    for name, build in benchmarks.items():
        if only and name not in only:
            continue
        rows += _guarded(name, build)
    header["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    header["load_average_at_end"] = os.getloadavg()
    return rows, header


def _define_flags() -> None:
    flags.DEFINE_bool("quick", False, "Small sizes: a few minutes on a 2-core CPU.")
    flags.DEFINE_string("json", None, "Write the table here as JSON (default: benchmarks_<backend>.json in cwd).")
    flags.DEFINE_list(
        "only",
        None,
        "Run only these: matmul,engine,floor,generator,end_to_end,end_to_end_noplots,scaling,host,sklearn,vae,lm,"
        "statistics,report",
    )


def main(argv):
    del argv
    f = flags.FLAGS
    rows, header = run(f.quick, f.only)
    print(f"\n{header['device']} ({header['backend']}, {header['devices']} device(s)), sizes {header['sizes']}, "
          f"load average {header['load_average_at_start'][0]:.1f} -> {header['load_average_at_end'][0]:.1f} "
          f"on {header['cpu_count']} cores")  # fmt: skip
    print_table(rows)
    path = f.json or f"benchmarks_{header['backend']}.json"
    write_json(rows, path, **header)
    print(f"JSON: {path}")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
