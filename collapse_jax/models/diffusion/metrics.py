"""Per-chain metrics of a diffusion model's samples: energy distance to the truth, the mixture's mode coverage and
quality, the ring's radius, and the memorization pair (training-set coverage, memorized share).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models.diffusion.sampling import squared_distances

# A zero-weight pool slot is no training point: its distance is +inf, so no min or argmin picks it.
FAR = jnp.inf
# Two pool points are copies when |x - y|^2 <= COPY_TOLERANCE (|x|^2 + |y|^2): 4x the float32 round-off of the matmul
# form of |x - y|^2 (~2.4e-7 (|x|^2 + |y|^2)), i.e. distances below ~1e-3 |x|.
COPY_TOLERANCE = 1e-6


def _distances(points: jax.Array, others: jax.Array) -> jax.Array:
    """Euclidean |x_i - y_j| [n, m] (from the matmul form: 6x faster than differences, ~3e-4 |x| round-off)."""
    return jnp.sqrt(squared_distances(points, others))


def mean_pair_distance(points: np.ndarray) -> float:
    """E|Y - Y'| over distinct pairs (the U-statistic), on the host in float64: the truth's constant term."""
    points = np.asarray(points, np.float64)
    distances = np.sqrt(np.sum((points[:, None, :] - points[None, :, :]) ** 2, axis=-1))
    count = points.shape[0]
    return float(distances.sum() / (count * (count - 1)))


def energy_distance(samples: jax.Array, reference: jax.Array, reference_pair_distance: jax.Array) -> jax.Array:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo), X' over distinct pairs: unbiased, 0 for X ~ Y."""
    count = samples.shape[0]
    cross = jnp.mean(_distances(samples, reference))
    within = jnp.sum(_distances(samples, samples)) / (count * (count - 1))
    return 2.0 * cross - within - reference_pair_distance


def mode_metrics(samples: jax.Array, modes: jax.Array, mode_std: float) -> tuple[jax.Array, jax.Array]:
    """(mode_coverage, high_quality_share): the share of modes whose nearest-mode count is >= 1/4 of the expected n/k,
    and the share of samples within 3 mode_std of some mode (a mode itself holds 1 - exp(-4.5) = 98.9% there in 2-D)."""
    distances = _distances(samples, modes)
    count, num_modes = samples.shape[0], modes.shape[0]
    counts = jnp.zeros(num_modes).at[jnp.argmin(distances, axis=-1)].add(1.0)
    coverage = jnp.mean((counts >= 0.25 * count / num_modes).astype(jnp.float32))
    quality = jnp.mean((jnp.min(distances, axis=-1) <= 3.0 * mode_std).astype(jnp.float32))
    return coverage, quality


def ring_radius_error(samples: jax.Array) -> jax.Array:
    """|mean |x| - 1|: the ring truth has radius 1."""
    return jnp.abs(jnp.mean(jnp.sqrt(jnp.sum(samples**2, axis=-1))) - 1.0)


def memorization(samples: jax.Array, points: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(train_coverage, memorized_share) of samples against the training pool (slots with weight > 0).

    train_coverage: the share of training points that are the nearest training point of at least one sample.
    memorized_share: the share of samples closer to their nearest training point than a quarter of the training set's
    median nearest-neighbour distance, each point's neighbour being the nearest *distinct* training point (not a copy,
    COPY_TOLERANCE): a pool that holds copies, as a collapsed loop's does, would otherwise have a median of 0 and no
    memorized sample.
    """
    valid = weights > 0
    to_training = jnp.where(valid[None, :], _distances(samples, points), FAR)
    nearest = jnp.argmin(to_training, axis=-1)
    hit = jnp.zeros(points.shape[0]).at[nearest].max(1.0) * valid
    coverage = jnp.sum(hit) / jnp.sum(valid)
    within = squared_distances(points, points)
    norms = jnp.sum(points**2, axis=-1)
    distinct = valid[:, None] & valid[None, :] & (within > COPY_TOLERANCE * (norms[:, None] + norms[None, :]))
    within = jnp.sqrt(within)
    neighbour = jnp.sort(jnp.min(jnp.where(distinct, within, FAR), axis=-1))
    count = jnp.sum(jnp.isfinite(neighbour))
    median = neighbour[jnp.maximum(count - 1, 0) // 2]  # the lower median of the finite distances
    threshold = jnp.where(count > 0, 0.25 * median, 0.0)
    memorized = jnp.mean((jnp.min(to_training, axis=-1) < threshold).astype(jnp.float32))
    return coverage, memorized
