"""The Bernoulli family: the survival bounds of Suresh, Thangaraj & Khandavally (2024) and the exact two-allele
Wright–Fisher moments, in points and statistics mode, the two modes agreeing in distribution, absorbing p in {0, 1}.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from test_poisson import KS_FLOOR, P_FLOOR, survival_law

from collapse_jax.host import runner
from experiments.configs import bernoulli as bernoulli_config

M = 20
PROBABILITIES = (0.02, 0.1, 0.5)  # M p_0 = 0.4, 2 and 10 expected ones per generation
SEEDS = 2000  # chains per probability
GENERATIONS = 60  # 3 M: the heterozygosity bound falls from M p (1 - p) to ~0.25 M p (1 - p) over the run
FITS = (1, 2, 5, 10, 20, 40, 61)  # k: fit k is results column k - 1


def run(sampling: str, **overrides):
    config = runner.as_config(
        {
            "regime.name": "replace",
            "seeds": SEEDS,
            "num_generations": GENERATIONS,
            "samples_per_generation": M,
            "chunk_generations": GENERATIONS,
            "make_plots": False,
            "model.probability": PROBABILITIES,
            "model.sampling": sampling,
            **overrides,
        },
        bernoulli_config.get_config(),
    )
    return runner.simulate(config)


@pytest.fixture(scope="module")
def runs():
    return {sampling: run(sampling) for sampling in ("points", "statistics")}


def chains(results, probability: float) -> np.ndarray:
    return results.metrics["probability"][np.isclose(results.knobs["probability"], probability)].astype(np.float64)


@pytest.mark.parametrize("sampling", ["points", "statistics"])
def test_each_outcome_survives_at_least_as_long_as_the_poisson_law_says(runs, sampling):
    """Lower bound (the paper's Bernoulli bound, re-derived and tightened from g_k >= 1/k to g_k): let p_k be the k-th
    fit (p_0 the truth). Given p_{k-1}, M p_k ~ Binomial(M, p_{k-1}); with psi_k(t) = E exp(-t p_k) and 1 - x <= e^-x,
        E[exp(-t p_k) | p_{k-1}] = (1 - p_{k-1} (1 - e^{-t/M}))^M <= exp(-M p_{k-1} (1 - e^{-t/M})),
    i.e. psi_k(t) <= psi_{k-1}(M (1 - e^{-t/M})). Then P(p_k = 0) = lim psi_k(t) <= psi_{k-1}(M g_1) <= ... <=
    psi_0(M g_k) = exp(-M p_0 g_k), the Poisson family's exact law (tests/test_poisson.py). So, for each outcome,
        P(p_k > 0) >= 1 - exp(-M p_0 g_k) >= 1 - exp(-M p_0 / k)  and  P(p_k < 1) >= 1 - exp(-M (1 - p_0) g_k),
    using g_k >= 1/k (induction: g_{k+1} >= 1 - e^{-1/k} >= 1/k - 1/(2k^2) >= 1/(k + 1)). The bound is nearly tight
    for a rare outcome (M p_0 = 0.4: P(p_1 > 0) = 1 - 0.98^20 = 0.332 vs 0.330), so a sampler that loses outcomes too
    early fails it. Tested: the one-sided exact binomial p-value of the observed survivors against the bound."""
    results = runs[sampling]
    assert all(survival_law(1, 1.0, (k,))[0] >= -math.expm1(-1.0 / k) for k in FITS)  # g_k >= 1/k
    for probability in PROBABILITIES:
        values = chains(results, probability)
        for outcome, mass, alive in ((1, probability, values > 0), (0, 1 - probability, values < 1)):
            bounds = survival_law(M, mass, FITS)
            for k, bound in zip(FITS, bounds):
                count = int(alive[:, k - 1].sum())
                p_value = stats.binomtest(count, len(values), bound, alternative="less").pvalue
                assert p_value >= P_FLOOR, (sampling, probability, outcome, k, count / len(values), bound)


@pytest.mark.parametrize("sampling", ["points", "statistics"])
def test_both_outcomes_survive_at_most_m_p_one_minus_p_times_one_minus_one_over_m_to_the_k_minus_one(runs, sampling):
    """Upper bound (collapse within ~M generations): h_k = p_k (1 - p_k) has E[h_k | p_{k-1}] = (1 - 1/M) h_{k-1}
    (the binomial variance), so E h_k = (1 - 1/M)^k p_0 (1 - p_0). While both outcomes survive, p_k lies in
    [1/M, 1 - 1/M], so h_k >= (M - 1) / M^2, and Markov's inequality gives
        P(0 < p_k < 1) <= M p_0 (1 - p_0) (1 - 1/M)^(k - 1).
    `survived` is exactly this event (the Bernoulli family's collapse is a point mass, p in {0, 1}). Tested: the
    one-sided exact binomial p-value of the observed survivors against the bound (where it is below 1)."""
    results = runs[sampling]
    for probability in PROBABILITIES:
        survived = results.metrics["survived"][np.isclose(results.knobs["probability"], probability)]
        np.testing.assert_array_equal(survived, (chains(results, probability) > 0) & (chains(results, probability) < 1))
        for k in FITS:
            bound = M * probability * (1 - probability) * (1 - 1 / M) ** (k - 1)
            if bound >= 1:
                continue
            count = int(survived[:, k - 1].sum())
            p_value = stats.binomtest(count, len(survived), bound, alternative="greater").pvalue
            assert p_value >= P_FLOOR, (sampling, probability, k, count / len(survived), bound)


def test_probability_is_a_martingale_and_heterozygosity_decays_as_one_minus_one_over_m(runs):
    """Exact moments: E[p_k] = p_0 and E[p_k (1 - p_k)] = p_0 (1 - p_0) (1 - 1/M)^k (column k - 1 holds fit k), within
    4.5 standard errors of the chains' own spread per column (two-sided 7e-6 per check; over the 732 checks a correct
    law fails a fixed seed set with probability ~5e-3)."""
    fits = np.arange(1, GENERATIONS + 2)
    for sampling, results in runs.items():
        for probability in PROBABILITIES:
            values = chains(results, probability)
            for observed, expected in (
                (values, np.full(fits.shape, probability)),
                (values * (1 - values), probability * (1 - probability) * (1 - 1 / M) ** fits),
            ):
                tolerance = 4.5 * observed.std(axis=0) / math.sqrt(len(observed)) + 1e-7
                assert np.all(np.abs(observed.mean(axis=0) - expected) <= tolerance), (sampling, probability)


def test_drawn_binomial_sums_match_drawn_points_in_distribution(runs):
    points, drawn = runs["points"], runs["statistics"]
    for probability in PROBABILITIES:
        for column in (1, 10, GENERATIONS):
            a, b = chains(points, probability)[:, column], chains(drawn, probability)[:, column]
            assert stats.ks_2samp(a, b).pvalue >= KS_FLOOR, (probability, column)


def test_zero_and_one_are_absorbing(runs):
    """Once p_k is 0 or 1 every draw is the same outcome: the fit stays put, in both modes."""
    for results in runs.values():
        values = results.metrics["probability"]
        absorbed = results.metrics["absorbed"]
        assert np.all(np.diff(absorbed, axis=1) >= 0)
        stuck = absorbed[:, :-1] == 1
        np.testing.assert_array_equal(values[:, 1:][stuck], values[:, :-1][stuck])
        assert set(np.unique(values[:, :-1][stuck])) == {0.0, 1.0}
