"""Curation operators from the 2024-2026 literature: exact keeps on hand-made inputs, their published laws
on the Gaussian family, every regime, and one-line errors."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from collapse_jax.core import curation
from collapse_jax.host import runner


def with_curation(config, curation_fields, **overrides):
    """A copy of `config` with a curation block (the shipped Gaussian config has none)."""
    config = runner.as_config(overrides, config)
    config.curation = ml_collections.ConfigDict(curation_fields)
    return config


class _Truth:
    """A family whose truth is N(true_mean * 1, true_std^2 I): enough for the operators that curate toward it."""

    dim, true_mean, true_std = 1, 2.0, 1.0


def _normal_quantile(p: float) -> float:
    """Phi^{-1}(p) by bisection on erf (the test needs one value to 1e-9, no SciPy)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if 0.5 * (1 + math.erf(middle / math.sqrt(2))) < p else (low, middle)
    return (low + high) / 2


SELECTION = {"name": "selection", "selection_share": 0.5, "target_offset": 0.0, "oversample": 2}


def test_selection_keeps_exactly_the_alpha_share_closest_to_the_offset_target():
    stage = curation.Curation(name="selection")
    samples = jnp.asarray([2.0, 5.0, 1.5, -1.0, 3.2, 2.9, 0.0, 4.0, 2.2, 7.0])[:, None]
    # target = true_mean + offset = 3.0: distances 1, 2, 1.5, 4, 0.2, 0.1, 3, 1, 0.8, 4 (ties by position).
    knobs = {"selection_share": jnp.float32(0.4), "target_offset": jnp.float32(1.0)}
    _, keep, metrics = stage.select(jax.random.key(0), _Truth(), {"samples": samples}, None, knobs)
    np.testing.assert_array_equal(np.asarray(keep, bool), [1, 0, 0, 0, 1, 1, 0, 0, 1, 0])
    assert float(metrics["curation_kept_fraction"]) == pytest.approx(0.4)


def test_selection_toward_the_truths_mean_shrinks_the_variance_by_the_central_truncation_factor(gaussian_config):
    """Qiao et al.'s top-alpha selection with the target at the truth's mean, d = 1: the kept points are the central
    alpha share of N(mu_0, s_0^2) (mu_0 = the generation-0 fit, within 1/sqrt(M) of the target), whose variance is
    s_0^2 v(alpha), v(alpha) = 1 - 2 z phi(z) / alpha with z = Phi^{-1}((1 + alpha) / 2) (truncated normal). alpha =
    0.5: z = 0.67449, v = 0.14264; the refit's trace_ratio shrinks by v per generation (M large: quantile noise)."""
    config = with_curation(
        gaussian_config,
        SELECTION,
        seeds=100,
        num_generations=2,
        chain_block=100,
        samples_per_generation=400,
        **{"model.real_data_size": 400},
    )
    results = runner.simulate(config)
    ratio = results.metrics["trace_ratio"]
    z = _normal_quantile(0.75)
    factor = 1 - 2 * z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) / 0.5
    # Per chain the kept variance of 400 points has relative SD ~ sqrt((mu_4/sigma^4 - 1) / 400) ~ 0.05 (the
    # truncated normal is platykurtic, mu_4/sigma^4 ~ 1.9) plus rank noise of the same order: over 100 chains the
    # mean ratio's SE is ~0.001 on 0.143; 0.004 bounds 4 SE with the O(delta^2) bias of the target's offset from mu_0
    # (delta ~ 1/sqrt(400): v changes by ~delta^2 / s^2 ~ 0.0025 relative, 0.0004 absolute).
    assert np.mean(ratio[:, 1] / ratio[:, 0]) == pytest.approx(factor, abs=0.004)
    # Generation 2 repeats it around mu_1 (within ~0.01 of the target): factor^2 within the same relative bound.
    assert np.mean(ratio[:, 2] / ratio[:, 0]) == pytest.approx(factor**2, abs=0.004)
    np.testing.assert_allclose(results.metrics["curation_kept_fraction"][:, 1:], 0.5)
    np.testing.assert_allclose(results.metrics["synthetic_share"][:, 1:], 1.0)  # 400 kept of 800 fill M


