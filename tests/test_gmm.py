"""GMM by EM: parity with scikit-learn, EM's moment identity, closed-form L2 vs Monte Carlo, robustness, collapse."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.mixture import GaussianMixture

from collapse_jax.host import runner, sweep
from collapse_jax.models import _metrics as metrics
from collapse_jax.models import _quadrature as quadrature
from collapse_jax.models import base, gmm
from experiments.configs import gmm as gmm_config

CENTRES = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, -1.0]])


def separated_blobs(n_per_blob: int = 200, seed: int = 0) -> np.ndarray:
    """Three well-separated anisotropic blobs (a unique EM optimum up to label permutation)."""
    rng = np.random.default_rng(seed)
    scales = np.array([[1.0, 0.5], [0.7, 1.2], [0.4, 0.9]])
    return np.concatenate([c + s * rng.standard_normal((n_per_blob, 2)) for c, s in zip(CENTRES, scales)]).astype(
        np.float32
    )


def run_em(points, mask, responsibilities, iterations, tolerance=0.0, covariance_type="full"):
    start = gmm.m_step(points.T, mask, responsibilities, 1e-6, covariance_type)
    return start, gmm.expectation_maximization(points, mask, start, iterations, tolerance, 1e-6, covariance_type)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_matches_sklearn_on_same_data_and_init(covariance_type):
    points = jnp.asarray(separated_blobs())
    mask = jnp.ones(points.shape[0])
    # A deliberately poor random-responsibility init, so EM has work to do over its 60 iterations.
    responsibilities = gmm.initial_responsibilities(jax.random.key(0), points, mask, 3, "random", 0)
    start, (params, iterations, converged) = run_em(points, mask, responsibilities, 60, 0.0, covariance_type)
    covariances = np.asarray(start["covariances"], np.float64)
    precisions = np.linalg.inv(covariances)
    if covariance_type == "diag":
        precisions = np.diagonal(precisions, axis1=1, axis2=2)
    reference = GaussianMixture(
        3,
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=60,
        reg_covar=1e-6,
        weights_init=np.asarray(start["weights"], np.float64) / np.sum(np.asarray(start["weights"], np.float64)),
        means_init=np.asarray(start["means"], np.float64),
        precisions_init=precisions,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol = 0 never converges: sklearn's ConvergenceWarning is expected
        reference.fit(np.asarray(points, np.float64))
    assert int(iterations) == reference.n_iter_ == 60 and not bool(converged)
    log_likelihood, _ = gmm.e_step(points.T, mask, params, 1e-6)
    # float32 vs float64 on 600 points at a stable optimum: relative error ~1e-6; 1e-4 leaves room for summation order.
    np.testing.assert_allclose(float(log_likelihood), reference.score(np.asarray(points, np.float64)), rtol=1e-4)
    # Same init, so labels agree; sort by x anyway so the claim is "same parameters up to permutation".
    ours, theirs = np.argsort(np.asarray(params["means"])[:, 0]), np.argsort(reference.means_[:, 0])
    np.testing.assert_allclose(np.asarray(params["weights"])[ours], reference.weights_[theirs], atol=1e-4)
    np.testing.assert_allclose(np.asarray(params["means"])[ours], reference.means_[theirs], atol=1e-3)
    their_covariances = reference.covariances_
    if covariance_type == "diag":
        their_covariances = np.stack([np.diag(v) for v in their_covariances])
    np.testing.assert_allclose(np.asarray(params["covariances"])[ours], their_covariances[theirs], atol=1e-3)


def test_kmeans_init_recovers_separated_blobs_and_em_converges_to_them():
    points = jnp.asarray(separated_blobs(seed=1))
    mask = jnp.ones(points.shape[0])
    responsibilities = gmm.initial_responsibilities(jax.random.key(1), points, mask, 3, "kmeans", 10)
    labels = np.argmax(np.asarray(responsibilities), axis=0).reshape(3, 200)
    assert all(len(set(row)) == 1 for row in labels) and len({row[0] for row in labels}) == 3
    _, (params, iterations, converged) = run_em(points, mask, responsibilities, 100, 1e-5)
    assert bool(converged) and int(iterations) < 100
    np.testing.assert_allclose(np.sort(np.asarray(params["means"])[:, 0]), np.sort(CENTRES[:, 0]), atol=0.2)


def test_m_step_preserves_sample_mean_and_covariance():
    """sum_k w_k mu_k = mean; sum_k w_k (Sigma_k + mu_k mu_k^T) - mean mean^T = cov + reg I, any responsibilities."""
    points = jnp.asarray(np.random.default_rng(2).standard_normal((500, 2)).astype(np.float32))
    mask = (jnp.arange(500) < 400).astype(jnp.float32)
    responsibilities = gmm.initial_responsibilities(jax.random.key(2), points, mask, 2, "random", 0)
    params = gmm.m_step(points.T, mask, responsibilities, 1e-3, "full")
    valid = np.asarray(points)[:400]
    weights, means = np.asarray(params["weights"]), np.asarray(params["means"])
    mixture_mean = weights @ means
    second = np.einsum("k,kij->ij", weights, np.asarray(params["covariances"]) + np.einsum("ki,kj->kij", means, means))
    np.testing.assert_allclose(mixture_mean, valid.mean(0), atol=1e-5)
    np.testing.assert_allclose(
        second - np.outer(mixture_mean, mixture_mean), np.cov(valid.T, ddof=0) + 1e-3 * np.eye(2), atol=1e-5
    )


def test_masked_points_do_not_change_the_fit():
    points = separated_blobs(seed=3)
    garbage = np.full((100, 2), 1e3, np.float32)
    padded = jnp.asarray(np.concatenate([points, garbage]))
    mask = jnp.concatenate([jnp.ones(600), jnp.zeros(100)])
    responsibilities = gmm.initial_responsibilities(
        jax.random.key(3), jnp.asarray(points), jnp.ones(600), 3, "kmeans", 5
    )
    padded_responsibilities = jnp.concatenate([responsibilities, jnp.full((3, 100), 1.0 / 3)], axis=1)
    _, (clean, _, _) = run_em(jnp.asarray(points), jnp.ones(600), responsibilities, 30, 1e-5)
    _, (masked, _, _) = run_em(padded, mask, padded_responsibilities, 30, 1e-5)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(np.asarray(masked[name]), np.asarray(clean[name]), atol=1e-4)


def test_closed_form_l2_matches_monte_carlo():
    rng = np.random.default_rng(4)
    p = (np.array([0.3, 0.7]), np.array([[0.0, 0.0], [1.5, -0.5]]), np.array([np.eye(2), [[0.5, 0.2], [0.2, 0.8]]]))
    q = (
        np.array([0.6, 0.4]),
        np.array([[0.3, 0.4], [-1.0, 1.0]]),
        np.array([[[1.5, 0.0], [0.0, 0.7]], np.eye(2) * 0.6]),
    )

    def density(mixture, x):
        return sum(w * stats.multivariate_normal(m, c).pdf(x) for w, m, c in zip(*mixture))

    def draw(mixture, n):
        labels = rng.choice(len(mixture[0]), n, p=mixture[0])
        return np.stack([rng.multivariate_normal(mixture[1][k], mixture[2][k]) for k in labels])

    # int (p - q)^2 = E_p[p - q] - E_q[p - q]; both expectations are sample means with their own standard errors.
    n = 20_000
    on_p, on_q = [density(p, x) - density(q, x) for x in (draw(p, n), draw(q, n))]
    estimate = on_p.mean() - on_q.mean()
    standard_error = np.sqrt(on_p.var() / n + on_q.var() / n)
    closed = float(metrics.mixture_l2_sq(*(jnp.asarray(a, jnp.float32) for a in (*p, *q))))
    assert abs(closed - estimate) < 4 * standard_error, (closed, estimate, standard_error)
    assert float(metrics.mixture_l2_sq(*(jnp.asarray(a, jnp.float32) for a in (*p, *p)))) < 1e-6


@pytest.mark.parametrize(
    "points, mask",
    [
        (np.full((50, 2), 3.0), np.ones(50)),  # all points identical
        (np.random.default_rng(5).standard_normal((50, 2)), (np.arange(50) < 1)),  # one point, fewer than dim
        (np.random.default_rng(6).standard_normal((50, 2)), np.zeros(50)),  # empty pool
        (np.stack([np.linspace(-1, 1, 50)] * 2, axis=1), np.ones(50)),  # singular covariance (a line)
    ],
)
def test_degenerate_pools_give_finite_params_and_samples(points, mask):
    model = base.make_model(runner.as_config({"samples_per_generation": 50}, gmm_config.get_config()))
    knobs = {"seed": 0, "real_fraction": 0.0}
    previous = model.init(jax.random.key(0), knobs)
    params = jax.jit(lambda x, m: model.fit(jax.random.key(1), x, m, knobs, previous))(
        jnp.asarray(points, jnp.float32), jnp.asarray(mask, jnp.float32)
    )
    samples = model.sample(jax.random.key(2), params, 100, knobs)
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(params))
    assert np.all(np.isfinite(np.asarray(samples)))


@pytest.mark.parametrize(
    "field, value",
    [("covariance_type", "spherical"), ("init_method", "kmeans++"), ("num_components", 0), ("reg_covar", 0.0)],
)
def test_bad_config_is_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"config.model.{field}"):
        sweep.expand(runner.as_config({f"model.{field}": value}, gmm_config.get_config()))


def test_shumailov_chain_loses_spread_from_a_generation_0_std_in_the_measured_band():
    """Engine run of the paper's setting (fast: 8 seeds, 30 generations): gen-0 std near 0.90 and shrinking."""
    overrides = {"seeds": 8, "num_generations": 30, "chunk_generations": 15, "chain_block": 8, "make_plots": False}
    results = runner.simulate(runner.as_config(overrides, gmm_config.get_config()))
    std = np.asarray(results.metrics["component_std"])
    assert std.shape == (8, 31) and not np.any(np.asarray(results.metrics["failed"]))
    # A measured regression guard, not a law: splitting N(0, I) in two leaves each half a std of ~0.83 (half-normal
    # across the cut) to 1 along it; sklearn's fit lands at 0.92-0.95 on such data (0.94 measured), and the band
    # 0.85-0.99 around it held for every one of 8 seeds when measured.
    assert np.all((std[:, 0] > 0.85) & (std[:, 0] < 0.99))
    np.testing.assert_array_equal(np.asarray(results.metrics["l2_to_generation0"])[:, 0], 0.0)
    # Collapse is a drift of the whole mixture: after 30 generations the median std is below generation 0's
    # (sklearn's own chain: 0.94 -> 0.83 by generation 10) and the distance to the truth has grown.
    assert np.median(std[:, 30]) < np.median(std[:, 0])
    l2 = np.asarray(results.metrics["l2_to_truth"])
    assert np.median(l2[:, 30]) > 3 * np.median(l2[:, 0])
    # A few fits (2 of 248 here) run into max_iterations = 100 on a flat likelihood; 90% is a loose floor on that.
    assert np.mean(np.asarray(results.metrics["em_converged"])) > 0.9


