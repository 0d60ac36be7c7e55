"""generator: the unrolled Threefry and jax.random give the same bits in a whole run, so "auto" may time both in a
long run's first chunks, switch, and cache the faster per machine."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from collapse_jax.host import generators, runner
from collapse_jax.models import _threefry
from experiments.configs import discrete


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_JAX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / generators.CACHE_FILE


def _same_metrics(a, b):
    assert a.metrics.keys() == b.metrics.keys()
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)


@pytest.mark.parametrize("family", ["gaussian", "discrete"])
def test_both_generators_give_a_run_the_same_bits(gaussian_config, family):
    # The Gaussian draws normals, the discrete family uniforms: each through models/_threefry.py.
    config = gaussian_config if family == "gaussian" else runner.as_config({"seeds": 4}, discrete.get_config())
    config = runner.as_config({"num_generations": 4, "chunk_generations": 2}, config)
    runs = [runner.simulate(runner.as_config({"generator": name}, config)) for name in _threefry.GENERATORS]
    _same_metrics(*runs)
    # ... from two different programs (the setting reaches the trace).
    group = runner.sweep.expand(config)[0]
    engine = runner.build_engine(group)
    knobs = runner.padded_knobs(group.knobs, engine.chain_block)
    state = jax.eval_shape(engine.init_all, knobs)[0]
    programs = {
        jax.jit(dataclasses.replace(engine, generator=name).chunk_all).lower(state, knobs, np.int32(1)).as_text()
        for name in _threefry.GENERATORS
    }
    assert len(programs) == 2


def test_an_explicit_generator_is_used_for_every_chunk_and_a_bad_one_names_the_field(cache):
    plan = generators.Plan("jax", "key", 100, 10**12)
    assert [plan.name(i) for i in range(6)] == ["jax"] * 6 and not plan.measuring
    with pytest.raises(ValueError, match=r"^config\.generator: must be one of auto, unrolled, jax"):
        generators.Plan("fast", "key", 100, 10**12)


def test_auto_measures_only_long_runs_alternates_times_chunks_2_and_3_and_caches_the_faster(cache):
    many = generators.MEASURE_MIN_CHAIN_GENERATIONS
    short = generators.Plan("auto", "key", generators.MEASURE_MIN_CHUNKS - 1, many)
    assert not short.measuring and short.name(0) == generators.DEFAULT
    assert not generators.Plan("auto", "key", 100, many, processes=2).measuring  # programs must match across hosts
    plan = generators.Plan("auto", "key", generators.MEASURE_MIN_CHUNKS, many)
    assert plan.measuring
    other = next(g for g in _threefry.GENERATORS if g != generators.DEFAULT)
    assert [plan.name(i) for i in range(4)] == [generators.DEFAULT, other, generators.DEFAULT, other]
    for index, seconds in enumerate([9.0, 9.0, 2.0, 1.0]):  # chunks 0 and 1 carry compiles: not compared
        plan.finished(index, seconds)
    assert plan.chosen == other and plan.name(5) == other
    assert json.loads(cache.read_text())["key"] == {
        "generator": other,
        "seconds_per_chunk": {generators.DEFAULT: 2.0, other: 1.0},
    }
    again = generators.Plan("auto", "key", 100, many)
    assert not again.measuring and again.name(0) == other  # a later run reads the cache


def test_a_torn_cache_is_measured_again(cache):
    cache.parent.mkdir(parents=True)
    cache.write_text('{"key": {"generator": "unr')
    assert generators.cached("key") is None


def test_a_run_that_switches_generators_after_measuring_keeps_the_bits_and_caches_its_choice(
    gaussian_config, cache, tmp_path, monkeypatch
):
    monkeypatch.setattr(generators, "MEASURE_MIN_CHAIN_GENERATIONS", 0)
    config = runner.as_config(
        {"num_generations": 8, "chunk_generations": 1, "checkpoint_every": 4, "make_plots": False}, gaussian_config
    )
    measured = runner.run(runner.as_config({"generator": "auto"}, config), str(tmp_path / "run"))
    entries = json.loads(cache.read_text())
    assert len(entries) == len(runner.sweep.expand(config))  # one signature per static group
    assert all(set(entry["seconds_per_chunk"]) == set(_threefry.GENERATORS) for entry in entries.values())
    straight = runner.simulate(runner.as_config({"generator": "unrolled"}, config))
    _same_metrics(measured, straight)