# four compiles: ~25 s each on the shared 2-core CPU
@pytest.mark.parametrize("regime", ["replace", "accumulate", "accumulate_subsample", "fresh"])
def test_selection_runs_under_every_regime_and_an_offset_target_pulls_the_mean(gaussian_config, regime):
    """A target 3 s off the truth in every coordinate: the kept half of the candidates lies on its side, so the
    refit's mean moves toward it every generation (E|kept - mu| > 0 along the offset) under every regime; fresh
    data (the `fresh` regime's real draws) is not curated, only the synthetic candidates are."""
    fields = {**SELECTION, "target_offset": 3.0}
    config = with_curation(gaussian_config, fields, seeds=4, num_generations=3, **{"regime.name": regime})
    if regime == "fresh":
        config.regime.real_fraction = 0.5
    results = runner.simulate(config)
    np.testing.assert_allclose(results.metrics["curation_kept_fraction"][:, 1:], 0.5)
    assert np.all(results.metrics["mean_sq_error"][:, -1] > results.metrics["mean_sq_error"][:, 0])


@pytest.mark.parametrize(
    "fields, model, message",
    [
        ({**SELECTION, "selection_share": 1.5}, "gaussian", r"config\.curation\.selection_share: must be"),
        ({"name": "selection", "selection_share": 0.5}, "gaussian", r"config\.curation\.target_offset: required"),
        (SELECTION, "discrete", r"config\.curation\.name: 'selection' needs a model with `true_mean`"),
    ],
)
def test_bad_selection_settings_name_the_field(gaussian_config, fields, model, message):
    config = with_curation(gaussian_config, fields)
    if model != "gaussian":
        from experiments.configs import discrete

        config = with_curation(runner.as_config({"seeds": 2, "num_generations": 2}, discrete.get_config()), fields)
    with pytest.raises(ValueError, match=message):
        runner.simulate(config)


PREFERENCE = {"name": "preference", "candidates": 16, "oversample": 16, "reward": "linear", "reward_scale": 0.2}


def test_preference_keeps_one_candidate_per_group_of_k_with_bradley_terry_odds():
    """Within a group of K = 2 with rewards r_1, r_2, Bradley-Terry keeps candidate 1 with probability
    e^{r_1} / (e^{r_1} + e^{r_2}); linear reward beta x with beta = 1 on x = (0, log 3): 1/4 vs 3/4."""
    stage = curation.Curation(name="preference", reward="linear", candidates=2)
    n = 100_000
    samples = jnp.tile(jnp.asarray([0.0, math.log(3.0)]), n)[:, None]
    _, keep, metrics = stage.select(jax.random.key(3), _Truth(), {"samples": samples}, {}, {"reward_scale": 1.0})
    keep = np.asarray(keep).reshape(n, 2)
    np.testing.assert_array_equal(keep.sum(axis=1), 1)  # exactly one per slot
    # Binomial SE sqrt(3/16 / 1e5) = 0.0014: 5 SE bounds.
    assert keep[:, 1].mean() == pytest.approx(0.75, abs=0.007)
    assert float(metrics["mean_reward"]) == pytest.approx(keep[:, 1].mean() * math.log(3.0), rel=1e-5)
    assert float(metrics["curation_kept_fraction"]) == 0.5


def test_preference_with_a_linear_reward_moves_the_mean_by_beta_sigma_squared_per_generation(gaussian_config):
    """Ferbach et al.: as K grows the kept law tends to p(x) e^{r(x)} / Z. For p = N(mu, s^2) and r(x) = beta x,
    p(x) e^{beta x} is proportional to exp(-(x - mu - beta s^2)^2 / (2 s^2)) (complete the square), i.e.
    N(mu + beta s^2, s^2): the refit mean moves by beta s^2 per generation and the variance stays. At finite K the
    kept point is K E[X_1 w_1 / sum_j w_j], w = e^{beta X}; to first order in beta (w ~ 1 + beta x) that is
    E[X_1 + beta X_1^2 - beta X_1 sum_j X_j / K] = mu + beta s^2 (1 - 1/K) (derived here; O(beta^3) terms aside):
    K = 16, beta = 0.2 gives 0.1875 s^2 per generation. The expected reward beta mu_g then rises by about
    beta^2 s^2 per generation, so its median over chains rises monotonically."""
    config = with_curation(
        gaussian_config,
        PREFERENCE,
        seeds=100,
        num_generations=4,
        chain_block=100,
        samples_per_generation=400,
        **{"model.real_data_size": 400},
    )
    results = runner.simulate(config)
    step = 0.2 * (1 - 1 / 16)
    variance = results.metrics["trace_ratio"]  # s_g^2 (true_std 1)
    kept_mean = results.metrics["mean_reward"] / 0.2  # generation g's kept points' mean = mu_g
    # mu_2 - mu_1 per chain: two kept means of 400 points, SD 0.05 each, so 0.07 per chain and 0.007 over 100
    # chains: 0.03 is 4 SE (the K -> infinity value 0.2 is 1.8 SE away: this assert alone cannot tell them apart).
    assert np.mean((kept_mean[:, 2] - kept_mean[:, 1]) / variance[:, 1]) == pytest.approx(step, abs=0.03)
    assert np.mean(variance[:, 1] / variance[:, 0]) == pytest.approx(1 - 1 / 400, abs=0.02)  # the tilt keeps s^2
    # mu_4 = mu_0 + four steps step * s_g^2 (g = 0..3), E mu_0 = 0: per chain the noise is mu_0 (SD 0.05) and four
    # kept means (SD 0.1), so 0.011 over 100 chains; 0.035 is 3 SE, and the K -> infinity value (0.8 s^2, 0.05 more)
    # lies 4.5 SE out.
    mu_4 = np.sqrt(results.metrics["mean_sq_error"][:, 4]) * np.sign(kept_mean[:, 4])  # truth mean 0, d = 1
    expected = step * np.sum(variance[:, :4], axis=1)
    assert np.mean(mu_4 - expected) == pytest.approx(0.0, abs=0.035)
    median = np.median(results.metrics["mean_reward"][:, 1:], axis=0)
    assert np.all(np.diff(median) > 0), median  # steps of beta^2 s^2 = 0.04 vs median noise ~0.002


