"""Laws of data supply and tails: tail-cutting decoders, strong collapse, oblivious contamination, growing samples.

Each test checks a closed form derived in its docstring (notes/literature.md, "Data supply and tails").
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.core import supply
from collapse_jax.host import runner
from collapse_jax.models import discrete, linear_regression
from experiments.configs import discrete_zipf, gaussian, oblivious_contamination, strong_collapse


def _discrete(overrides: dict):
    base = {
        "regime.name": "replace",
        "seeds": 4,
        "num_generations": 2,
        "chunk_generations": 2,
        "make_plots": False,
        "model.num_outcomes": 100,
    }
    return runner.simulate(runner.as_config({**base, **overrides}, discrete_zipf.get_config()))


@pytest.fixture(scope="module")
def decoded_population_fits():
    """Population-fit chains (statistical error off), K = 100, one compile: every (k, τ, β) of the two tests below."""
    return _discrete(
        {
            "model.population_fit": True,
            "model.top_k": (1, 5, 20, 100),
            "model.temperature": (1.0, 0.5, 0.8, 1.25),
            "model.zipf_exponent": (1.0, 1.5),
        }
    )


def test_first_synthetic_generation_loses_exactly_the_truth_mass_beyond_rank_k(decoded_population_fits):
    """With the statistical error off (population fits), generation 0 is p0 and generation 1 is top_k(p0) exactly:
    the outcomes beyond rank k are gone and the fit misses Σ_{i>k} p0(i) = 1 - H_{k,β} / H_{K,β} (float32 sums:
    1e-5). A second cut of an already-cut law keeps it, so generation 2 misses the same mass (τ = 1 chains)."""
    r = decoded_population_fits
    for k in (1, 5, 20, 100):
        for beta in (1.0, 1.5):
            chains = (r.knobs["top_k"] == k) & (r.knobs["zipf_exponent"] == beta) & (r.knobs["temperature"] == 1.0)
            missed = r.metrics["unseen_truth_mass"][chains]
            np.testing.assert_allclose(missed[:, 0], 0.0, atol=1e-6)
            np.testing.assert_allclose(missed[:, 1:], discrete.zipf_mass_beyond_rank(100, beta, k), atol=1e-5)
            assert (r.metrics["support_size"][chains][:, 1:] == k).all()


def test_temperature_turns_a_zipf_truth_into_zipf_with_exponent_beta_over_tau(decoded_population_fits):
    """p^(1/τ) renormalized of p0 ∝ i^-β is ∝ i^-(β/τ): a population fit's generation 1 is Zipf(β/τ), so its
    KL(p1 || p0) = Σ p1 ln(p1 / p0) in closed form (float32 logs: rtol 1e-4); generation t is Zipf(β/τ^t) (k = K)."""
    r = decoded_population_fits
    truth = np.arange(1, 101, dtype=np.float64) ** -1.0
    truth /= truth.sum()
    for tau in (0.5, 0.8, 1.25):
        chains = (r.knobs["temperature"] == tau) & (r.knobs["top_k"] == 100) & (r.knobs["zipf_exponent"] == 1.0)
        for generation in (1, 2):
            fitted = np.arange(1, 101, dtype=np.float64) ** -(1.0 / tau**generation)
            fitted /= fitted.sum()
            kl = np.sum(fitted * np.log(fitted / truth))
            np.testing.assert_allclose(r.metrics["kl_to_truth"][chains][:, generation], kl, rtol=1e-4, atol=1e-6)


def test_unseen_mass_after_training_on_top_k_draws_meets_the_hutter_law_and_its_floor():
    """A Tale of Tails (Dohmatob et al. 2024), Hutter's memorization model: a fit (MLE) to M draws of the top-k
    generator q of the truth misses outcome i with probability (1 - q_i)^M, so its test error (the truth mass of the
    outcomes it never produces) has E = Σ_i p0(i) (1 - q_i)^M, which tends to the cut mass Σ_{i>k} p0(i) as M grows.

    Tolerance: the error is Σ_i p0(i) A_i with A_i the absence indicators, which are negatively correlated under a
    multinomial draw (P(A_i A_j) = (1 - q_i - q_j)^M <= (1 - q_i)^M (1 - q_j)^M), so its variance is at most
    Σ p0(i)^2 P_i (1 - P_i); the mean of C = 2000 chains is within 5 of those standard errors (a bound, so 5 SE of
    the bound covers > 5 SE of the true spread).
    """
    model = discrete.DiscreteModel(100, 100, 100, 0.95, metric_names=discrete.BASE_METRICS + discrete.DECODER_METRICS)
    chains, beta = 2000, 1.5
    truth = np.asarray(discrete.truth_probabilities(100, jnp.float32(beta)), np.float64)

    def one_chain(key, top_k, samples):
        knobs = {"zipf_exponent": jnp.float32(beta), "smoothing": jnp.float32(0.0), "top_k": top_k}
        params = {"probabilities": jnp.asarray(truth, jnp.float32)}
        draws = model.sample(key, params, samples, knobs)
        fitted = model.fit(key, draws, jnp.ones(samples), knobs, params)
        return model.evaluate(fitted, None, {}, knobs)["unseen_truth_mass"]

    # One small compile per M (the draw's length is static), k traced per chain.
    ks, sizes = (5, 20, 100), (30, 300, 3000)
    chain = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None)), static_argnums=2)
    top_k = jnp.repeat(jnp.asarray(ks, jnp.float32), chains)
    measured = {}
    for m in sizes:
        values = np.asarray(chain(jax.random.split(jax.random.key(m), len(ks) * chains), top_k, m), np.float64)
        measured.update({(k, m): row for k, row in zip(ks, values.reshape(len(ks), chains))})
    for (k, m), values in measured.items():
        generator = np.asarray(discrete.decode(jnp.asarray(truth, jnp.float32), {"top_k": k}), np.float64)
        law = discrete.expected_unseen_mass(truth, generator, m)
        absent = np.exp(m * np.log1p(-np.minimum(generator, 1.0)))
        bound = np.sqrt(np.sum(truth**2 * absent * (1 - absent)) / chains)
        assert abs(values.mean() - law) <= 5 * bound + 1e-6, (k, m, values.mean(), law)
        # Never below the floor: every outcome beyond rank k is absent from every draw.
        assert values.min() >= discrete.zipf_mass_beyond_rank(100, beta, k) - 1e-5


def test_statistics_sampling_draws_from_the_decoded_generator():
    """model.sampling = "statistics" draws counts from the same decoded law: a top-3 generator over K = 8 puts all
    M = 1000 draws on its 3 most likely outcomes (exact: the multinomial keeps probability-0 outcomes at count 0)."""
    model = discrete.DiscreteModel(8, 1000, 1000, 0.95)
    params = {"probabilities": discrete.truth_probabilities(8, jnp.float32(1.0))}
    counts = np.asarray(model.sample_statistics(jax.random.key(0), params, jnp.float32(1000), {"top_k": 3.0}))
    assert counts.sum() == 1000 and (counts[3:] == 0).all() and (counts[:3] > 0).all()


def test_the_floor_falls_as_k_to_the_one_minus_beta():
    """Σ_{i>k} i^-β / ζ(β) = k^(1 - β) / ((β - 1) ζ(β)) (1 + O(1/k)) for K -> ∞ (the integral of the tail from
    k + 1/2): at K = 10^6, k = 100 and 1000 the ratio to the asymptote is within 1% of 1 (the O(1/k) term is ~0.5%
    at k = 100 for β = 2, and K^(1 - β) is negligible)."""
    zeta = {1.5: 2.6123753486854883, 2.0: math.pi**2 / 6}
    for beta, z in zeta.items():
        for k in (100, 1000):
            asymptote = k ** (1 - beta) / ((beta - 1) * z)
            assert abs(discrete.zipf_mass_beyond_rank(10**6, beta, k) / asymptote - 1) < 0.01 + 10**6 ** (1 - beta) * z


def test_decoder_fields_are_validated_with_one_line_errors():
    for field, bad in (("model.top_k", 0), ("model.top_k", 101), ("model.temperature", 0.0), ("model.top_k", 2.5)):
        with pytest.raises(ValueError, match=rf"config\.{field}"):
            _discrete({field: bad})


def test_strong_collapse_keeps_an_error_floor_p_squared_times_the_generator_error():
    """Strong Model Collapse (Dohmatob et al. 2025): OLS on N points, a share p labelled by a generator that is OLS on
    n0 real points, 1 - p fresh real. linear_regression.strong_collapse_error derives E‖ŵ - w*‖² =
    p² e_g (1 + (d+1)(1-p)/(pN)) + σ²d/(N-d-1), e_g = σ²d/(n0-d-1) (first order in 1/N; the next term is
    ~((d+1)/(pN))² <= 0.1% here). d = 5, n0 = 20, N = 2000, σ = 1: e_g = 0.357, floor 0.0143 (p = 0.2), 0.089 (p = 0.5).

    Tolerance: each chain's error is independent, so the mean of C = 200 chains has standard error sd / sqrt(C) with
    sd measured from the chains; 5 SE, plus the 0.4% second-order term. The generation-0 column is the generator:
    its mean must be e_g within 5 SE as well. The floor: at p > 0 the error at N = 2000 is not below 0.9 p² e_g,
    while p = 0 falls as σ²d/(N-d-1).
    """
    overrides = {
        "seeds": 200,
        "samples_per_generation": 2000,
        "regime.real_fraction": (1.0, 0.8, 0.5),
        "model.dim": 5,
        "model.test_size": 100,
        "make_plots": False,
    }
    r = runner.simulate(runner.as_config(overrides, strong_collapse.get_config()))
    generator_error = 5 / (20 - 5 - 1)
    errors = r.metrics["test_mse"].astype(np.float64)
    generators = errors[:, 0]
    assert abs(generators.mean() - generator_error) < 5 * generators.std() / math.sqrt(generators.size)
    for real in (1.0, 0.8, 0.5):
        values = errors[np.isclose(r.knobs["real_fraction"], real), 1]
        assert values.size == 200
        share = 1 - real
        law = linear_regression.strong_collapse_error(5, 1.0, 20, 2000, share)
        tolerance = 5 * values.std() / math.sqrt(values.size) + 0.004 * law
        assert abs(values.mean() - law) < tolerance, (share, values.mean(), law)
        if share > 0:
            assert values.mean() > 0.9 * share**2 * generator_error


def test_oblivious_contamination_error_follows_the_exact_recursion_and_its_phase_change():
    """Amin et al. (2026): the pooled mean's error V_t = E(μ_t - μ)² follows supply.oblivious_mean_variance exactly
    (derivation in its docstring); n0 = M = 20, n = 80, 20, 5 (a = 0.2, 0.5, 0.8), known σ² = 1.

    Tolerance: e_t is Gaussian with mean 0, so e_t² = V_t χ²_1 and the mean of C = 400 chains has relative SE
    sqrt(2 / C) = 7.1%; 4.5 SE = 32%, at t = 0, 20 and 100 (different chains' draws are independent; the two t of a
    chain are correlated, which only matters for a joint failure rate). The rates: the recursion's local slope
    d ln V / d ln t at t = 10^5 is -1 for a < 1/2 (-1 + O(t^(1 - 2(1 - a)))) and -2(1 - a) for a > 1/2, within 0.02
    (measured: -0.99998, -0.9997, -0.661, -0.3996 at a = 0.2, 0.25, 0.67, 0.8).
    """
    overrides = {
        "seeds": 400,
        "num_generations": 100,
        "chunk_generations": 100,
        "regime.real_inflow": (80, 20, 5),
        "make_plots": False,
    }
    r = runner.simulate(runner.as_config(overrides, oblivious_contamination.get_config()))
    for inflow in (80, 20, 5):
        law = supply.oblivious_mean_variance(20, inflow, 20, 100, 1.0)
        values = r.metrics["mean_sq_error"][r.knobs["real_inflow"] == inflow].astype(np.float64)
        assert len(values) == 400
        for t in (0, 20, 100):
            assert abs(values[:, t].mean() / law[t] - 1) < 4.5 * math.sqrt(2 / 400), (inflow, t, law[t])
    for inflow, slope in ((80, -1.0), (60, -1.0), (10, -2 * (1 - 2 / 3)), (5, -2 * (1 - 0.8))):
        law = supply.oblivious_mean_variance(20, inflow, 20, 100_000, 1.0)
        local = math.log(law[100_000] / law[50_000]) / math.log(2.0)
        assert abs(local - slope) < 0.02, (inflow, local, slope)
    # Below the phase change the constant too: V_t t (n + M) -> 1 / (1 - 2a), within 0.1% at t = 10^5 for a = 0.2.
    law = supply.oblivious_mean_variance(20, 80, 20, 100_000, 1.0)
    assert abs(law[-1] * 100_000 * 100 * (1 - 2 * 0.2) - 1) < 1e-3


def _log_ratio_law(sizes: np.ndarray, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """E and Var of ln(σ_t² / σ²) after fits on n_0, ..., n_t points (replace, d = 1): each fit multiplies the
    variance by χ²_{n-1} / (n - ddof), so E = Σ_j ψ((n_j - 1)/2) + ln(2 / (n_j - ddof)), Var = Σ_j ψ'((n_j - 1)/2)."""
    from scipy import special

    half = (sizes - 1) / 2
    return np.cumsum(special.digamma(half) + np.log(2 / (sizes - ddof))), np.cumsum(special.polygamma(1, half))


