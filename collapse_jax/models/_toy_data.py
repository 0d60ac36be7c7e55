"""2-D toy data sets in pure JAX (blobs, moons, circles, swiss roll), i.i.d. versions of scikit-learn's generators.

Used as true distributions by density models (KDE, GMM): every sampler is `sample(key, num_samples) -> [n, 2]`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

ToySampler = Callable[[jax.Array, int], jax.Array]
DATASETS = ("blobs", "moons", "circles", "swiss_roll")


def blob_centers(key: jax.Array, num_centers: int = 3, box: tuple[float, float] = (-10.0, 10.0)) -> jax.Array:
    """Blob centres drawn uniformly in a box, as `sklearn.datasets.make_blobs(centers=None)` does ([c, 2])."""
    return jax.random.uniform(key, (num_centers, 2), minval=box[0], maxval=box[1])


def blobs(key: jax.Array, num_samples: int, centers: jax.Array, cluster_std: float = 1.0) -> jax.Array:
    """Equal-weight isotropic Gaussian blobs: x = c_z + cluster_std * eps, z ~ Uniform{centres}, eps ~ N(0, I)."""
    label_key, noise_key = jax.random.split(key)
    labels = jax.random.randint(label_key, (num_samples,), 0, centers.shape[0])
    return centers[labels] + cluster_std * jax.random.normal(noise_key, (num_samples, 2))


def moons(key: jax.Array, num_samples: int, noise: float = 0.05) -> jax.Array:
    """Two interleaved half circles; the angle is uniform on [0, pi] (sklearn uses an even grid, not i.i.d.)."""
    angle_key, side_key, noise_key = jax.random.split(key, 3)
    angle = jax.random.uniform(angle_key, (num_samples,), maxval=math.pi)
    outer = jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
    # The inner moon is the outer one reflected and shifted: (1 - cos t, 1 - sin t - 0.5), as in make_moons.
    inner = jnp.stack([1.0 - jnp.cos(angle), 0.5 - jnp.sin(angle)], axis=-1)
    is_inner = jax.random.bernoulli(side_key, 0.5, (num_samples, 1))
    return jnp.where(is_inner, inner, outer) + noise * jax.random.normal(noise_key, (num_samples, 2))


def circles(key: jax.Array, num_samples: int, noise: float = 0.05, factor: float = 0.8) -> jax.Array:
    """A unit circle and a concentric one of radius `factor`, angle uniform on [0, 2 pi), plus N(0, noise^2 I)."""
    angle_key, side_key, noise_key = jax.random.split(key, 3)
    angle = jax.random.uniform(angle_key, (num_samples,), maxval=2.0 * math.pi)
    radius = jnp.where(jax.random.bernoulli(side_key, 0.5, (num_samples,)), factor, 1.0)
    points = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
    return points + noise * jax.random.normal(noise_key, (num_samples, 2))


def swiss_roll(key: jax.Array, num_samples: int, noise: float = 0.05) -> jax.Array:
    """The (x, z) plane of `make_swiss_roll`: t ~ 1.5 pi (1 + 2U), point (t cos t, t sin t) + N(0, noise^2 I)."""
    t_key, noise_key = jax.random.split(key)
    t = 1.5 * math.pi * (1.0 + 2.0 * jax.random.uniform(t_key, (num_samples,)))
    points = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=-1)
    return points + noise * jax.random.normal(noise_key, (num_samples, 2))


def make_sampler(
    name: str, noise: float = 0.05, factor: float = 0.8, centers: jax.Array | None = None, cluster_std: float = 1.0
) -> ToySampler:
    """The sampler `(key, num_samples) -> [n, 2]` of the named data set with its settings bound."""
    if name == "blobs":
        if centers is None:
            raise ValueError("toy_data.make_sampler: blobs needs `centers` (see blob_centers)")
        return functools.partial(blobs, centers=jnp.asarray(centers), cluster_std=cluster_std)
    if name == "moons":
        return functools.partial(moons, noise=noise)
    if name == "circles":
        return functools.partial(circles, noise=noise, factor=factor)
    if name == "swiss_roll":
        return functools.partial(swiss_roll, noise=noise)
    raise ValueError(f"dataset: unknown toy data set {name!r}; allowed: {', '.join(DATASETS)}")
