"""Engine chunk vs a hand-written reference doing the same work (benchmarks/references.py), one ratio per family.

python -m benchmarks.engine_vs_reference [--families=gaussian,discrete,gmm --quick --repeats=3]
Targets (engine / reference steady-state time per generation): Gaussian <= 1.3x, discrete <= 1.3x, GMM <= 1.5x.
Each family's engine and reference are compiled in this process and timed chunk by chunk in turn (best of repeats).
"""

from __future__ import annotations

from absl import app, flags

from benchmarks import references
from benchmarks.timing import ChunkTimer, engine_config, engine_timer, interleaved_best, print_table, row
from experiments.configs import discrete, gaussian, gmm

TARGETS = {"gaussian": 1.3, "discrete": 1.3, "gmm": 1.5}
# (chains, generations per chunk) for a full and a --quick run; the shipped config's chain_block unless a flag says.
SIZES = {
    "gaussian": {"full": (10_000, 10), "quick": (2_000, 10)},
    "discrete": {"full": (1_024, 50), "quick": (256, 10)},
    "gmm": {"full": (32, 5), "quick": (8, 2)},
}


def _compare(name: str, engine: ChunkTimer, reference: ChunkTimer, chains: int, repeats: int, target: float) -> dict:
    """Interleaved timing of the two; one row with the engine's ms/generation and engine / reference."""
    best = interleaved_best({"engine": engine, "reference": reference}, repeats)
    return row(
        name,
        best["engine"] * 1e3,
        "ms/generation",
        best["engine"] / best["reference"],
        target,
        reference_ms=best["reference"] * 1e3,
        chain_generations_per_s=chains / best["engine"],
        compile_s=engine.compile_seconds,
        reference_compile_s=reference.compile_seconds,
        state_bytes_per_chain=engine.state_bytes_per_chain,
    )


def gaussian_rows(chains: int, generations: int, repeats: int, chain_block: int | None = None) -> list[dict]:
    """d = 1, M = 100, replace: engine at the shipped chain_block ("auto") and at 1024 vs the fused step.

    The engine draws the Gaussian's normals with the unrolled threefry (bit for bit jax.random.normal); the fused
    step is timed with the same generator (the strict comparison: the engine's overhead alone) and, at the shipped
    block, with jax.random.normal as a hand-written step would call it.
    """
    rows = []
    # The shipped setting (chain_block = "auto": one block for these counts on CPU) and the former default, 1024.
    for index, block in enumerate(dict.fromkeys([chain_block or gaussian.get_config().chain_block, min(1024, chains)])):
        config = engine_config(gaussian, chains, generations, block)
        engine, built, knobs = engine_timer(config)
        for draws in ("unrolled", "jax") if index == 0 else ("unrolled",):
            fused = references.GaussianReference(
                samples_per_generation=config.samples_per_generation,
                chunk_generations=generations,
                root_seed=config.root_seed,
                test_mean=float(built.reference["mean"][0]),
                test_variance=float(built.reference["cov"][0, 0]),
                normal_draws=draws,
            )
            reference = ChunkTimer(*fused.compile(), knobs, generations)
            generator = "same generator" if draws == "unrolled" else "jax.random.normal"
            label = f"gaussian engine/fused ({generator}; {chains} chains, block {built.chain_block})"
            rows.append(_compare(label, engine, reference, chains, repeats, TARGETS["gaussian"]))
    return rows


def discrete_rows(chains: int, generations: int, repeats: int, chain_block: int | None = None) -> list[dict]:
    """Shipped discrete config (K = 6, M = 1000), replace: engine vs the counting reference, the reference drawing its
    uniforms with the engine's unrolled generator (the same values: the strict comparison) and with jax.random."""
    config = engine_config(discrete, chains, generations, chain_block)
    engine, built, knobs = engine_timer(config)
    rows = []
    for draws in ("unrolled", "jax"):
        fused = references.DiscreteReference(
            num_outcomes=config.model.num_outcomes,
            samples_per_generation=config.samples_per_generation,
            chunk_generations=generations,
            root_seed=config.root_seed,
            uniform_draws=draws,
        )
        reference = ChunkTimer(*fused.compile(), knobs, generations)
        generator = "same generator" if draws == "unrolled" else "jax.random.uniform"
        label = f"discrete engine/reference ({generator}; {chains} chains, block {built.chain_block})"
        rows.append(_compare(label, engine, reference, chains, repeats, TARGETS["discrete"]))
    return rows


def gmm_rows(chains: int, generations: int, repeats: int, chain_block: int | None = None) -> list[dict]:
    """Shipped GMM config (2-D, K = 2, M = 1000, 100 EM iterations), replace: engine vs a plain scan(vmap) of EM."""
    config = engine_config(gmm, chains, generations, chain_block)
    engine, built, knobs = engine_timer(config)
    plain = references.FamilyReference(
        model=built.model,
        reference=built.reference,
        chunk_generations=generations,
        samples_per_generation=config.samples_per_generation,
        root_seed=config.root_seed,
    )
    reference = ChunkTimer(*plain.compile(), knobs, generations)
    label = f"gmm engine/plain EM ({chains} chains, block {built.chain_block})"
    return [_compare(label, engine, reference, chains, repeats, TARGETS["gmm"])]


BENCHMARKS = {"gaussian": gaussian_rows, "discrete": discrete_rows, "gmm": gmm_rows}


def run(families: list[str], quick: bool, repeats: int, chains: int | None = None, generations: int | None = None):
    """Rows for each family at its full or quick size."""
    rows = []
    for family in families:
        default_chains, default_generations = SIZES[family]["quick" if quick else "full"]
        rows += BENCHMARKS[family](chains or default_chains, generations or default_generations, repeats)
    return rows


def _define_flags() -> None:
    """Command-line flags, defined only when this file is the program (the suite imports its functions)."""
    flags.DEFINE_list("families", ["gaussian", "discrete", "gmm"], "Families to compare.")
    flags.DEFINE_bool("quick", False, "Small sizes (seconds per family on a CPU).")
    flags.DEFINE_integer("chains", None, "Override the chain count of every family.")
    flags.DEFINE_integer("generations", None, "Override K, the generations per timed chunk.")
    flags.DEFINE_integer("repeats", 3, "Timed chunks per contestant (interleaved; the best counts).")


def main(argv):
    del argv
    f = flags.FLAGS
    print_table(run(f.families, f.quick, f.repeats, f.chains, f.generations))


if __name__ == "__main__":
    _define_flags()
    app.run(main)
