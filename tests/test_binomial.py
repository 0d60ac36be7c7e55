"""The exact binomial behind model.sampling = "statistics" (collapse_jax/models/_multinomial.py): its law is
Binomial(n, p) (chi-square against scipy's pmf) on both sides of SMALL_MEAN, at p near 0, 1/2 and 1 and n up to 10^6;
p = 0 and n = 0 give exactly 0, p = 1 exactly n; and a chain's draws depend on its key only, not on the batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32
from scipy import stats

from collapse_jax.models import _multinomial
from collapse_jax.models._multinomial import SMALL_MEAN, draw_multinomial_counts, exact_binomials

# (n, p) cells, drawn side by side as one chain's lanes: n q just below and above SMALL_MEAN = 10 (the CDF walk vs
# BTRS), p near 0 and 1/2, p near 1 (drawn as n - Binomial(n, 1 - p)), small n, and n = 10^6 on both branches.
CELLS = [
    (20, 0.49), (21, 0.5), (1000, 0.0099), (1000, 0.0101), (50, 0.97), (7, 0.3), (200, 0.5), (1_000_000, 1e-5),
    (1_000_000, 0.3), (1_000_000, 0.5),
]  # fmt: skip
DRAWS = 20_000
# Fixed seeds: a test passes always or never. A correct sampler's p-values are uniform, so a floor of 1e-4 over the
# 10 cells fails a correct sampler on ~1e-3 of seed choices; with 20,000 draws it catches a 0.3 standard-error bias of
# the mean (e.g. BTRS's float32 cancellation at n = 10^6, ~0.05 in the log acceptance, moved it by more).
P_FLOOR = 1e-4


def _draws(keys, counts, probabilities):
    return np.asarray(jax.jit(jax.vmap(lambda key: exact_binomials(key, counts, probabilities)))(keys))


def _chi_square_p_value(draws: np.ndarray, n: int, p: float) -> float:
    """Pearson chi-square of the draws' histogram against Binomial(n, p), outer bins merged to expected counts >= 20."""
    lower = int(stats.binom.ppf(1e-3, n, p))
    upper = int(stats.binom.isf(1e-3, n, p))
    edges = np.arange(lower, upper + 1)
    expected = np.diff(np.concatenate([[0.0], stats.binom.cdf(edges, n, p), [1.0]])) * len(draws)
    observed = np.bincount(np.searchsorted(edges, draws, side="left"), minlength=len(edges) + 1)
    # Merge adjacent bins until each expects >= 20 draws.
    merged_expected, merged_observed, e_sum, o_sum = [], [], 0.0, 0
    for e, o in zip(expected, observed):
        e_sum, o_sum = e_sum + e, o_sum + o
        if e_sum >= 20:
            merged_expected.append(e_sum)
            merged_observed.append(o_sum)
            e_sum, o_sum = 0.0, 0
    merged_expected[-1] += e_sum
    merged_observed[-1] += o_sum
    return float(stats.chisquare(merged_observed, merged_expected).pvalue)


def test_exact_binomial_matches_the_binomial_pmf_on_both_branches_and_at_huge_n():
    counts = jnp.asarray([n for n, _ in CELLS], jnp.float32)
    probabilities = jnp.asarray([p for _, p in CELLS], jnp.float32)
    draws = _draws(jax.random.split(jax.random.key(7), DRAWS), counts, probabilities)
    assert np.all(draws == np.round(draws)) and np.all((draws >= 0) & (draws <= np.asarray(counts)))
    for column, (n, p) in enumerate(CELLS):
        # float32(p) is what was drawn from: test against it, not the decimal.
        p32 = float(np.float32(p))
        p_value = _chi_square_p_value(draws[:, column], n, p32)
        assert p_value >= P_FLOOR, (n, p, p_value, draws[:, column].mean(), n * p32)
    assert {n * min(p, 1 - p) <= SMALL_MEAN for n, p in CELLS} == {True, False}  # both branches are covered


