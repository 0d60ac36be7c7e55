"""The Poisson family: its exact survival law (Suresh, Thangaraj & Khandavally 2024) in points and statistics mode, the
two modes agreeing in distribution, absorbing rate 0, and the exact Poisson sampler behind both modes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from collapse_jax.host import runner
from collapse_jax.models._poisson_draws import exact_poisson
from experiments.configs import poisson as poisson_config

# A correct law passes an exact two-sided binomial test at p >= P_FLOOR in every cell. 1e-6 is the normal 4.9-sigma
# band where the normal approximation holds, and stays right in the tails (survival near 0 or 1, a handful of chains
# on one side) where a sigma band would be too tight. Over the <= 200 cells below, a correct sampler fails a fixed
# seed set with probability < 2e-4; the seeds are fixed, so a test either always passes or always fails.
P_FLOOR = 1e-6
# KS floor for points vs statistics (as tests/test_statistics_sampling.py): p = 1e-4 over <= 30 comparisons.
KS_FLOOR = 1e-4
RATES = (0.02, 0.1, 0.5)
SEEDS = 2000  # chains per rate: a survival probability of 0.5 is measured to +-0.011 (one standard error)
GENERATIONS = 30
FITS = (1, 2, 3, 5, 10, 20, 31)  # k: fit k is results column k - 1 (column 0 = the fit to the real data)


def survival_law(samples: int, rate: float, fits) -> np.ndarray:
    """P(k-th fit > 0) = 1 - exp(-M lambda_0 g_k), g_1 = 1, g_{k+1} = 1 - exp(-g_k), for each k in `fits`."""
    g = [1.0]
    while len(g) < max(fits):
        g.append(-math.expm1(-g[-1]))
    return np.asarray([-math.expm1(-samples * rate * g[k - 1]) for k in fits])


def run(sampling: str, samples: int, **overrides):
    config = runner.as_config(
        {
            "regime.name": "replace",
            "seeds": SEEDS,
            "num_generations": GENERATIONS,
            "samples_per_generation": samples,
            "chunk_generations": GENERATIONS,
            "make_plots": False,
            "model.rate": RATES,
            "model.sampling": sampling,
            **overrides,
        },
        poisson_config.get_config(),
    )
    return runner.simulate(config)


@pytest.fixture(scope="module")
def runs_m10():
    return {sampling: run(sampling, 10) for sampling in ("points", "statistics")}


def assert_survival_law(results, samples: int) -> None:
    """Every (lambda_0, k): the share of chains whose k-th fit is non-zero passes the exact binomial test."""
    for rate in RATES:
        rows = np.isclose(results.knobs["rate"], rate)
        survived = results.metrics["survived"][rows]
        expected = survival_law(samples, rate, FITS)
        for k, probability in zip(FITS, expected):
            alive = int(survived[:, k - 1].sum())
            p_value = stats.binomtest(alive, int(rows.sum()), probability).pvalue
            assert p_value >= P_FLOOR, (samples, rate, k, alive / rows.sum(), probability, p_value)


@pytest.mark.parametrize("sampling", ["points", "statistics"])
def test_kth_fit_is_nonzero_with_probability_one_minus_exp_minus_m_lambda_g_k(runs_m10, sampling):
    """Suresh, Thangaraj & Khandavally (2024), re-derived. Let Theta_0 = lambda_0 (the truth) and Theta_k the k-th fit
    (results column k - 1). Given Theta_{k-1}, M Theta_k = S_k, the sum of M i.i.d. Poisson(Theta_{k-1}) draws, is
    Poisson(M Theta_{k-1}). With phi_k(t) = E exp(-t Theta_k):
        E[exp(-t S_k / M) | Theta_{k-1}] = exp(-M Theta_{k-1} (1 - e^{-t/M})), so phi_k(t) = phi_{k-1}(M (1 - e^-t/M)).
    P(Theta_k = 0) = lim_{t->inf} phi_k(t) = phi_{k-1}(M g_1); applying the recursion again at t = M g_j gives
    phi_{k-j}(M g_j) = phi_{k-j-1}(M (1 - e^{-g_j})) = phi_{k-j-1}(M g_{j+1}), down to
    phi_0(M g_k) = exp(-M lambda_0 g_k) (Theta_0 = lambda_0 is not random).
    So P(Theta_k > 0) = 1 - exp(-M lambda_0 g_k) exactly, with g_1 = 1, g_{k+1} = 1 - exp(-g_k) (g_k ~ 2/k).
    SCIENCE.md's check values: M = 10, lambda_0 = 0.1 -> 0.632, 0.469, 0.158 at k = 1, 2, 10."""
    np.testing.assert_allclose(survival_law(10, 0.1, (1, 2, 10)), (0.632, 0.469, 0.158), atol=1e-3)
    assert_survival_law(runs_m10[sampling], 10)


