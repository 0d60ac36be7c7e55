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
# Common path: the first WALK_TERMS CDF terms (P(X >= 24) < 2e-4 at mean <= 10) and PROPOSALS BTRS proposals per lane
# (1 measured faster than 2: the fallback is cheaper than a second proposal, its uniforms included, on every lane).
WALK_TERMS, PROPOSALS = 24, 1
# Lanes that need more continue in `_finish`: per loop round one proposal or one CDF term per lane.
# BTRS accepts ~87% of proposals at large means, ~70% near n q = 10: the batched fallback's buffer holds 1 / 4 of the
# lanes (at least 32) and runs again while unsettled lanes are left.
FINISH_BUFFER_FRACTION = 4

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


def _prepare(count: jax.Array, probability: jax.Array):
    """q = min(p, 1 - p), whether the lane walks (n q <= SMALL_MEAN), and BTRS constants (dummy n = 100, q = 1/2 on
    walking lanes, so neither branch sees a degenerate input)."""
    flip = probability > 0.5
    q = jnp.where(flip, 1.0 - probability, probability)
    small = count * q <= SMALL_MEAN
    btrs = _Btrs(jnp.where(small, 100.0, count), jnp.where(small, 0.5, q))
    return flip, q, small, btrs


def _first_walk(count, q, uniform):
    """The walk's first block: (draw, settled). P(0) = (1 - q)^n; q = 0 or n = 0 settles at 0 at once."""
    first = jnp.exp(count * jnp.log1p(-q))
    below, _, cdf = _walk_block(count, q, uniform, jnp.zeros_like(count), first, first)
    below = jnp.where(first >= uniform, 0.0, below + 1.0)  # the smallest k with F(k) >= u, if among 0..WALK_TERMS
    settled = (below <= WALK_TERMS) | (count <= WALK_TERMS)  # a CDF that rounds below u (~1e-7) stops at n
    return jnp.minimum(below, count), settled


def _lane_uniforms(key_data: jax.Array, lane: jax.Array, rounds: jax.Array) -> jax.Array:
    """Two fallback uniforms [..., 2] for (chain key, lane number, round): fold_in twice, so a lane's stream does not
    depend on which other lanes are unsettled."""
    impl = jax.random.key_impl(jax.random.key(0))

    def one(data, lane, rounds):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.wrap_key_data(data, impl=impl), lane), rounds)
        return jax.random.uniform(key, (2,), jnp.float32)

    batch = lane.shape
    flat = jax.vmap(one)(key_data.reshape((-1, key_data.shape[-1])), lane.reshape(-1), rounds.reshape(-1))
    return flat.reshape(batch + (2,))


def _finish_lanes(key_data, lane, count, probability, uniform, draw, settled):
    """Settle every lane (flat arrays [L]; key_data [L, 2]): walking lanes walk their CDF again from k = 0 with their
    uniform, one term per round; BTRS lanes draw fresh proposals from `_lane_uniforms` (rounds 0, 1, ...) until one is
    accepted (rejection keeps the first accepted proposal of an i.i.d. sequence, so going on with fresh proposals is
    exact). Rare (~1% of lanes), so it is written small (one term, one proposal per round) to compile fast."""
    _, q, small, btrs = _prepare(count, probability)
    odds = q / (1.0 - q)
    first = jnp.exp(count * jnp.log1p(-q))

    def body(carry):
        rounds, k, pmf, cdf, draw, settled = carry
        u, v = jnp.moveaxis(_lane_uniforms(key_data, lane, jnp.broadcast_to(rounds, lane.shape)), -1, 0)
        proposal, accept = btrs.propose(u, v)
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
    start = (jnp.int32(0), jnp.zeros_like(count), first, first, jnp.where(small & ~settled, 0.0, draw), start_settled)
    return jax.lax.while_loop(lambda carry: ~jnp.all(carry[5]), body, start)[4]


@custom_vmap
def _finish(key_data, lane, count, probability, uniform, draw, settled):
    """`_finish_lanes` for one chain's lanes [S] (key_data [2]): a loop over its few lanes."""
    key_data = jnp.broadcast_to(key_data, lane.shape + key_data.shape)
    return _finish_lanes(key_data, lane, count, probability, uniform, draw, settled)


