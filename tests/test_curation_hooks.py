"""Curation hooks of the statistical zoo (discrete, linear regression, GMM, KDE): log_likelihood parity with scipy /
scikit-learn, is_good on hand-made points at known distances, and the good region's truth mass."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import integrate, special, stats
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

from collapse_jax.core import regimes
from collapse_jax.host import runner, sweep
from collapse_jax.models import _metrics as metrics
from collapse_jax.models import base, discrete, kde
from experiments.configs import discrete as discrete_config
from experiments.configs import gmm as gmm_config
from experiments.configs import kde as kde_config
from experiments.configs import linear_regression as linear_regression_config

# Fresh truth draws for the mass checks: the share of good draws is Binomial(n, m) / n, sd sqrt(m (1 - m) / n) =
# 4.9e-4 at n = 2e5, m = 0.95; exact regions are checked to 5 sd (a false alarm once in ~3.5 million runs).
MASS_DRAWS = 200_000


def build(config_module, overrides=None, **curation):
    """The shipped config with overrides and, when given, a curation block (a config without one must still work)."""
    config = runner.as_config(overrides or {}, config_module.get_config())
    if curation:
        config.curation = ml_collections.ConfigDict(curation)
    return config


def share_good(model, data, knobs) -> float:
    return float(np.mean(np.asarray(jax.jit(lambda x: model.is_good(x, knobs))(data))))


# --- discrete ---------------------------------------------------------------------------------------------------


def test_discrete_log_likelihood_is_scipy_log_pmf_and_minus_inf_for_a_lost_outcome():
    model = base.make_model(build(discrete_config, {"model.num_outcomes": 5}))
    probabilities = np.array([0.4, 0.3, 0.2, 0.1, 0.0], np.float32)
    outcomes = np.array([0, 1, 2, 3, 3, 0])
    ours = np.asarray(model.log_likelihood({"probabilities": jnp.asarray(probabilities)}, jnp.asarray(outcomes), {}))
    reference = stats.rv_discrete(values=(np.arange(5), probabilities.astype(np.float64))).logpmf(outcomes)
    np.testing.assert_allclose(ours, reference, rtol=1e-6)
    lost = model.log_likelihood({"probabilities": jnp.asarray(probabilities)}, jnp.array([4]), {})
    assert np.isneginf(np.asarray(lost)).all()


@pytest.mark.parametrize(
    "num_outcomes, zipf_exponent, mass, expected_good",
    [
        # Zipf beta = 1, K = 6: p0 = (20, 10, 6.67, 5, 4, 3.33) / 49; cumulative 0.408, 0.612, 0.748, 0.850, 0.932, 1.
        (6, 1.0, 0.90, 5),  # the first 4 hold 0.850 < 0.90, the first 5 hold 0.932
        (6, 1.0, 0.95, 6),  # 0.932 < 0.95: every outcome is needed
        (6, 1.0, 0.60, 2),  # 0.408 < 0.60 <= 0.612
        (20, 0.0, 0.95, 19),  # uniform: 19 / 20 = 0.95 exactly, so the 20th is not needed (the float32 slack case)
        (10, 0.0, 0.95, 10),  # uniform: 9 / 10 = 0.9 < 0.95
    ],
)
def test_discrete_good_outcomes_are_the_smallest_most_likely_set_holding_the_mass(
    num_outcomes, zipf_exponent, mass, expected_good
):
    model = base.make_model(
        build(discrete_config, {"model.num_outcomes": num_outcomes}, name="verifier", good_region_mass=mass)
    )
    knobs = {"zipf_exponent": zipf_exponent}
    good = np.asarray(model.is_good(jnp.arange(num_outcomes), knobs))
    # p0 decreases with the index (ties broken by index), so the set is the first `expected_good` outcomes.
    np.testing.assert_array_equal(good, np.arange(num_outcomes) < expected_good)


def test_discrete_share_of_good_truth_draws_is_the_good_set_mass():
    mass = 0.9
    model = base.make_model(build(discrete_config, {"model.num_outcomes": 50}, good_region_mass=mass))
    knobs = {"zipf_exponent": 1.1}
    truth = np.asarray(discrete.truth_probabilities(50, jnp.float32(1.1)), np.float64)
    good = np.asarray(model.good_outcomes(knobs))
    set_mass = truth[good].sum()
    # Smallest set: it holds >= m, and dropping its least likely member would leave < m.
    assert set_mass >= mass > set_mass - truth[good].min()
    draws = model.sample_truth(jax.random.key(3), MASS_DRAWS, knobs)
    sd = math.sqrt(set_mass * (1 - set_mass) / MASS_DRAWS)
    assert abs(share_good(model, draws, knobs) - set_mass) < 5 * sd


# --- linear regression ------------------------------------------------------------------------------------------


def test_linear_regression_log_likelihood_is_the_conditional_normal_log_density():
    model = base.make_model(build(linear_regression_config, {"model.dim": 3}))
    rng = np.random.default_rng(0)
    x, weights, y = rng.standard_normal((50, 3)), rng.standard_normal(3), 3.0 * rng.standard_normal(50)
    data = {"x": jnp.asarray(x, jnp.float32), "y": jnp.asarray(y, jnp.float32)}
    ours = model.log_likelihood({"weights": jnp.asarray(weights, jnp.float32)}, data, {"noise_std": 1.7})
    np.testing.assert_allclose(np.asarray(ours), stats.norm.logpdf(y, x @ weights, 1.7), rtol=1e-5, atol=1e-5)


def test_linear_regression_is_good_inside_the_central_noise_interval():
    mass, noise_std, dim = 0.9, 0.5, 4
    model = base.make_model(build(linear_regression_config, {"model.dim": dim}, name="verifier", good_region_mass=mass))
    assert model.good_residual_z == pytest.approx(stats.norm.ppf(0.95), rel=1e-12)
    half_width = noise_std * stats.norm.ppf(0.5 + mass / 2)
    # Rows x = e_1 have prediction x.w* = 1/sqrt(d) = 0.5; labels at known residuals just inside / outside the interval.
    residuals = np.array([0.0, 0.99, -0.99, 1.01, -1.01, 3.0]) * half_width
    data = {"x": jnp.asarray(np.eye(dim)[np.zeros(6, int)], jnp.float32), "y": jnp.asarray(0.5 + residuals)}
    good = np.asarray(model.is_good(data, {"noise_std": noise_std}))
    np.testing.assert_array_equal(good, [True, True, True, False, False, False])
    truth = model.sample_truth(jax.random.key(4), MASS_DRAWS, {"noise_std": noise_std})
    assert abs(share_good(model, truth, {"noise_std": noise_std}) - mass) < 5 * math.sqrt(
        mass * (1 - mass) / MASS_DRAWS
    )


# --- GMM --------------------------------------------------------------------------------------------------------


def test_chi_square_quantile_matches_scipy():
    for dim in (1, 2, 3, 10, 50):
        for mass in (0.5, 0.9, 0.95, 0.999):
            assert metrics.chi_square_quantile(mass, dim) == pytest.approx(stats.chi2.ppf(mass, dim), 1e-10)


def test_gmm_log_likelihood_matches_sklearn_score_samples():
    rng = np.random.default_rng(1)
    factors = rng.standard_normal((3, 2, 2))
    params = {
        "weights": np.array([0.5, 0.3, 0.2]),
        "means": rng.standard_normal((3, 2)) * 3,
        "covariances": factors @ np.swapaxes(factors, -1, -2) + 0.1 * np.eye(2),
    }
    reference = GaussianMixture(3, covariance_type="full")
    reference.weights_, reference.means_, reference.covariances_ = (
        params["weights"],
        params["means"],
        params["covariances"],
    )
    reference.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(params["covariances"]))
    points = rng.standard_normal((200, 2)) * 4
    model = base.make_model(build(gmm_config))
    ours = model.log_likelihood(jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), params), jnp.asarray(points), {})
    # float32 vs float64 over log densities of size ~10: 1e-4 absolute.
    np.testing.assert_allclose(np.asarray(ours), reference.score_samples(points), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dim, true_mean, true_std, mass", [(2, 0.0, 1.0, 0.95), (3, 1.0, 2.0, 0.8)])
def test_gmm_is_good_is_the_exact_chi_square_ball_of_the_truth(dim, true_mean, true_std, mass):
    overrides = {"model.dim": dim, "model.true_mean": true_mean, "model.true_std": true_std}
    model = base.make_model(build(gmm_config, overrides, name="verifier", good_region_mass=mass))
    radius = true_std * math.sqrt(stats.chi2.ppf(mass, dim))
    directions = np.random.default_rng(2).standard_normal((4, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    scales = np.array([0.0, 0.99, 1.01, 2.0])
    points = jnp.asarray(true_mean + scales[:, None] * radius * directions, jnp.float32)
    np.testing.assert_array_equal(np.asarray(model.is_good(points, {})), [True, True, False, False])
    truth = model.sample_truth(jax.random.key(5), MASS_DRAWS, {})
    assert abs(share_good(model, truth, {}) - mass) < 5 * math.sqrt(mass * (1 - mass) / MASS_DRAWS)


# --- KDE --------------------------------------------------------------------------------------------------------


def kde_model(dataset="moons", overrides=None, **curation):
    fixed = {"model.dataset": dataset, "samples_per_generation": 64, "regime.name": "replace", "model.bandwidth": 0.3}
    return base.make_model(build(kde_config, {**fixed, **(overrides or {})}, **curation))


def test_kde_log_likelihood_matches_sklearn_score_samples_of_the_fitted_pool():
    model = kde_model()
    pool = np.asarray(model.sample_truth(jax.random.key(6), 64, {}))
    weights = (np.arange(64) % 4 != 0).astype(np.float32)  # masked points must not count
    params = model.fit(jax.random.key(0), jnp.asarray(pool), jnp.asarray(weights), {"bandwidth": 0.3}, None)
    points = np.asarray(model.sample_truth(jax.random.key(7), 300, {})) * 1.3
    reference = KernelDensity(bandwidth=0.3).fit(pool.astype(np.float64), sample_weight=weights.astype(np.float64))
    ours = np.asarray(model.log_likelihood(params, jnp.asarray(points), {}))
    np.testing.assert_allclose(ours, reference.score_samples(points), rtol=1e-5, atol=2e-4)


def normal_2d(points, centre, std):
    return np.exp(-np.sum((points - centre) ** 2, -1) / (2 * std**2)) / (2 * np.pi * std**2)


def test_kde_truth_log_density_matches_closed_forms_and_quadrature():
    rng = np.random.default_rng(8)
    blobs = kde_model("blobs")
    points = np.asarray(blobs.sample_truth(jax.random.key(9), 20, {}), np.float64)
    exact = np.log(np.mean([normal_2d(points, np.array(c), 1.0) for c in blobs.centers], axis=0))
    np.testing.assert_allclose(np.asarray(blobs.truth_log_density(jnp.asarray(points))), exact, atol=1e-4)
    # Circles: averaging N(x; R u(theta), s^2 I) over theta gives exp(-(r^2 + R^2) / 2s^2) I0(r R / s^2) / (2 pi s^2).
    circles = kde_model("circles")
    points = np.asarray(circles.sample_truth(jax.random.key(10), 20, {}), np.float64) + rng.normal(0, 0.05, (20, 2))
    r, s = np.linalg.norm(points, axis=1), 0.05
    ring = [
        np.exp(-((r - big) ** 2) / (2 * s**2)) * special.i0e(r * big / s**2) / (2 * np.pi * s**2) for big in (1, 0.8)
    ]
    np.testing.assert_allclose(
        np.asarray(circles.truth_log_density(jnp.asarray(points))), np.log(np.mean(ring, 0)), atol=1e-4
    )
    # Moons: adaptive quadrature over the angle; points on, beside and beyond the arcs' ends (where the midpoint rule's
    # error peaks: 8e-3 nats measured at GRID_SPACING 0.5, build notes).
    moons = kde_model("moons")
    points = np.array([[0.0, 1.0], [0.5, 0.9], [1.0, 0.0], [1.03, 0.01], [-0.98, -0.03], [1.0, 0.2], [2.0, 0.5]])

    def moons_density(x):
        def integrand(t):
            outer, inner = np.array([np.cos(t), np.sin(t)]), np.array([1 - np.cos(t), 0.5 - np.sin(t)])
            return 0.5 * (normal_2d(x, outer, s) + normal_2d(x, inner, s)) / np.pi

        return sum(integrate.quad(integrand, a, a + np.pi / 16, epsrel=1e-10)[0] for a in np.arange(16) * np.pi / 16)

    reference = np.log([moons_density(x) for x in points])
    np.testing.assert_allclose(np.asarray(moons.truth_log_density(jnp.asarray(points))), reference, atol=1e-2)


def test_kde_is_good_on_blobs_is_the_chi_square_disc_around_each_centre():
    # The blobs (dataset_seed 0) are >= 7.7 std apart, so the HDR is a disc of radius sqrt(-2 ln(1 - m)) around each
    # centre (the other blobs add < 1e-5 relative density there); the Monte Carlo threshold moves that radius by
    # ~0.2% (sd), so points at 0.98 and 1.02 of it are decided with a margin of ~9 sd.
    model = kde_model("blobs", name="verifier", good_region_mass=0.95)
    radius = math.sqrt(-2 * math.log(0.05))
    centres = np.array(model.centers)
    away = centres - centres.mean(axis=0)
    away /= np.linalg.norm(away, axis=1, keepdims=True)
    points = np.concatenate([centres + scale * radius * away for scale in (0.0, 0.98, 1.02)])
    good = np.asarray(model.is_good(jnp.asarray(points, jnp.float32), {}))
    np.testing.assert_array_equal(good, np.repeat([True, True, False], 3))


def test_kde_is_good_on_circles_follows_the_closed_form_density_along_a_radius():
    """Circles: the truth's log density is a closed form of the radius (see above), so is_good along a radius must be
    exactly log p0 >= threshold: the two rings are in, the centre and the outside are out."""
    model = kde_model("circles", name="verifier", good_region_mass=0.95)
    radii, s = np.linspace(0.0, 1.5, 301), 0.05
    ring = [
        np.exp(-((radii - big) ** 2) / (2 * s**2)) * special.i0e(radii * big / s**2) / (2 * np.pi * s**2)
        for big in (1, 0.8)
    ]
    expected = np.log(np.mean(ring, 0)) >= model.good_log_density_threshold
    angle = 1.234  # any direction: the density is radial
    points = radii[:, None] * np.array([np.cos(angle), np.sin(angle)])
    good = np.asarray(model.is_good(jnp.asarray(points, jnp.float32), {}))
    np.testing.assert_array_equal(good, expected)
    assert good[radii == 1.0].all() and good[radii == 0.8].all() and not good[(radii < 0.6) | (radii > 1.2)].any()


@pytest.mark.parametrize("dataset", ["blobs", "moons", "circles"])
def test_kde_share_of_good_truth_draws_is_the_mass(dataset):
    mass = 0.9
    model = kde_model(dataset, good_region_mass=mass)
    truth = model.sample_truth(jax.random.key(11), MASS_DRAWS, {})
    # Two binomial errors: the threshold's (HDR_DRAWS draws) and this test's (MASS_DRAWS): 5 sd of their sum.
    sd = math.sqrt(mass * (1 - mass) * (1 / kde.HDR_DRAWS + 1 / MASS_DRAWS))
    assert abs(share_good(model, truth, {}) - mass) < 5 * sd


def test_kde_capacity_is_the_largest_batch_the_regimes_module_builds():
    overrides = {"regime.real_fraction": (0.0, 0.25), "regime.real_inflow": (0, 5), "regime.preserved_fraction": 0.5}
    for name in ("replace", "accumulate"):
        config = build(
            kde_config,
            {
                "model.dataset": "moons",
                "samples_per_generation": 32,
                "model.bandwidth": 0.3,
                "num_generations": 4,
                "regime.name": name,
                **overrides,
            },
            name="verifier",
            keep_good=1.0,
            keep_bad=0.0,
            oversample=3,
        )
        model = base.make_model(config)
        regime = regimes.make_regime(
            config, model, {"real_fraction": 0.25, "real_inflow": 5, "preserved_fraction": 0.5}
        )
        batch = regime.preserved_slots + regime.real_slots + regime.inflow_slots + regime.candidates
        assert model.capacity == (regime.capacity if name == "accumulate" else batch)
        assert batch == (0 if name == "accumulate" else 16) + 8 + 5 + 96


@pytest.mark.parametrize("config_module", [discrete_config, linear_regression_config, gmm_config, kde_config])
@pytest.mark.parametrize("mass", [0.0, 1.0, "high", True])
def test_bad_good_region_mass_is_a_value_error_naming_the_field(config_module, mass):
    with pytest.raises(ValueError, match="config.curation.good_region_mass"):
        overrides = {"regime.name": "replace", "samples_per_generation": 64}
        base.make_model(build(config_module, overrides, good_region_mass=mass))


def test_groups_of_a_sweep_without_curation_still_build():
    assert sweep.expand(build(gmm_config, {"num_generations": 2}))


def test_discrete_verifier_that_rejects_every_bad_sample_confines_the_chain_to_the_good_set():
    """keep_bad = 0 without real data: every point trained on from generation 1 on is a good outcome, so the fitted
    support never leaves the good set (the 3 most likely outcomes of Zipf beta = 1, K = 10 at m = 0.6), exactly."""
    overrides = {
        "regime.name": "replace",
        "seeds": 4,
        "num_generations": 5,
        "samples_per_generation": 200,
        "chunk_generations": 5,
        "chain_block": 4,
        "checkpoint_every": 5,
        "make_plots": False,
        "model.num_outcomes": 10,
        "model.zipf_exponent": 1.0,
    }
    config = build(discrete_config, overrides, name="verifier", keep_good=1.0, keep_bad=0.0, good_region_mass=0.6)
    model = base.make_model(config)
    good = np.asarray(model.good_outcomes({"zipf_exponent": 1.0}))
    assert good.sum() == 3  # p0 cumulative 0.341, 0.512, 0.626: 2 outcomes hold < 0.6, 3 hold >= 0.6
    results = runner.simulate(config)
    support = np.asarray(results.metrics["support_size"])
    bad_kept = np.asarray(results.metrics["bad_share_kept"])
    assert support[:, 0].min() > 3 and (support[:, 1:] <= 3).all()  # generation 0 fits the real data's wider support
    np.testing.assert_array_equal(bad_kept[:, 1:], 0.0)