# --- The three sources of error (Shumailov et al. 2024): population fits, a multi-blob truth, truncated EM ---------

THREE_BLOBS = {"model.truth_components": 3, "model.truth_separation": 3.0, "model.population_fit": True}


def error_source_config(**overrides):
    return runner.as_config({**THREE_BLOBS, **overrides}, gmm_config.get_config())


def error_source_model(**overrides):
    return base.make_model(error_source_config(**overrides))


def population_chain(model, generations, key=0):
    """Params of fits 0..generations of one chain, by calling fit on the previous params (data is ignored)."""
    params, evaluate = population_chains(model, generations, (key,))
    return [jax.tree.map(lambda x: x[0], p) for p in params], evaluate


def population_chains(model, generations, keys):
    """Fits 0..generations of one chain per key (vmapped: one compile), and an evaluate of one chain's params."""
    knobs = {"seed": 0, "real_fraction": 0.0}

    def fit(key, previous):
        return model.fit(key, jnp.zeros((4, model.dim)), jnp.ones(4), knobs, previous)

    step = jax.jit(jax.vmap(fit))
    roots = jnp.stack([jax.random.key_data(jax.random.key(k)) for k in keys])
    params = [jax.vmap(lambda r: model.init(jax.random.wrap_key_data(r), knobs))(roots)]
    for generation in range(generations + 1):
        keys_now = jax.vmap(lambda r, g=generation: jax.random.fold_in(jax.random.wrap_key_data(r), g))(roots)
        params.append(step(keys_now, params[-1]))
    return params[1:], (lambda p: model.evaluate(p, None, model.reference(), knobs))


