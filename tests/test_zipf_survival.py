"""Surviving outcomes of the discrete family under a Zipf–Mandelbrot truth p0(i) ∝ (i + q)^-β: the exact expected
count, the survival bounds of Suresh, Thangaraj & Khandavally (2024) summed over outcomes, q = 0 keeping Zipf's bits.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from collapse_jax.host import config_schema, sweep
from collapse_jax.host.runner import as_config, simulate
from collapse_jax.models import discrete
from collapse_jax.store import workdir_io
from experiments.configs import discrete as discrete_config

K = 1000  # outcomes: at M <= 400 most of them are rarer than 1/M, the tail that is forgotten
SAMPLES = (100, 400)  # M, one compile each
TRUTHS = ((1.1, 0.0), (1.1, 10.0), (1.5, 0.0), (1.5, 10.0))  # (β, q), per-chain knobs inside one compile
SEEDS = 400  # chains per (M, β, q)
GENERATIONS = 39  # fits 1..40 (results column k - 1 holds fit k)
FITS = (1, 5, 15, 40)
# Two-sided 4.5 standard errors: 7e-6 per check, ~3e-4 over the 32 exact checks for a correct sampler and seed set.
STANDARD_ERRORS = 4.5


def exact_surviving_outcomes(truth: np.ndarray, samples: int, fits) -> dict[int, float]:
    """E[S_k] = Σ_i P(p_k(i) > 0) exactly: outcome i's count alone is the chain M p_k ~ Binomial(M, p_{k-1}).

    The marginal of one cell of a multinomial is a binomial, so each outcome is a two-allele Wright–Fisher chain on
    {0..M}; its law is propagated by the (M + 1) x (M + 1) binomial transition matrix, all outcomes at once.
    """
    counts = np.arange(samples + 1)
    transition = stats.binom.pmf(counts[None, :], samples, counts[:, None] / samples)  # [from, to]
    law = stats.binom.pmf(counts[None, :], samples, np.asarray(truth, np.float64)[:, None])  # fit 1, [K, M + 1]
    expected = {}
    for fit in range(1, max(fits) + 1):
        if fit in fits:
            expected[fit] = float(np.sum(1.0 - law[:, 0]))
        law = law @ transition
    return expected


@pytest.fixture(scope="module")
def runs():
    """Replace, MLE, points mode (cheaper than statistics mode's K - 1 binomials at K = 1000: see BUILD_NOTES)."""
    config = as_config(
        {
            "model.num_outcomes": K,
            "samples_per_generation": SAMPLES,
            "model.zipf_exponent": tuple(beta for beta, _ in TRUTHS[::2]),
            "model.zipf_shift": tuple(shift for _, shift in TRUTHS[:2]),
            "regime.name": "replace",
            "num_generations": GENERATIONS,
            "seeds": SEEDS,
            "chunk_generations": GENERATIONS + 1,
            "make_plots": False,
        },
        discrete_config.get_config(),
    )
    return simulate(config)


def surviving(results, samples: int, beta: float, shift: float) -> np.ndarray:
    """support_size [chains, fits] of one (M, β, q)."""
    rows = (
        (results.knobs["samples_per_generation"] == samples)
        & np.isclose(results.knobs["zipf_exponent"], beta)
        & np.isclose(results.knobs["zipf_shift"], shift)
    )
    assert rows.sum() == SEEDS
    return results.metrics["support_size"][rows].astype(np.float64)


def test_truth_is_zipf_mandelbrot_and_the_shift_flattens_the_head():
    """p0(i) = (i + q)^-β / Σ_j (j + q)^-β; q = 10 cuts rank 1 to ~1/8 of its Zipf mass."""
    ranks = np.arange(1, K + 1, dtype=np.float64)
    for beta, shift in TRUTHS:
        law = (ranks + shift) ** -beta
        truth = np.asarray(discrete.truth_probabilities(K, beta, shift), np.float64)
        np.testing.assert_allclose(truth, law / law.sum(), rtol=2e-5)  # float32 exp/log of 1000 terms
    zipf, shifted = (np.asarray(discrete.truth_probabilities(K, 1.1, q)) for q in (0.0, 10.0))
    assert shifted[0] < zipf[0] / 4 and shifted[20] > zipf[20]


def test_mean_surviving_count_is_the_exact_binomial_chain_value_and_lies_between_the_bounds(runs):
    """E[S_k], S_k = support_size at fit k, under replace with M draws per generation and the MLE (α = 0).

    Law (our derivation; Suresh et al. state the per-symbol lower bound, we sum it and add an upper bound): outcome i
    is alive at fit k iff p_k(i) > 0, and M p_k(i) ~ Binomial(M, p_{k-1}(i)) (0 absorbing), so
        L_k = Σ_i 1 - exp(-M p0(i) g_k)  <=  E[S_k]  <=
        U_k = Σ_i min(1 - (1 - p0(i))^M, p0(i) + M p0(i)(1 - p0(i))(1 - 1/M)^(k-1)),
    g_1 = 1, g_{k+1} = 1 - e^{-g_k}. Lower: the Laplace-transform recursion E[e^{-t p_k} | p_{k-1}] =
    (1 - p_{k-1}(1 - e^{-t/M}))^M <= exp(-M p_{k-1}(1 - e^{-t/M})) iterated down to p0 gives P(p_k = 0) <= e^{-M p0 g_k}
    (the paper's form uses g_k >= 1/k). Upper: a fixed outcome has P <= E p_k = p0 (martingale); a polymorphic one has
    p(1 - p) >= (M - 1)/M^2 while E p_k(1 - p_k) = (1 - 1/M)^k p0(1 - p0) (Markov); a lost outcome never returns, so
    fit 1's survival 1 - (1 - p0)^M caps every later fit. `discrete.surviving_outcomes_bounds` computes (L_k, U_k).

    Checked per (M, β, q, k): |mean - exact| <= 4.5 standard errors of the mean (the chains' own sd / sqrt(SEEDS)), and
    mean >= L_k - 4.5 SE, mean <= U_k + 4.5 SE. Measured (notes/literature.md's table): |mean - exact| <= 1.6 SE,
    mean / L_k = 1.00-1.11 (the paper's side is tight: the tail outcomes are nearly Poisson), mean / U_k = 1.0 at k = 1
    and 0.07-0.5 later (ours is loose), so the exact check is what catches a tail lost too early or too late.
    """
    for samples in SAMPLES:
        for beta, shift in TRUTHS:
            values = surviving(runs, samples, beta, shift)
            truth = np.asarray(discrete.truth_probabilities(K, beta, shift), np.float64)
            exact = exact_surviving_outcomes(truth, samples, FITS)
            for fit in FITS:
                column = values[:, fit - 1]
                mean, error = column.mean(), column.std(ddof=1) / math.sqrt(len(column))
                lower, upper = discrete.surviving_outcomes_bounds(truth, samples, fit)
                where = (samples, beta, shift, fit, mean, error, exact[fit], lower, upper)
                assert lower <= exact[fit] <= upper * (1 + 1e-12), (
                    where
                )  # the law obeys the bounds (fit 1: U_1 is exact)
                assert abs(mean - exact[fit]) <= STANDARD_ERRORS * error, where
                assert lower - STANDARD_ERRORS * error <= mean <= upper + STANDARD_ERRORS * error, where
                # Not vacuous: the lower bound holds at least 3/4 of the count (measured 0.90-1.00) and the upper one
                # is below K (the heterozygosity bound is loose: mean / U_k fell to 0.07 at k = 50).
                assert lower >= 0.75 * mean and upper < K, where


def test_lower_bound_grows_like_m_over_k_to_the_one_over_beta():
    """For β > 1 and large K, L_k ≈ Γ(1 - 1/β) (M g_k / Z)^(1/β) - q: doubling M g_k multiplies L_k + q by ~2^(1/β)."""
    beta, shift, outcomes = 1.5, 10.0, 10**6
    truth = np.asarray(discrete.truth_probabilities(outcomes, beta, shift), np.float64)
    normalizer = np.sum((np.arange(1, outcomes + 1) + shift) ** -beta)
    for samples, fit in ((100, 5), (400, 5), (400, 50)):
        lower, _ = discrete.surviving_outcomes_bounds(truth, samples, fit)
        scale = samples * discrete.survival_gains(fit)[-1] / normalizer
        # The integral approximation of the sum misses O(1) outcomes at the head: 1.5 outcomes of slack measured.
        assert abs(lower - (math.gamma(1 - 1 / beta) * scale ** (1 / beta) - shift)) <= 1.5, (samples, fit, lower)


@pytest.mark.production_bits  # with and without the knob
def test_zipf_shift_zero_and_unset_give_the_same_bits():
    """q = 0 (a knob) and no zipf_shift (no knob: the plain Zipf code path) give identical chains."""
    overrides = {
        "model.num_outcomes": 50,
        "samples_per_generation": 100,
        "model.zipf_exponent": 1.1,
        "regime.name": "replace",  # one compile per run: the knob enters only through the truth (real data, metrics)
        "num_generations": 6,
        "seeds": 16,
        "chain_block": 16,
        "chunk_generations": 7,
        "make_plots": False,
    }
    unset = simulate(as_config(overrides, discrete_config.get_config()))
    zero = simulate(as_config({**overrides, "model.zipf_shift": 0.0}, discrete_config.get_config()))
    assert "zipf_shift" not in unset.knobs and np.all(zero.knobs["zipf_shift"] == 0.0)
    for name in discrete.DiscreteModel.metric_names:
        np.testing.assert_array_equal(zero.metrics[name], unset.metrics[name], err_msg=name)
    # The truth itself: softmax(-β log i), the plain Zipf function, bit for bit.
    before = jax.nn.softmax(-jnp.float32(1.1) * jnp.log(jnp.arange(1, 51, dtype=jnp.float32)))
    for shift in (None, jnp.float32(0.0)):
        np.testing.assert_array_equal(discrete.truth_probabilities(50, jnp.float32(1.1), shift), before)


def test_a_workdir_written_before_the_field_resumes_with_the_shipped_config():
    """The shipped config holds zipf_shift = None, which check_resumable reads as the field's absence."""
    config = discrete_config.get_config()
    saved = workdir_io.config_record(config)
    del saved["model"]["zipf_shift"]
    workdir_io.check_resumable(saved, config, "/tmp/old")  # no error
    with pytest.raises(ValueError, match="config.model.zipf_shift"):
        workdir_io.check_resumable(saved, as_config({"model.zipf_shift": 5.0}, config), "/tmp/old")


@pytest.mark.parametrize("bad", [-1.0, float("inf"), (0.0, -2.0), "wide"])
def test_a_bad_zipf_shift_is_one_line_naming_the_field(bad):
    config = as_config({"model.zipf_shift": bad}, discrete_config.get_config())
    with pytest.raises(ValueError, match=r"^config\.model\.zipf_shift: ") as error:
        config_schema.validate(config)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"^config\.model\.zipf_shift: "):
        sweep.expand(config)