@pytest.mark.parametrize(
    "fields, message",
    [
        (
            {**PREFERENCE, "candidates": 8},
            r"config\.curation\.candidates: K is curation\.oversample under another name",
        ),
        ({**PREFERENCE, "reward": "cubic"}, r"config\.curation\.reward"),
        ({k: v for k, v in PREFERENCE.items() if k != "reward_scale"}, r"config\.curation\.reward_scale: required"),
    ],
)
def test_bad_preference_settings_name_the_field(gaussian_config, fields, message):
    with pytest.raises(ValueError, match=message):
        runner.simulate(with_curation(gaussian_config, fields))


def test_candidates_and_oversample_are_one_setting(gaussian_config):
    """K candidates per slot is the oversampling factor: saying either one runs the same chains, bit for bit."""
    both = with_curation(gaussian_config, {**PREFERENCE, "candidates": 4, "oversample": 4})
    runs = [runner.simulate(both)]
    for alone in ("candidates", "oversample"):
        fields = {k: v for k, v in PREFERENCE.items() if k not in ("candidates", "oversample")}
        runs.append(runner.simulate(with_curation(gaussian_config, {**fields, alone: 4})))
    for other in runs[1:]:
        for name, values in runs[0].metrics.items():
            np.testing.assert_array_equal(other.metrics[name], values, err_msg=name)


SELF_CORRECTION = {"name": "self_correction", "correction_strength": 0.5}


class _Truth2D:
    """The 2-D truth N(1.5 * 1, 0.7^2 I) of the transport-map tests; params are the fit's mean and covariance."""

    dim, true_mean, true_std = 2, 1.5, 0.7

    def location_scale(self, params):
        return params["mean"], params["cov"]


def test_self_correction_moves_each_candidate_gamma_of_the_way_along_the_gaussian_transport_map():
    """Gillman et al.'s correction at strength gamma: x -> x + gamma (T(x) - x), T(x) = mu* + s* Sigma^{-1/2} (x - mu)
    the optimal transport map N(mu, Sigma) -> N(mu*, s*^2 I) (the Gaussian OT map A = Sigma^{-1/2} (Sigma^{1/2}
    Sigma* Sigma^{1/2})^{1/2} Sigma^{-1/2} with Sigma* = s*^2 I). Checked against NumPy's eigendecomposition on a
    non-diagonal Sigma, at gamma = 0 (the candidates' bits), 0.3 and 1."""
    stage = curation.Curation(name="self_correction")
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    params = {"mean": jnp.asarray([0.3, -1.0], jnp.float32), "cov": jnp.asarray(cov, jnp.float32)}
    samples = jax.random.normal(jax.random.key(1), (50, 2))
    w, v = np.linalg.eigh(cov)
    transport = 1.5 + 0.7 * (np.asarray(samples, np.float64) - [0.3, -1.0]) @ (v / np.sqrt(w) @ v.T)
    state = {"samples": samples, "params": params}
    for gamma in (0.0, 0.3, 1.0):
        moved = stage.transform(_Truth2D(), state, {"correction_strength": jnp.float32(gamma)})
        expected = np.asarray(samples) + gamma * (transport - np.asarray(samples))
        np.testing.assert_allclose(np.asarray(moved), expected, rtol=0, atol=2e-5)  # float32 round-off of O(5) values
    gamma0 = stage.transform(_Truth2D(), state, {"correction_strength": jnp.float32(0.0)})
    np.testing.assert_array_equal(np.asarray(gamma0), np.asarray(samples))
    _, keep, _ = stage.select(jax.random.key(0), _Truth2D(), state, None, {"correction_strength": jnp.float32(0.3)})
    assert np.all(np.asarray(keep) == 1.0)


