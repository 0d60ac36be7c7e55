"""Gaussian mixture fitted by EM in JAX (scikit-learn's GaussianMixture algorithm, vmappable, static shapes).

Reproduces the GMM collapse of Shumailov et al. (2024, "AI models collapse when trained on recursively generated data"),
with their three sources of error as switches (see GaussianMixtureModel).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models import _metrics as metrics
from collapse_jax.models import _quadrature as quadrature
from collapse_jax.models._gmm_settings import FIT_INITS, FIT_METHODS, check_quadrature_points, truth_settings
from collapse_jax.models._metrics import chi_square_quantile
from collapse_jax.models._mixture_density import component_log_densities, mixture_log_density, safe_cholesky
from collapse_jax.models._population_fit import POOL_FREE_RULES
from collapse_jax.models.contract import POPULATION_FIT_SWITCH, ErrorSwitch, FamilySettings, family_settings
from collapse_jax.models.fields import choice, flag, integer, number

COVARIANCE_TYPES = ("full", "diag")
INIT_METHODS = ("kmeans", "k-means++", "random")


def e_step(columns: jax.Array, mask: jax.Array, params: dict, reg_covar: float) -> tuple[jax.Array, jax.Array]:
    """Mean log-likelihood of masked points [d, n]; log responsibilities log w_k N_kn - logsumexp_k(...) [K, n]."""
    weighted = component_log_densities(columns, params, reg_covar) + jnp.log(params["weights"])[:, None]
    log_norm = jax.nn.logsumexp(weighted, axis=0)
    mean_log_likelihood = jnp.sum(mask * log_norm) / jnp.maximum(jnp.sum(mask), 1.0)
    return mean_log_likelihood, weighted - log_norm


def m_step(
    columns: jax.Array, mask: jax.Array, responsibilities: jax.Array, reg_covar: float, covariance_type: str
) -> dict:
    """sklearn's M step on points [d, n] and responsibilities [K, n] (component-major, see component_log_densities).

    n_k = sum m r + 10 eps; mu_k = sum m r x / n_k; Sigma_k = sum m r (x - mu)(x - mu)^T / n_k + reg_covar I.
    """
    dim = columns.shape[0]
    masked = responsibilities * mask
    counts = jnp.sum(masked, axis=1) + 10.0 * jnp.finfo(columns.dtype).eps
    means = masked @ columns.T / counts[:, None]
    # Centred (two-pass) moments: E[xx^T] - mu mu^T would lose a collapsed std ~1e-2 to float32 cancellation.
    centred = columns[None] - means[:, :, None]
    weighted = masked[:, None, :] * centred
    if covariance_type == "full":
        covariances = jnp.einsum("kin,kjn->kij", weighted, centred) / counts[:, None, None]
    else:
        covariances = jnp.sum(weighted * centred, axis=-1)[..., None] * jnp.eye(dim) / counts[:, None, None]
    return {
        "weights": counts / jnp.sum(counts),
        "means": means,
        "covariances": covariances + reg_covar * jnp.eye(dim),
    }


def expectation_maximization(
    points: jax.Array,
    mask: jax.Array,
    start: dict,
    max_iterations: int,
    tolerance: float,
    reg_covar: float,
    covariance_type: str,
) -> tuple[dict, jax.Array, jax.Array]:
    """sklearn's EM loop as a fixed-length scan: E, M until |L_t - L_{t-1}| < tol, then the params stop changing.

    Returns (params, iterations used, converged). The fixed length keeps cost and shapes static under vmap, so
    max_iterations should be set from the measured em_iterations metric rather than left at a huge value.
    """
    columns = points.T

    def iteration(carry, _):
        params, previous_bound, iterations, converged = carry
        bound, log_responsibilities = e_step(columns, mask, params, reg_covar)
        updated = m_step(columns, mask, jnp.exp(log_responsibilities), reg_covar, covariance_type)
        params = jax.tree.map(lambda old, new: jnp.where(converged, old, new), params, updated)
        iterations = iterations + jnp.where(converged, 0, 1)
        converged = converged | (jnp.abs(bound - previous_bound) < tolerance)
        return (params, bound, iterations, converged), None

    carry = (start, jnp.array(-jnp.inf, points.dtype), jnp.int32(0), jnp.bool_(False))
    (params, _, iterations, converged), _ = jax.lax.scan(iteration, carry, None, length=max_iterations)
    return params, iterations, converged


def population_expectation_maximization(
    target: dict,
    start: dict,
    grid: np.ndarray,
    grid_weights: np.ndarray,
    max_iterations: int,
    tolerance: float,
    reg_covar: float,
    covariance_type: str,
) -> tuple[dict, jax.Array, jax.Array]:
    """EM on a distribution p (the mixture `target`) instead of points: `expectation_maximization` with every integral
    done by importance Gauss-Hermite quadrature around the current fit q = sum_k w_k N(mu_k, Sigma_k).

    The M step needs integral p r_k f = w_k integral N_k (p / q) f for f in {1, x, x x^T} (r_k = w_k N_k / q), so
    component k's statistics are its own nodes x_ki = mu_k + L_k z_i with weights w_k v_i p(x_ki) / q(x_ki): at
    q = p the ratio is 1 and the rule is exact for these degree <= 2 moments, so a mixture the family contains is a
    fixed point to float rounding (plus reg_covar per step), which quadrature around p's own components (the logistic
    responsibilities inside each node set) misses by ~1e-3 in the covariances at 12 nodes per axis (BUILD_NOTES.md).
    """
    num_components, dim = start["means"].shape
    grid = jnp.asarray(grid, start["means"].dtype)
    nodes_per_component = grid.shape[0]
    # Component k's nodes have responsibility 1 for k (its own integral), 0 for the others: a block one-hot [K, K n].
    own = jnp.repeat(jnp.eye(num_components), nodes_per_component, axis=1)

    def weighted_nodes(params):
        chols = safe_cholesky(params["covariances"], reg_covar)
        nodes = (params["means"][:, None, :] + jnp.einsum("kab,ib->kia", chols, grid)).reshape(-1, dim)
        log_ratio = mixture_log_density(nodes, target, reg_covar) - mixture_log_density(nodes, params, reg_covar)
        # The clip keeps a ratio finite where a collapsed fit sits far out in p's tail (exp(60) ~ 1e26).
        weights = params["weights"][:, None] * jnp.asarray(grid_weights, nodes.dtype)[None, :]
        weights = weights.reshape(-1) * jnp.exp(jnp.minimum(log_ratio, 60.0))
        # Scaled to sum to the node count, so sklearn's 10 eps per component count weighs as on a data set that size.
        return nodes, weights * weights.shape[0] / jnp.maximum(jnp.sum(weights), 1e-30)

    def iteration(carry, _):
        params, previous_bound, iterations, converged = carry
        nodes, weights = weighted_nodes(params)
        # integral p log q, the population mean log-likelihood (EM's stopping rule, as sklearn's lower bound).
        bound = jnp.sum(weights * mixture_log_density(nodes, params, reg_covar)) / jnp.sum(weights)
        updated = m_step(nodes.T, weights, own, reg_covar, covariance_type)
        params = jax.tree.map(lambda old, new: jnp.where(converged, old, new), params, updated)
        iterations = iterations + jnp.where(converged, 0, 1)
        converged = converged | (jnp.abs(bound - previous_bound) < tolerance)
        return (params, bound, iterations, converged), None

    carry = (start, jnp.array(-jnp.inf, grid.dtype), jnp.int32(0), jnp.bool_(False))
    (params, _, iterations, converged), _ = jax.lax.scan(iteration, carry, None, length=max_iterations)
    return params, iterations, converged


def initial_responsibilities(
    key: jax.Array, points: jax.Array, mask: jax.Array, num_components: int, method: str, kmeans_iterations: int
) -> jax.Array:
    """Responsibilities [K, n] as sklearn's init_params: 'random' draws uniform ones; 'k-means++' / 'kmeans' assign
    each point to its nearest k-means++ seed (D^2 sampling, Arthur & Vassilvitskii 2007), 'kmeans' after Lloyd steps."""
    if method == "random":
        uniform = jax.random.uniform(key, (num_components, points.shape[0]))
        return uniform / jnp.sum(uniform, axis=0, keepdims=True)

    def squared_distances(centres):
        return jnp.sum((points[:, None, :] - centres[None]) ** 2, axis=-1)

    def add_seed(centres, seed_key_and_index):
        seed_key, index = seed_key_and_index
        nearest = jnp.min(jnp.where(jnp.arange(num_components) < index, squared_distances(centres), jnp.inf), axis=1)
        # The first seed is uniform over valid points (nearest = inf); later ones are drawn proportionally to D^2.
        score = jnp.where(index == 0, 1.0, nearest) * mask
        logits = jnp.where(score > 0, jnp.log(jnp.where(score > 0, score, 1.0)), -jnp.inf)
        choice = jax.random.categorical(seed_key, logits)
        return centres.at[index].set(points[choice]), None

    seed_keys = jax.random.split(key, num_components)
    centres = jnp.zeros((num_components, points.shape[-1]), points.dtype)
    centres, _ = jax.lax.scan(add_seed, centres, (seed_keys, jnp.arange(num_components)))

    def lloyd(centres, _):
        assignment = jax.nn.one_hot(jnp.argmin(squared_distances(centres), axis=1), num_components) * mask[:, None]
        counts = jnp.sum(assignment, axis=0)
        # An empty cluster keeps its centre instead of dividing by zero.
        updated = assignment.T @ points / jnp.maximum(counts, 1.0)[:, None]
        return jnp.where(counts[:, None] > 0, updated, centres), None

    if method == "kmeans":
        centres, _ = jax.lax.scan(lloyd, centres, None, length=kmeans_iterations)
    return jax.nn.one_hot(jnp.argmin(squared_distances(centres), axis=1), num_components, dtype=points.dtype).T


@dataclasses.dataclass(frozen=True)
class GaussianMixtureModel:
    """Static settings of the GMM family; the truth is T equal-weight blobs N(c_t, true_std^2 I) (T = 1: Shumailov's
    one blob N(true_mean * 1, true_std^2 I)).

    The three sources of error of Shumailov et al. (2024) are switches:
    - statistical approximation: off with `population_fit` (every fit is EM on the previous model's distribution, the
      truth for the first fit, by Gauss-Hermite quadrature with `quadrature_nodes` nodes per axis per component, not
      on the pool: the pool, real data and regime are ignored, so it needs replace with real_fraction 0);
    - functional expressivity: on when the truth has more blobs (`truth_components`) than the fit has components;
    - functional approximation: on with `fit_method = "truncated_em"` (`fit_steps` EM iterations from a fresh
      init_method start each generation); off with "em" run to convergence, ideally warm-started (`fit_init =
      "previous"`), whose population fit of a mixture the family contains is that mixture (a fixed point of EM).
    sklearn's reg_covar is itself a small approximation error: it is added to each covariance diagonal by every M
    step, which with population fits compounds (the nodes follow the current fit): ~1e-6 per generation at a fixed
    point, where EM stops after two steps.
    """

    # Tuple values of these fields compile one group each (the error-source switches; the capacity K).
    static_sweep_fields: ClassVar[tuple[str, ...]] = (
        "model.num_components",
        "model.population_fit",
        "model.fit_method",
    )
    # Shumailov et al.'s three switches, read from the class by the report's error-sources section (full EM is the
    # exact fit).
    error_source_switches: ClassVar[dict[str, ErrorSwitch]] = {
        "population_fit": POPULATION_FIT_SWITCH,
        "num_components": ErrorSwitch(source="expressivity", below="truth_components"),
        "fit_method": ErrorSwitch(source="approximation", off=("em",), default="em"),
    }

    dim: int
    num_components: int
    covariance_type: str
    init_method: str
    max_iterations: int
    kmeans_iterations: int
    tolerance: float
    reg_covar: float
    true_mean: float
    true_std: float
    real_data_size: int
    test_size: int
    good_region_mass: float  # m: is_good's region is the truth's high-density region holding mass m
    good_squared_radius: float  # true_std^2 q, q = the chi^2_d quantile of m: that region is a ball (make_model)
    truth_means: tuple[tuple[float, ...], ...] = ()  # centres of the truth's blobs (make_model; () = one blob)
    population_fit: bool = False
    quadrature_nodes: int = 12
    fit_method: str = "em"
    fit_steps: int = 2
    fit_init: str = "fresh"
    # Truth quantiles per axis at TAIL_LOW / TAIL_HIGH (host, make_model), for tail_mass_ratio.
    tail_low: tuple[float, ...] = ()
    tail_high: tuple[float, ...] = ()
    # log p0 threshold of the truth's HDR of mass m when it has several blobs (host Monte Carlo in make_model).
    good_log_density: float = 0.0
    knob_fields = {}
    # evaluate() reads only the params: the engine draws each generation's samples where the next one consumes them.
    evaluate_uses_samples = False
    metric_names = (
        "l2_to_truth",
        "l2_to_generation0",
        "component_std",
        "nll_real_test",
        "em_iterations",
        "em_converged",
        "tail_mass_ratio",
    )

    # config.model fields and the rules that tie them, declared once: the only source of their defaults and checks.
    config_fields = {
        "dim": integer("d: data dimension", low=1),
        "true_mean": number("the truth's blobs are centred on true_mean * 1 (one blob: N(true_mean * 1, s^2 I))"),
        "true_std": number("the standard deviation of every truth blob", low=0.0, low_open=True),
        "truth_components": integer(
            "T: equal-weight blobs of the truth (expressivity error when T > K)", low=1, default=1
        ),
        "truth_separation": number(
            "distance between neighbouring truth blob centres, along the first axis", low=0.0, default=0.0
        ),
        "num_components": integer("K: mixture components (static: one compile per value)", low=1, sweepable=True),
        "covariance_type": choice("full or diag covariances", COVARIANCE_TYPES),
        "init_method": choice("EM initialisation", INIT_METHODS),
        "kmeans_iterations": integer("Lloyd iterations of the kmeans init", low=0, default=10),
        "tolerance": number("EM stops once |mean log-lik change| < tolerance", low=0.0),
        "max_iterations": integer("EM iterations (fixed scan length)", low=1),
        "reg_covar": number("added to every covariance diagonal", low=0.0, low_open=True),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
        "test_size": integer("held-out real points for nll_real_test", low=1),
        "population_fit": flag(
            "fit the previous model's distribution itself (statistical error off)", default=False, sweepable=True
        ),
        "quadrature_nodes": integer(
            "Gauss-Hermite nodes per axis per component of the population fit", low=1, default=12
        ),
        "fit_method": choice(
            "em (to convergence) or truncated_em (fit_steps iterations)",
            FIT_METHODS,
            sweepable=True,
            noun="fit method",
            default="em",
        ),
        "fit_steps": integer("EM iterations of truncated_em", low=1, default=2),
        "fit_init": choice(
            "fresh (init_method each generation) or previous (warm start)",
            FIT_INITS,
            noun="initialization",
            default="fresh",
        ),
    }
    config_rules = POOL_FREE_RULES

    @property
    def _truth(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(weights [T], means [T, d], covariances [T, d, d]) of the truth."""
        means = (
            jnp.asarray(self.truth_means, jnp.float32) if self.truth_means else jnp.full((1, self.dim), self.true_mean)
        )
        count = means.shape[0]
        covariances = jnp.broadcast_to(self.true_std**2 * jnp.eye(self.dim), (count, self.dim, self.dim))
        return jnp.full((count,), 1.0 / count), means, covariances

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: dict) -> jax.Array:
        """Draw from the truth: N(true_mean * 1, true_std^2 I), or a uniformly chosen blob of several."""
        if len(self.truth_means) <= 1:
            return self.true_mean + self.true_std * jax.random.normal(key, (num_samples, self.dim))
        component_key, noise_key = jax.random.split(key)
        blobs = jax.random.randint(component_key, (num_samples,), 0, len(self.truth_means))
        centres = jnp.asarray(self.truth_means, jnp.float32)[blobs]
        return centres + self.true_std * jax.random.normal(noise_key, (num_samples, self.dim))

    def real_data(self, key: jax.Array, knobs: dict) -> jax.Array:
        """The chain's original training set: real_data_size draws from the truth."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: dict) -> dict:
        """Params before any fit: equal weights, the truth's moments per component, num_fits = 0."""
        mixture = {
            "weights": jnp.full((self.num_components,), 1.0 / self.num_components),
            "means": jnp.full((self.num_components, self.dim), self.true_mean),
            "covariances": jnp.broadcast_to(
                self.true_std**2 * jnp.eye(self.dim), (self.num_components, self.dim, self.dim)
            ),
        }
        return {
            **mixture,
            "generation0": mixture,
            "num_fits": jnp.int32(0),
            "em_iterations": jnp.int32(0),
            "em_converged": jnp.bool_(False),
        }

    def population_target(self, previous: dict) -> dict:
        """The distribution a population fit targets: the truth for the first fit, the previous fit after it (both
        padded with zero-weight components to max(T, K), so one compiled fit serves every generation)."""
        width = max(len(self.truth_means) or 1, self.num_components)

        def padded(weights, means, covariances):
            pad = width - weights.shape[0]
            eye = jnp.broadcast_to(jnp.eye(self.dim), (pad, self.dim, self.dim))
            return (
                jnp.concatenate([weights, jnp.zeros((pad,))]),
                jnp.concatenate([means, jnp.zeros((pad, self.dim))]),
                jnp.concatenate([covariances, eye]),
            )

        truth = padded(*self._truth)
        fitted = padded(previous["weights"], previous["means"], previous["covariances"])
        first = previous["num_fits"] == 0
        weights, means, covariances = (jnp.where(first, a, b) for a, b in zip(truth, fitted))
        return {"weights": weights, "means": means, "covariances": covariances}

    def population_points(self, target: dict) -> tuple[jax.Array, jax.Array]:
        """Gauss-Hermite nodes of the target's components and their weights (where a fresh init draws its seeds)."""
        grid, grid_weights = quadrature.gauss_hermite_grid(self.quadrature_nodes, self.dim)
        chols = safe_cholesky(target["covariances"], self.reg_covar)
        return quadrature.mixture_quadrature(target["weights"], target["means"], chols, grid, grid_weights)

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: dict, previous: dict) -> dict:
        """EM on the weighted pool (with population_fit: on the previous model's distribution, the truth at the first
        fit), from a fresh init_method start (a new sklearn GaussianMixture) or warm-started at the previous fit."""
        target = self.population_target(previous) if self.population_fit else None
        if self.population_fit:
            # The fresh start needs points: the target's own quadrature nodes (weighted k-means on them).
            data, weights = self.population_points(target)
        responsibilities = initial_responsibilities(
            key, data, weights, self.num_components, self.init_method, self.kmeans_iterations
        )
        start = m_step(data.T, weights, responsibilities, self.reg_covar, self.covariance_type)
        first = previous["num_fits"] == 0
        if self.fit_init == "previous" and self.fit_method == "em":
            start = {
                name: jnp.where(first, start[name], previous[name]) for name in ("weights", "means", "covariances")
            }
        if self.fit_method == "truncated_em":
            iterations, tolerance = self.fit_steps, 0.0
        else:
            iterations, tolerance = self.max_iterations, self.tolerance
        if self.population_fit:
            grid, grid_weights = quadrature.gauss_hermite_grid(self.quadrature_nodes, self.dim)
            mixture, iterations, converged = population_expectation_maximization(
                target, start, grid, grid_weights, iterations, tolerance, self.reg_covar, self.covariance_type
            )
        else:
            mixture, iterations, converged = expectation_maximization(
                data, weights, start, iterations, tolerance, self.reg_covar, self.covariance_type
            )
        # The first fit (on real data) is kept inside the params so evaluate can measure drift from it.
        generation0 = jax.tree.map(lambda new, old: jnp.where(first, new, old), mixture, previous["generation0"])
        return {
            **mixture,
            "generation0": generation0,
            "num_fits": previous["num_fits"] + 1,
            "em_iterations": iterations,
            "em_converged": converged,
        }

    def sample(self, key: jax.Array, params: dict, num_samples: int, knobs: dict) -> jax.Array:
        """z ~ Categorical(weights), x = mu_z + L_z eps with L_z L_z^T = Sigma_z, eps ~ N(0, I)."""
        component_key, noise_key = jax.random.split(key)
        components = jax.random.categorical(component_key, jnp.log(params["weights"]), shape=(num_samples,))
        chol = safe_cholesky(params["covariances"], self.reg_covar)
        noise = jax.random.normal(noise_key, (num_samples, self.dim))
        return params["means"][components] + jnp.einsum("nij,nj->ni", chol[components], noise)

    def log_likelihood(self, params: dict, data: jax.Array, knobs: dict) -> jax.Array:
        """Exact log p(x_i | params) = logsumexp_k(log w_k + log N(x_i; mu_k, Sigma_k)) [n] (sklearn score_samples)."""
        return mixture_log_density(data, params, self.reg_covar)

    def is_good(self, data: jax.Array, knobs: dict) -> jax.Array:
        """Inside the truth's HDR of mass m (Feng et al. 2024): one blob, |x - mu|^2 / sigma^2 <= chi^2_d quantile(m)
        (exact); several, log p0(x) >= the m-quantile threshold of log p0 (make_model, Monte Carlo)."""
        if len(self.truth_means) <= 1:
            return jnp.sum((data - self.true_mean) ** 2, axis=-1) <= self.good_squared_radius
        weights, means, covariances = self._truth
        truth = {"weights": weights, "means": means, "covariances": covariances}
        return mixture_log_density(data, truth, self.reg_covar) >= self.good_log_density

    def reference(self) -> dict:
        """A held-out real test set (shared by every chain) for nll_real_test."""
        rng = np.random.default_rng(20240724)
        test = self.true_mean + self.true_std * rng.standard_normal((self.test_size, self.dim))
        if len(self.truth_means) > 1:
            blobs = rng.integers(0, len(self.truth_means), self.test_size)
            test = np.asarray(self.truth_means)[blobs] + self.true_std * rng.standard_normal((self.test_size, self.dim))
        return {"test_points": jnp.asarray(test, jnp.float32)}

    def evaluate(self, params: dict, samples: jax.Array, reference: dict, knobs: dict) -> dict:
        """L2 (squared) to the truth and to generation 0, mean component std, held-out NLL, EM diagnostics, tails."""
        mixture = (params["weights"], params["means"], params["covariances"])
        generation0 = params["generation0"]
        test = reference["test_points"]
        log_likelihood, _ = e_step(test.T, jnp.ones(test.shape[0]), params, self.reg_covar)
        variances = jnp.trace(params["covariances"], axis1=-2, axis2=-1) / self.dim
        return {
            "l2_to_truth": metrics.mixture_l2_sq(*mixture, *self._truth),
            "l2_to_generation0": metrics.mixture_l2_sq(
                *mixture, generation0["weights"], generation0["means"], generation0["covariances"]
            ),
            # sqrt(tr Sigma_k / d), averaged over components: the "std" Shumailov et al. plot.
            "component_std": jnp.mean(jnp.sqrt(jnp.maximum(variances, 0.0))),
            "nll_real_test": -log_likelihood,
            "em_iterations": params["em_iterations"].astype(jnp.float32),
            "em_converged": params["em_converged"].astype(jnp.float32),
            # Rare events are lost first (Shumailov et al.): model mass beyond the truth's 1% / 99% quantiles / 2%.
            "tail_mass_ratio": quadrature.marginal_tail_mass_ratio(
                *mixture, jnp.asarray(self.tail_low), jnp.asarray(self.tail_high)
            ),
        }