def test_exact_binomial_is_exactly_zero_at_p_zero_or_n_zero_and_n_at_p_one():
    counts = jnp.asarray([0.0, 0.0, 1e6, 1e6, 37.0, 0.0], jnp.float32)
    probabilities = jnp.asarray([0.3, 0.0, 0.0, 1.0, 1.0, 1.0], jnp.float32)
    draws = _draws(jax.random.split(jax.random.key(3), 500), counts, probabilities)
    np.testing.assert_array_equal(draws, np.broadcast_to([0.0, 0.0, 0.0, 1e6, 37.0, 0.0], draws.shape))


def test_draws_depend_on_the_chain_key_only_not_on_the_batch_or_its_fallback_buffer():
    """The fallback gathers the whole batch's unsettled lanes into one buffer (custom_vmap): a chain's counts must not
    depend on the other chains. 8 chains alone, the same 8 among 4096, and each chain unbatched agree bit for bit."""
    probabilities = jnp.asarray([0.0, 0.4, 0.25, 0.2, 0.1, 0.05], jnp.float32)
    keys = jax.random.split(jax.random.key(11), 4096)
    counts = jnp.asarray([30.0, 1e4, 57.0, 1e6] * 1024, jnp.float32)
    drawn = jax.jit(jax.vmap(draw_multinomial_counts, in_axes=(0, None, 0)))
    many = np.asarray(drawn(keys, probabilities, counts))
    few = np.asarray(drawn(keys[:8], probabilities, counts[:8]))
    np.testing.assert_array_equal(few, many[:8])
    single = jax.jit(draw_multinomial_counts)
    for chain in range(4):
        np.testing.assert_array_equal(np.asarray(single(keys[chain], probabilities, counts[chain])), many[chain])
    np.testing.assert_array_equal(many.sum(axis=1), np.asarray(counts))
    np.testing.assert_array_equal(many[:, 0], 0.0)


@pytest.mark.production_bits  # two buffer cascades
# two compiles, ~45 s on the loaded 2-core machine
def test_the_fallback_gives_the_same_draws_whatever_buffers_the_lanes_go_through(monkeypatch):
    """One looping buffer of 32 lanes (of 1536; ~200 BTRS lanes are unsettled after the first round, so it is refilled
    ~7 times) must settle every lane with the same draws as the default cascade of buffers: each lane's k-th fallback
    proposal is its round k under its key and lane number, whichever buffer it lands in."""
    counts = jnp.full((6,), 5000.0, jnp.float32)
    probabilities = jnp.asarray([0.1, 0.2, 0.3, 0.4, 0.45, 0.5], jnp.float32)
    keys = jax.random.split(jax.random.key(5), 256)
    default = _draws(keys, counts, probabilities)
    monkeypatch.setattr(_multinomial, "FALLBACK_BUFFERS", (10_000,))
    np.testing.assert_array_equal(_draws(keys, counts, probabilities), default)


@pytest.mark.production_bits  # unrolled generator vs the primitive
def test_lane_uniforms_are_jax_threefry_2x32_of_the_lane_and_round_counter():
    """The unrolled generator is Threefry-2x32-20 itself: the same words as JAX's threefry_2x32 primitive for the
    counter pair (lane, round) under the key's two words, as float32 uniforms from their top 23 bits."""
    key_words = jnp.asarray([[123456789, 987654321], [0, 0], [2**32 - 1, 7]], jnp.uint32)
    lane = jnp.asarray([0, 5, 2**31 - 1], jnp.int32)
    rounds = jnp.asarray([0, 3, 12], jnp.int32)
    u, v = _multinomial._lane_uniforms(key_words, lane, rounds)
    for row in range(3):
        words = threefry_2x32(key_words[row], jnp.asarray([lane[row], rounds[row]], jnp.uint32))
        expected = np.asarray(words >> 9, np.float64) / 2.0**23
        np.testing.assert_array_equal([u[row], v[row]], expected.astype(np.float32))


def test_multinomial_benchmark_runs_small_and_times_jax_against_numpy():
    from benchmarks import multinomial

    rows = multinomial.run(quick=True, chains=8, repeats=1)
    assert [row["n"] for row in rows] == list(multinomial.COUNTS)
    assert all(row["now_wall_us"] > 0 and row["numpy_wall_us"] > 0 for row in rows)
