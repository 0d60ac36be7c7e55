"""Discrete collapse: refit a categorical's frequencies to M draws, resample M, repeat (a Wright–Fisher chain).

Truth p0 over K outcomes is Zipf, p0(i) ∝ i^-β (β = 0: uniform); fit = add-α frequencies; statistics = counts.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from collapse_jax.curation import good_region_mass
from collapse_jax.metrics import entropy
from collapse_jax.models.base import Knobs, PyTree

# Up to this many outcomes, a draw counts M x K compares instead of running a binary search per sample.
FEW_OUTCOMES = 64
# Config fields whose tuple values compile one group each (the K x M grid); sweep.py reads this.
STATIC_SWEEP_FIELDS = ("model.num_outcomes",)


def truth_probabilities(num_outcomes: int, zipf_exponent: jax.Array) -> jax.Array:
    """Zipf law over ranks i = 1..K: p0(i) = i^-β / Σ_j j^-β (β = 0 gives the uniform distribution)."""
    log_ranks = jnp.log(jnp.arange(1, num_outcomes + 1, dtype=jnp.float32))
    return jax.nn.softmax(-zipf_exponent * log_ranks)


def draw_categorical(key: jax.Array, probabilities: jax.Array, num_samples: int) -> jax.Array:
    """I.i.d. outcome indices [num_samples] with P(i) = probabilities[i], by inverse CDF."""
    # Inverse CDF costs M uniforms + M log K compares; Gumbel-max (jax.random.categorical) costs M x K uniforms.
    cumulative = jnp.cumsum(probabilities)
    uniforms = jax.random.uniform(key, (num_samples,), jnp.float32) * cumulative[-1]
    # side="right" never picks an outcome of probability 0 (its interval is empty), which keeps lost outcomes lost
    # (the absorbing states of Wright–Fisher); the clip catches a uniform rounded up to the total.
    last_alive = probabilities.shape[0] - 1 - jnp.argmax((probabilities > 0)[::-1])
    # For few outcomes, counting the cumulative values <= u (M x K compares that fuse with the draw) beats the binary
    # search's per-sample gathers ~6x on XLA:CPU; both give the same index (BUILD_NOTES.md, "Throughput at the limit").
    method = "compare_all" if probabilities.shape[0] <= FEW_OUTCOMES else "scan"
    index = jnp.searchsorted(cumulative, uniforms, side="right", method=method)
    return jnp.minimum(index, last_alive).astype(jnp.int32)


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


def tail_outcomes(truth: jax.Array, samples_per_generation: int) -> jax.Array:
    """Mask of the tail: outcomes with p0(i) <= 1/M, or the rarest outcomes when none is that rare (e.g. uniform p0)."""
    # An outcome with p0 <= 1/M is expected to appear at most once per generation, so it is the first to vanish
    # (Shumailov et al. 2024). When no outcome is that rare the rarest ones are the tail, so the metric stays defined
    # (for uniform p0 it becomes the surviving share of outcomes). The 1e-6 slack absorbs float rounding of p0 = 1/M.
    threshold = jnp.maximum(1.0 / samples_per_generation, jnp.min(truth))
    return truth <= threshold * (1.0 + 1e-6)


@dataclasses.dataclass(frozen=True)
class DiscreteModel:
    """Categorical over `num_outcomes` outcomes; data are integer outcome indices [n]."""

    num_outcomes: int
    samples_per_generation: int
    real_data_size: int
    good_region_mass: float  # m: is_good's outcomes are the truth's smallest set holding mass >= m

    knob_fields: ClassVar[dict[str, str]] = {
        "smoothing": "model.smoothing",
        "zipf_exponent": "model.zipf_exponent",
    }
    # evaluate() reads only the params: the engine draws each generation's samples where the next one consumes them.
    evaluate_uses_samples: ClassVar[bool] = False
    # 0/1 metrics whose first generation at 1 is kept exactly whatever config.record_every is (fixation time).
    event_metrics: ClassVar[tuple[str, ...]] = ("absorbed",)
    metric_names: ClassVar[tuple[str, ...]] = (
        "entropy",
        "support_size",
        "kl_to_truth",
        "tail_mass",
        "heterozygosity",
        "absorbed",
        "absorbed_outcome",
    )

    def _truth(self, knobs: Knobs) -> jax.Array:
        return truth_probabilities(self.num_outcomes, jnp.asarray(knobs["zipf_exponent"], jnp.float32))

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> jax.Array:
        """Draw `num_samples` outcomes from the true distribution p0."""
        return draw_categorical(key, self._truth(knobs), num_samples)

    def real_data(self, key: jax.Array, knobs: Knobs) -> jax.Array:
        """The chain's original training set: `real_data_size` draws from p0."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """Uniform probabilities: the params structure, and the fallback of a fit that sees no data."""
        del key, knobs
        return {"probabilities": jnp.full((self.num_outcomes,), 1.0 / self.num_outcomes, jnp.float32)}

    def statistics(self, data: jax.Array, weights: jax.Array) -> jax.Array:
        """Weighted counts c_i = Σ_j w_j [x_j = i] (a scatter-add, so memory is O(K), not O(n K))."""
        return jnp.zeros((self.num_outcomes,), jnp.float32).at[data].add(weights.astype(jnp.float32))

    def merge_statistics(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Counts of the union of two data sets."""
        return a + b

    def fit_statistics(self, key: jax.Array, statistics: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """Add-α estimate p_i = (c_i + α) / (Σ_j c_j + K α); α = 0 is the MLE (empirical frequencies)."""
        del key
        smoothing = jnp.asarray(knobs["smoothing"], jnp.float32)
        total = jnp.sum(statistics) + self.num_outcomes * smoothing
        # An empty weighted pool with α = 0 has no estimate; keep the previous fit rather than divide by zero.
        probabilities = jnp.where(
            total > 0, (statistics + smoothing) / jnp.maximum(total, 1e-30), previous["probabilities"]
        )
        return {"probabilities": probabilities}

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """Add-α frequencies of the weighted pool (same result as `fit_statistics` on its counts)."""
        return self.fit_statistics(key, self.statistics(data, weights), knobs, previous)

    def sample(self, key: jax.Array, params: PyTree, num_samples: int, knobs: Knobs) -> jax.Array:
        """Multinomial resampling: `num_samples` i.i.d. draws from the fitted probabilities."""
        del knobs
        return draw_categorical(key, params["probabilities"], num_samples)

    def sample_statistics(self, key: jax.Array, params: PyTree, count: jax.Array, knobs: Knobs) -> jax.Array:
        """The counts of `count` draws from the fitted probabilities, drawn exactly (multinomial) without the draws."""
        del knobs
        return draw_multinomial_counts(key, params["probabilities"], count)

    def log_likelihood(self, params: PyTree, data: jax.Array, knobs: Knobs) -> jax.Array:
        """Exact log pmf log p(x_i) [n] under the fitted probabilities (-inf for an outcome the fit has lost)."""
        del knobs
        probabilities = params["probabilities"][data]
        return jnp.where(probabilities > 0, jnp.log(jnp.where(probabilities > 0, probabilities, 1.0)), -jnp.inf)

    def good_outcomes(self, knobs: Knobs) -> jax.Array:
        """Mask [K] of the smallest set of outcomes holding truth mass >= m: the most likely ones, taken in order.

        Outcome i (sorted by decreasing p0, ties by index) is in iff the outcomes before it hold mass < m; the 1e-5
        slack keeps exact cases (uniform K = 20, m = 0.95: 19 outcomes) from float32 cumsum rounding.
        """
        truth = self._truth(knobs)
        order = jnp.argsort(-truth, stable=True)
        mass_before = jnp.cumsum(truth[order]) - truth[order]
        return jnp.zeros((self.num_outcomes,), bool).at[order].set(mass_before < self.good_region_mass - 1e-5)

    def is_good(self, data: jax.Array, knobs: Knobs) -> jax.Array:
        """Whether each outcome lies in the truth's high-probability set of mass m (the verifier's oracle, Feng et al.
        2024, "Beyond Model Collapse"): rare outcomes, the tail that collapse loses first, count as bad."""
        return self.good_outcomes(knobs)[data]

    def evaluate(self, params: PyTree, samples: jax.Array, reference: PyTree, knobs: Knobs) -> dict[str, jax.Array]:
        """Diversity and distance-to-truth of the fitted distribution p (KL is KL(p || p0), finite after losses)."""
        del samples, reference
        probabilities = params["probabilities"]
        truth = self._truth(knobs)
        alive = probabilities > 0
        support_size = jnp.sum(alive).astype(jnp.float32)
        tail = tail_outcomes(truth, self.samples_per_generation)
        absorbed = support_size == 1
        return {
            "entropy": entropy(probabilities),
            "support_size": support_size,
            # KL(p || p0) = Σ p ln(p / p0): p0 has full support so this stays finite when p loses outcomes.
            "kl_to_truth": jnp.sum(jax.scipy.special.xlogy(probabilities, probabilities / truth)),
            "tail_mass": jnp.sum(jnp.where(tail & alive, truth, 0.0)) / jnp.sum(jnp.where(tail, truth, 0.0)),
            # Gini–Simpson index 1 - Σ p_i^2: under Wright–Fisher resampling E[h_{n+1}] = (1 - 1/M) h_n exactly.
            "heterozygosity": 1.0 - jnp.sum(probabilities**2),
            "absorbed": absorbed.astype(jnp.float32),
            # Which outcome fixed (-1 while several survive): P(outcome i fixes) = p0(i) (Shumailov et al. 2024).
            "absorbed_outcome": jnp.where(absorbed, jnp.argmax(probabilities), -1).astype(jnp.float32),
        }

    def reference(self) -> PyTree:
        """Nothing held out: the truth p0 is a closed form of the chain's `zipf_exponent` knob."""
        return {}