@_finish.def_vmap
def _finish_batched(axis_size, in_batched, key_data, lane, *lanes):
    """The batch's unsettled lanes, FINISH_BUFFER_FRACTION of all at a time, gathered into a buffer that loops alone."""
    args = [key_data, lane, *lanes]
    args = [x if batched else jnp.broadcast_to(x, (axis_size,) + x.shape) for x, batched in zip(args, in_batched)]
    key_data, lane, *lanes = args
    shape = lane.shape
    key_data = jnp.broadcast_to(key_data[:, None, :], shape + key_data.shape[-1:]).reshape((-1, key_data.shape[-1]))
    lane, count, probability, uniform, draw, settled = (x.reshape(-1) for x in (lane, *lanes))
    total = lane.shape[0]
    size = min(total, max(32, total // FINISH_BUFFER_FRACTION))

    def step(carry):
        draw, settled = carry
        (index,) = jnp.nonzero(~settled, size=size, fill_value=total)
        take = functools.partial(jnp.take, indices=index, axis=0, mode="fill", fill_value=0)
        part = [take(x) for x in (key_data, lane, count, probability, uniform, draw)]
        part_settled = jnp.take(settled, index, mode="fill", fill_value=True)
        finished = _finish_lanes(*part, part_settled)
        return draw.at[index].set(finished, mode="drop"), settled.at[index].set(True, mode="drop")

    draw, _ = jax.lax.while_loop(lambda carry: ~jnp.all(carry[1]), step, (draw, settled))
    return draw.reshape(shape), True


def exact_binomials(key: jax.Array, count: jax.Array, probability: jax.Array, first_lane: int = 0) -> jax.Array:
    """Binomial(count, p) draws for float32 arrays [S], exactly 0 at p = 0 and exactly count at p = 1.

    With q = min(p, 1 - p): n q <= SMALL_MEAN walks the CDF (q = 0 settles at k = 0 at once), larger n q uses BTRS.
    Lane s's draws depend only on `key` and first_lane + s (give each call on one key its own lane numbers).
    """
    count, probability = jnp.asarray(count, jnp.float32), jnp.asarray(probability, jnp.float32)
    uniforms = jax.random.uniform(key, (PROPOSALS, 2) + count.shape, jnp.float32)
    lane = first_lane + jnp.arange(count.shape[0], dtype=jnp.int32)
    return _binomials_from(jax.random.key_data(key), count, probability, uniforms, lane)


def _binomials_from(key_data, count, probability, uniforms, lane):
    """exact_binomials from the key's data, with its common-path uniforms [PROPOSALS, 2, S] given (uniforms[0, 0]
    doubles as the walk's) and the lanes' numbers [S]."""
    flip, q, small, btrs = _prepare(count, probability)
    walked, walk_settled = _first_walk(count, q, uniforms[0, 0])
    proposals, accepts = btrs.propose(uniforms[:, 0], uniforms[:, 1])
    first = jnp.argmax(accepts, axis=0)  # the first accepted proposal (0 when none is)
    proposed = jnp.take_along_axis(proposals, first[None], axis=0)[0]
    draw = jnp.where(small, walked, proposed)
    settled = jnp.where(small, walk_settled, jnp.any(accepts, axis=0))
    draw = _finish(key_data, lane, count, q, uniforms[0, 0], draw, settled)
    return jnp.where(flip, count - draw, draw)


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
    1: an outcome of probability 0 gets count 0 exactly. All common-path uniforms come from one draw of `key`.
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
    uniforms = jax.random.uniform(key, (len(levels), PROPOSALS, 2, width), jnp.float32)
    key_data = jax.random.key_data(key)

    def split_level(held, level):
        ratio, parent, left_id, right_id, lane, uniform = level
        counts = held[parent]
        left = _binomials_from(key_data, counts, ratio, uniform, lane)
        held = held.at[left_id].set(left).at[right_id].set(counts - left)
        return held.at[empty].set(0.0), None

    held = jnp.zeros((empty + 1,), jnp.float32).at[node_id[0, num_outcomes]].set(jnp.asarray(count, jnp.float32))
    as_ids = functools.partial(jnp.asarray, dtype=jnp.int32)
    levels_in = (jnp.stack(ratios), as_ids(parents), as_ids(lefts), as_ids(rights), as_ids(lanes), uniforms)
    held, _ = jax.lax.scan(split_level, held, levels_in)
    return held[jnp.asarray([node_id[i, i + 1] for i in range(num_outcomes)])]
