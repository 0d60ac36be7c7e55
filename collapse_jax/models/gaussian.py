"""d-dimensional Gaussian fitted by MLE or the unbiased estimator, sampled with a per-chain bias lambda.

Reproduces the Gaussian collapse of Shumailov et al. (2024, Thm 3.1), Kazdan et al. ("Collapse or Thrive?") and MAD.
Shumailov et al.'s three sources of error switch independently (notes/error_sources.md):
statistical: `population_fit = True` fits the previous model's distribution itself (exact moment matching, through
`sampling = "statistics"` with the statistics at their population values); expressivity: `truth = "mixture"` or
`"student_t"` (one dimension) lies outside the family; approximation: `fit_method = "gradient_descent"` (k steps on
the mean NLL in (mu, log sigma), diagonal covariance, from the previous params or the fixed N(0, I), optional L2 on
log sigma).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models import _metrics as metrics
from collapse_jax.models import _threefry
from collapse_jax.models._gaussian_truths import TRUTHS, Truth
from collapse_jax.models.contract import POPULATION_FIT_SWITCH, ErrorSwitch, FamilySettings, family_settings
from collapse_jax.models.fields import choice, flag, implies, integer, needs, number, requires

ESTIMATOR_DDOF = {"mle": 0, "unbiased": 1}
# Up to this d, scatter matrices are sums of outer products (elementwise); above it, one matmul per chain.
SMALL_DIMENSION = 8
FIT_METHODS = ("exact", "gradient_descent")
FIT_INITS = ("previous", "fixed")
METRIC_NAMES = ("mean_sq_error", "trace_ratio", "logdet_ratio", "w2_sq_to_truth", "nll_real_test")
# Knobs of the gradient-descent fit (per chain; fit_steps runs up to the sweep's largest k, masked per chain).
DESCENT_KNOBS = {
    "fit_steps": "model.fit_steps",
    "learning_rate": "model.learning_rate",
    "l2_log_scale": "model.l2_log_scale",
}


@dataclasses.dataclass(frozen=True)
class GaussianModel:
    """Static settings of the Gaussian family; params are {'mean': [d], 'cov': [d, d]}."""

    dim: int
    ddof: int
    true_mean: float
    true_std: float
    real_data_size: int
    test_size: int
    # Verifier's "good" region: |x - mu0|^2 / s^2 <= chi2_d quantile of mass curation.good_region_mass (default 0.95).
    good_radius_sq: float = 0.0
    # The error-source switches (defaults: all three errors on). truth: where the real data come from (scale s).
    truth: Truth | None = None
    population_fit: bool = False  # statistics at their population values: the statistical error is off
    fit_method: str = "exact"
    fit_init: str = "previous"
    max_fit_steps: int = 0  # the sweep's largest k (the descent loop's static length)
    known_variance: bool = False  # the fit keeps the truth's covariance and fits only the mean
    # tail_mass_ratio joins the metrics when config.model.truth is set (the expressivity switch's tail measure).
    metric_names: tuple[str, ...] = METRIC_NAMES
    knob_fields: dict = dataclasses.field(
        default_factory=lambda: {"sampling_bias": "model.sampling_bias"}, compare=False, hash=False
    )
    # evaluate() reads only the params: the engine draws each generation's samples where the next one consumes them.
    evaluate_uses_samples = False
    static_sweep_fields = ("model.truth", "model.population_fit", "model.fit_method", "model.fit_init")

    # config.model fields and the rules that tie them, declared once: the only source of their defaults and checks.
    config_fields = {
        "dim": integer("d: data dimension", low=1),
        "true_mean": number("the truth is N(true_mean * 1, true_std^2 I)"),
        "true_std": number("the truth's standard deviation", low=0.0, low_open=True),
        "estimator": choice("mle (ddof 0) or unbiased (ddof 1)", tuple(ESTIMATOR_DDOF), noun="estimator"),
        "sampling_bias": number("lambda: sample from N(mu, lambda Sigma)", low=0.0, sweepable=True),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
        "test_size": integer("held-out real points for nll_real_test", low=1, default=10_000),
        "truth": choice(
            "gaussian | mixture | student_t (one compile each; None: gaussian)",
            TRUTHS,
            optional=True,
            sweepable=True,
            noun="truth",
        ),
        "truth_separation": number(
            "a: the mixture truth is 0.5 N(mu0 - a, s^2) + 0.5 N(mu0 + a, s^2)", low=0.0, default=2.0
        ),
        "truth_dof": number("nu: the student_t truth is mu0 + s T_nu", low=2.0, low_open=True, default=3.0),
        "population_fit": flag(
            "fit the previous model's distribution itself (statistical error off; runs the statistics path)",
            default=False,
            sweepable=True,
        ),
        "fit_method": choice(
            "exact (moments) or gradient_descent (approximation error on)",
            FIT_METHODS,
            sweepable=True,
            noun="fit method",
            default="exact",
        ),
        "fit_steps": integer(
            "k: gradient steps per fit (a chain knob; gradient_descent)",
            low=1,
            sweepable=True,
            optional=True,
        ),
        "learning_rate": number(
            "eta: gradient-descent step size (a chain knob; gradient_descent)",
            low=0.0,
            low_open=True,
            sweepable=True,
            optional=True,
        ),
        "fit_init": choice(
            "descent starts at the previous params or at the fixed N(0, I)",
            FIT_INITS,
            sweepable=True,
            noun="initialization",
            default="previous",
        ),
        "l2_log_scale": number(
            "L2 penalty (l2 / 2) sum_j (log sigma_j)^2 on the descent (a chain knob)",
            low=0.0,
            sweepable=True,
            default=0.0,
        ),
        "known_variance": flag("the fit keeps the truth's covariance and fits only the mean", default=False),
    }
    config_rules = (
        requires(
            "truth",
            ("mixture", "student_t"),
            "dim",
            (1,),
            "config.model.truth: {when} is one-dimensional here (its W2 and tail quantiles are exact in 1-D); set "
            "config.model.dim = 1, got {got}",
        ),
        # The population fit is the statistics path with the statistics at their population values (the raw-pool
        # regimes are refused there: they subsample points).
        implies(
            "population_fit",
            (True,),
            "sampling",
            "statistics",
            "config.model.sampling: population_fit = True fits the previous model's distribution itself, through the "
            "statistics path; leave model.sampling unset or 'statistics', got {got}",
        ),
        requires(
            "population_fit",
            (True,),
            "estimator",
            ("mle",),
            "config.model.estimator: 'unbiased' corrects a finite-sample bias; population_fit has no samples, use "
            "'mle'",
        ),
        requires(
            "population_fit",
            (True,),
            "/regime.name",
            ("replace", "accumulate", "fresh"),
            "config.model.population_fit: regime {got} with a raw pool subsamples points, which a population fit "
            "does not have; use replace, accumulate or fresh",
        ),
        requires(
            "fit_method",
            ("gradient_descent",),
            "estimator",
            ("mle",),
            "config.model.estimator: gradient_descent minimizes the NLL (the MLE); use 'mle'",
        ),
        needs(
            "fit_method",
            ("gradient_descent",),
            "fit_steps",
            "config.model.fit_steps: gradient_descent needs it set",
        ),
        needs(
            "fit_method",
            ("gradient_descent",),
            "learning_rate",
            "config.model.learning_rate: gradient_descent needs it set",
        ),
        requires(
            "known_variance",
            (True,),
            "fit_method",
            ("exact",),
            "config.model.known_variance: fits only the mean by moments; use model.fit_method = 'exact'",
        ),
    )

    @property
    def _truth(self) -> Truth:
        return self.truth if self.truth is not None else Truth("gaussian", self.true_mean, self.true_std)

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: dict) -> jax.Array:
        """Draw from the true distribution (default N(true_mean * 1, true_std^2 I))."""
        return self._truth.sample(key, (num_samples, self.dim))

    def real_data(self, key: jax.Array, knobs: dict) -> jax.Array:
        """The chain's original training set: real_data_size draws from the truth."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: dict) -> dict:
        """N(true_mean, true_std^2 I), the previous of generation 0 (an exact fit overwrites it); N(0, I) when the
        descent starts from the fixed initialization."""
        if self.fit_method == "gradient_descent" and self.fit_init == "fixed":
            return {"mean": jnp.zeros((self.dim,)), "cov": jnp.eye(self.dim)}
        return {"mean": jnp.full((self.dim,), self.true_mean), "cov": self.true_std**2 * jnp.eye(self.dim)}

    def _truth_moments(self) -> tuple[jax.Array, jax.Array]:
        return jnp.full((self.dim,), self._truth.mean, jnp.float32), self._truth.variance * jnp.eye(self.dim)

    def statistics(self, data: jax.Array, weights: jax.Array) -> dict:
        """Count, mean and centred scatter matrix of the weighted points (Chan et al.'s mergeable form).

        Under population_fit the points are real data (the synthetic part arrives from sample_statistics), so their
        statistics are the truth's population moments times their count: the fit sees the truth, not a sample of it.
        """
        count = jnp.sum(weights)
        if self.population_fit:
            mean, cov = self._truth_moments()
            return {"count": count, "mean": mean, "scatter": count * cov}
        # Sums over the minor axis of the transposed [d, n] points, not `weights @ data` / `centred.T @ centred`:
        # vmapped, those dots become batched [1, n] x [n, 1] matmuls and [chains, n, d] reductions over the middle
        # axis, both several times slower on XLA:CPU than row sums that fuse with the draw (BUILD_NOTES.md,
        # "Throughput at the limit"). The [d, d, n] products stay small for the dimensions where this matters.
        points = data.T
        mean = jnp.sum(weights * points, axis=-1) / jnp.maximum(count, 1.0)
        centred = points - mean[:, None]
        if self.dim <= SMALL_DIMENSION:
            scatter = jnp.sum((centred * weights)[:, None, :] * centred[None, :, :], axis=-1)
        else:
            scatter = (centred * weights) @ centred.T
        return {"count": count, "mean": mean, "scatter": scatter}

    def merge_statistics(self, a: dict, b: dict) -> dict:
        """Chan et al. pairwise update: S = S_a + S_b + n_a n_b / n (m_b - m_a)(m_b - m_a)^T, stable in float32."""
        count = a["count"] + b["count"]
        delta = b["mean"] - a["mean"]
        share_b = b["count"] / jnp.maximum(count, 1.0)
        mean = a["mean"] + share_b * delta
        scatter = a["scatter"] + b["scatter"] + jnp.outer(delta, delta) * a["count"] * share_b
        return {"count": count, "mean": mean, "scatter": scatter}

    def fit_statistics(self, key: jax.Array, statistics: dict, knobs: dict, previous: dict) -> dict:
        """mu = sample mean; Sigma = scatter / (n - ddof) (ddof 0: MLE, ddof 1: unbiased), or the truth's covariance
        (known_variance); or k descent steps."""
        if self.fit_method == "gradient_descent":
            return self._descend(statistics, knobs, previous)
        if self.known_variance:
            return {"mean": statistics["mean"], "cov": self._truth_moments()[1]}
        if self.population_fit:
            # Population moments: scatter / count (ddof 0; the unbiased estimator is refused with population_fit).
            return {"mean": statistics["mean"], "cov": statistics["scatter"] / jnp.maximum(statistics["count"], 1e-30)}
        cov = statistics["scatter"] / jnp.maximum(statistics["count"] - self.ddof, 1.0)
        return {"mean": statistics["mean"], "cov": cov}

    def _descend(self, statistics: dict, knobs: dict, previous: dict) -> dict:
        """k steps of gradient descent on the mean NLL in theta_j = (mu_j, s_j = log sigma_j), diagonal covariance.

        With data mean m_j and (MLE) variance v_j the per-point NLL is s + (v + (m - mu)^2) e^{-2s} / 2 + const, so
        d/dmu = (mu - m) e^{-2s}, d/ds = 1 - (v + (m - mu)^2) e^{-2s} + l2 s (with the L2 term (l2 / 2) s^2). The
        data enter only through (m, v): infinite data (population_fit) gives the deterministic recursion of
        tests/test_gaussian_error_sources.py. Start: the previous params or the fixed N(0, I) (`fit_init`); chain
        knobs fit_steps (k, masked up to the sweep's largest), learning_rate (eta) and l2.
        """
        count = jnp.maximum(statistics["count"], 1e-30)
        target_mean, target_variance = statistics["mean"], jnp.diagonal(statistics["scatter"]) / count
        if self.fit_init == "fixed":
            mean, log_std = jnp.zeros((self.dim,)), jnp.zeros((self.dim,))
        else:
            mean, log_std = previous["mean"], 0.5 * jnp.log(jnp.diagonal(previous["cov"]))
        steps, rate, l2 = knobs["fit_steps"], knobs["learning_rate"], knobs["l2_log_scale"]

        def step(index, theta):
            mean, log_std = theta
            precision = jnp.exp(-2.0 * log_std)
            grad_mean = (mean - target_mean) * precision
            grad_log_std = 1.0 - (target_variance + (target_mean - mean) ** 2) * precision + l2 * log_std
            live = index < steps
            return jnp.where(live, mean - rate * grad_mean, mean), jnp.where(
                live, log_std - rate * grad_log_std, log_std
            )

        mean, log_std = jax.lax.fori_loop(0, self.max_fit_steps, step, (mean, log_std))
        return {"mean": mean, "cov": jnp.diag(jnp.exp(2.0 * log_std))}

    def sample_statistics(self, key: jax.Array, params: dict, count: jax.Array, knobs: dict) -> dict:
        """The statistics of n = count points drawn from N(mu, lambda Sigma), drawn exactly without the points.

        mean ~ N(mu, lambda Sigma / n) and scatter ~ Wishart(lambda Sigma, n - 1), independent (Cochran). The Wishart
        is R A A^T R with R = Sigma^{1/2} and A the Bartlett factor: A_ii^2 ~ chi2(n - 1 - i) (i = 0..d-1),
        A_ij ~ N(0, 1) below the diagonal; columns j >= n - 1 are zero, which gives the singular Wishart (rank n - 1)
        when n <= d. n = 1 gives scatter 0; n = 0 gives count 0, mean mu and scatter 0 (weight 0 in merge_statistics).
        Under population_fit the statistics are their expectations with n -> infinity at fixed weight n: mean mu,
        scatter n lambda Sigma (the previous model's distribution itself, no sampling error).
        """
        if self.population_fit:
            count = jnp.asarray(count, jnp.float32)
            return {"count": count, "mean": params["mean"], "scatter": count * knobs["sampling_bias"] * params["cov"]}
        mean_key, diagonal_key, below_key = jax.random.split(key, 3)
        count = jnp.asarray(count, jnp.float32)
        bias = jnp.asarray(knobs["sampling_bias"], jnp.float32)
        root = metrics.psd_sqrt(params["cov"])
        noise = jax.random.normal(mean_key, (self.dim,))
        spread = jnp.where(count > 0, jnp.sqrt(bias / jnp.maximum(count, 1.0)), 0.0)
        mean = params["mean"] + spread * noise @ root
        degrees = count - 1.0 - jnp.arange(self.dim, dtype=jnp.float32)
        alive = degrees > 0
        # chi2(k) = 2 Gamma(k / 2); gamma's shape is traced per chain, and a dead column gets shape 1 then a 0.
        chi_square = 2.0 * jax.random.gamma(diagonal_key, jnp.where(alive, degrees / 2.0, 1.0))
        below = jnp.tril(jax.random.normal(below_key, (self.dim, self.dim)), k=-1)
        bartlett = (below + jnp.diag(jnp.sqrt(chi_square))) * alive[None, :]
        factor = root @ bartlett
        scatter = bias * factor @ factor.T
        return {"count": count, "mean": mean, "scatter": scatter}

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: dict, previous: dict) -> dict:
        """Weighted mean and covariance of the pool."""
        return self.fit_statistics(key, self.statistics(data, weights), knobs, previous)

    def sample(self, key: jax.Array, params: dict, num_samples: int, knobs: dict) -> jax.Array:
        """x = mu + sqrt(lambda) Sigma^{1/2} z, z ~ N(0, I): sampling bias lambda as in MAD (Alemohammad et al.)."""
        noise = _threefry.normal(key, (num_samples, self.dim))  # = jax.random.normal, bit for bit, unrolled
        root = metrics.psd_sqrt(params["cov"])
        return params["mean"] + jnp.sqrt(knobs["sampling_bias"]) * noise @ root

    def log_likelihood(self, params: dict, data: jax.Array, knobs: dict) -> jax.Array:
        """log N(x_i; mu, Sigma) of each point under the fitted Gaussian (the likelihood filter's score)."""
        return metrics.gaussian_log_density(data, params["mean"], params["cov"])

    def is_good(self, data: jax.Array, knobs: dict) -> jax.Array:
        """Inside the truth's highest-density ball holding mass m: |x - mu0|^2 <= s^2 chi2_d^{-1}(m)."""
        return jnp.sum((data - self.true_mean) ** 2, axis=-1) <= self.true_std**2 * self.good_radius_sq

    def reference(self) -> dict:
        """Mean and MLE covariance of a held-out real test set (enough for the exact mean NLL of every point), and the
        truth's constants for tail_mass_ratio and the non-Gaussian W2 (host float64, once)."""
        rng = np.random.default_rng(20240724)
        test = self._truth.sample_host(rng, (self.test_size, self.dim))
        mean = test.mean(axis=0)
        reference = {
            "mean": jnp.asarray(mean, jnp.float32),
            "cov": jnp.asarray(np.cov(test.T, ddof=0).reshape(self.dim, self.dim), jnp.float32),
        }
        if "tail_mass_ratio" in self.metric_names:
            low, high = (
                self._truth.quantile(metrics.TAIL_PROBABILITY),
                self._truth.quantile(1 - metrics.TAIL_PROBABILITY),
            )
            reference["tail_low"], reference["tail_high"] = jnp.float32(low), jnp.float32(high)
        return reference

    def evaluate(self, params: dict, samples: jax.Array, reference: dict, knobs: dict) -> dict:
        """Distances of N(mu, Sigma) to the truth N(mu0, s^2 I), and the mean NLL of the held-out test set."""
        mean, cov = params["mean"], params["cov"]
        truth = self._truth
        true_mean = jnp.full((self.dim,), truth.mean)
        true_variance = truth.variance  # s^2 for the Gaussian truth; the truth's own variance otherwise
        eigenvalues, eigenvectors = metrics.spectrum(cov)
        if truth.kind == "gaussian":
            w2_sq = metrics.w2_sq_gaussian_to_isotropic(mean, eigenvalues, true_mean, true_variance)
        else:
            # One dimension: W2^2 = (m - mu0)^2 + Var(truth) + sigma^2 - 2 sigma c (quantile coupling, c host-side).
            std = jnp.sqrt(eigenvalues[0])
            w2_sq = jnp.sum((mean - true_mean) ** 2) + true_variance + eigenvalues[0] - 2.0 * std * self.coupling
        values = {
            "mean_sq_error": jnp.sum((mean - true_mean) ** 2),
            "trace_ratio": jnp.trace(cov) / (self.dim * true_variance),
            "logdet_ratio": jnp.sum(jnp.log(eigenvalues)) - self.dim * math.log(true_variance),
            "w2_sq_to_truth": w2_sq,
            "nll_real_test": metrics.gaussian_nll_of_moments(
                mean, eigenvalues, eigenvectors, reference["mean"], reference["cov"]
            ),
        }
        if "tail_mass_ratio" in self.metric_names:
            stds = jnp.sqrt(jnp.maximum(jnp.diagonal(cov), 0.0))
            below, above = metrics.normal_tail_masses(mean, stds, reference["tail_low"], reference["tail_high"])
            values["tail_mass_ratio"] = metrics.tail_mass_ratio(below, above)
        return values

    @property
    def coupling(self) -> float:
        """The truth's W2 coupling constant c (see _gaussian_truths.Truth.gaussian_coupling), cached per family."""
        return _coupling(self._truth)

    # Shumailov et al.'s three switches, read from the class by the report's error-sources section.
    error_source_switches = {
        "population_fit": POPULATION_FIT_SWITCH,
        "truth": ErrorSwitch(source="expressivity", off=("gaussian",), default="gaussian"),
        "fit_method": ErrorSwitch(source="approximation", off=("exact",), default="exact"),
    }

    @property
    def truth_is_gaussian(self) -> bool:
        """Whether the truth is N(true_mean * 1, true_std^2 I) itself, not a mixture or Student-t centred there."""
        return self._truth.kind == "gaussian"

    def location_scale(self, params: dict) -> tuple[jax.Array, jax.Array]:
        """The fit's (mean [d], covariance [d, d]): the fitted Gaussian itself."""
        return params["mean"], params["cov"]


