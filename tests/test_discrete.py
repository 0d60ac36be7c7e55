"""Tests of the discrete (categorical / Wright–Fisher) model: sklearn parity, exact Markov-chain absorption laws,
tails-first extinction, and the exact heterozygosity decay under replace and accumulate.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from sklearn.naive_bayes import MultinomialNB

from collapse_jax.host import sweep
from collapse_jax.host.runner import as_config, simulate
from collapse_jax.models import base, discrete
from experiments.configs import discrete as discrete_config


def model_config(**overrides) -> ml_collections.ConfigDict:
    """The shipped discrete config with dotted-path overrides."""
    return as_config(overrides, discrete_config.get_config())


def knobs(zipf_exponent: float = 0.0, smoothing: float = 0.0) -> dict:
    return {"seed": jnp.int32(0), "real_fraction": 0.0, "zipf_exponent": zipf_exponent, "smoothing": smoothing}


@pytest.mark.filterwarnings("ignore:divide by zero")  # sklearn takes log 0 for unseen outcomes at α = 0
def test_fit_matches_sklearn_multinomial_naive_bayes_add_alpha_with_sample_weights():
    """p_i = (c_i + α) / (Σc + Kα) is sklearn MultinomialNB's feature_log_prob_ for a single class."""
    model = base.make_model(model_config(**{"model.num_outcomes": 7}))
    rng = np.random.default_rng(0)
    data = rng.integers(0, 5, size=300)  # outcomes 5 and 6 never occur: smoothing must still give them mass
    weights = (rng.random(300) < 0.7).astype(np.float32)
    for alpha in (0.0, 0.5, 2.0):
        params = model.fit(None, jnp.asarray(data), jnp.asarray(weights), knobs(smoothing=alpha), model.init(None, {}))
        one_hot = np.eye(7)[data]
        reference = MultinomialNB(alpha=alpha, force_alpha=True).fit(one_hot, np.zeros(300), sample_weight=weights)
        expected = np.exp(reference.feature_log_prob_[0])
        # float32 counts and division: relative error ~1e-7; 1e-6 leaves room for the normalization.
        np.testing.assert_allclose(params["probabilities"], expected, rtol=1e-6, atol=1e-7)


def test_merged_counts_fit_equals_fit_on_concatenated_pool():
    """Sufficient statistics: counts of a union are the sum of counts, so accumulate can keep O(K) memory."""
    model = base.make_model(model_config(**{"model.num_outcomes": 5}))
    first, second = jax.random.randint(jax.random.key(0), (2, 40), 0, 5)
    ones = jnp.ones(40)
    merged = model.merge_statistics(model.statistics(first, ones), model.statistics(second, ones))
    from_statistics = model.fit_statistics(None, merged, knobs(), model.init(None, {}))
    direct = model.fit(None, jnp.concatenate([first, second]), jnp.ones(80), knobs(), model.init(None, {}))
    np.testing.assert_array_equal(from_statistics["probabilities"], direct["probabilities"])


def test_sampler_matches_probabilities_and_never_draws_a_lost_outcome():
    """Inverse-CDF draws have frequencies p_i (within 5 binomial sd) and exactly zero count where p_i = 0."""
    model = base.make_model(model_config(**{"model.num_outcomes": 5}))
    probabilities = jnp.asarray([0.5, 0.0, 0.3, 0.2, 0.0])
    draws = 200_000
    counts = np.bincount(model.sample(jax.random.key(1), {"probabilities": probabilities}, draws, {}), minlength=5)
    expected = np.asarray(probabilities) * draws
    # Binomial sd sqrt(n p (1 - p)); 5 sd over 3 cells has a false-alarm chance below 1e-5.
    assert np.all(np.abs(counts - expected) <= 5 * np.sqrt(expected * (1 - np.asarray(probabilities))))
    assert counts[1] == 0 and counts[4] == 0


