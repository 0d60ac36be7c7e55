"""Exact Poisson draws in float32 at any mean: a blocked CDF walk below mean 10, Hörmann's PTRS rejection above it.

jax.random.poisson evaluates the PTRS acceptance bound as -mu + k log mu - lgamma(k + 1) in float32, which cancels
at large means (KS p ~ 1e-7 against numpy at mu = 10^6 over 2 x 10^5 draws, BUILD_NOTES.md); here it is O(1) terms.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# Below this mean a draw walks its CDF, above it PTRS (Hörmann 1993; his algorithm needs mu >= 10).
SMALL_MEAN = 10.0
# Work per while-loop iteration (a vmapped while loop costs per op on a CPU, not per element): 32 CDF terms
# (P(X >= 32) < 1e-7 at mean <= 10) or 4 PTRS proposals (each accepted with probability >= ~0.9).
WALK_BLOCK, PROPOSALS = 32, 4
HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def _poisson_by_cdf_walk(key: jax.Array, mean: jax.Array) -> jax.Array:
    """Poisson(mean) for mean <= SMALL_MEAN: the smallest k with F(k) >= u, u ~ U(0, 1), from P(0) = e^-mean and
    P(k + 1) = P(k) mean / (k + 1), WALK_BLOCK terms per loop step. mean = 0 gives 0 exactly (P(0) = 1 >= u).

    u is scaled by 1 - 2^-20 so it stays below the float32 CDF's total (1 within ~3e-7): without it a u in the last
    ~1e-7 of (0, 1) would never be reached and walk to a far-tail value; the scaling moves each P(k) by < 1e-6.
    """
    uniform = jax.random.uniform(key, mean.shape, jnp.float32) * (1.0 - 2.0**-20)
    steps = jnp.arange(WALK_BLOCK, dtype=jnp.float32)

    def block(carry):
        k, pmf, cdf, draw = carry
        pmfs = pmf[..., None] * jnp.cumprod(mean[..., None] / (k[..., None] + steps + 1.0), axis=-1)
        cdfs = cdf[..., None] + jnp.cumsum(pmfs, axis=-1)
        below = jnp.sum(cdfs < uniform[..., None], axis=-1).astype(jnp.float32)
        draw = jnp.where((draw < 0) & (below < WALK_BLOCK), k + 1.0 + below, draw)
        # Safety net (not reached with the scaled u): a CDF whose terms underflowed stops at the block's end.
        draw = jnp.where((draw < 0) & (pmfs[..., -1] == 0), k + WALK_BLOCK, draw)
        return k + WALK_BLOCK, pmfs[..., -1], cdfs[..., -1], draw

    first = jnp.exp(-mean)
    start = (jnp.zeros_like(mean), first, first, jnp.where(first >= uniform, 0.0, -1.0))
    return jax.lax.while_loop(lambda carry: jnp.any(carry[3] < 0), block, start)[3]


def _log1p_minus_identity(x: jax.Array) -> jax.Array:
    """log(1 + x) - x, by its series -x^2/2 + x^3/3 - ... for |x| < 0.1 (float32 subtraction would cancel there)."""
    series = sum((-1.0) ** (n + 1) * x**n / n for n in range(12, 1, -1))
    return jnp.where(jnp.abs(x) < 0.1, series, jnp.log1p(x) - x)


def _stirling_tail(k: jax.Array) -> jax.Array:
    """f(k) = log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2]: lgamma below 10 (|f| < 0.09, so float32
    lgamma's ~1e-6 absolute error is harmless), else 1/12 - (1/360 - 1/1260/(k+1)^2)/(k+1)^2, all over (k + 1)."""
    squared = (k + 1.0) ** 2
    series = (1 / 12 - (1 / 360 - 1 / 1260 / squared) / squared) / (k + 1.0)
    small = jnp.minimum(k, 9.0)
    direct = jax.lax.lgamma(small + 1.0) - ((small + 0.5) * jnp.log(small + 1.0) - (small + 1.0) + HALF_LOG_TWO_PI)
    return jnp.where(k <= 9, direct, series)


def log_poisson_pmf(k: jax.Array, mean: jax.Array) -> jax.Array:
    """log P(K = k) for K ~ Poisson(mean) > 0, accurate in float32 at any mean.

    -mean + k log mean - log k! = k (log1p(x) - x) - x - log(k + 1) / 2 - log(2 pi) / 2 - f(k) with
    x = (mean - k - 1) / (k + 1) (Stirling with Hörmann's tail f):
    every term is O(1) near the mode, where the direct form cancels ~mean log mean.
    """
    x = (mean - k - 1.0) / (k + 1.0)
    return k * _log1p_minus_identity(x) - x - 0.5 * jnp.log(k + 1.0) - HALF_LOG_TWO_PI - _stirling_tail(k)


def _poisson_ptrs(key: jax.Array, mean: jax.Array, active: jax.Array) -> jax.Array:
    """Poisson(mean) for mean >= SMALL_MEAN by Hörmann's (1993) transformed rejection PTRS, PROPOSALS per loop step.

    Cells with `active` False start accepted (value 0), so an input of small means only runs no loop step at all.
    """
    b = 0.931 + 2.53 * jnp.sqrt(mean)
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2.0)

    def step(carry):
        attempt, draw, accepted = carry
        shape = (2, PROPOSALS) + mean.shape
        u, v = jax.random.uniform(jax.random.fold_in(key, attempt), shape, jnp.float32)
        u = u - 0.5
        us = 0.5 - jnp.abs(u)
        k = jnp.floor((2.0 * a / us + b) * u + mean + 0.43)
        squeeze = (us >= 0.07) & (v <= v_r)
        reject = (k < 0) | ((us < 0.013) & (v > us))
        bound = jnp.log(v * inv_alpha / (a / (us * us) + b))
        accept = squeeze | (~reject & (bound <= log_poisson_pmf(jnp.maximum(k, 0.0), mean)))
        first = jnp.take_along_axis(k, jnp.argmax(accept, axis=0)[None], axis=0)[0]  # the first accepted proposal
        found = jnp.any(accept, axis=0)
        return attempt + 1, jnp.where(found & ~accepted, first, draw), accepted | found

    start = (jnp.int32(0), jnp.zeros_like(mean), ~active)
    return jax.lax.while_loop(lambda carry: ~jnp.all(carry[2]), step, start)[1]


def exact_poisson(key: jax.Array, mean: jax.Array) -> jax.Array:
    """Poisson(mean) draws (float32, the shape of `mean`), exactly 0 at mean 0.

    mean <= SMALL_MEAN walks the CDF, larger means use PTRS; each is one while loop over all cells, and a cell of the
    other kind starts finished (mean 0 in the walk, accepted in PTRS), so points at a small rate cost one walk step.
    Counts are exact integers in float32 up to 2^24.
    """
    mean = jnp.asarray(mean, jnp.float32)
    walk_key, ptrs_key = jax.random.split(key)
    small = mean <= SMALL_MEAN
    walked = _poisson_by_cdf_walk(walk_key, jnp.where(small, mean, 0.0))
    rejected = _poisson_ptrs(ptrs_key, jnp.where(small, 100.0, mean), ~small)
    return jnp.where(small, walked, rejected)
