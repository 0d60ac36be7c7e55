"""Gaussian kernel density estimate: fit keeps the (weighted) pool as centres, sampling picks a centre and adds noise.

Reproduces the KDE experiments of Kazdan, Schaeffer et al. ("Collapse or Thrive?", 2024) on 2-D toy data sets.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax import toy_data

BANDWIDTH_RULES = ("scott", "silverman")
# A list of data sets compiles once per data set (the truth is static); a list of numeric bandwidths is a knob.
STATIC_SWEEP_FIELDS = ("model.dataset",)


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


@dataclasses.dataclass(frozen=True)
class KernelDensityModel:
    """Static settings of the KDE family; params are {'centres': [capacity, 2], 'weights': [capacity], 'bandwidth'}."""

    dataset: str
    bandwidth_rule: str | None  # None: the per-chain knob `bandwidth`; else "scott" or "silverman" per generation
    capacity: int  # the largest pool any generation of the configured regime hands to fit (static shape)
    real_data_size: int
    test_size: int
    noise: float
    factor: float
    centers: tuple[tuple[float, float], ...]
    cluster_std: float
    # Instance-level (numeric bandwidths are a knob, a rule is not); kept out of hash/eq so the model stays hashable.
    knob_fields: dict = dataclasses.field(default_factory=dict, compare=False, hash=False)
    metric_names = ("nll_real_test", "bandwidth")
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


def _pool_capacity(config, real_data_size: int) -> int:
    """The largest pool a regime hands to fit: the regimes module's batch and pool sizes, maximized over the sweep."""
    samples = config.samples_per_generation
    fractions = np.atleast_1d(np.asarray(config.regime.real_fraction, np.float64))
    real_slots = int(fractions.max() * samples + 1e-6)
    names = config.regime.name if isinstance(config.regime.name, (list, tuple)) else [config.regime.name]
    sizes = [real_data_size]
    for name in names:
        if name == "accumulate":
            sizes.append(real_data_size + config.num_generations * (real_slots + samples))
        elif name == "accumulate_subsample":
            sizes.append(samples)
        else:  # replace / fresh train on the latest batch of R real + M synthetic slots
            sizes.append(real_slots + samples)
    return max(sizes)


def make_model(config) -> KernelDensityModel:
    """Validate `config.model` and build the KDE family."""
    model = config.model
    if model.dataset not in toy_data.DATASETS:
        raise ValueError(f"config.model.dataset: {model.dataset!r}; allowed: {', '.join(toy_data.DATASETS)}")
    bandwidth = model.bandwidth
    values = list(bandwidth) if isinstance(bandwidth, (list, tuple)) else [bandwidth]
    knob_fields, rule = {}, None
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0 for v in values):
        knob_fields = {"bandwidth": "model.bandwidth"}
    elif len(values) == 1 and values[0] in BANDWIDTH_RULES:
        rule = values[0]
    else:
        raise ValueError(
            f"config.model.bandwidth: a positive number, a list of them, or one of {BANDWIDTH_RULES}; got {bandwidth!r}"
        )
    for field in ("noise", "cluster_std"):
        if not model.get(field, 0.0) >= 0:
            raise ValueError(f"config.model.{field}: must be >= 0, got {model.get(field)!r}")
    real_data_size = model.get("real_data_size") or config.samples_per_generation
    test_size = model.get("test_size", 1000)
    for field, value in (("real_data_size", real_data_size), ("test_size", test_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"config.model.{field}: must be a positive integer, got {value!r}")
    centers = toy_data.blob_centers(jax.random.key(model.get("dataset_seed", 0)), model.get("num_blobs", 3))
    return KernelDensityModel(
        dataset=model.dataset,
        bandwidth_rule=rule,
        capacity=_pool_capacity(config, real_data_size),
        real_data_size=real_data_size,
        test_size=test_size,
        noise=float(model.get("noise", 0.05)),
        factor=float(model.get("factor", 0.8)),
        centers=tuple(tuple(float(c) for c in row) for row in np.asarray(centers)),
        cluster_std=float(model.get("cluster_std", 1.0)),
        knob_fields=knob_fields,
    )