def test_outcome_is_missing_from_the_first_fit_with_probability_one_minus_q_to_the_m():
    """Tails die first (Shumailov et al. 2024): P(p̂_i = 0) = (1 - p0_i)^M, and E[tail_mass] follows in closed form."""
    num_outcomes, samples, chains = 50, 100, 4000
    model = base.make_model(model_config(**{"model.num_outcomes": num_outcomes, "samples_per_generation": samples}))
    chain_knobs = knobs(zipf_exponent=1.1)

    def first_fit(key):
        params = model.fit(
            None, model.real_data(key, chain_knobs), jnp.ones(samples), chain_knobs, model.init(None, {})
        )
        return params["probabilities"], model.evaluate(params, None, {}, chain_knobs)["tail_mass"]

    probabilities, tail_mass = jax.jit(jax.vmap(first_fit))(jax.random.split(jax.random.key(2), chains))
    truth = np.asarray(discrete.truth_probabilities(num_outcomes, 1.1), np.float64)
    missing = np.mean(np.asarray(probabilities) == 0, axis=0)
    expected_missing = (1 - truth) ** samples
    # A Bernoulli frequency over N chains has sd sqrt(q (1 - q) / N); 5 sd keeps 50 simultaneous checks below 1e-4.
    assert np.all(np.abs(missing - expected_missing) <= 5 * np.sqrt(expected_missing * (1 - expected_missing) / chains))
    assert expected_missing[-1] > 0.5 > expected_missing[0]  # the rarest outcome usually vanishes, the mode never
    tail = truth <= 1 / samples
    expected_tail_mass = np.sum(truth[tail] * (1 - expected_missing[tail])) / np.sum(truth[tail])
    # Mean of N chains' tail_mass in [0, 1]: 4 standard errors (sample sd / sqrt(N)).
    assert abs(np.mean(tail_mass) - expected_tail_mass) <= 4 * np.std(tail_mass) / math.sqrt(chains)


