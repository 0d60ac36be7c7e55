"""Population fits and tail masses of Gaussian mixtures: Gauss-Hermite quadrature points of a mixture (a weighted
point set whose weighted EM is population EM up to quadrature error) and the 1-D marginal tail mass of a mixture.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

# Tail quantiles of the truth: tail_mass_ratio counts the model's mass below the 1% and above the 99% quantile.
TAIL_LOW, TAIL_HIGH = 0.01, 0.99


def gauss_hermite_grid(nodes_per_axis: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Product Gauss-Hermite rule for N(0, I_d): nodes [n^d, d] and weights [n^d] summing to 1.

    Exact for E[f(Z)] when f is a polynomial of degree <= 2n - 1 in each coordinate (probabilists' Hermite nodes).
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(nodes_per_axis)
    weights = weights / math.sqrt(2.0 * math.pi)
    grid = np.stack(np.meshgrid(*([nodes] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    grid_weights = np.prod(np.stack(np.meshgrid(*([weights] * dim), indexing="ij"), axis=-1).reshape(-1, dim), -1)
    return grid, grid_weights


def mixture_quadrature(
    weights: jax.Array, means: jax.Array, chols: jax.Array, grid: np.ndarray, grid_weights: np.ndarray
) -> tuple[jax.Array, jax.Array]:
    """Quadrature points [J n^d, d] and weights of sum_j w_j N(mu_j, L_j L_j^T): x = mu_j + L_j z_i, weight w_j v_i.

    The weights are scaled to sum to the number of points, so sklearn's 10 eps added to every component count in
    the M step weighs like it does on a data set of that size (~1e-9 relative), not like on a single point.
    """
    points = means[:, None, :] + jnp.einsum("jab,ib->jia", chols, jnp.asarray(grid, means.dtype))
    point_weights = weights[:, None] * jnp.asarray(grid_weights, means.dtype)[None, :]
    count = point_weights.size
    return points.reshape(-1, means.shape[-1]), point_weights.reshape(-1) * count / jnp.sum(point_weights)


def mixture_marginal_quantile(
    mass: float, weights: np.ndarray, means: np.ndarray, stds: np.ndarray, iterations: int = 200
) -> float:
    """q with sum_j w_j Phi((q - m_j) / s_j) = mass (host, float64 bisection): a 1-D mixture's quantile."""

    def cdf(q: float) -> float:
        return float(np.sum(weights * 0.5 * (1.0 + np.vectorize(math.erf)((q - means) / (stds * math.sqrt(2.0))))))

    low, high = float(np.min(means - 40.0 * stds)), float(np.max(means + 40.0 * stds))
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if cdf(middle) < mass else (low, middle)
    return 0.5 * (low + high)


def marginal_tail_mass_ratio(
    weights: jax.Array, means: jax.Array, covariances: jax.Array, low: jax.Array, high: jax.Array
) -> jax.Array:
    """Model mass beyond the truth's 1% / 99% quantiles relative to the truth's 2%, averaged over the d axes.

    Axis a: (sum_k w_k [Phi((low_a - m_ka) / s_ka) + 1 - Phi((high_a - m_ka) / s_ka)]) / 0.02 (1 at the truth; 0
    once every tail is lost; the 1-D definition of the issue, per coordinate marginal in d > 1).
    """
    stds = jnp.sqrt(jnp.maximum(jnp.diagonal(covariances, axis1=-2, axis2=-1), 1e-30))
    below = jax.scipy.special.ndtr((low - means) / stds)
    above = jax.scipy.special.ndtr((means - high) / stds)
    per_axis = weights @ (below + above)
    return jnp.mean(per_axis) / (TAIL_LOW + 1.0 - TAIL_HIGH)