def _values(value: Any) -> list[Any]:
    """A config field's values: the tuple of a sweep, or the single value."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_number(field: str, value: Any, minimum: float) -> None:
    """One-line ValueError unless every value of `field` is a finite number >= minimum."""
    for item in _values(value):
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) or item < minimum:
            raise ValueError(f"config.{field}: got {item!r}; allowed: finite numbers >= {minimum} (or a tuple of them)")


def _check_int(field: str, value: Any, minimum: int) -> int:
    """One-line ValueError unless `field` is a single int >= minimum; returns it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"config.{field}: got {value!r}; allowed: an int >= {minimum}")
    return value


def make_model(config: Any) -> DiscreteModel:
    """Build the categorical model from `config.model` (num_outcomes, smoothing, zipf_exponent, real_data_size)."""
    num_outcomes = _check_int("model.num_outcomes", config.model.num_outcomes, 2)
    samples_per_generation = _check_int("samples_per_generation", config.samples_per_generation, 1)
    _check_number("model.smoothing", config.model.smoothing, 0.0)
    _check_number("model.zipf_exponent", config.model.zipf_exponent, 0.0)
    real_data_size = config.model.get("real_data_size", None)
    if real_data_size is None:
        real_data_size = samples_per_generation
    real_data_size = _check_int("model.real_data_size", real_data_size, 1)
    return DiscreteModel(num_outcomes, samples_per_generation, real_data_size, good_region_mass(config))
