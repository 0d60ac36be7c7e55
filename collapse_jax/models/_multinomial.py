"""Exact multinomial counts without the draws: K - 1 conditional binomials down a binary tree of outcomes.

The binomials are exact (a CDF walk for small means, Hörmann's BTRS rejection otherwise) and keep outcomes of
probability 0 at count 0 exactly, so the Wright–Fisher chain's absorbing states stay absorbing.

Speed (BUILD_NOTES, "Fast exact multinomial" and "The multinomial's remaining cost"): `_binomials` is a jax
custom_vmap whose batched rule draws the whole batch's lanes as one flat set, so the CDF walk (WALK_TERMS terms
unrolled) and the BTRS proposal are real conditionals (each runs only if some lane in the batch needs it), and the
~13% of lanes a first proposal leaves go through a cascade of shrinking buffers instead of a loop over all lanes.
Uniforms are Threefry-2x32-20 of (lane, round) under the chain's key, unrolled: every lane's draws come from its
chain's key and its lane number only, so the counts do not depend on the other chains or their number.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from collapse_jax.models import _threefry

# Below this mean (n min(p, 1 - p)) a binomial is drawn by walking its CDF, above it by BTRS rejection.
SMALL_MEAN = 10.0
# The first round: WALK_TERMS CDF terms (P(X >= 24) < 2e-4 at mean <= 10) or one BTRS proposal per lane.
WALK_TERMS = 24
# BTRS proposals every BTRS lane gets in the first round (2 measured no faster than 1 plus the fallback).
FIRST_PROPOSALS = 1
# BTRS accepts ~87% of proposals at large means, ~70% near n q = 10. The lanes left unsettled go through buffers of
# 1 / 4, 1 / 32 and 1 / 256 of the lanes (at least 32): one fresh proposal per BTRS lane in each but the last, which
# loops until its lanes (walks past WALK_TERMS included) are settled; all again while any lane is left.
FALLBACK_BUFFERS = (4, 32, 256)
# The fallback's prefix counts view the lanes as [PREFIX_ROWS, L / PREFIX_ROWS] (8 measured fastest of 8..64).
PREFIX_ROWS = 8

# Hörmann's f(k) = log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2] for k = 0..9 (the series is used above).
STIRLING_TAIL = (
    0.0810614667953272, 0.0413406959554092, 0.0276779256849983, 0.02079067210376509, 0.0166446911898211,
    0.0138761288230707, 0.0118967099458917, 0.0104112652619720, 0.00925546218271273, 0.00833056343336287,
)  # fmt: skip


def _stirling_tail(k: jax.Array) -> jax.Array:
    """f(k): tabulated for k <= 9, else 1/12 - (1/360 - 1/1260/(k+1)^2)/(k+1)^2, all over (k + 1)."""
    squared = (k + 1.0) ** 2
    value = (1 / 12 - (1 / 360 - 1 / 1260 / squared) / squared) / (k + 1.0)
    for index in range(9, -1, -1):  # a select chain: vectorizes where a table gather does not
        value = jnp.where(k <= index, jnp.float32(STIRLING_TAIL[index]), value)
    return value


class _Btrs:
    """Hörmann's (1993) BTRS constants for Binomial(n, q), q <= 1/2, n q >= 10, and its proposal/acceptance step.

    Same algorithm as jax.random.binomial's, with two float32 fixes: f(k) uses the series for k > 9 (jax evaluates it
    at the clamped k = 9), and the log acceptance bound is written in differences, g(m) - g(k) with
    g(x) = (x + 1/2) log(x + 1) as (m - k) log(m + 1) - (k + 1/2) log1p((k - m) / (m + 1)), so it does not lose ~0.05
    to cancellation at n ~ 10^6 where (k + 1/2) log(...) is ~10^6.
    """

    def __init__(self, count: jax.Array, q: jax.Array):
        self.count, self.q = count, q
        spread = jnp.sqrt(count * q * (1.0 - q))
        self.b = 1.15 + 2.53 * spread
        self.a = -0.0873 + 0.0248 * self.b + 0.01 * q
        self.c = count * q + 0.5
        self.v_r = 0.92 - 4.2 / self.b
        self.alpha = (2.83 + 5.1 / self.b) * spread
        self.mode = jnp.floor((count + 1.0) * q)
        log_odds = jnp.log(q / (1.0 - q))
        self.slope = log_odds + jnp.log(count - self.mode + 1.0) - jnp.log(self.mode + 1.0)
        self.offset = _stirling_tail(self.mode) + _stirling_tail(count - self.mode)

    def propose(self, u: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(k, accepted) for uniforms u, v (any shape broadcasting against the constants)."""
        u = u - 0.5
        us = 0.5 - jnp.abs(u)
        k = jnp.floor((2.0 * self.a / us + self.b) * u + self.c)
        inside = (k >= 0) & (k <= self.count)
        squeeze = (us >= 0.07) & (v <= self.v_r)
        kc = jnp.clip(k, 0.0, self.count)
        up = kc - self.mode
        log_bound = (  # log [pmf(k) / pmf(mode)], accurate in float32
            up * self.slope
            - (kc + 0.5) * jnp.log1p(up / (self.mode + 1.0))
            - (self.count - kc + 0.5) * jnp.log1p(-up / (self.count - self.mode + 1.0))
            + self.offset
            - _stirling_tail(kc)
            - _stirling_tail(self.count - kc)
        )
        accept = squeeze | (inside & (jnp.log(v * self.alpha / (self.a / (us * us) + self.b)) <= log_bound))
        return k, accept