def exact_absorption_survival(truth: np.ndarray, samples: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """P(T > n) for n = 0..horizon of the Wright–Fisher chain started at probabilities `truth`, and P(fix at i)."""
    num_outcomes = len(truth)
    states = [c for c in itertools.product(range(samples + 1), repeat=num_outcomes) if sum(c) == samples]
    counts = np.asarray(states, np.float64)  # [S, K]
    log_coefficient = math.lgamma(samples + 1) - np.sum([[math.lgamma(c + 1) for c in s] for s in states], axis=1)

    def multinomial_row(probabilities: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_p = np.where(counts > 0, counts * np.log(np.maximum(probabilities, 1e-300)), 0.0)
        log_p = np.where((counts > 0) & (probabilities == 0), -np.inf, log_p)
        return np.exp(log_coefficient + np.sum(log_p, axis=1))

    transition = np.stack([multinomial_row(c / samples) for c in counts])  # [S, S]
    absorbed = np.sum(counts > 0, axis=1) == 1
    distribution = multinomial_row(np.asarray(truth, np.float64))  # law of the first fit (n = 1)
    survival = [1.0]
    for _ in range(horizon):
        survival.append(distribution[~absorbed].sum())
        distribution = distribution @ transition
    return np.asarray(survival), counts[absorbed]


@pytest.mark.parametrize("zipf_exponent", [0.0, 1.0])
def test_absorption_time_and_fixed_outcome_match_the_exact_wright_fisher_chain(zipf_exponent):
    """E[min(T, H)] from the exact K = 3, M = 12 transition matrix; outcome i fixes with probability p0(i)."""
    num_outcomes, samples, generations, seeds = 3, 12, 120, 1024
    results = simulate(
        model_config(
            **{
                "model.num_outcomes": num_outcomes,
                "samples_per_generation": samples,
                "model.zipf_exponent": zipf_exponent,
                "regime.name": "replace",
                "num_generations": generations,
                "seeds": seeds,
                "chunk_generations": 60,
            }
        )
    )
    horizon = generations + 1  # fits observed: columns 0..G hold fits 1..G+1
    absorbed = results.metrics["absorbed"] > 0
    # T counts fits: the first absorbed column g is fit g + 1; chains never absorbed are censored at H.
    absorption_time = np.where(absorbed.any(axis=1), absorbed.argmax(axis=1) + 1, horizon)
    survival, _ = exact_absorption_survival(
        np.asarray(discrete.truth_probabilities(num_outcomes, zipf_exponent)), samples, horizon
    )
    # E[min(T, H)] = Σ_{n<H} P(T > n) and E[min(T, H)²] = Σ_{n<H} (2n + 1) P(T > n).
    exact_mean = survival[:horizon].sum()
    exact_sd = math.sqrt(np.sum((2 * np.arange(horizon) + 1) * survival[:horizon]) - exact_mean**2)
    # 4 standard errors of a mean over `seeds` independent chains.
    assert abs(absorption_time.mean() - exact_mean) <= 4 * exact_sd / math.sqrt(seeds)
    # Fixation probabilities equal p0 (the frequencies are a martingale); among chains absorbed by H.
    fixed = results.metrics["absorbed_outcome"][:, -1]
    truth = np.asarray(discrete.truth_probabilities(num_outcomes, zipf_exponent))
    assert np.mean(fixed >= 0) >= 1 - survival[-1] - 4 * math.sqrt(survival[-1] / seeds) - 1e-3
    done = fixed[fixed >= 0]
    for outcome, probability in enumerate(truth):
        frequency = np.mean(done == outcome)
        assert abs(frequency - probability) <= 4 * math.sqrt(probability * (1 - probability) / len(done))


def test_mean_absorption_time_matches_the_diffusion_formula_at_k6_m100():
    """Uniform K = 6, M = 100: E[T] ≈ -2M(K-1) ln(1 - 1/K) = 182.3 generations (SCIENCE.md: Monte Carlo 180.7)."""
    num_outcomes, samples, generations, seeds = 6, 100, 1000, 1024
    results = simulate(
        model_config(
            **{
                "model.num_outcomes": num_outcomes,
                "samples_per_generation": samples,
                "regime.name": "replace",
                "num_generations": generations,
                "seeds": seeds,
                "chunk_generations": 250,
            }
        )
    )
    absorbed = results.metrics["absorbed"] > 0
    assert absorbed[:, -1].all()  # P(T > 1000) is ~e^-8 per chain at M = 100
    absorption_time = absorbed.argmax(axis=1) + 1
    formula = -2 * samples * (num_outcomes - 1) * math.log(1 - 1 / num_outcomes)
    # 4 standard errors of the mean over the chains, plus 2% for the diffusion approximation's own error
    # (exact chains sit ~1% below it at M = 100).
    tolerance = 4 * absorption_time.std() / math.sqrt(seeds) + 0.02 * formula
    assert abs(absorption_time.mean() - formula) <= tolerance


def test_tail_mass_falls_faster_than_entropy_under_zipf():
    """Zipf K = 100, M = 100: the tail (p0 <= 1/M) loses its mass long before the entropy is lost."""
    num_outcomes, samples, generations, seeds = 100, 100, 20, 128
    results = simulate(
        model_config(
            **{
                "model.num_outcomes": num_outcomes,
                "samples_per_generation": samples,
                "model.zipf_exponent": 1.0,
                "regime.name": "replace",
                "num_generations": generations,
                "seeds": seeds,
                "chunk_generations": generations,
            }
        )
    )
    truth = np.asarray(discrete.truth_probabilities(num_outcomes, 1.0), np.float64)
    tail_share = results.metrics["tail_mass"]  # share of the tail's true mass still alive (1 at the truth)
    entropy_share = results.metrics["entropy"] / -np.sum(truth * np.log(truth))  # 1 at the truth
    gap = entropy_share - tail_share
    # The mean gap must exceed 4 standard errors at every generation (measured: 0.50 at g = 0, 0.43 at g = 20).
    assert np.all(gap.mean(axis=0) > 4 * gap.std(axis=0) / math.sqrt(seeds))
    assert np.median(tail_share[:, -1]) < 0.1 < 0.3 < np.median(entropy_share[:, -1])


def test_heterozygosity_decays_exactly_under_replace_and_accumulate():
    """E[h_n] = h0 (1 - 1/M)^n (replace) and h0 Π_{k<=n} (1 - 1/(M k²)) (accumulate), h = 1 - Σ p_i², n = fits."""
    num_outcomes, samples, generations, seeds = 4, 20, 15, 2048
    results = simulate(
        model_config(
            **{
                "model.num_outcomes": num_outcomes,
                "samples_per_generation": samples,
                "model.zipf_exponent": 0.7,
                "regime.name": ("replace", "accumulate"),
                "num_generations": generations,
                "seeds": seeds,
                "chunk_generations": generations,
            }
        )
    )
    truth = np.asarray(discrete.truth_probabilities(num_outcomes, 0.7), np.float64)
    h0 = 1 - np.sum(truth**2)
    fits = np.arange(1, generations + 2)
    expected = {
        "replace": h0 * (1 - 1 / samples) ** fits,
        # h_n = h_{n-1} - 2 Σ p ξ / n - Σ ξ² / n² with E[Σ ξ²] = h_{n-1} / M: the π²/6 pathway of Dey & Donoho.
        "accumulate": h0 * np.cumprod(1 - 1 / (samples * fits**2)),
    }
    for regime, curve in expected.items():
        values = results.metrics["heterozygosity"][results.knobs["regime"] == regime]
        # 4 standard errors per generation, from the chains' own spread.
        tolerance = 4 * values.std(axis=0) / math.sqrt(len(values))
        assert np.all(np.abs(values.mean(axis=0) - curve) <= tolerance), regime
    # Accumulate keeps ≥ sin(π/√M)/(π/√M) ≈ 0.92 of h0 forever; replace has lost 1 - 0.95^16 ≈ 56% by now.
    assert expected["accumulate"][-1] > 0.92 * h0 > 2 * expected["replace"][-1]


@pytest.mark.production_bits  # statistics vs raw pool
def test_accumulate_statistics_path_matches_the_raw_pool_bit_for_bit():
    """Counts are exact integers in float32, so O(K) statistics and the raw pool give identical chains."""
    overrides = {
        "samples_per_generation": 30,
        "regime.name": "accumulate",
        "num_generations": 20,
        "seeds": 8,
        "chain_block": 8,
        "chunk_generations": 20,
    }
    with_statistics = simulate(model_config(**overrides))
    raw_pool = simulate(model_config(**overrides, **{"regime.keep_raw_pool": True}))
    for name in discrete.DiscreteModel.metric_names:
        np.testing.assert_array_equal(with_statistics.metrics[name], raw_pool.metrics[name])


@pytest.mark.parametrize(
    ("field", "value"),
    [("model.num_outcomes", 1), ("model.smoothing", (0.0, -1.0)), ("model.zipf_exponent", float("nan"))],
)
def test_bad_config_raises_one_line_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"config.{field}") as error:
        sweep.expand(model_config(**{field: value}))
    assert "\n" not in str(error.value)


# --- The three sources of error (Shumailov et al. 2024) --------------------------------------------------------------


def population_fits(generations: int, zipf_exponent: float, smoothing: float, **overrides) -> list[np.ndarray]:
    """Probabilities of fits 0..generations of a population-fit chain (fit called on the previous params)."""
    model = base.make_model(model_config(**{"model.population_fit": True, "regime.name": "replace", **overrides}))
    chain_knobs = knobs(zipf_exponent, smoothing)
    fit = jax.jit(
        lambda previous: model.fit(jax.random.key(0), jnp.zeros(4, jnp.int32), jnp.ones(4), chain_knobs, previous)
    )
    params, fits = model.init(jax.random.key(0), chain_knobs), []
    for _ in range(generations + 1):
        params = fit(params)
        fits.append(np.asarray(params["probabilities"]))
    return fits


def test_all_three_errors_off_the_chain_is_the_truth_at_every_generation_exactly():
    """Population fit, K bins, α = 0: the MLE of a categorical's own expected counts is that categorical (no
    arithmetic is done on it), so fit 0 is p0 and fit 1 equals fit 0 bit for bit (Shumailov et al.: stationary)."""
    fits = population_fits(3, zipf_exponent=1.0, smoothing=0.0)
    truth = np.asarray(discrete.truth_probabilities(6, jnp.float32(1.0)))
    np.testing.assert_array_equal(fits[0], truth)
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit, fits[0])