def test_full_correction_turns_a_wrong_models_draws_into_draws_from_the_truth():
    """gamma = 1: the pushforward of N(mu, Sigma) by T is the truth N(mu*, s*^2 I) (T linear, T(mu) = mu*,
    A Sigma A^T = s*^2 I). 20 000 draws of a model far off the truth (mean off by 2, correlated, anisotropic): each
    corrected coordinate's KS distance to N(1.5, 0.7^2) stays under 1.63 / sqrt(n) = 0.0115 (the 1% point of the
    Kolmogorov law; the uncorrected draws are ~0.9 away), and the two coordinates are uncorrelated
    (|r| < 4 / sqrt(n))."""
    stage = curation.Curation(name="self_correction")
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    params = {"mean": jnp.asarray([-0.5, 3.0], jnp.float32), "cov": jnp.asarray(cov, jnp.float32)}
    n = 20_000
    root = np.linalg.cholesky(cov)
    draws = params["mean"] + jax.random.normal(jax.random.key(7), (n, 2)) @ jnp.asarray(root.T, jnp.float32)
    moved = np.asarray(
        stage.transform(_Truth2D(), {"samples": draws, "params": params}, {"correction_strength": jnp.float32(1.0)}),
        np.float64,
    )

    def ks_distance(column):
        standard = np.sort((column - 1.5) / 0.7)
        cdf = 0.5 * (1 + np.vectorize(math.erf)(standard / math.sqrt(2)))
        rank = np.arange(1, n + 1) / n
        return max(np.max(rank - cdf), np.max(cdf - (rank - 1 / n)))

    for j in range(2):
        assert ks_distance(moved[:, j]) < 1.63 / math.sqrt(n)
        assert ks_distance(np.asarray(draws[:, j], np.float64)) > 0.5
    assert abs(np.corrcoef(moved.T)[0, 1]) < 4 / math.sqrt(n)


@pytest.mark.production_bits  # two programs: with and without the stage
def test_self_correction_at_gamma_zero_is_bit_identical_to_no_curation(gaussian_config):
    """gamma = 0 moves nothing (x + 0 (T(x) - x) = x bit for bit) and keeps every candidate, so the batch, the fits
    and every model metric equal curation none's bits; only the bookkeeping metrics (kept fraction 1, synthetic
    share 1) are added."""
    config = runner.as_config({"model.dim": 2}, gaussian_config)
    plain = runner.simulate(config)
    corrected = runner.simulate(with_curation(config, {**SELF_CORRECTION, "correction_strength": 0.0}))
    for name, values in plain.metrics.items():
        np.testing.assert_array_equal(corrected.metrics[name], values, err_msg=name)
    np.testing.assert_array_equal(corrected.metrics["curation_kept_fraction"][:, 1:], 1.0)


def test_full_correction_under_replace_is_the_fresh_data_chain(gaussian_config):
    """gamma = 1 under replace: every generation trains on M points whose law is the truth (the test above), so the
    chain never drifts; each generation's MLE fit to M = 100 truth draws has E|mean - mu*|^2 = d s*^2 / M and
    E trace_ratio = (M - 1) / M at every generation, while the uncorrected chain's trace ratio decays (Var grows).
    d = 2, s* = 1, 64 chains x 6 generations: mean_sq_error ~ (s^2/M) chi2_2, whose mean over 64 x 6 = 384
    (independent) fits has SE 0.02 sqrt(2/384) = 0.0014 on 0.02: 0.006 is 4 SE. trace_ratio per fit has SD
    sqrt(2 / (d M)) = 0.1, SE over 384 fits 0.005: 0.02 is 4 SE."""
    overrides = {"model.dim": 2, "seeds": 64, "chain_block": 64, "num_generations": 6}
    fields = {**SELF_CORRECTION, "correction_strength": 1.0}
    config = with_curation(runner.as_config(overrides, gaussian_config), fields)
    metrics = runner.simulate(config).metrics
    assert np.mean(metrics["mean_sq_error"][:, 1:]) == pytest.approx(2 / 100, abs=0.006)
    assert np.mean(metrics["trace_ratio"][:, 1:]) == pytest.approx(0.99, abs=0.02)
    # No drift: the last generation's fits are as close to the truth as the first's (same law, 64 chains each).
    assert np.mean(metrics["mean_sq_error"][:, -1]) == pytest.approx(0.02, abs=0.012)