def _walk_block(count, q, uniform, start, pmf, cdf):
    """CDF terms start + 1, ..., start + WALK_TERMS of Binomial(count, q) after P(start) = pmf, F(start) = cdf, by
    P(k + 1) = P(k) (n - k) / (k + 1) q / (1 - q): (below, last pmf, last cdf), where below = how many of them are < u.
    Unrolled elementwise (XLA fuses it into one loop; a cumprod/cumsum over a terms axis costs ~10x more on CPU)."""
    odds = q / (1.0 - q)
    below = jnp.zeros_like(count)
    for step in range(WALK_TERMS):
        term = start + step
        pmf = pmf * (jnp.maximum(count - term, 0.0) / (term + 1.0) * odds)
        cdf = cdf + pmf
        below = below + (cdf < uniform).astype(jnp.float32)
    return below, pmf, cdf


def _btrs_constants(count: jax.Array, q: jax.Array, small: jax.Array) -> _Btrs:
    """BTRS constants, with a dummy n = 100, q = 1/2 on walking lanes so neither branch sees a degenerate input."""
    return _Btrs(jnp.where(small, 100.0, count), jnp.where(small, 0.5, q))


def _first_walk(count, q, uniform):
    """The walk's first block: (draw, settled). P(0) = (1 - q)^n; q = 0 or n = 0 settles at 0 at once."""
    first = jnp.exp(count * jnp.log1p(-q))
    below, _, cdf = _walk_block(count, q, uniform, jnp.zeros_like(count), first, first)
    below = jnp.where(first >= uniform, 0.0, below + 1.0)  # the smallest k with F(k) >= u, if among 0..WALK_TERMS
    settled = (below <= WALK_TERMS) | (count <= WALK_TERMS)  # a CDF that rounds below u (~1e-7) stops at n
    return jnp.minimum(below, count), settled


