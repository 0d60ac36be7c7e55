"""Distances and summaries shared by model families (closed-form Gaussian quantities, entropies, ...).

Everything here is pure jnp on one chain's values; the engine vmaps it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def spectrum(cov: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues (clamped at 0, so a collapsed covariance stays finite) and eigenvectors of a symmetric PSD matrix.

    d = 1 skips the decomposition: batched eigh/LU/Cholesky custom calls cost ~10 ms per generation of 10k chains on
    XLA:CPU, more than the whole rest of a Gaussian generation (BUILD_NOTES.md).
    """
    if cov.shape[-1] == 1:
        return jnp.maximum(cov[0], 0.0), jnp.ones((1, 1), cov.dtype)
    eigenvalues, eigenvectors = jnp.linalg.eigh(cov)
    return jnp.maximum(eigenvalues, 0.0), eigenvectors


def psd_sqrt(cov: jax.Array) -> jax.Array:
    """Symmetric square root Sigma^{1/2} = V diag(sqrt(lambda)) V^T."""
    if cov.shape[-1] == 1:
        return jnp.sqrt(jnp.maximum(cov, 0.0))
    eigenvalues, eigenvectors = spectrum(cov)
    return (eigenvectors * jnp.sqrt(eigenvalues)) @ eigenvectors.T


def w2_sq_gaussian_to_isotropic(
    mean: jax.Array, eigenvalues: jax.Array, true_mean: jax.Array, true_variance: float
) -> jax.Array:
    """W2^2(N(mu, S), N(mu0, s^2 I)) = |mu - mu0|^2 + tr S + d s^2 - 2 s tr(S^{1/2}) (Gelbrich; S0^{1/2} = s I).

    `eigenvalues` are those of S (tr S = their sum, tr S^{1/2} = the sum of their square roots).
    """
    dim = mean.shape[-1]
    true_std = math.sqrt(true_variance)
    trace = jnp.sum(eigenvalues)
    return (
        jnp.sum((mean - true_mean) ** 2) + trace + dim * true_variance - 2.0 * true_std * jnp.sum(jnp.sqrt(eigenvalues))
    )


def gaussian_nll_of_moments(
    mean: jax.Array, eigenvalues: jax.Array, eigenvectors: jax.Array, data_mean: jax.Array, data_cov: jax.Array
) -> jax.Array:
    """Mean NLL under N(mu, S = V diag(lambda) V^T) of points with mean m and MLE covariance C.

    NLL = (d log 2 pi + sum log lambda + sum_i (V^T (C + (m - mu)(m - mu)^T) V)_ii / lambda_i) / 2; +inf when S is
    singular (a collapsed chain assigns the held-out data zero density).
    """
    dim = mean.shape[-1]
    offset = data_mean - mean
    second_moment = data_cov + jnp.outer(offset, offset)
    projected = jnp.sum(eigenvectors * (second_moment @ eigenvectors), axis=0)  # diag(V^T M V)
    nll = 0.5 * (dim * math.log(2.0 * math.pi) + jnp.sum(jnp.log(eigenvalues)) + jnp.sum(projected / eigenvalues))
    return jnp.where(jnp.isfinite(nll), nll, jnp.inf)


def entropy(probabilities: jax.Array) -> jax.Array:
    """Shannon entropy in nats, with 0 log 0 = 0."""
    safe = jnp.where(probabilities > 0, probabilities, 1.0)
    return -jnp.sum(jnp.where(probabilities > 0, probabilities * jnp.log(safe), 0.0))


def gaussian_product_integral(mean_a: jax.Array, cov_a: jax.Array, mean_b: jax.Array, cov_b: jax.Array) -> jax.Array:
    """Integral of N(x; a, A) N(x; b, B) dx = N(a; b, A + B) (the Gaussian product identity)."""
    dim = mean_a.shape[-1]
    chol = jnp.linalg.cholesky(cov_a + cov_b)
    solved = jax.scipy.linalg.solve_triangular(chol, mean_a - mean_b, lower=True)
    log_density = -0.5 * (dim * math.log(2.0 * math.pi) + jnp.sum(solved**2)) - jnp.sum(jnp.log(jnp.diagonal(chol)))
    return jnp.exp(log_density)


def mixture_inner_product(
    weights_a: jax.Array,
    means_a: jax.Array,
    covs_a: jax.Array,
    weights_b: jax.Array,
    means_b: jax.Array,
    covs_b: jax.Array,
) -> jax.Array:
    """<p, q> = sum_ij w_i v_j N(m_i; n_j, S_i + T_j) for mixtures p = sum w_i N(m_i, S_i), q = sum v_j N(n_j, T_j)."""
    pairwise = jax.vmap(
        lambda mean_a, cov_a: jax.vmap(lambda mean_b, cov_b: gaussian_product_integral(mean_a, cov_a, mean_b, cov_b))(
            means_b, covs_b
        )
    )(means_a, covs_a)
    return weights_a @ pairwise @ weights_b


def mixture_l2_sq(
    weights_a: jax.Array,
    means_a: jax.Array,
    covs_a: jax.Array,
    weights_b: jax.Array,
    means_b: jax.Array,
    covs_b: jax.Array,
) -> jax.Array:
    """Integral of (p - q)^2 = <p, p> + <q, q> - 2 <p, q> between Gaussian mixtures (Shumailov et al. 2024 notebook)."""
    a = (weights_a, means_a, covs_a)
    b = (weights_b, means_b, covs_b)
    return jnp.maximum(
        mixture_inner_product(*a, *a) + mixture_inner_product(*b, *b) - 2.0 * mixture_inner_product(*a, *b), 0.0
    )