@pytest.mark.parametrize(
    "fields, overrides, message",
    [
        ({**SELF_CORRECTION, "correction_strength": 1.5}, {}, r"config\.curation\.correction_strength: must be"),
        ({"name": "self_correction"}, {}, r"config\.curation\.correction_strength: required"),
        (SELF_CORRECTION, {"model.truth": "student_t"}, r"config\.curation\.name: .* the Gaussian truth"),
    ],
)
def test_bad_self_correction_settings_name_the_field(gaussian_config, fields, overrides, message):
    config = with_curation(runner.as_config(overrides, gaussian_config), fields)
    with pytest.raises(ValueError, match=message):
        runner.simulate(config)


def test_self_correction_refuses_a_family_without_the_gaussian_transport_map():
    from experiments.configs import gmm

    config = with_curation(runner.as_config({"seeds": 2, "num_generations": 2}, gmm.get_config()), SELF_CORRECTION)
    with pytest.raises(ValueError, match=r"config\.curation\.name: 'self_correction' needs"):
        runner.simulate(config)


def test_self_correction_bounds_the_replace_loops_drift_at_the_contracted_stationary_error(gaussian_config):
    """Gillman et al.'s toy, small: d = 2, M = 50, replace, 20 generations, gamma 0 and 0.5 (64 chains each).

    Law (derived here): the corrected candidates of a model N(mu, Sigma) have law N((1 - g) mu + g mu*, C) with
    C = ((1 - g) Sigma^{1/2} + g s* I)^2, so the refit's mean error e = mu - mu* obeys e' = (1 - g) e + noise of
    covariance C / M: E|e|^2 is stationary at tr C / (M g (2 - g)). The spread contracts too: the corrected points'
    SD is (1 - g) sigma + g s*, the MLE refit's sigma' ~ c ((1 - g) sigma + g s*) with c = sqrt((M - 1) / M), so
    stationary sigma = c g s* / (1 - c (1 - g)) = 0.980 s* at g = 0.5 and the corrected SD is sigma / c = 0.990 s*:
    tr C = 2 (0.990)^2 and E|e|^2 = 1.961 / (50 * 0.75) = 0.0523. Without correction (g = 0) e is a random walk whose
    steps have variance tr Sigma_g / M = (d s*^2 / M) ((M - 1) / M)^g: E|e_20|^2 = 0.04 * sum_{g<=20} 0.98^g = 0.70.

    Tolerance: e^2 (d = 2) has SD ~ its mean; the mean over 64 chains x generations 10-20 (lag-1 correlation
    (1 - g)^2 = 0.25, ~64 x 11 x 0.75 / 1.25 = 420 effective draws) has SE 0.0025: 0.01 is 4 SE. W2: the median of
    w2_sq_to_truth grows ~10x over 20 generations without correction and stays within 2x of generation 0 with it
    (measured: mean error 0.0506 and 0.56; median W2^2 0.070 -> 0.90 at g = 0, 0.070 -> 0.088 at g = 0.5).
    """
    overrides = {"model.dim": 2, "seeds": 64, "chain_block": 128, "num_generations": 20, "samples_per_generation": 50}
    fields = {**SELF_CORRECTION, "correction_strength": (0.0, 0.5)}
    results = runner.simulate(with_curation(runner.as_config(overrides, gaussian_config), fields))
    gamma = results.knobs["correction_strength"]
    error, w2 = results.metrics["mean_sq_error"], results.metrics["w2_sq_to_truth"]
    corrected, plain = gamma == 0.5, gamma == 0.0
    assert np.mean(error[corrected, 10:]) == pytest.approx(0.0523, abs=0.01)
    assert np.mean(error[plain, 20]) == pytest.approx(0.70, rel=0.3)  # chi2 walk: SD ~ mean, SE 1/8 over 64 chains
    assert np.median(w2[plain, 20]) > 5 * np.median(w2[plain, 0])
    assert np.median(w2[corrected, 20]) < 2 * np.median(w2[corrected, 0])