def test_population_fit_of_a_mixture_the_family_contains_is_stationary_from_generation_one():
    """All three errors off (T = K = 3, EM to convergence, warm start): fit n + 1 = fit n, to float rounding.

    At q = p the importance weights are 1 and Gauss-Hermite is exact for the moments of degree <= 2 the M step needs,
    so only float32 rounding over ~432 nodes (~1e-6) and sklearn's reg_covar (+1e-6 per fit on each variance) remain.
    """
    overrides = {"model.num_components": 3, "model.fit_init": "previous", "model.quadrature_nodes": 8}
    model = error_source_model(**overrides, **{"model.max_iterations": 40})
    params, _ = population_chain(model, 3)
    # The truth itself is such a fixed point: population EM started at it returns it (plus reg_covar).
    weights, means, covariances = model._truth
    truth = {"weights": weights, "means": means, "covariances": covariances}
    grid, grid_weights = quadrature.gauss_hermite_grid(8, 2)
    fixed, _, _ = gmm.population_expectation_maximization(truth, truth, grid, grid_weights, 5, 0.0, 1e-6, "full")
    np.testing.assert_allclose(np.asarray(fixed["means"]), np.asarray(means), atol=1e-5)
    np.testing.assert_allclose(np.asarray(fixed["covariances"]), np.asarray(covariances) + 5e-6 * np.eye(2), atol=1e-5)
    for previous, current in zip(params[:-1], params[1:]):
        np.testing.assert_allclose(np.asarray(current["weights"]), np.asarray(previous["weights"]), atol=2e-6)
        np.testing.assert_allclose(np.asarray(current["means"]), np.asarray(previous["means"]), atol=1e-5)
        grown = np.asarray(previous["covariances"]) + model.reg_covar * np.eye(2)
        np.testing.assert_allclose(np.asarray(current["covariances"]), grown, atol=1e-5)


