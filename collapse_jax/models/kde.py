"""Gaussian kernel density estimate: fit keeps the (weighted) pool as centres, sampling picks a centre and adds noise.

Reproduces the KDE experiments of Kazdan, Schaeffer et al. ("Collapse or Thrive?", 2024) on 2-D toy data sets.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models import _toy_data as toy_data
from collapse_jax.models._pool import pool_capacity
from collapse_jax.models.contract import FamilySettings, family_settings
from collapse_jax.models.fields import Field, choice, integer, number

BANDWIDTH_RULES = ("scott", "silverman")
# is_good's HDR threshold: the (1 - m) quantile of the truth's log density at HDR_DRAWS truth draws from a fixed key.
HDR_DRAWS, HDR_SEED = 100_000, 20241125  # HDR_DRAWS: a multiple of _hdr_threshold's 5000-point chunks
# Truth quadrature: consecutive curve points at most this many noise stds apart (error measured in the build notes).
GRID_SPACING = 0.5


def rule_bandwidth(rule: str, count: jax.Array, dim: int) -> jax.Array:
    """sklearn KernelDensity's rules (no data-scale factor): Scott n^(-1/(d+4)), Silverman (n(d+2)/4)^(-1/(d+4))."""
    count = jnp.maximum(count, 1.0)
    if rule == "scott":
        return count ** (-1.0 / (dim + 4))
    return (count * (dim + 2) / 4.0) ** (-1.0 / (dim + 4))


def kde_log_density(points: jax.Array, centres: jax.Array, weights: jax.Array, bandwidth: jax.Array) -> jax.Array:
    """log p(x) = logsumexp_i(log w_i - |x - c_i|^2 / 2h^2) - log sum_i w_i - (d/2) log(2 pi h^2), for points [T, d]."""
    dim = points.shape[-1]
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2 as a matmul: T x C distances without a [T, C, d] intermediate.
    squared = jnp.sum(points**2, axis=-1)[:, None] - 2.0 * points @ centres.T + jnp.sum(centres**2, axis=-1)[None, :]
    log_weights = jnp.where(weights > 0, jnp.log(jnp.where(weights > 0, weights, 1.0)), -jnp.inf)
    log_kernel = log_weights[None, :] - jnp.maximum(squared, 0.0) / (2.0 * bandwidth**2)
    normalizer = jnp.log(jnp.sum(weights)) + 0.5 * dim * jnp.log(2.0 * math.pi * bandwidth**2)
    return jax.nn.logsumexp(log_kernel, axis=-1) - normalizer


def truth_mixture(dataset: str, noise: float, factor: float, centers, cluster_std: float) -> tuple[np.ndarray, float]:
    """The toy truth as an equal-weight isotropic Gaussian mixture (centres [C, 2], std) for `kde_log_density`.

    Blobs are one exactly. A curve data set is x = gamma(t) + s eps with t uniform, so p(x) = E_t N(x; gamma(t), s^2 I);
    the expectation is a grid average over t (periodic trapezoid rule for circles, midpoint rule for the moons' and
    the swiss roll's open arcs) with |gamma'(t)| dt <= GRID_SPACING s, where the Gaussian makes the sum near exact.
    """
    if dataset == "blobs":
        return np.asarray(centers, np.float64), cluster_std
    step = GRID_SPACING * noise
    if dataset == "moons":
        count = math.ceil(math.pi / step)
        t = (np.arange(count) + 0.5) * math.pi / count
        outer = np.stack([np.cos(t), np.sin(t)], axis=-1)
        return np.concatenate([outer, np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=-1)]), noise
    if dataset == "circles":
        count = math.ceil(2.0 * math.pi / step)
        angle = 2.0 * math.pi * np.arange(count) / count
        ring = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        return np.concatenate([ring, factor * ring]), noise
    # Swiss roll: gamma(t) = (t cos t, t sin t), t in [1.5 pi, 4.5 pi], speed sqrt(1 + t^2) at most at the outer end.
    count = math.ceil(3.0 * math.pi * math.sqrt(1.0 + (4.5 * math.pi) ** 2) / step)
    t = 1.5 * math.pi * (1.0 + 2.0 * (np.arange(count) + 0.5) / count)
    return np.stack([t * np.cos(t), t * np.sin(t)], axis=-1), noise