@functools.cache
def _coupling(truth: Truth) -> float:
    return truth.gaussian_coupling()


def make_model(config, settings: FamilySettings | None = None) -> GaussianModel:
    """Build the Gaussian family from its resolved config (base.make_model: defaults in, rules applied)."""
    model = config.model
    settings = family_settings(config) if settings is None else settings
    truth = Truth(
        model.truth or "gaussian",
        float(model.true_mean),
        float(model.true_std),
        separation=float(model.truth_separation),
        dof=float(model.truth_dof),
    )
    descent = model.fit_method == "gradient_descent"
    return GaussianModel(
        dim=model.dim,
        ddof=ESTIMATOR_DDOF[model.estimator],
        true_mean=float(model.true_mean),
        true_std=float(model.true_std),
        real_data_size=int(model.real_data_size or config.samples_per_generation),
        test_size=int(model.test_size),
        good_radius_sq=metrics.chi_square_quantile(settings.good_region_mass, model.dim),
        truth=truth,
        population_fit=bool(model.population_fit),
        fit_method=model.fit_method,
        fit_init=model.fit_init,
        # The descent loop's static length: the sweep's largest k (each chain masks its own).
        max_fit_steps=int(np.max(model.fit_steps)) if descent else 0,
        known_variance=bool(model.known_variance),
        metric_names=METRIC_NAMES + (("tail_mass_ratio",) if model.truth is not None else ()),
        knob_fields={"sampling_bias": "model.sampling_bias", **(DESCENT_KNOBS if descent else {})},
    )