def test_one_blob_population_fit_reproduces_the_truth():
    """Shumailov's one-blob truth with K = 2: the population fit is N(0, I) (L2 ~ EM's tolerance) and stays there."""
    model = base.make_model(
        runner.as_config({"model.population_fit": True, "model.fit_init": "previous"}, gmm_config.get_config())
    )
    params, evaluate = population_chain(model, 2)
    l2 = [float(evaluate(p)["l2_to_truth"]) for p in params]
    # Splitting one blob in two is a flat EM direction: tolerance 1e-5 stops at L2 ~1.2e-5 (measured); then stays.
    assert max(l2) < 5e-5 and abs(l2[2] - l2[0]) < 1e-6


def test_expressivity_error_appears_at_the_first_fit_and_does_not_grow():
    """Two components for three blobs, no other error: fit 0 misses the truth, and every later fit equals it.

    Shumailov et al.: with only expressivity error, the error "can only occur at the first generation". Fit 0 is EM's
    optimum from a k-means start on the truth (a local one: EM converges slowly between the symmetric saddle and the
    two mirror optima, BUILD_NOTES.md); fit 1 targets fit 0, which the family contains, so it is a fixed point.
    """
    model = error_source_model(**{"model.num_components": 2, "model.fit_init": "previous", "model.max_iterations": 40})
    params, evaluate = population_chain(model, 2)
    l2 = np.array([float(evaluate(p)["l2_to_truth"]) for p in params])
    assert l2[0] > 1e-3  # the best two-component fit of three blobs is 1.7e-3 away
    # Fits 1, 2 equal fit 0 up to float rounding and reg_covar's 1e-6 per fit (relative change of L2 ~1e-5).
    np.testing.assert_allclose(l2[1:], l2[0], rtol=1e-4)