def test_growing_samples_keep_the_variance_only_when_the_sum_of_one_over_n_converges():
    """Xu, He & Cheng (2025): Gaussian, replace, generation t fits n_t = ceil(M (1 + t)^s) points drawn from the last
    fit. Each fit multiplies σ² by χ²_{n_t - 1} / (n_t - ddof), independently, so
    MLE: E[σ_t² / σ²] = Π_{j<=t} (1 - 1/n_j); unbiased: E[σ_t² / σ²] = 1 but E ln(σ_t² / σ²) = Σ ψ((n_j-1)/2) +
    ln(2/(n_j-1)) ~ -Σ 1/n_j: both tend to 0 (a.s. for the unbiased) exactly when Σ 1/n_j diverges, i.e. for s <= 1;
    s = 1 still collapses (Π (1 - 1/(M(1+j))) ~ t^(-1/M)), s = 2 keeps a positive limit.

    Tolerance: ln(trace_ratio) of C = 300 chains per s has Var = Σ ψ'((n_j-1)/2) exactly (independent log-χ²
    factors), so 5 SE = 5 sqrt(Var / C) on its mean. The MLE mean: E ratio² = Π (1 - 1/n_j²), so
    SE = sqrt((Π(1 - 1/n²) - Π(1 - 1/n)²) / C), 5 SE. M = 10, t <= 10 (n_10 = 1210 at s = 2).
    """
    growths = (0.0, 1.0, 2.0)
    overrides = {
        "seeds": 300,
        "chain_block": 300,
        "num_generations": 10,
        "chunk_generations": 10,
        "samples_per_generation": 10,
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "regime.samples_schedule": "power",
        "regime.samples_growth": growths,
        "model.dim": 1,
        "make_plots": False,
    }
    runs = {
        estimator: runner.simulate(runner.as_config({**overrides, "model.estimator": estimator}, gaussian.get_config()))
        for estimator in ("mle", "unbiased")
    }
    generations = np.arange(11)
    for growth in growths:
        sizes = np.ceil(10 * (1.0 + generations) ** growth).astype(np.float64)
        for estimator, ddof in (("mle", 0), ("unbiased", 1)):
            r = runs[estimator]
            ratio = r.metrics["trace_ratio"][r.knobs["samples_growth"] == growth].astype(np.float64)
            assert ratio.shape == (300, 11)
            mean, variance = _log_ratio_law(sizes, ddof)
            for t in (1, 5, 10):
                assert abs(np.log(ratio[:, t]).mean() - mean[t]) < 5 * math.sqrt(variance[t] / 300), (growth, t)
            if ddof == 0:
                law = np.cumprod(1 - 1 / sizes)
                spread = np.sqrt((np.cumprod(1 - 1 / sizes**2) - law**2) / 300)
                assert abs(ratio[:, 10].mean() - law[10]) < 5 * spread[10], (growth, ratio[:, 10].mean(), law[10])
    # Σ 1/n_t: the MLE product from t = 10^3 to 10^5 still falls by ~100^(-1/M) = 0.63 at s = 1 and by < 1e-4 at s = 2.
    for growth, drop in ((1.0, 100**-0.1), (2.0, 1.0)):
        sizes = np.ceil(10 * (1.0 + np.arange(100_001)) ** growth)
        product = np.cumprod(1 - 1 / sizes)
        assert abs(product[100_000] / product[1000] - drop) < 2e-3, (growth, product[100_000] / product[1000])


def test_samples_schedule_is_validated_with_one_line_errors():
    base = {"regime.samples_schedule": "power", "regime.samples_growth": 1.0, "num_generations": 2, "seeds": 2}
    cases = (
        ({"regime.samples_schedule": "linear"}, r"config\.regime\.samples_schedule: unknown samples schedule"),
        ({"regime.samples_growth": -1.0}, r"config\.regime\.samples_growth"),
        ({"regime.samples_growth": None}, r"config\.regime\.samples_growth"),
        ({"regime.name": "accumulate"}, r"config\.regime\.samples_schedule: 'power' does not combine"),
        ({"regime.real_fraction": 0.5}, r"config\.regime\.samples_schedule: 'power' does not combine"),
        ({"model.sampling": "statistics"}, r"config\.regime\.samples_schedule: 'power' does not combine"),
    )
    for overrides, message in cases:
        config = runner.as_config({**base, **overrides}, gaussian.get_config())
        with pytest.raises(ValueError, match=message) as error:
            runner.simulate(config)
        assert "\n" not in str(error.value)