def test_merged_bins_first_fit_is_the_merged_truth_and_never_changes():
    """Expressivity only (B = 3 bins of K = 6 Zipf outcomes): fit 0 = each bin's truth mass spread evenly over its
    two outcomes (the closed form below), and every later fit equals it exactly: the error is made once."""
    fits = population_fits(3, zipf_exponent=1.0, smoothing=0.0, **{"model.num_bins": 3})
    truth = np.asarray(discrete.truth_probabilities(6, jnp.float32(1.0)), np.float64)
    merged = np.repeat(truth.reshape(3, 2).sum(axis=1) / 2.0, 2)
    np.testing.assert_allclose(fits[0], merged, rtol=1e-6)  # float32 sums of two values: ~1 ulp
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit, fits[0])


def test_add_alpha_population_fits_drift_to_uniform_as_rho_to_the_n():
    """Approximation only (α > 0, the Dirichlet-MAP objective): p_{n+1} = (M p_n + α) / (M + K α), so
    p_n - u = ρ^n (p_0 - u) with ρ = M / (M + K α) and p_0 = (R p0 + α) / (R + K α) (R = real_data_size = M here)."""
    fits = population_fits(10, zipf_exponent=1.0, smoothing=2.0)
    truth = np.asarray(discrete.truth_probabilities(6, jnp.float32(1.0)), np.float64)
    size, alpha, uniform = 1000.0, 2.0, 1.0 / 6.0
    rho = size / (size + 6 * alpha)
    first = (size * truth + alpha) / (size + 6 * alpha)
    for n in (0, 5, 10):
        # float32 recursion over 10 steps: ~10 roundings of 6e-8 relative each.
        np.testing.assert_allclose(fits[n], uniform + rho**n * (first - uniform), rtol=2e-6)


# an engine run: ~30 s of compiles on a loaded 2-core CPU
def test_population_fit_runs_in_the_engine_and_merged_bins_keep_their_first_kl():
    overrides = {
        "seeds": 2,
        "num_generations": 4,
        "chunk_generations": 4,
        "regime.name": "replace",
        "model.population_fit": True,
        "model.num_bins": (6, 3),
        "model.zipf_exponent": 1.0,
        "make_plots": False,
        "chain_block": 2,
    }
    results = simulate(model_config(**overrides))
    kl = np.asarray(results.metrics["kl_to_truth"])
    bins = np.asarray(results.knobs["num_bins"])
    np.testing.assert_array_equal(kl[bins == 6], 0.0)
    assert np.all(kl[bins == 3] > 0.01)
    np.testing.assert_array_equal(kl[bins == 3], kl[bins == 3][:, :1].repeat(5, axis=1))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model.num_bins": 7}, "model.num_bins"),
        ({"model.population_fit": True, "regime.name": "accumulate"}, "model.population_fit"),
    ],
)
def test_bad_error_source_settings_are_one_line_errors(overrides, field):
    with pytest.raises(ValueError, match=f"config.{field}"):
        sweep.expand(model_config(**overrides))