def gaussian_log_density(points: jax.Array, mean: jax.Array, cov: jax.Array, floor: float = 1e-12) -> jax.Array:
    """log N(x; mu, Sigma) per row of `points` [n, d], through Sigma's spectrum (eigenvalues floored, so a collapsed
    covariance gives a very peaked, finite density):
    -1/2 (sum_k (v_k . (x - mu))^2 / lambda_k + sum_k log 2 pi lambda_k).
    """
    eigenvalues, eigenvectors = spectrum(cov)
    eigenvalues = jnp.maximum(eigenvalues, floor)
    projected = (points - mean) @ eigenvectors
    quadratic = jnp.sum(projected**2 / eigenvalues, axis=-1)
    return -0.5 * (quadratic + jnp.sum(jnp.log(2.0 * math.pi * eigenvalues)))


def chi_square_quantile(mass: float, dim: int) -> float:
    """q with P(chi^2_d <= q) = mass, by bisection on the regularized lower incomplete gamma P(d/2, q/2).

    Host-side and exact to float64: P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1)...(a + n)) (the series
    converges for every x; 400 terms reach 1e-16 for the q < 200 that masses below 1 - 1e-12 need up to d = 100).
    """
    if not 0.0 < mass < 1.0:
        raise ValueError(f"chi_square_quantile: mass must be in (0, 1), got {mass!r}")
    half = 0.5 * dim

    def cdf(q: float) -> float:
        x = 0.5 * q
        term, total = 1.0, 1.0
        for n in range(1, 4000):
            term *= x / (half + n)
            total += term
            if term < 1e-17 * total:
                break
        return math.exp(half * math.log(x) - x - math.lgamma(half + 1.0) + math.log(total)) if x > 0 else 0.0

    low, high = 0.0, 1.0
    while cdf(high) < mass:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if cdf(middle) < mass else (low, middle)
    return 0.5 * (low + high)


# The truth's tails for tail_mass_ratio: below its TAIL_PROBABILITY quantile and above its 1 - TAIL_PROBABILITY one.
TAIL_PROBABILITY = 0.01


def normal_tail_masses(mean: jax.Array, std: jax.Array, low: jax.Array, high: jax.Array) -> tuple[jax.Array, jax.Array]:
    """P(X < low) and P(X > high) for X ~ N(mean, std^2), elementwise; std = 0 is a point mass at `mean`.

    Phi((low - mu) / s) and Phi((mu - high) / s) through ndtr, accurate far into the tails (no 1 - Phi cancellation).
    """
    positive = std > 0
    safe = jnp.where(positive, std, 1.0)
    below = jnp.where(positive, jax.scipy.special.ndtr((low - mean) / safe), (mean < low).astype(jnp.float32))
    above = jnp.where(positive, jax.scipy.special.ndtr((mean - high) / safe), (mean > high).astype(jnp.float32))
    return below, above


def mixture_tail_masses(
    weights: jax.Array, means: jax.Array, stds: jax.Array, low: jax.Array, high: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Per-coordinate tail masses of sum_k w_k N(m_k, diag(s_k^2)): weights [k], means and stds [k, d], low/high [d].

    Each coordinate's marginal is the 1-D mixture sum_k w_k N(m_kj, s_kj^2); returns (P(X_j < low_j), P(X_j > high_j)),
    each [d]. A full-covariance component passes s_kj = sqrt(Sigma_k[j, j]) (the marginal needs only the diagonal).
    """
    below, above = normal_tail_masses(means, stds, low, high)
    return weights @ below, weights @ above


def tail_mass_ratio(
    model_cdf_low: jax.Array, model_sf_high: jax.Array, truth_mass: float = 2 * TAIL_PROBABILITY
) -> jax.Array:
    """(F(q_low) + 1 - F(q_high)) / truth_mass, averaged over coordinates (the Gaussian family's `tail_mass_ratio`).

    F is the model's (marginal) CDF, q_low / q_high the truth's 1% / 99% quantiles (so truth_mass = 0.02): 1 when the
    model's tails hold the truth's mass, < 1 when rare events are lost ("tails first", Shumailov et al. 2024), > 1
    when the model is heavier-tailed. Arguments are [d] (or scalars) from normal_tail_masses / mixture_tail_masses.
    """
    return jnp.mean((model_cdf_low + model_sf_high) / truth_mass)


def normal_mixture_quantile(weights, means, stds, probability: float) -> np.ndarray:
    """Host-side, float64: the `probability` quantile of each coordinate's marginal sum_k w_k N(m_kj, s_kj^2).

    weights [k], means and stds [k, d] (array-likes); returns [d]. Bisection on the marginal CDF to 1e-12 (a truth's
    tail quantiles are computed once, when the family is built).
    """
    import scipy.special  # imported here: only a truth's quantiles need it, once per build (0.2 s to import)

    weights = np.asarray(weights, np.float64)
    means, stds = np.atleast_2d(np.asarray(means, np.float64)), np.atleast_2d(np.asarray(stds, np.float64))
    spread = 40.0 * stds.max(axis=0)
    low, high = means.min(axis=0) - spread, means.max(axis=0) + spread
    for _ in range(200):
        middle = 0.5 * (low + high)
        cdf = weights @ scipy.special.ndtr((middle - means) / stds)
        low, high = np.where(cdf < probability, middle, low), np.where(cdf < probability, high, middle)
    return 0.5 * (low + high)
