"""d-dimensional Gaussian fitted by MLE or the unbiased estimator, sampled with a per-chain bias lambda.

Reproduces the Gaussian collapse of Shumailov et al. (2024, Thm 3.1), Kazdan et al. ("Collapse or Thrive?") and MAD.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models import _metrics as metrics
from collapse_jax.models.contract import FamilySettings, family_settings
from collapse_jax.models.fields import choice, integer, number

ESTIMATOR_DDOF = {"mle": 0, "unbiased": 1}
# Up to this d, scatter matrices are sums of outer products (elementwise); above it, one matmul per chain.
SMALL_DIMENSION = 8


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
    knob_fields = {"sampling_bias": "model.sampling_bias"}
    # evaluate() reads only the params: the engine draws each generation's samples where the next one consumes them.
    evaluate_uses_samples = False
    metric_names = ("mean_sq_error", "trace_ratio", "logdet_ratio", "w2_sq_to_truth", "nll_real_test")

    # config.model fields, declared once (collapse_jax/host/config_schema.py validates them before anything runs).
    config_fields = {
        "dim": integer("d: data dimension", low=1),
        "true_mean": number("the truth is N(true_mean * 1, true_std^2 I)"),
        "true_std": number("the truth's standard deviation", low=0.0, low_open=True),
        "estimator": choice("mle (ddof 0) or unbiased (ddof 1)", tuple(ESTIMATOR_DDOF), noun="estimator"),
        "sampling_bias": number("lambda: sample from N(mu, lambda Sigma)", low=0.0, sweepable=True),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
        "test_size": integer("held-out real points for nll_real_test", low=1),
    }

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: dict) -> jax.Array:
        """Draw from the true distribution N(true_mean * 1, true_std^2 I)."""
        return self.true_mean + self.true_std * jax.random.normal(key, (num_samples, self.dim))

    def real_data(self, key: jax.Array, knobs: dict) -> jax.Array:
        """The chain's original training set: real_data_size draws from the truth."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: dict) -> dict:
        """The truth itself (only its structure matters: every fit overwrites it)."""
        return {"mean": jnp.full((self.dim,), self.true_mean), "cov": self.true_std**2 * jnp.eye(self.dim)}

    def statistics(self, data: jax.Array, weights: jax.Array) -> dict:
        """Count, mean and centred scatter matrix of the weighted points (Chan et al.'s mergeable form)."""
        count = jnp.sum(weights)
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
        """mu = sample mean; Sigma = scatter / (n - ddof) (ddof 0: MLE, ddof 1: unbiased)."""
        cov = statistics["scatter"] / jnp.maximum(statistics["count"] - self.ddof, 1.0)
        return {"mean": statistics["mean"], "cov": cov}

    def sample_statistics(self, key: jax.Array, params: dict, count: jax.Array, knobs: dict) -> dict:
        """The statistics of n = count points drawn from N(mu, lambda Sigma), drawn exactly without the points.

        mean ~ N(mu, lambda Sigma / n) and scatter ~ Wishart(lambda Sigma, n - 1), independent (Cochran). The Wishart
        is R A A^T R with R = Sigma^{1/2} and A the Bartlett factor: A_ii^2 ~ chi2(n - 1 - i) (i = 0..d-1),
        A_ij ~ N(0, 1) below the diagonal; columns j >= n - 1 are zero, which gives the singular Wishart (rank n - 1)
        when n <= d. n = 1 gives scatter 0; n = 0 gives count 0, mean mu and scatter 0 (weight 0 in merge_statistics).
        """
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
        noise = jax.random.normal(key, (num_samples, self.dim))
        root = metrics.psd_sqrt(params["cov"])
        return params["mean"] + jnp.sqrt(knobs["sampling_bias"]) * noise @ root

    def log_likelihood(self, params: dict, data: jax.Array, knobs: dict) -> jax.Array:
        """log N(x_i; mu, Sigma) of each point under the fitted Gaussian (the likelihood filter's score)."""
        return metrics.gaussian_log_density(data, params["mean"], params["cov"])

    def is_good(self, data: jax.Array, knobs: dict) -> jax.Array:
        """Inside the truth's highest-density ball holding mass m: |x - mu0|^2 <= s^2 chi2_d^{-1}(m)."""
        return jnp.sum((data - self.true_mean) ** 2, axis=-1) <= self.true_std**2 * self.good_radius_sq

    def reference(self) -> dict:
        """Mean and MLE covariance of a held-out real test set (enough for the exact mean NLL of every point)."""
        rng = np.random.default_rng(20240724)
        test = self.true_mean + self.true_std * rng.standard_normal((self.test_size, self.dim))
        mean = test.mean(axis=0)
        return {
            "mean": jnp.asarray(mean, jnp.float32),
            "cov": jnp.asarray(np.cov(test.T, ddof=0).reshape(self.dim, self.dim), jnp.float32),
        }

    def evaluate(self, params: dict, samples: jax.Array, reference: dict, knobs: dict) -> dict:
        """Distances of N(mu, Sigma) to the truth N(mu0, s^2 I), and the mean NLL of the held-out test set."""
        mean, cov = params["mean"], params["cov"]
        true_mean = jnp.full((self.dim,), self.true_mean)
        true_variance = self.true_std**2
        eigenvalues, eigenvectors = metrics.spectrum(cov)
        return {
            "mean_sq_error": jnp.sum((mean - true_mean) ** 2),
            "trace_ratio": jnp.trace(cov) / (self.dim * true_variance),
            "logdet_ratio": jnp.sum(jnp.log(eigenvalues)) - self.dim * math.log(true_variance),
            "w2_sq_to_truth": metrics.w2_sq_gaussian_to_isotropic(mean, eigenvalues, true_mean, true_variance),
            "nll_real_test": metrics.gaussian_nll_of_moments(
                mean, eigenvalues, eigenvectors, reference["mean"], reference["cov"]
            ),
        }


def make_model(config, settings: FamilySettings | None = None) -> GaussianModel:
    """Validate `config.model` and build the Gaussian family."""
    model = config.model
    if model.estimator not in ESTIMATOR_DDOF:
        raise ValueError(
            f"config.model.estimator: {model.estimator!r} is not allowed; use one of {list(ESTIMATOR_DDOF)}"
        )
    if not isinstance(model.dim, int) or model.dim < 1:
        raise ValueError(f"config.model.dim: must be a positive integer, got {model.dim!r}")
    if not model.true_std > 0:
        raise ValueError(f"config.model.true_std: must be > 0, got {model.true_std!r}")
    for bias in np.atleast_1d(model.sampling_bias):
        if not bias >= 0:
            raise ValueError(f"config.model.sampling_bias: must be >= 0 (lambda scales the covariance), got {bias!r}")
    real_data_size = model.get("real_data_size") or config.samples_per_generation
    if real_data_size < 1:
        raise ValueError(f"config.model.real_data_size: must be a positive integer, got {real_data_size!r}")
    settings = family_settings(config) if settings is None else settings
    return GaussianModel(
        dim=model.dim,
        ddof=ESTIMATOR_DDOF[model.estimator],
        true_mean=float(model.true_mean),
        true_std=float(model.true_std),
        real_data_size=int(real_data_size),
        test_size=int(model.get("test_size", 10_000)),
        good_radius_sq=metrics.chi_square_quantile(settings.good_region_mass, model.dim),
    )
