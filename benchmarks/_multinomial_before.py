"""The tree multinomial as it was before the fast exact multinomial (commit 2795b62,
collapse_jax/models/_multinomial.py), frozen for benchmarks/multinomial.py's side-by-side timing: 3 levels padded
to 4 binomials each, every binomial a vmapped while loop (CDF walk + BTRS). Not used by the library."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# Below this mean (n min(p, 1 - p)) a binomial is drawn by walking its CDF, above it by BTRS rejection.
SMALL_MEAN = 10.0
# Work per while-loop iteration. On a CPU a vmapped while loop costs per op, not per element, so each iteration does
# many terms at once: 32 CDF terms (P(X >= 32) < 1e-8 at mean <= 10) or 4 BTRS proposals (all rejected: ~1e-4).
WALK_BLOCK, PROPOSALS = 32, 4


def _binomial_by_cdf_walk(key: jax.Array, count: jax.Array, probability: jax.Array) -> jax.Array:
    """Binomial(n, q) for q <= 1/2 and small n q: the smallest k with F(k) >= u, u ~ U(0, 1), with
    P(k + 1) = P(k) (n - k) / (k + 1) q / (1 - q) from P(0) = (1 - q)^n, WALK_BLOCK terms per loop step (cumprod,
    cumsum). One uniform per draw; exact up to float32 rounding of the CDF (a CDF that rounds below u stops at n)."""
    uniform = jax.random.uniform(key, count.shape, jnp.float32)
    odds = probability / (1.0 - probability)
    steps = jnp.arange(WALK_BLOCK, dtype=jnp.float32)

    def block(carry):
        k, pmf, cdf, draw = carry
        terms = k[..., None] + steps
        ratios = jnp.maximum(count[..., None] - terms, 0.0) / (terms + 1.0) * odds[..., None]
        pmfs = pmf[..., None] * jnp.cumprod(ratios, axis=-1)  # P(k + 1), ..., P(k + WALK_BLOCK)
        cdfs = cdf[..., None] + jnp.cumsum(pmfs, axis=-1)
        below = jnp.sum(cdfs < uniform[..., None], axis=-1).astype(jnp.float32)
        draw = jnp.where((draw < 0) & (below < WALK_BLOCK), jnp.minimum(k + 1.0 + below, count), draw)
        draw = jnp.where((draw < 0) & (k + WALK_BLOCK >= count), count, draw)
        return k + WALK_BLOCK, pmfs[..., -1], cdfs[..., -1], draw

    first = jnp.exp(count * jnp.log1p(-probability))
    start = (jnp.zeros_like(count), first, first, jnp.where(first >= uniform, 0.0, -1.0))
    return jax.lax.while_loop(lambda carry: jnp.any(carry[3] < 0), block, start)[3]


# Hörmann's f(k) = log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2] for k = 0..9 (the series is used above).
STIRLING_TAIL = (
    0.0810614667953272, 0.0413406959554092, 0.0276779256849983, 0.02079067210376509, 0.0166446911898211,
    0.0138761288230707, 0.0118967099458917, 0.0104112652619720, 0.00925546218271273, 0.00833056343336287,
)  # fmt: skip


def _stirling_tail(k: jax.Array) -> jax.Array:
    """f(k): tabulated for k <= 9, else 1/12 - (1/360 - 1/1260/(k+1)^2)/(k+1)^2, all over (k + 1)."""
    table = jnp.asarray(STIRLING_TAIL, jnp.float32)[jnp.clip(k, 0, 9).astype(jnp.int32)]
    squared = (k + 1.0) ** 2
    return jnp.where(k <= 9, table, (1 / 12 - (1 / 360 - 1 / 1260 / squared) / squared) / (k + 1.0))


def _binomial_btrs(key: jax.Array, count: jax.Array, probability: jax.Array) -> jax.Array:
    """Binomial(n, q) for q <= 1/2 and n q >= 10 by Hörmann's (1993) transformed rejection BTRS (~1.2 proposals).

    Same algorithm as jax.random.binomial's, with two float32 fixes: f(k) uses the series for k > 9 (jax evaluates it
    at the clamped k = 9), and the log acceptance bound is written in differences, g(m) - g(k) with
    g(x) = (x + 1/2) log(x + 1) as (m - k) log(m + 1) - (k + 1/2) log1p((k - m) / (m + 1)), so it does not lose ~0.05
    to cancellation at n ~ 10^6 where (k + 1/2) log(...) is ~10^6.
    """
    spread = jnp.sqrt(count * probability * (1.0 - probability))
    b = 1.15 + 2.53 * spread
    a = -0.0873 + 0.0248 * b + 0.01 * probability
    c = count * probability + 0.5
    v_r = 0.92 - 4.2 / b
    log_odds = jnp.log(probability / (1.0 - probability))
    alpha = (2.83 + 5.1 / b) * spread
    mode = jnp.floor((count + 1.0) * probability)

    def log_bound(k):
        """log [pmf(k) / pmf(mode)], accurate in float32."""
        up = k - mode
        return (
            up * (log_odds + jnp.log(count - mode + 1.0) - jnp.log(mode + 1.0))
            - (k + 0.5) * jnp.log1p(up / (mode + 1.0))
            - (count - k + 0.5) * jnp.log1p(-up / (count - mode + 1.0))
            + _stirling_tail(mode)
            + _stirling_tail(count - mode)
            - _stirling_tail(k)
            - _stirling_tail(count - k)
        )

    def step(carry):
        attempt, draw, accepted = carry
        shape = (2, PROPOSALS) + count.shape
        u, v = jax.random.uniform(jax.random.fold_in(key, attempt), shape, jnp.float32)
        u = u - 0.5
        us = 0.5 - jnp.abs(u)
        k = jnp.floor((2.0 * a / us + b) * u + c)
        inside = (k >= 0) & (k <= count)
        squeeze = (us >= 0.07) & (v <= v_r)
        accept = squeeze | (inside & (jnp.log(v * alpha / (a / (us * us) + b)) <= log_bound(jnp.clip(k, 0, count))))
        first = jnp.take_along_axis(k, jnp.argmax(accept, axis=0)[None], axis=0)[0]  # the first accepted proposal
        found = jnp.any(accept, axis=0)
        return attempt + 1, jnp.where(found & ~accepted, first, draw), accepted | found

    start = (jnp.int32(0), jnp.zeros_like(count), jnp.zeros(count.shape, bool))
    return jax.lax.while_loop(lambda carry: ~jnp.all(carry[2]), step, start)[1]


def exact_binomial(key: jax.Array, count: jax.Array, probability: jax.Array) -> jax.Array:
    """Binomial(count, p) draws (float32, any shape), exactly 0 at p = 0 and exactly count at p = 1.

    With q = min(p, 1 - p): n q <= SMALL_MEAN walks the CDF (q = 0 stops at k = 0 at once), larger n q uses BTRS
    (the other branch gets a harmless dummy n = 100, q = 1/2). Both are one while loop over all cells.
    """
    walk_key, btrs_key = jax.random.split(key)
    flip = probability > 0.5
    q = jnp.where(flip, 1.0 - probability, probability)
    small = count * q <= SMALL_MEAN
    walked = _binomial_by_cdf_walk(walk_key, jnp.where(small, count, 0.0), jnp.where(small, q, 0.0))
    btrs = _binomial_btrs(btrs_key, jnp.where(small, 100.0, count), jnp.where(small, 0.5, q))
    draws = jnp.where(small, walked, btrs)
    return jnp.where(flip, count - draws, draws)


def draw_multinomial_counts(key: jax.Array, probabilities: jax.Array, count: jax.Array) -> jax.Array:
    """Counts [K] of `count` i.i.d. draws from `probabilities`, by conditional binomials down a binary tree of outcomes.

    Each node splits its n draws as Binomial(n, mass_left / mass_node) to the left child and the rest to the right:
    log2 K levels of one vectorized binomial call each (not K sequential calls). mass_node = mass_left + mass_right in
    float, so a child of mass 0 has ratio exactly 0 or 1: an outcome of probability 0 gets count 0 exactly.
    """
    num_outcomes = probabilities.shape[0]
    depth = max(1, math.ceil(math.log2(num_outcomes)))
    width = 2**depth
    masses = [jnp.zeros((width,), jnp.float32).at[:num_outcomes].set(probabilities.astype(jnp.float32))]
    for _ in range(depth):  # masses[l]: the width / 2^l node masses of level l (leaves at l = 0)
        masses.append(masses[-1][0::2] + masses[-1][1::2])
    # The levels run root first as one lax.scan (one compiled binomial instead of one per level: jax's binomial takes
    # seconds to compile). Level l's 2^(depth - 1 - l) split ratios are padded to width / 2 with 0, whose nodes hold 0.
    ratios = []
    for level in range(depth - 1, -1, -1):
        split = masses[level][0::2] / jnp.where(masses[level + 1] > 0, masses[level + 1], 1.0)
        ratios.append(jnp.zeros((width // 2,), jnp.float32).at[: split.shape[0]].set(split))

    def split_level(counts, level):
        ratio, level_key = level
        parents = counts[: width // 2]
        left = exact_binomial(level_key, parents, ratio)
        return jnp.stack([left, parents - left], axis=1).reshape(-1), None

    counts = jnp.zeros((width,), jnp.float32).at[0].set(jnp.asarray(count, jnp.float32))
    counts, _ = jax.lax.scan(split_level, counts, (jnp.stack(ratios), jax.random.split(key, depth)))
    return counts[:num_outcomes]