def make_model(config, settings: FamilySettings | None = None) -> GaussianMixtureModel:
    """Build the GMM family from its resolved config (base.make_model: defaults in, rules applied)."""
    model = config.model
    settings = family_settings(config) if settings is None else settings
    mass = settings.good_region_mass
    truth = truth_settings(model, model.dim, float(model.true_mean), float(model.true_std), mass)
    if model.population_fit:
        check_quadrature_points(model.quadrature_nodes, max(model.num_components, model.truth_components), model.dim)
    return GaussianMixtureModel(
        dim=model.dim,
        num_components=model.num_components,
        covariance_type=model.covariance_type,
        init_method=model.init_method,
        max_iterations=model.max_iterations,
        kmeans_iterations=model.kmeans_iterations,
        tolerance=float(model.tolerance),
        reg_covar=float(model.reg_covar),
        true_mean=float(model.true_mean),
        true_std=float(model.true_std),
        real_data_size=model.real_data_size or config.samples_per_generation,
        test_size=model.test_size,
        good_region_mass=mass,
        # The truth N(mu 1, sigma^2 I) has log density decreasing in |x - mu|^2, so its HDR is a chi^2 ball.
        good_squared_radius=float(model.true_std) ** 2 * chi_square_quantile(mass, model.dim),
        **truth,
        population_fit=model.population_fit,
        quadrature_nodes=model.quadrature_nodes,
        fit_method=model.fit_method,
        fit_steps=model.fit_steps,
        fit_init=model.fit_init,
    )
