"""Exact multinomial counts without the draws: K - 1 conditional binomials down a binary tree of outcomes.

The binomials are exact (a CDF walk for small means, Hörmann's BTRS rejection otherwise) and keep outcomes of
probability 0 at count 0 exactly, so the Wright–Fisher chain's absorbing states stay absorbing.

Speed (BUILD_NOTES, "Fast exact multinomial"): under the engine's vmap a while loop runs until the slowest of all
chains' lanes is done, so the common path has no loop: every lane gets PROPOSALS BTRS proposals and WALK_TERMS CDF
terms at once, which settle all but ~15% of lanes. The rest continue in `_finish`, whose batched rule (jax
custom_vmap) gathers the unsettled lanes of the whole batch into a small buffer, loops there, and scatters back. Every
lane's draws come from its chain's key and its lane number only, so the counts do not depend on the other chains or
their number.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

# Below this mean (n min(p, 1 - p)) a binomial is drawn by walking its CDF, above it by BTRS rejection.
SMALL_MEAN = 10.0
# The first round: WALK_TERMS CDF terms (P(X >= 24) < 2e-4 at mean <= 10) or one BTRS proposal per lane.
WALK_TERMS = 24
# BTRS accepts ~87% of proposals at large means, ~70% near n q = 10. The ~13% left get one fresh proposal each in a
# buffer of 1 / 4 of the lanes, the ~2% left then one in a buffer of 1 / 32; the rest (and walks past WALK_TERMS)
# loop in a buffer of 1 / FINISH_BUFFER_FRACTION of the lanes (at least 32), refilled while unsettled lanes are left.
FALLBACK_STAGES = (4, 32)
FINISH_BUFFER_FRACTION = 64
THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))

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


def _unit_float(bits: jax.Array) -> jax.Array:
    """The top 23 bits as a float32 in [0, 1) (as jax.random.uniform makes them)."""
    return jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0


def _lane_uniforms(key_words: jax.Array, lane: jax.Array, rounds: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Uniforms (u, v) for (chain key, lane, round): Threefry-2x32 with 20 rounds (Salmon et al. 2011, "Parallel
    random numbers: as easy as 1, 2, 3"; JAX's default generator) of the counter (lane, round) under the key's two
    words [..., 2], written out unrolled: jax.random's CPU lowering rolls the 20 rounds into a loop that XLA does not
    fuse, ~4x the cost per uniform (BUILD_NOTES, "The multinomial's remaining cost")."""
    k0, k1 = key_words[..., 0], key_words[..., 1]
    schedule = (k0, k1, k0 ^ k1 ^ jnp.uint32(0x1BD11BDA))
    x0, x1 = lane.astype(jnp.uint32) + k0, rounds.astype(jnp.uint32) + k1
    for index in range(20):
        rotation = THREEFRY_ROTATIONS[index // 4 % 2][index % 4]
        x0 = x0 + x1
        x1 = ((x1 << rotation) | (x1 >> (32 - rotation))) ^ x0
        if index % 4 == 3:  # key injection s = 1..5
            injection = index // 4 + 1
            x0 = x0 + schedule[injection % 3]
            x1 = x1 + schedule[(injection + 1) % 3] + jnp.uint32(injection)
    return _unit_float(x0), _unit_float(x1)


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


def _settle(key_words, lane, count, q, small, uniform, draw, settled):
    """Settle the lanes the first round left (flat [L]): FALLBACK_STAGES passes of one fresh BTRS proposal for the
    unsettled BTRS lanes gathered into shrinking buffers, then a loop over a small buffer until every lane is settled.
    A lane's k-th fallback proposal is always its round k (`rounds` counts them), whichever buffer it lands in, so the
    draws depend on the lane's key and number only, not on the other lanes."""
    total = lane.shape[0]
    rounds = jnp.zeros_like(lane)

    def gather(size, wanted):
        (index,) = jnp.nonzero(wanted, size=size, fill_value=total)
        return index, functools.partial(jnp.take, indices=index, axis=0, mode="clip")

    def one_proposal(size, draw, settled, rounds):
        index, take = gather(size, ~settled & ~small)
        part_rounds = take(rounds) + 1
        btrs = _btrs_constants(take(count), take(q), take(small))
        proposal, accept = btrs.propose(*_lane_uniforms(take(key_words), take(lane), part_rounds))
        part_settled = take(settled)
        draw = draw.at[index].set(jnp.where(part_settled, take(draw), proposal), mode="drop")
        return (
            draw,
            settled.at[index].set(part_settled | accept, mode="drop"),
            rounds.at[index].set(part_rounds, mode="drop"),
        )

    for fraction in FALLBACK_STAGES:
        size = min(total, max(32, total // fraction))
        draw, settled, rounds = jax.lax.cond(
            jnp.any(~settled & ~small),
            functools.partial(one_proposal, size),
            lambda *carry: carry,
            draw,
            settled,
            rounds,
        )

    size = min(total, max(32, total // FINISH_BUFFER_FRACTION))

    def step(carry):
        draw, settled = carry
        index, take = gather(size, ~settled)
        part = [take(x) for x in (key_words, lane, count, q, small, uniform, rounds, draw)]
        finished = _finish_lanes(*part, take(settled) | (index >= total))
        return draw.at[index].set(finished, mode="drop"), settled.at[index].set(True, mode="drop")

    return jax.lax.while_loop(lambda carry: ~jnp.all(carry[1]), step, (draw, settled))[0]


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
    proposed, accepted = jax.lax.cond(
        jnp.any(~small), lambda: _btrs_constants(count, q, small).propose(uniform, other), lambda: (zeros, ~ones)
    )
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