@pytest.mark.parametrize("sampling", ["points", "statistics"])
def test_survival_law_at_fifty_samples_per_generation(sampling):
    """The same law at M = 50 (M lambda_0 = 1, 5, 25): survival stays near 1 for ~M lambda_0 generations.

    500 chains per rate (points mode costs chains x M draws per generation): the exact binomial test keeps its
    false-failure rate at any chain count (P_FLOOR), and a survival near 0.5 is measured to +-0.022 (one SE)."""
    assert_survival_law(run(sampling, 50, seeds=500), 50)


def test_fitted_rate_is_a_martingale_in_both_modes(runs_m10):
    """E[Theta_k | Theta_{k-1}] = Theta_{k-1} (the sample mean is unbiased), so E[Theta_k] = lambda_0 at every k;
    checked per rate and column within 4.5 standard errors of the chains' own spread (Var Theta_k = k lambda_0 / M
    for fit k, so the spread grows but stays finite)."""
    for sampling, results in runs_m10.items():
        for rate in RATES:
            values = results.metrics["rate"][np.isclose(results.knobs["rate"], rate)].astype(np.float64)
            error = np.abs(values.mean(axis=0) - rate)
            tolerance = 4.5 * values.std(axis=0) / math.sqrt(len(values))
            assert np.all(error <= tolerance), (sampling, rate, error, tolerance)


def test_drawn_sums_match_drawn_points_in_distribution(runs_m10):
    """Statistics mode (one Poisson(M rate) sum per generation) and points mode (M counts) give the same chain law."""
    points, drawn = runs_m10["points"], runs_m10["statistics"]
    for rate in RATES:
        a_rows, b_rows = np.isclose(points.knobs["rate"], rate), np.isclose(drawn.knobs["rate"], rate)
        for column in (1, 4, GENERATIONS):
            a, b = points.metrics["rate"][a_rows, column], drawn.metrics["rate"][b_rows, column]
            assert stats.ks_2samp(a, b).pvalue >= KS_FLOOR, (rate, column)


def test_rate_zero_is_absorbing_in_both_modes(runs_m10):
    """A zero fit draws only zeros (points) or a Poisson(0) = 0 sum (statistics): once 0, every later fit is 0."""
    for results in runs_m10.values():
        survived, rates = results.metrics["survived"], results.metrics["rate"]
        assert np.all(np.diff(survived, axis=1) <= 0)
        np.testing.assert_array_equal(rates[survived == 0], 0.0)
        np.testing.assert_array_equal(results.metrics["absorbed"], 1.0 - survived)
        assert 0 < survived[:, -1].mean() < survived[:, 0].mean() < 1  # chains die during the run: the case is seen


def test_accumulate_never_forgets():
    """Accumulate keeps the real data in its O(1) statistics pool, so a chain whose first fit is non-zero stays
    non-zero for ever, and one whose real set was all zeros stays at 0 (statistics mode)."""
    results = run("statistics", 10, seeds=200, num_generations=12, **{"regime.name": "accumulate"})
    survived = results.metrics["survived"]
    np.testing.assert_array_equal(survived, np.repeat(survived[:, :1], 13, axis=1))
    assert 0 < survived[:, 0].mean() < 1  # M lambda_0 = 0.2: some real sets were all zeros, so both cases are seen


def test_exact_poisson_matches_the_pmf_and_draws_zero_at_mean_zero():
    """Chi-square of 10^5 draws per mean in ~40 equal-probability bins against scipy's Poisson CDF (p >= 1e-4: a
    correct sampler fails one of these five fixed-seed cases with probability 5e-4). jax.random.poisson fails this at
    mean 10^6 (p ~ 1e-160: its float32 acceptance bound cancels ~mean log mean), which is why this module has its own.
    Mean 0 (an absorbed chain's sum) draws exactly 0."""
    n, means = 100_000, (0.0, 0.3, 5.0, 10.01, 1e3, 1e6)
    mean_grid = jnp.broadcast_to(jnp.asarray(means, jnp.float32)[:, None], (len(means), n))
    draws = np.asarray(jax.jit(exact_poisson)(jax.random.key(7), mean_grid))
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    np.testing.assert_array_equal(draws[0], 0.0)
    for mean, row in zip(means[1:], draws[1:]):
        cuts = np.unique(stats.poisson.ppf(np.linspace(0.02, 0.98, 40), mean))
        observed = np.diff(np.concatenate([[0], [(row <= c).sum() for c in cuts], [n]]))
        expected = np.diff(np.concatenate([[0], stats.poisson.cdf(cuts, mean), [1]])) * n
        assert stats.chisquare(observed, expected).pvalue >= 1e-4, mean