def _lane_uniforms(key_words: jax.Array, lane: jax.Array, rounds: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Uniforms (u, v) for (chain key, lane, round): Threefry-2x32-20 of the counter (lane, round) under the key's two
    words [..., 2], unrolled (`_threefry.threefry_2x32`): jax.random's CPU lowering rolls the 20 rounds into a loop
    that XLA does not fuse, ~4x the cost per uniform (BUILD_NOTES, "The multinomial's remaining cost")."""
    x0, x1 = _threefry.threefry_2x32(
        key_words[..., 0], key_words[..., 1], lane.astype(jnp.uint32), rounds.astype(jnp.uint32)
    )
    return _threefry.unit_float(x0), _threefry.unit_float(x1)


def _finish_lanes(key_words, lane, count, q, small, uniform, rounds, draw, settled):
    """Settle every lane of a buffer (flat [L]): walking lanes walk their CDF again from k = 0 with their uniform, one
    term per round; BTRS lanes draw proposals rounds + 1, rounds + 2, ... until one is accepted (rejection keeps the
    first accepted proposal of an i.i.d. sequence, so going on with fresh proposals is exact). Rare, so it is written
    small (one term, one proposal per round) to compile fast."""
    btrs = _btrs_constants(count, q, small)
    odds = q / (1.0 - q)
    first = jnp.exp(count * jnp.log1p(-q))

    def body(carry):
        rounds, k, pmf, cdf, draw, settled = carry
        proposal, accept = btrs.propose(*_lane_uniforms(key_words, lane, rounds + 1))
        next_pmf = pmf * (jnp.maximum(count - k, 0.0) / (k + 1.0) * odds)
        next_cdf = cdf + next_pmf
        # F(k + 1) >= u; or k + 1 = n; or the CDF stopped growing above the mean (its float32 sum rounds below u,
        # ~1e-7): the walk stops at k + 1.
        found = (next_cdf >= uniform) | (k + 1.0 >= count) | ((next_cdf <= cdf) & (k > count * q))
        new_draw = jnp.where(small, jnp.minimum(k + 1.0, count), proposal)
        new_settled = jnp.where(small, found, accept)
        draw = jnp.where(settled, draw, new_draw)
        return rounds + 1, k + 1.0, next_pmf, next_cdf, draw, settled | new_settled

    start_settled = settled | (small & (first >= uniform))
    start = (rounds, jnp.zeros_like(count), first, first, jnp.where(small & ~settled, 0.0, draw), start_settled)
    return jax.lax.while_loop(lambda carry: ~jnp.all(carry[5]), body, start)[4]


def _exclusive_count(flags: jax.Array) -> jax.Array:
    """For each lane, how many flagged lanes come before it in column-major order of a [PREFIX_ROWS, L / PREFIX_ROWS]
    view (recursively on the column totals): a prefix count that XLA:CPU runs ~4x faster than one cumsum over L."""
    total = flags.shape[0]
    if total <= PREFIX_ROWS:
        return jnp.cumsum(flags) - flags
    view = jnp.pad(flags, (0, -total % PREFIX_ROWS)).reshape(PREFIX_ROWS, -1)
    within = jnp.cumsum(view, axis=0)
    return (_exclusive_count(within[-1])[None, :] + within - view).reshape(-1)[:total]


def _first_indices(wanted: jax.Array, size: int) -> jax.Array:
    """Indices [size] of up to `size` wanted lanes (in a fixed order), the rest filled with L: jnp.nonzero(size=)
    without its two full-length cumsums (0.06 vs 0.13 us per chain of 6 lanes)."""
    total = wanted.shape[0]
    position = _exclusive_count(wanted.astype(jnp.int32))
    target = jnp.where(wanted & (position < size), position, size)
    return jnp.full((size,), total, jnp.int32).at[target].set(jnp.arange(total, dtype=jnp.int32), mode="drop")


def _drain(fields, draw, settled, rounds, sizes):
    """Gather up to sizes[0] unsettled lanes of this set into a buffer; there give each BTRS lane one fresh proposal
    and drain the buffer's unsettled lanes into the next, smaller buffer (compacting the buffer, not all lanes); the
    last buffer loops (`_finish_lanes`) until all its lanes are settled. Scatters back (draw, settled, rounds)."""
    total = draw.shape[0]
    index = _first_indices(~settled, sizes[0])
    take = functools.partial(jnp.take, indices=index, axis=0, mode="clip")
    part = [take(x) for x in fields]  # key_words, lane, count, q, small, uniform
    part_draw, part_rounds, part_settled = take(draw), take(rounds), take(settled) | (index >= total)
    if len(sizes) == 1:
        part_draw = _finish_lanes(*part, part_rounds, part_draw, part_settled)
        part_settled = jnp.ones_like(part_settled)
    else:
        key_words, lane, count, q, small, _ = part
        proposing = ~part_settled & ~small
        part_rounds = part_rounds + proposing
        proposal, accept = _btrs_constants(count, q, small).propose(*_lane_uniforms(key_words, lane, part_rounds))
        part_draw = jnp.where(proposing, proposal, part_draw)
        part_settled = part_settled | (proposing & accept)
        part_draw, part_settled, part_rounds = _drain(part, part_draw, part_settled, part_rounds, sizes[1:])
    return (
        draw.at[index].set(part_draw, mode="drop"),
        settled.at[index].set(part_settled, mode="drop"),
        rounds.at[index].set(part_rounds, mode="drop"),
    )


def _settle(key_words, lane, count, q, small, uniform, draw, settled):
    """Settle the lanes the first round left (flat [L]) through FALLBACK_BUFFERS (`_drain`), again while any are left
    (a buffer holds fewer lanes than were unsettled). A lane's k-th fallback proposal is always its round
    FIRST_PROPOSALS - 1 + k (`rounds`), whichever buffer it lands in, so the draws depend on the lane's key and number
    only, not on the other lanes."""
    total = lane.shape[0]
    sizes = [min(total, max(32, total // fraction)) for fraction in FALLBACK_BUFFERS]
    fields = (key_words, lane, count, q, small, uniform)
    rounds = jnp.full_like(lane, FIRST_PROPOSALS - 1)  # the last round each lane has used

    def drain(carry):
        return _drain(fields, *carry, sizes)

    return jax.lax.while_loop(lambda carry: ~jnp.all(carry[1]), drain, (draw, settled, rounds))[0]


def _binomial_lanes(key_words, lane, count, probability):
    """Binomial draws for flat lanes [L] (key_words [L, 2]): the first round of every lane, the rest in `_settle`.
    This runs once for the whole batch (see `_binomials`), so each branch is a real conditional: the CDF walk runs only
    when some lane walks, BTRS only when some lane has n q > SMALL_MEAN."""
    flip = probability > 0.5
    q = jnp.where(flip, 1.0 - probability, probability)
    small = count * q <= SMALL_MEAN
    uniform, other = _lane_uniforms(key_words, lane, jnp.zeros_like(lane))
    zeros, ones = jnp.zeros_like(count), jnp.ones_like(small)
    walked, walk_settled = jax.lax.cond(
        jnp.any(small & (count > 0) & (q > 0)), lambda: _first_walk(count, q, uniform), lambda: (zeros, ones)
    )  # q = 0 or n = 0 settles at 0 without walking

    def first_proposals():  # rounds 0 .. FIRST_PROPOSALS - 1; the first accepted one is the draw
        btrs = _btrs_constants(count, q, small)
        proposed, accepted = btrs.propose(uniform, other)
        for round_number in range(1, FIRST_PROPOSALS):
            proposal, accept = btrs.propose(*_lane_uniforms(key_words, lane, jnp.full_like(lane, round_number)))
            proposed, accepted = jnp.where(accepted, proposed, proposal), accepted | accept
        return proposed, accepted

    proposed, accepted = jax.lax.cond(jnp.any(~small), first_proposals, lambda: (zeros, ~ones))
    draw = jnp.where(small, walked, proposed)
    settled = jnp.where(small, walk_settled, accepted)
    draw = _settle(key_words, lane, count, q, small, uniform, draw, settled)
    return jnp.where(flip, count - draw, draw)


@custom_vmap
def _binomials(key_words, lane, count, probability):
    """`_binomial_lanes` for one chain's lanes [S] (key_words [2])."""
    return _binomial_lanes(jnp.broadcast_to(key_words, lane.shape + key_words.shape), lane, count, probability)


@_binomials.def_vmap
def _binomials_batched(axis_size, in_batched, *args):
    """The whole batch's lanes as one flat set: the branches' conditionals and the fallback's buffers see them all."""
    args = [x if batched else jnp.broadcast_to(x, (axis_size,) + x.shape) for x, batched in zip(args, in_batched)]
    key_words, lane, count, probability = args
    shape = lane.shape
    key_words = jnp.broadcast_to(key_words[:, None, :], shape + key_words.shape[-1:]).reshape((-1, 2))
    flat = _binomial_lanes(key_words, lane.reshape(-1), count.reshape(-1), probability.reshape(-1))
    return flat.reshape(shape), True


def _key_words(key: jax.Array) -> jax.Array:
    """Two uint32 words of a key: the data of a threefry key (itself a threefry output), else two bits drawn from it."""
    data = jax.random.key_data(key)
    return data if data.shape[-1] == 2 else jax.random.bits(key, (2,), jnp.uint32)


def exact_binomials(key: jax.Array, count: jax.Array, probability: jax.Array, first_lane: int = 0) -> jax.Array:
    """Binomial(count, p) draws for float32 arrays [S], exactly 0 at p = 0 and exactly count at p = 1.

    With q = min(p, 1 - p): n q <= SMALL_MEAN walks the CDF (q = 0 settles at k = 0 at once), larger n q uses BTRS.
    Lane s's draws depend only on `key` and first_lane + s (give each call on one key its own lane numbers).
    """
    count, probability = jnp.asarray(count, jnp.float32), jnp.asarray(probability, jnp.float32)
    lane = first_lane + jnp.arange(count.shape[0], dtype=jnp.int32)
    return _binomials(_key_words(key), lane, count, probability)


def exact_binomial(key: jax.Array, count: jax.Array, probability: jax.Array) -> jax.Array:
    """exact_binomials for any shape (flattened in C order)."""
    count, probability = jnp.broadcast_arrays(jnp.asarray(count, jnp.float32), jnp.asarray(probability, jnp.float32))
    return exact_binomials(key, count.reshape(-1), probability.reshape(-1)).reshape(count.shape)


def _tree(lo: int, hi: int) -> tuple:
    """Outcomes lo..hi - 1 as a nested (lo, mid, hi, left, right) split, the left half the larger one; leaves None."""
    if hi - lo == 1:
        return None
    mid = lo + (hi - lo + 1) // 2
    return (lo, mid, hi, _tree(lo, mid), _tree(mid, hi))


def _levels(num_outcomes: int) -> list[list[tuple[int, int, int]]]:
    """The (lo, mid, hi) splits of each depth, root first: K - 1 splits in ceil(log2 K) levels."""
    levels, nodes = [], [_tree(0, num_outcomes)]
    while nodes := [node for node in nodes if node is not None]:
        levels.append([node[:3] for node in nodes])
        nodes = [child for node in nodes for child in node[3:]]
    return levels


def draw_multinomial_counts(key: jax.Array, probabilities: jax.Array, count: jax.Array) -> jax.Array:
    """Counts [K] of `count` i.i.d. draws from `probabilities`, by K - 1 conditional binomials down a binary tree.

    A node holding n draws of outcomes lo..hi - 1 sends Binomial(n, mass(lo..mid) / mass(lo..hi)) of them to its left
    child and the rest to its right: one vectorized binomial call per depth (ceil(log2 K) calls, not K - 1 sequential
    ones), run as one lax.scan (one compiled binomial; each depth padded to the widest one with empty nodes, which
    settle at 0 at once). mass(node) = mass(left) + mass(right) in float, so a child of mass 0 has ratio exactly 0 or
    1: an outcome of probability 0 gets count 0 exactly.
    """
    num_outcomes = probabilities.shape[0]
    probabilities = probabilities.astype(jnp.float32)
    levels = _levels(num_outcomes)
    if not levels:
        return jnp.asarray(count, jnp.float32)[None]
    width = max(len(level) for level in levels)
    # Node ids: every (lo, hi) range of the tree, then one empty node (mass 0, count 0) that pads the levels and
    # absorbs their padded writes.
    nodes = sorted({(lo, hi) for level in levels for lo, _, hi in level} | {(i, i + 1) for i in range(num_outcomes)})
    node_id = {node: index for index, node in enumerate(nodes)}
    empty = len(nodes)
    mass: dict[tuple[int, int], jax.Array] = {}

    def node_mass(lo, hi):
        if (lo, hi) not in mass:
            mid = lo + (hi - lo + 1) // 2
            mass[lo, hi] = probabilities[lo] if hi - lo == 1 else node_mass(lo, mid) + node_mass(mid, hi)
        return mass[lo, hi]

    node_mass(0, num_outcomes)
    zero = jnp.float32(0.0)
    ratios, parents, lefts, rights, lanes = [], [], [], [], []
    first_lane = 0
    for level in levels:
        pad = width - len(level)
        split = [mass[lo, mid] / jnp.where(mass[lo, hi] > 0, mass[lo, hi], 1.0) for lo, mid, hi in level]
        ratios.append(jnp.stack(split + [zero] * pad))
        parents.append([node_id[lo, hi] for lo, _, hi in level] + [empty] * pad)
        lefts.append([node_id[lo, mid] for lo, mid, _ in level] + [empty] * pad)
        rights.append([node_id[mid, hi] for _, mid, hi in level] + [empty] * pad)
        lanes.append(list(range(first_lane, first_lane + width)))
        first_lane += width
    key_words = _key_words(key)

    def split_level(held, level):
        ratio, parent, left_id, right_id, lane = level
        counts = held[parent]
        left = _binomials(key_words, lane, counts, ratio)
        held = held.at[left_id].set(left).at[right_id].set(counts - left)
        return held.at[empty].set(0.0), None

    held = jnp.zeros((empty + 1,), jnp.float32).at[node_id[0, num_outcomes]].set(jnp.asarray(count, jnp.float32))
    as_ids = functools.partial(jnp.asarray, dtype=jnp.int32)
    levels_in = (jnp.stack(ratios), as_ids(parents), as_ids(lefts), as_ids(rights), as_ids(lanes))
    held, _ = jax.lax.scan(split_level, held, levels_in)
    return held[jnp.asarray([node_id[i, i + 1] for i in range(num_outcomes)])]
