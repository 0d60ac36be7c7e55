"""Engine invariances: batch-size and chunk independence, one compile per run, failure isolation, key streams."""

import jax
import numpy as np

from collapse_jax import engine, runner


def test_chain_results_are_bit_identical_with_4_or_64_chains_beside_it(gaussian_config):
    # Fixed-size chain blocks: a chain's bits must not depend on how many chains run (padding, block count).
    small = runner.simulate(runner.as_config({"seeds": 4}, gaussian_config))
    large = runner.simulate(runner.as_config({"seeds": 64}, gaussian_config))
    for name, values in small.metrics.items():
        np.testing.assert_array_equal(values, large.metrics[name][:4], err_msg=name)


def test_chain_results_do_not_depend_on_seed_order_or_position(gaussian_config):
    # Randomness is a function of (seed, generation) only, never of the chain's index in the batch.
    forward = runner.simulate(runner.as_config({"seeds": (3, 5, 7)}, gaussian_config))
    backward = runner.simulate(runner.as_config({"seeds": (7, 5, 3)}, gaussian_config))
    np.testing.assert_array_equal(forward.metrics["trace_ratio"], backward.metrics["trace_ratio"][::-1])


def test_chunk_length_does_not_change_results(gaussian_config):
    one = runner.simulate(runner.as_config({"chunk_generations": 1}, gaussian_config))
    four = runner.simulate(runner.as_config({"chunk_generations": 4}, gaussian_config))  # 6 = 4 + a masked tail chunk
    for name, values in one.metrics.items():
        np.testing.assert_array_equal(values, four.metrics[name], err_msg=name)


def test_chunks_reuse_one_compile(gaussian_config, monkeypatch):
    # Tracing runs the Python body of chunk_chain once per compile: 7 chunks (the last partial) must trace it once.
    traces = []
    original = engine.Engine.chunk_chain

    def counting(self, *args):
        traces.append(1)
        return original(self, *args)

    monkeypatch.setattr(engine.Engine, "chunk_chain", counting)
    runner.simulate(runner.as_config({"num_generations": 20, "chunk_generations": 3}, gaussian_config))
    assert len(traces) == 1


def test_real_fraction_sweep_shares_one_compile(gaussian_config, monkeypatch):
    traces = []
    original = engine.Engine.chunk_chain
    monkeypatch.setattr(engine.Engine, "chunk_chain", lambda self, *a: traces.append(1) or original(self, *a))
    r = runner.simulate(runner.as_config({"regime.real_fraction": (0.0, 0.25, 0.5, 1.0)}, gaussian_config))
    assert len(traces) == 1 and r.num_chains == 4 * 8


def test_a_failing_chain_is_flagged_frozen_and_leaves_the_others_bit_identical(gaussian_config):
    # lambda = inf makes a chain's samples non-finite; the lambda = 1 chains must not notice it.
    clean = runner.simulate(runner.as_config({"model.sampling_bias": (1.0,)}, gaussian_config))
    mixed = runner.simulate(runner.as_config({"model.sampling_bias": (1.0, float("inf"))}, gaussian_config))
    bad = mixed.knobs["sampling_bias"] == np.inf
    assert mixed.failed[bad].all() and not mixed.failed[~bad].any()
    assert np.isnan(mixed.metrics["trace_ratio"][bad]).all()
    for name, values in clean.metrics.items():
        np.testing.assert_array_equal(values, mixed.metrics[name][~bad], err_msg=name)


def test_generation_keys_depend_only_on_seed_and_generation():
    a = engine.generation_key(0, 5, 3)
    b = engine.generation_key(0, 5, 3)
    assert np.array_equal(jax.random.key_data(a), jax.random.key_data(b))
    others = [engine.generation_key(0, 5, 4), engine.generation_key(0, 6, 3), engine.real_data_key(0, 5)]
    assert all(not np.array_equal(jax.random.key_data(a), jax.random.key_data(k)) for k in others)
