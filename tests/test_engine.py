"""Engine invariances: batch-size and chunk independence, one compile per run, failure isolation, key streams."""

import jax
import numpy as np
import pytest

from collapse_jax.core import engine
from collapse_jax.host import devices, runner, sweep


@pytest.mark.production_bits  # 4 vs 64 chains per block
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
    # lambda = 1e39 (inf in float32; config validation refuses a literal inf) makes a chain's samples non-finite; the
    # lambda = 1 chains must not notice it. The Gaussian's samples are drawn where generation 1 consumes them
    # (Engine.draws_when_consumed), so generation 0's fit on real data is still reported and the chain fails at
    # generation 1, the first fit on the non-finite samples.
    clean = runner.simulate(runner.as_config({"model.sampling_bias": (1.0,)}, gaussian_config))
    mixed = runner.simulate(runner.as_config({"model.sampling_bias": (1.0, 1e39)}, gaussian_config))
    bad = mixed.knobs["sampling_bias"] == 1e39
    assert mixed.failed[bad].all() and not mixed.failed[~bad].any()
    np.testing.assert_array_equal(mixed.metrics["failed"][bad][:, 0], 0.0)
    np.testing.assert_array_equal(mixed.metrics["failed"][bad][:, 1:], 1.0)
    assert np.isnan(mixed.metrics["trace_ratio"][bad][:, 1:]).all()
    np.testing.assert_array_equal(mixed.metrics["trace_ratio"][bad][:, 0], clean.metrics["trace_ratio"][:, 0])
    for name, values in clean.metrics.items():
        np.testing.assert_array_equal(values, mixed.metrics[name][~bad], err_msg=name)


def test_generation_keys_depend_only_on_seed_and_generation():
    a = engine.generation_key(0, 5, 3)
    b = engine.generation_key(0, 5, 3)
    assert np.array_equal(jax.random.key_data(a), jax.random.key_data(b))
    others = [engine.generation_key(0, 5, 4), engine.generation_key(0, 6, 3), engine.real_data_key(0, 5)]
    assert all(not np.array_equal(jax.random.key_data(a), jax.random.key_data(k)) for k in others)


def test_auto_chain_block_splits_each_device_into_the_fewest_equal_blocks_within_the_budget():
    # 10,000 chains at 1,600 bytes each fit a 512 MiB budget: one block. A budget of 3,000 chains gives
    # ceil(10,000 / 3,000) = 4 blocks of 2,500 (no padding), not 3 of 3,000 plus a padded fourth.
    assert devices.resolve_chain_block("auto", 10_000, 1, 1_600, 512 << 20) == 10_000
    # The CPU budget (8 MiB) at ~2 kB per chain (the Gaussian config): 4,194 chains fit, so 3 blocks of 3,334.
    assert devices.resolve_chain_block("auto", 10_000, 1, 2_000, devices.CPU_BLOCK_MEMORY_BYTES) == 3_334
    assert devices.resolve_chain_block("auto", 10_000, 1, 1_000, 3_000_000) == 2_500
    assert devices.resolve_chain_block("auto", 10_001, 2, 1, 10**9) == 5_001  # per device, rounded up
    assert devices.resolve_chain_block(64, 10_000, 1, 1_600, 1) == 64  # an integer is kept as it is


@pytest.mark.production_bits  # auto vs integer block
def test_auto_chain_block_gives_the_gaussian_config_one_block_and_the_bits_of_that_integer_block(gaussian_config):
    config = runner.as_config({"chain_block": "auto", "seeds": 24}, gaussian_config)
    engine_auto = runner.build_engine(sweep.expand(config)[0])
    # State (params, sample key, flags) + real data + 4 copies of M = 100 samples: a few kB per chain.
    one_chain = {name: value[0] for name, value in runner.padded_knobs(sweep.expand(config)[0].knobs, 1).items()}
    assert 1_600 <= engine_auto.bytes_per_chain(one_chain) <= 4_000
    assert engine_auto.chain_block == 24
    auto = runner.simulate(config)
    fixed = runner.simulate(runner.as_config({"chain_block": 24}, config))
    for name, values in auto.metrics.items():
        np.testing.assert_array_equal(values, fixed.metrics[name], err_msg=name)
