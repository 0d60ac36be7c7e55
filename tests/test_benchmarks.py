"""The benchmark references do the engine's work: same keys, same draws, same metrics; and the benchmarks run small."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import engine_vs_reference, references, report, timing
from collapse_jax.host import runner, sweep
from experiments.configs import discrete, gaussian, gmm


def _engine_metrics(config, generations: int) -> dict:
    """Generation 0..generations of every chain through the engine's compiled functions, metrics [chains, G + 1]."""
    group = sweep.expand(config)[0]
    engine = runner.build_engine(group)
    knobs = runner.padded_knobs(group.knobs, config.chain_block)
    init_all, chunk_all = engine.compile()
    state, first = init_all(knobs)
    state, rest = chunk_all(state, knobs, np.int32(1))  # metrics as rows [K, chains]
    return {name: np.concatenate([np.asarray(first[name])[:, None], np.asarray(rest[name]).T], 1)[:, : generations + 1]
            for name in rest}  # fmt: skip


def _reference_metrics(reference, knobs: dict) -> dict:
    init_all, chunk_all = reference.compile()
    state, first = init_all(knobs)
    state, rest = chunk_all(state, knobs, np.int32(1))
    return {name: np.concatenate([np.asarray(first[name])[:, None], np.asarray(rest[name])], 1) for name in rest}


def _config(module, **overrides):
    base = {"regime.name": "replace", "regime.real_fraction": 0.0, "seeds": 8, "chain_block": 8, "make_plots": False}
    return runner.as_config({**base, **overrides}, module.get_config())


@pytest.mark.parametrize("normal_draws", ["jax", "unrolled"])  # the unrolled generator draws jax's values
def test_gaussian_reference_metrics_equal_the_engines_for_the_same_keys(normal_draws):
    config = _config(gaussian, num_generations=6, chunk_generations=6, **{"model.test_size": 1000})
    engine = runner.build_engine(sweep.expand(config)[0])
    reference = references.GaussianReference(
        samples_per_generation=100,
        chunk_generations=6,
        test_mean=float(engine.reference["mean"][0]),
        test_variance=float(engine.reference["cov"][0, 0]),
        normal_draws=normal_draws,
    )
    knobs = runner.padded_knobs(sweep.expand(config)[0].knobs, 8)
    expected, actual = _engine_metrics(config, 6), _reference_metrics(reference, knobs)
    assert set(actual) == set(expected)
    # Same draws (same keys and sample formula); the fit sums M values as a reduction where the engine uses a
    # weighted dot product, so the last bit can differ: float32 tolerance, not bit equality.
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=2e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("uniform_draws", ["jax", "unrolled"])  # the unrolled generator draws jax's values
def test_discrete_reference_metrics_equal_the_engines_bit_for_bit(uniform_draws):
    config = _config(discrete, num_generations=20, chunk_generations=20, samples_per_generation=50)
    reference = references.DiscreteReference(
        num_outcomes=6, samples_per_generation=50, chunk_generations=20, uniform_draws=uniform_draws
    )
    knobs = runner.padded_knobs(sweep.expand(config)[0].knobs, 8)
    expected, actual = _engine_metrics(config, 20), _reference_metrics(reference, knobs)
    # Counts are integers in float32 and the fit is the same formula: the metrics agree exactly.
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert np.any(expected["support_size"][:, -1] < 6)  # some chains lost outcomes: the clip path was exercised


@pytest.mark.slow  # two EM compiles: ~80 s on a loaded 2-core CPU
def test_gmm_reference_metrics_equal_the_engines():
    overrides = {"num_generations": 2, "chunk_generations": 2, "samples_per_generation": 64,
                 "model.max_iterations": 5, "model.test_size": 200}  # fmt: skip
    config = _config(gmm, **overrides)
    engine = runner.build_engine(sweep.expand(config)[0])
    reference = references.FamilyReference(
        model=engine.model, reference=engine.reference, chunk_generations=2, samples_per_generation=64
    )
    knobs = runner.padded_knobs(sweep.expand(config)[0].knobs, 8)
    expected, actual = _engine_metrics(config, 2), _reference_metrics(reference, knobs)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_random_floor_consumes_every_draw():
    floor = references.RandomFloor(samples_per_generation=100, chunk_generations=3)
    knobs = {"seed": np.arange(4, dtype=np.int32)}
    init_all, chunk_all = floor.compile()
    total, _ = chunk_all(init_all(knobs)[0], knobs, np.int32(1))
    # Every one of the 3 x 100 draws per chain is in the sum: the same draws made here, from the same keys, summed in
    # float64 (the floor's float32 sums of ~17-sized values differ by rounding, < 1e-4); a floor that skipped or
    # reused draws would be off by O(1) per draw.
    for chain, seed in enumerate(knobs["seed"]):
        stream = references.stream_key(0, jnp.int32(seed), references.GENERATION_STREAM)
        draws = [jax.random.normal(references.generation_keys(stream, g)[2], (100,)) for g in range(3)]
        assert abs(float(total[chain]) - np.sum(np.asarray(draws, np.float64))) < 1e-4


