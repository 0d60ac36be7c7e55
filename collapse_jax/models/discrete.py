"""Discrete collapse: refit a categorical's frequencies to M draws, resample M, repeat (a Wright–Fisher chain).

Truth p0 over K outcomes is Zipf–Mandelbrot, p0(i) ∝ (i + q)^-β (q = 0: Zipf; β = 0: uniform); fit = add-α
frequencies; statistics = counts. The generator may decode with a temperature and top-k ("A Tale of Tails", 2024).
Shumailov et al.'s three sources of error are switches: see DiscreteModel.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models import _threefry
from collapse_jax.models._metrics import entropy
from collapse_jax.models._multinomial import draw_multinomial_counts
from collapse_jax.models._population_fit import POOL_FREE_RULES
from collapse_jax.models.contract import (
    POPULATION_FIT_SWITCH,
    ErrorSwitch,
    FamilySettings,
    Knobs,
    PyTree,
    family_settings,
)
from collapse_jax.models.fields import at_most, flag, integer, number

# The knobs every discrete chain carries (config path of each); `zipf_shift` joins them when the config sets it.
CHAIN_KNOBS = {"smoothing": "model.smoothing", "zipf_exponent": "model.zipf_exponent"}

# Decoder knobs, each present only when the config sets it (absent: the generator samples its fit as it is).
DECODER_KNOBS = {"temperature": "model.temperature", "top_k": "model.top_k"}
BASE_METRICS = (
    "entropy",
    "support_size",
    "kl_to_truth",
    "tail_mass",
    "heterozygosity",
    "absorbed",
    "absorbed_outcome",
)
# With a decoder, the Hutter test error joins the metrics: the truth mass of the outcomes the fit never produces.
DECODER_METRICS = ("unseen_truth_mass",)

# Up to this many outcomes, a draw counts M x K compares instead of running a binary search per sample.
FEW_OUTCOMES = 64


def truth_probabilities(num_outcomes: int, zipf_exponent: jax.Array, zipf_shift: jax.Array | None = None) -> jax.Array:
    """Zipf–Mandelbrot law over ranks i = 1..K: p0(i) = (i + q)^-β / Σ_j (j + q)^-β (q = 0 or None: Zipf's i^-β;
    β = 0: uniform). A larger shift q flattens the head: the top ranks share their mass more evenly."""
    ranks = jnp.arange(1, num_outcomes + 1, dtype=jnp.float32)
    if zipf_shift is not None:
        # i + 0.0 is i exactly in float32, so q = 0 gives Zipf's bits whether the knob is set or absent.
        ranks = ranks + jnp.asarray(zipf_shift, jnp.float32)
    return jax.nn.softmax(-zipf_exponent * jnp.log(ranks))


def draw_categorical(key: jax.Array, probabilities: jax.Array, num_samples: int) -> jax.Array:
    """I.i.d. outcome indices [num_samples] with P(i) = probabilities[i], by inverse CDF."""
    # Inverse CDF costs M uniforms + M log K compares; Gumbel-max (jax.random.categorical) costs M x K uniforms.
    cumulative = jnp.cumsum(probabilities)
    # = jax.random.uniform bit for bit, from the unrolled generator (~4x cheaper on XLA:CPU; models/_threefry.py).
    uniforms = _threefry.uniform(key, (num_samples,)) * cumulative[-1]
    # side="right" never picks an outcome of probability 0 (its interval is empty), which keeps lost outcomes lost
    # (the absorbing states of Wright–Fisher); the clip catches a uniform rounded up to the total.
    last_alive = probabilities.shape[0] - 1 - jnp.argmax((probabilities > 0)[::-1])
    # For few outcomes, counting the cumulative values <= u (M x K compares that fuse with the draw) beats the binary
    # search's per-sample gathers ~6x on XLA:CPU; both give the same index (BUILD_NOTES.md, "Throughput at the limit").
    method = "compare_all" if probabilities.shape[0] <= FEW_OUTCOMES else "scan"
    index = jnp.searchsorted(cumulative, uniforms, side="right", method=method)
    return jnp.minimum(index, last_alive).astype(jnp.int32)


def tail_outcomes(truth: jax.Array, samples_per_generation: int) -> jax.Array:
    """Mask of the tail: outcomes with p0(i) <= 1/M, or the rarest outcomes when none is that rare (e.g. uniform p0)."""
    # An outcome with p0 <= 1/M is expected to appear at most once per generation, so it is the first to vanish
    # (Shumailov et al. 2024). When no outcome is that rare the rarest ones are the tail, so the metric stays defined
    # (for uniform p0 it becomes the surviving share of outcomes). The 1e-6 slack absorbs float rounding of p0 = 1/M.
    threshold = jnp.maximum(1.0 / samples_per_generation, jnp.min(truth))
    return truth <= threshold * (1.0 + 1e-6)


def decode(probabilities: jax.Array, knobs: Knobs) -> jax.Array:
    """The generator's sampling law: p^(1/τ) renormalized (temperature τ), then only the k most likely outcomes kept
    and renormalized (top_k; ties by index). A knob the chain lacks is skipped, so without both p comes back as is."""
    if "temperature" in knobs:
        alive = probabilities > 0
        logits = jnp.where(alive, jnp.log(jnp.where(alive, probabilities, 1.0)), -jnp.inf)
        probabilities = jax.nn.softmax(logits / jnp.asarray(knobs["temperature"], jnp.float32))
    if "top_k" in knobs:
        order = jnp.argsort(-probabilities, stable=True)
        rank = jnp.zeros(probabilities.shape, jnp.int32).at[order].set(jnp.arange(probabilities.shape[0]))
        kept = jnp.where(rank < jnp.asarray(knobs["top_k"], jnp.float32), probabilities, 0.0)
        probabilities = kept / jnp.sum(kept)
    return probabilities


def expected_unseen_mass(truth: np.ndarray, generator: np.ndarray, samples: int) -> float:
    """E[Σ_i p0(i) [outcome i absent from M draws of the generator q]] = Σ_i p0(i) (1 - q_i)^M: the Hutter (2021)
    test error of a fit (MLE) to M draws of q, the learning curve of "A Tale of Tails" (Dohmatob et al. 2024)."""
    truth, generator = np.asarray(truth, np.float64), np.asarray(generator, np.float64)
    return float(np.sum(truth * np.exp(samples * np.log1p(-np.minimum(generator, 1.0)))))


def zipf_mass_beyond_rank(num_outcomes: int, zipf_exponent: float, top_k: int) -> float:
    """Σ_{i > k} i^-β / Σ_{i <= K} i^-β: the truth mass a top-k generator of the exact truth never produces.

    For K -> ∞ and β > 1 it is ~ k^(1 - β) / ((β - 1) ζ(β)): the floor of the test error falls only as k^-(β - 1).
    """
    weights = np.arange(1, num_outcomes + 1, dtype=np.float64) ** -float(zipf_exponent)
    return float(weights[top_k:].sum() / weights.sum())


def survival_gains(fits: int) -> np.ndarray:
    """g_1..g_fits of Suresh, Thangaraj & Khandavally (2024): g_1 = 1, g_{k+1} = 1 - e^{-g_k} (1/k <= g_k <= 2/k)."""
    gains = [1.0]
    while len(gains) < fits:
        gains.append(-math.expm1(-gains[-1]))
    return np.asarray(gains)


def surviving_outcomes_bounds(truth: np.ndarray, samples_per_generation: int, fits: int) -> tuple[float, float]:
    """(lower, upper) bound on E[support_size] at fit k = `fits` (results column k - 1): replace, MLE (α = 0), M draws
    per generation and M real draws for fit 1 (real_data_size None).

    Outcome i alone is a two-allele Wright–Fisher chain, M p_k(i) ~ Binomial(M, p_{k-1}(i)), 0 absorbing, so by
    linearity E[S_k] = Σ_i P(p_k(i) > 0) and (our derivation, the Bernoulli family's per-outcome bounds summed):
        Σ_i 1 - exp(-M p0(i) g_k) <= E[S_k] <= Σ_i min(1 - (1 - p0(i))^M, p0(i) + M p0(i)(1 - p0(i))(1 - 1/M)^(k-1)).
    Lower: Suresh et al.'s survival bound P(p_k(i) > 0) >= 1 - exp(-M p0(i) / k), with g_k >= 1/k in place of 1/k.
    Upper: alive outcomes are either fixed (P <= E p_k(i) = p0(i)) or polymorphic, where p(1 - p) >= (M - 1) / M^2 and
    E p_k(1 - p_k) = (1 - 1/M)^k p0 (1 - p0) (Markov); and never above fit 1's survival (a lost outcome stays lost).
    For a Zipf–Mandelbrot p0 the lower bound grows like Γ(1 - 1/β) (M g_k / Z)^(1/β) - q (β > 1, K large, Z the
    normalizer): the outcomes seen about once per generation or more, M g_k p0(i) >~ 1, are the ones that survive.
    """
    truth = np.asarray(truth, np.float64)
    samples = samples_per_generation
    lower = -np.expm1(-samples * truth * survival_gains(fits)[-1])
    first_fit = -np.expm1(samples * np.log1p(-np.minimum(truth, 1.0)))
    polymorphic = samples * truth * (1 - truth) * (1 - 1 / samples) ** (fits - 1)
    upper = np.minimum(first_fit, truth + polymorphic)
    return float(lower.sum()), float(upper.sum())


@dataclasses.dataclass(frozen=True)
class DiscreteModel:
    """Categorical over `num_outcomes` outcomes; data are integer outcome indices [n].

    The three sources of error of Shumailov et al. (2024) are switches:
    - statistical approximation: off with `population_fit`: each fit sees the expected counts N p of the previous
      model (the truth p0 for the first fit; N = M, or real_data_size for the first fit) instead of drawn ones, so
      with α = 0 the fit is the previous model itself, exactly (replace with real_fraction 0 only);
    - functional expressivity: on with `num_bins` B < K: the family is the histograms over B bins of consecutive
      outcomes (bin(i) = floor(i B / K)), uniform inside a bin, so a non-uniform truth is out of reach;
    - functional approximation: on with smoothing α > 0, the add-α (Dirichlet MAP) objective instead of the
      likelihood; with population fits p_{n+1} = (N p_n + α) / (N + K α), a deterministic drift toward uniform.
    """

    # Config fields whose tuple values compile one group each (the K x M grid, the error-source switches).
    static_sweep_fields: ClassVar[tuple[str, ...]] = ("model.num_outcomes", "model.num_bins", "model.population_fit")
    # Shumailov et al.'s three switches, read from the class by the report's error-sources section.
    error_source_switches: ClassVar[dict[str, ErrorSwitch]] = {
        "population_fit": POPULATION_FIT_SWITCH,
        "num_bins": ErrorSwitch(source="expressivity", below="num_outcomes"),
        "smoothing": ErrorSwitch(source="approximation", above=0.0, default=0.0),
    }

    num_outcomes: int
    samples_per_generation: int
    real_data_size: int
    good_region_mass: float  # m: is_good's outcomes are the truth's smallest set holding mass >= m
    num_bins: int | None = None  # B: histogram bins of the family (None: one per outcome, the plain categorical)
    population_fit: bool = False
    # Per-chain knobs: smoothing and β always; q only when config.model.zipf_shift is set (None: Zipf, no knob: the
    # same chains as q = 0, without the knob's column). Kept out of hash/eq like KDE's.
    knob_fields: dict = dataclasses.field(default_factory=lambda: dict(CHAIN_KNOBS), compare=False, hash=False)
    # With a decoder knob (temperature, top_k) the chains also report unseen_truth_mass (make_model adds it).
    metric_names: tuple[str, ...] = dataclasses.field(default=BASE_METRICS, compare=False, hash=False)
    # evaluate() reads only the params: the engine draws each generation's samples where the next one consumes them.
    evaluate_uses_samples: ClassVar[bool] = False
    # 0/1 metrics whose first generation at 1 is kept exactly whatever config.record_every is (fixation time).
    event_metrics: ClassVar[tuple[str, ...]] = ("absorbed",)

    # config.model fields and the rules that tie them, declared once: the only source of their defaults and checks.
    config_fields: ClassVar[dict] = {
        "num_outcomes": integer(
            "K: outcomes of the categorical (static: one compile per value)", low=2, sweepable=True
        ),
        "smoothing": number("add-alpha pseudo-count of every fit", low=0.0, sweepable=True),
        "zipf_exponent": number("truth p_k ~ (k + q)^-s (0: uniform)", low=0.0, sweepable=True),
        "zipf_shift": number(
            "q: Zipf–Mandelbrot shift, truth p_k ~ (k + q)^-s (None or 0: Zipf)",
            low=0.0,
            optional=True,
            sweepable=True,
        ),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
        "num_bins": integer(
            "B: bins of consecutive outcomes the family is uniform within (None: K; B < K: expressivity error)",
            low=1,
            optional=True,
            sweepable=True,
        ),
        "population_fit": flag(
            "fit the previous model's expected counts (statistical error off)", default=False, sweepable=True
        ),
        "temperature": number(
            "tau: the generator samples p^(1/tau), renormalized (None: tau = 1, no knob)",
            low=0.0,
            low_open=True,
            optional=True,
            sweepable=True,
        ),
        "top_k": integer(
            "k: the generator samples only its k most likely outcomes, renormalized (None: all, no knob)",
            low=1,
            optional=True,
            sweepable=True,
        ),
    }
    config_rules: ClassVar[tuple] = (
        *POOL_FREE_RULES,
        at_most("num_bins", "num_outcomes", "config.model.num_bins: got {when}; allowed: at most num_outcomes = {got}"),
        at_most("top_k", "num_outcomes", "config.model.top_k: got {when}; allowed: at most num_outcomes = {got}"),
    )

    def _truth(self, knobs: Knobs) -> jax.Array:
        exponent = jnp.asarray(knobs["zipf_exponent"], jnp.float32)
        return truth_probabilities(self.num_outcomes, exponent, knobs.get("zipf_shift"))

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> jax.Array:
        """Draw `num_samples` outcomes from the true distribution p0."""
        return draw_categorical(key, self._truth(knobs), num_samples)

    def real_data(self, key: jax.Array, knobs: Knobs) -> jax.Array:
        """The chain's original training set: `real_data_size` draws from p0."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """Uniform probabilities: the params structure, and the fallback of a fit that sees no data."""
        del key, knobs
        uniform = {"probabilities": jnp.full((self.num_outcomes,), 1.0 / self.num_outcomes, jnp.float32)}
        # A population fit must know its first fit (which targets the truth, not this placeholder).
        return {**uniform, "fitted": jnp.float32(0.0)} if self.population_fit else uniform

    def _bins(self) -> np.ndarray:
        """bin(i) = floor(i B / K) for i < K: B runs of consecutive outcomes, sizes differing by at most one."""
        return (np.arange(self.num_outcomes) * self.num_bins) // self.num_outcomes

    def merge_bins(self, probabilities: jax.Array) -> jax.Array:
        """Spread each bin's mass uniformly over its outcomes: the histogram fit with B bins (identity for B = K)."""
        bins = self._bins()
        sizes = np.bincount(bins, minlength=self.num_bins).astype(np.float32)
        mass = jnp.zeros((self.num_bins,), probabilities.dtype).at[bins].add(probabilities)
        return mass[bins] / sizes[bins]

    def statistics(self, data: jax.Array, weights: jax.Array) -> jax.Array:
        """Weighted counts c_i = Σ_j w_j [x_j = i] (a scatter-add, so memory is O(K), not O(n K))."""
        return jnp.zeros((self.num_outcomes,), jnp.float32).at[data].add(weights.astype(jnp.float32))

    def merge_statistics(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Counts of the union of two data sets."""
        return a + b

    def fit_statistics(self, key: jax.Array, statistics: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """Add-α estimate p_i = (c_i + α) / (Σ_j c_j + K α); α = 0 is the MLE (empirical frequencies).

        With num_bins, the estimate's bin masses spread uniformly inside each bin; with population_fit, the
        statistics are ignored for the expected counts N q of the target q (the previous fit, or p0 first).
        """
        if self.population_fit:
            return self._population_fit(knobs, previous)
        fitted = self._add_alpha(statistics, knobs, previous)
        if self.num_bins is not None:
            fitted = {"probabilities": self.merge_bins(fitted["probabilities"])}
        return fitted

    def _population_fit(self, knobs: Knobs, previous: PyTree) -> PyTree:
        """The fit to the target's expected counts N q: q itself for α = 0 (exact: no division), else add-α of N q."""
        first = previous["fitted"] == 0
        # The previous model's sampling law is its decoded fit (the truth, the first target, is not decoded).
        target = jnp.where(first, self._truth(knobs), decode(previous["probabilities"], knobs))
        size = jnp.where(first, float(self.real_data_size), float(self.samples_per_generation))
        smoothed = (size * target + knobs["smoothing"]) / (size + self.num_outcomes * knobs["smoothing"])
        probabilities = jnp.where(knobs["smoothing"] == 0, target, smoothed)
        # Later targets are already uniform inside bins and add-α keeps that, so only the truth needs merging.
        if self.num_bins is not None:
            probabilities = jnp.where(first, self.merge_bins(probabilities), probabilities)
        return {"probabilities": probabilities.astype(jnp.float32), "fitted": jnp.float32(1.0)}

    def _add_alpha(self, statistics: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """p_i = (c_i + α) / (Σ_j c_j + K α), the previous fit when the pool is empty and α = 0."""
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
        """Multinomial resampling: `num_samples` i.i.d. draws from the decoded fitted probabilities."""
        return draw_categorical(key, decode(params["probabilities"], knobs), num_samples)

    def sample_statistics(self, key: jax.Array, params: PyTree, count: jax.Array, knobs: Knobs) -> jax.Array:
        """The counts of `count` draws from the decoded fit, drawn exactly (multinomial) without the draws."""
        return draw_multinomial_counts(key, decode(params["probabilities"], knobs), count)

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
        decoder = (
            {"unseen_truth_mass": jnp.sum(jnp.where(alive, 0.0, truth))}
            if DECODER_METRICS[0] in self.metric_names
            else {}
        )
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
            **decoder,
        }

    def reference(self) -> PyTree:
        """Nothing held out: the truth p0 is a closed form of the chain's `zipf_exponent` (and `zipf_shift`) knobs."""
        return {}


def make_model(config: Any, settings: FamilySettings | None = None) -> DiscreteModel:
    """Build the categorical model from its resolved config (base.make_model: defaults in, rules applied)."""
    model = config.model
    settings = family_settings(config) if settings is None else settings
    shift = {} if model.zipf_shift is None else {"zipf_shift": "model.zipf_shift"}
    decoder = {name: path for name, path in DECODER_KNOBS.items() if model[name] is not None}
    return DiscreteModel(
        model.num_outcomes,
        config.samples_per_generation,
        model.real_data_size or config.samples_per_generation,
        settings.good_region_mass,
        model.num_bins,
        model.population_fit,
        {**CHAIN_KNOBS, **shift, **decoder},
        BASE_METRICS + (DECODER_METRICS if decoder else ()),
    )