# 17 population fits of 6 chains: ~1 min of CPU
def test_truncated_em_from_a_fresh_start_drifts_while_converged_warm_em_does_not():
    """Approximation error only (T = K = 3, population fits): one EM step from a fresh k-means start each generation
    moves the fit away from the truth generation after generation (a measured drift: the median L2 over 6 chains
    grows ~5x in 10 generations), while EM run to convergence from the previous fit stays put."""
    drifting = error_source_model(
        **{"model.num_components": 3, "model.fit_method": "truncated_em", "model.fit_steps": 1}
    )
    params, evaluate = population_chains(drifting, 10, range(6))
    l2 = np.stack([np.asarray(jax.jit(jax.vmap(evaluate))(p)["l2_to_truth"]) for p in params], axis=1)  # [chain, fit]
    assert np.median(l2[:, 10]) > 2.0 * np.median(l2[:, 0]), l2
    still = error_source_model(**{"model.num_components": 3, "model.fit_init": "previous", "model.max_iterations": 40})
    params, evaluate = population_chain(still, 10)
    assert abs(float(evaluate(params[10])["l2_to_truth"]) - float(evaluate(params[0])["l2_to_truth"])) < 1e-7


def test_tail_mass_ratio_is_one_at_the_truth_and_matches_the_gaussian_closed_form():
    """At the truth the model's mass beyond the truth's 1% / 99% quantiles is 2%: ratio 1. One blob N(0, 1) and a
    fit N(0, s^2) in d = 1: ratio = 2 Phi(-z_0.99 / s) / 0.02 (z_0.99 = 2.3263)."""
    model = error_source_model(**{"model.num_components": 3, "model.population_fit": False})
    weights, means, covariances = model._truth
    truth_params = {"weights": weights, "means": means, "covariances": covariances}
    ratio = quadrature.marginal_tail_mass_ratio(
        weights, means, covariances, jnp.asarray(model.tail_low), jnp.asarray(model.tail_high)
    )
    np.testing.assert_allclose(float(ratio), 1.0, atol=1e-4)
    del truth_params
    one = base.make_model(runner.as_config({"model.dim": 1}, gmm_config.get_config()))
    np.testing.assert_allclose(one.tail_low[0], -2.3263479, atol=1e-5)
    ratio = quadrature.marginal_tail_mass_ratio(
        jnp.ones(1), jnp.zeros((1, 1)), jnp.full((1, 1, 1), 0.25), jnp.asarray(one.tail_low), jnp.asarray(one.tail_high)
    )
    np.testing.assert_allclose(float(ratio), 2 * stats.norm.cdf(-2.3263479 / 0.5) / 0.02, rtol=1e-4)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"regime.name": "accumulate"}, "population_fit"),
        ({"regime.real_fraction": 0.1}, "population_fit"),
        ({"model.quadrature_nodes": 300}, "quadrature_nodes"),
        ({"model.fit_method": "sgd"}, "fit_method"),
        ({"model.truth_components": 0}, "truth_components"),
    ],
)
def test_bad_error_source_settings_are_one_line_errors_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"config.model.{field}"):
        sweep.expand(error_source_config(**overrides))