@pytest.mark.slow  # compiles an engine and a reference per family: ~1 min each on a loaded 2-core CPU
@pytest.mark.parametrize("name", ["gaussian", "discrete", "gmm"])
def test_engine_vs_reference_runs_small_and_reports_a_ratio(name):
    rows = engine_vs_reference.BENCHMARKS[name](chains=8, generations=4, repeats=1, chain_block=8)
    assert all(r["ratio"] > 0 and np.isfinite(r["ratio"]) and r["status"] in ("PASS", "MISS") for r in rows)


def test_rows_pass_or_miss_against_their_target_and_a_negative_ratio_is_noise(tmp_path):
    rows = [
        timing.row("fast", 1.0, "ms", 1.2, 1.3),
        timing.row("slow", 1.0, "ms", 1.4, 1.3),
        timing.row("speed-up", 1.0, "ms", 20.0, 15.0, at_most=False),
        timing.row("noise", -1.0, "ms", -0.5, 1.5),
    ]
    assert [r["status"] for r in rows] == ["PASS", "MISS", "PASS", "NOISY"]
    timing.print_table(rows)
    path = tmp_path / "table.json"
    timing.write_json(rows, str(path), backend="cpu")
    assert json.loads(path.read_text())["rows"][2]["target"] == ">= 15x"


def test_the_report_benchmark_times_write_report_of_a_workdir_in_a_fresh_process(gaussian_config, tmp_path):
    runner.run(gaussian_config, str(tmp_path))
    seconds = report.report_seconds(str(tmp_path))
    assert seconds["report"] > 0 and seconds["summaries"] > 0
    assert (tmp_path / "report.md").is_file() and (tmp_path / "plots" / "trace_ratio.png").is_file()


def test_a_run_s_recorded_switches_are_those_the_report_would_read_from_the_family(gaussian_config, tmp_path):
    from collapse_jax.analysis import error_sources, results

    runner.run(gaussian_config, str(tmp_path))
    loaded = results.load(str(tmp_path))
    assert loaded.error_source_switches is not None
    assert error_sources.declared_switches(loaded) == error_sources.family_switches("gaussian") != {}


def test_the_host_profile_times_the_run_s_pieces_on_the_threads_they_ran_on():
    from benchmarks import host_profile

    result = host_profile.measure(chains=64, chunks=3, chunk=5, checkpoint_every=5, repeats=1)
    assert result["generations"] == 15
    assert result["run_ms_per_generation"] > 0 and result["bare_ms_per_generation"] > 0
    pieces = result["pieces_ms_per_chunk"]
    # Appends, fsync and saves run on the writer thread; the device copies in the loop.
    assert any(name.startswith("[collapse-writer] metric appends") for name in pieces)
    assert any(name.startswith("[collapse-writer] Orbax checkpoint save") for name in pieces)
    assert any(name.startswith("[MainThread] device -> host copies") for name in pieces)
    saves = next(calls for name, (_, calls) in pieces.items() if "Orbax checkpoint save" in name)
    assert saves == 15 // 5 + 1  # generation 0, then every checkpoint_every generations


def test_the_scaling_rows_compare_the_largest_count_s_per_chain_rate_with_the_smallest():
    from benchmarks import suite

    rows = suite.scaling_rows([8, 32], 2)
    assert [r["unit"] for r in rows] == ["chain-gens/s"] * 3
    assert rows[-1]["ratio"] == pytest.approx(rows[1]["value"] / rows[0]["value"])
    assert rows[-1]["status"] in ("PASS", "MISS")


def test_the_generator_rows_time_each_family_s_chunk_with_both_generators():
    from benchmarks import suite

    rows = suite.generator_rows({"gaussian": (16, 2), "discrete": (16, 2)}, 1)
    assert [r["name"].split()[1] for r in rows] == ["gaussian", "discrete"]
    assert all(r["ratio"] == pytest.approx(r["value"] / r["unrolled_ms"]) for r in rows)