def _check_bandwidth(value) -> None:
    """A rule is one static choice per run (numeric bandwidths are a per-chain knob): a sweep holds numbers only."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) > 1 and any(isinstance(item, str) for item in values):
        raise ValueError(
            f"config.model.bandwidth: a positive number, a list of them, or one of {BANDWIDTH_RULES}; got {value!r}"
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class KernelDensityModel:
    """Static settings of the KDE family; params are {'centres': [capacity, 2], 'weights': [capacity], 'bandwidth'}."""

    # A list of data sets compiles once per data set (the truth is static); numeric bandwidths are a knob.
    static_sweep_fields: ClassVar[tuple[str, ...]] = ("model.dataset",)

    dataset: str
    bandwidth_rule: str | None  # None: the per-chain knob `bandwidth`; else "scott" or "silverman" per generation
    capacity: int  # the largest pool any generation of the configured regime hands to fit (static shape)
    real_data_size: int
    test_size: int
    noise: float
    factor: float
    centers: tuple[tuple[float, float], ...]
    cluster_std: float
    good_region_mass: float  # m: is_good's region is the truth's high-density region holding mass m
    # log p0 at that region's edge (host Monte Carlo, see make_model); None when the truth has no density (noise 0).
    good_log_density_threshold: float | None
    # Instance-level (numeric bandwidths are a knob, a rule is not); kept out of hash/eq so the model stays hashable.
    knob_fields: dict = dataclasses.field(default_factory=dict, compare=False, hash=False)
    # evaluate() reads only the params: the engine draws each generation's samples where the next one consumes them.
    evaluate_uses_samples = False
    metric_names = ("nll_real_test", "bandwidth")

    # config.model fields, declared once: the only source of their defaults and checks.
    config_fields = {
        "dataset": choice("2-D toy truth", toy_data.DATASETS, sweepable=True, noun="dataset"),
        "bandwidth": Field(
            "number",
            "Gaussian kernel width (a tuple sweeps it) or a rule",
            low=0.0,
            low_open=True,
            choices=BANDWIDTH_RULES,
            number_choices=True,
            sweepable=True,
            check=_check_bandwidth,
        ),
        "noise": number("std of the noise added to moons / circles / swiss_roll", low=0.0, default=0.05),
        "factor": number("circles: radius of the inner circle", low=0.0, high=1.0, low_open=True, default=0.8),
        "cluster_std": number("blobs: std of each blob", low=0.0, default=1.0),
        "num_blobs": integer("blobs: number of centres", low=1, default=3),
        "dataset_seed": integer("blobs: seed of the centres", low=0, default=0),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
        "test_size": integer("held-out real points for nll_real_test", low=1, default=1000),
    }
    dim = 2

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: dict) -> jax.Array:
        """Draw from the toy data set's distribution."""
        sampler = toy_data.make_sampler(
            self.dataset, self.noise, self.factor, jnp.asarray(self.centers), self.cluster_std
        )
        return sampler(key, num_samples)

    def real_data(self, key: jax.Array, knobs: dict) -> jax.Array:
        """The chain's original training set: real_data_size draws from the data set."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: dict) -> dict:
        """An empty pool (every fit overwrites it; only the structure matters)."""
        return {
            "centres": jnp.zeros((self.capacity, self.dim)),
            "weights": jnp.zeros((self.capacity,)),
            "bandwidth": jnp.float32(1.0),
        }

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: dict, previous: dict) -> dict:
        """Keep the pool as centres (padded to the static capacity; padding and masked points get weight 0)."""
        size = data.shape[0]
        if size > self.capacity:
            raise ValueError(
                f"kde: a pool of {size} points exceeds the capacity {self.capacity} derived from the config"
            )
        pad = self.capacity - size
        centres = jnp.concatenate([data, jnp.zeros((pad, self.dim), data.dtype)])
        weights = jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)])
        if self.bandwidth_rule is None:
            bandwidth = jnp.asarray(knobs["bandwidth"], jnp.float32)
        else:
            bandwidth = rule_bandwidth(self.bandwidth_rule, jnp.sum(weights), self.dim)
        return {"centres": centres, "weights": weights, "bandwidth": bandwidth}

    def sample(self, key: jax.Array, params: dict, num_samples: int, knobs: dict) -> jax.Array:
        """x = c_i + h eps: i ~ Categorical(weights), eps ~ N(0, I) (exact sampling from the KDE)."""
        index_key, noise_key = jax.random.split(key)
        # Inverse-CDF draw: O(C + n log C); categorical() would draw n x C Gumbels (1e8 for an accumulated pool).
        # A zero-weight slot has an empty interval of the cumulative sum, so padding is never picked.
        cumulative = jnp.cumsum(params["weights"])
        targets = jax.random.uniform(index_key, (num_samples,)) * cumulative[-1]
        index = jnp.minimum(jnp.searchsorted(cumulative, targets, side="right"), self.capacity - 1)
        noise = jax.random.normal(noise_key, (num_samples, self.dim))
        return params["centres"][index] + params["bandwidth"] * noise

    def log_likelihood(self, params: dict, data: jax.Array, knobs: dict) -> jax.Array:
        """Exact log p(x_i) [n] of the fitted KDE (weighted centres, bandwidth h): KernelDensity.score_samples."""
        return kde_log_density(data, params["centres"], params["weights"], params["bandwidth"])

    def truth_log_density(self, points: jax.Array) -> jax.Array:
        """log p0(x) [n] of the toy truth (exact for blobs, grid quadrature over the curve otherwise: truth_mixture)."""
        centres, std = truth_mixture(self.dataset, self.noise, self.factor, self.centers, self.cluster_std)
        centres = jnp.asarray(centres, jnp.float32)
        return kde_log_density(points, centres, jnp.ones(centres.shape[0]), jnp.float32(std))

    def is_good(self, data: jax.Array, knobs: dict) -> jax.Array:
        """log p0(x) >= t_m: inside the truth's high-density region holding mass m (the verifier of Feng et al. 2024).

        t_m is the (1 - m) quantile of log p0 over HDR_DRAWS truth draws from a fixed key, computed once in make_model
        (not exact: the share of truth mass above it is m to within ~sqrt(m (1 - m) / HDR_DRAWS) = 7e-4 at m = 0.95).
        """
        if self.good_log_density_threshold is None:
            raise ValueError("config.model.noise: is_good needs a truth with a density (noise > 0, cluster_std > 0)")
        return self.truth_log_density(data) >= self.good_log_density_threshold

    def reference(self) -> dict:
        """Held-out real points shared by every chain, from a fixed key independent of all chain streams."""
        test = self.sample_truth(jax.random.key(20240724), self.test_size, {})
        return {"test_points": jnp.asarray(np.asarray(test), jnp.float32)}

    def evaluate(self, params: dict, samples: jax.Array, reference: dict, knobs: dict) -> dict:
        """Mean negative log-likelihood of the held-out real points (Kazdan et al.'s metric) and the bandwidth used."""
        log_density = kde_log_density(
            reference["test_points"], params["centres"], params["weights"], params["bandwidth"]
        )
        return {"nll_real_test": -jnp.mean(log_density), "bandwidth": params["bandwidth"]}


def make_model(config, settings: FamilySettings | None = None) -> KernelDensityModel:
    """Build the KDE family from its resolved config (base.make_model: defaults in, fields checked)."""
    model = config.model
    # The declaration allows numbers (a per-chain knob) or one rule (static): a string here is that rule.
    values = model.bandwidth if isinstance(model.bandwidth, (list, tuple)) else (model.bandwidth,)
    rule = values[0] if isinstance(values[0], str) else None
    real_data_size = model.real_data_size or config.samples_per_generation
    settings = family_settings(config) if settings is None else settings
    centers = toy_data.blob_centers(jax.random.key(model.dataset_seed), model.num_blobs)
    kde = KernelDensityModel(
        dataset=model.dataset,
        bandwidth_rule=rule,
        capacity=pool_capacity(config, real_data_size, settings.num_generations),
        real_data_size=real_data_size,
        test_size=model.test_size,
        noise=float(model.noise),
        factor=float(model.factor),
        centers=tuple(tuple(float(c) for c in row) for row in np.asarray(centers)),
        cluster_std=float(model.cluster_std),
        good_region_mass=settings.good_region_mass,
        good_log_density_threshold=None,
        knob_fields={} if rule else {"bandwidth": "model.bandwidth"},
    )
    if (kde.noise > 0 or kde.dataset == "blobs") and (kde.cluster_std > 0 or kde.dataset != "blobs"):
        # Only the truth and m matter: the canonical model makes every sweep group of one truth share the cache entry.
        truth_only = dataclasses.replace(kde, bandwidth_rule=None, capacity=0, real_data_size=1, test_size=1)
        kde = dataclasses.replace(kde, good_log_density_threshold=_hdr_threshold(truth_only))
    return kde


@functools.lru_cache(maxsize=16)
def _hdr_threshold(kde: KernelDensityModel) -> float:
    """t_m = the (1 - m) quantile of log p0(X) over HDR_DRAWS truth draws X from a fixed key (host, once per truth)."""

    def log_density_of_draws(key):
        # lax.map over chunks of 5000 points keeps the [points, C] kernel matrix under ~100 MB (C ~ 5000 for a swiss
        # roll); one jit for sampling and scoring compiles once instead of dispatching each sampler op eagerly.
        draws = kde.sample_truth(key, HDR_DRAWS, {}).reshape(-1, 5000, kde.dim)
        return jax.lax.map(kde.truth_log_density, draws)

    values = np.asarray(jax.jit(log_density_of_draws)(jax.random.key(HDR_SEED))).ravel()
    return float(np.quantile(values, 1.0 - kde.good_region_mass))
