"""The curation stage between sampling and the next training pool: which synthetic candidates (and real points) survive.

likelihood_filter (quality filters), verifier (Feng et al. 2024), watermark_filter (a detector removes what it flags).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from collapse_jax.models import contract
from collapse_jax.models.contract import DETECTION_METRICS, KEPT_FRACTION, VERIFIER_METRICS

CURATIONS = ("none", "likelihood_filter", "verifier", "watermark_filter")
LIKELIHOOD_REFERENCES = ("current", "generation0")
DETECTORS = ("auto", "abstract", "model")
# The curation's metric names are part of the results contract (models/contract.py): analysis reads them there.
# Knob name -> config path, per curation; the keep band is one (low, high) field split into two knobs (sweep.py).
KNOB_FIELDS = {
    "none": {},
    "likelihood_filter": {"keep_quantiles": "curation.keep_quantiles"},
    "verifier": {"keep_good": "curation.keep_good", "keep_bad": "curation.keep_bad"},
    "watermark_filter": {
        "true_positive_rate": "curation.true_positive_rate",
        "false_positive_rate": "curation.false_positive_rate",
    },
}
MODEL_DETECTOR_KNOBS = {"watermark_z_threshold": "curation.watermark_z_threshold"}
# Optional for watermark_filter: the weight a flagged point keeps (0 = removed, the default; 0.2 = down-weighted).
DETECTED_WEIGHT = {"detected_weight": "curation.detected_weight"}
PAIR_KNOBS = {"keep_quantiles": ("keep_quantile_low", "keep_quantile_high")}


def band_ranks(scores: jax.Array) -> jax.Array:
    """Rank of each score among the candidates (0 = lowest; ties broken by position, so ranks are a permutation)."""
    order = jnp.argsort(scores, stable=True)
    return jnp.zeros_like(order).at[order].set(jnp.arange(scores.shape[0]))


def in_quantile_band(scores: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Keep i iff floor(low n) <= rank_i < floor(high n): (0.1, 1.0) drops exactly the 10% least likely of n."""
    n = scores.shape[0]
    ranks = band_ranks(scores)
    first, stop = jnp.floor(low * n + 1e-6), jnp.floor(high * n + 1e-6)
    return (ranks >= first) & (ranks < stop)


@dataclasses.dataclass(frozen=True)
class Curation:
    """Static settings of the curation stage; per-chain strengths arrive in knobs."""

    name: str = "none"
    likelihood_reference: str = "current"  # the model whose likelihood ranks the candidates
    model_detector: bool = False  # watermark_filter with the model's own detector (LM) instead of the abstract one

    @property
    def active(self) -> bool:
        return self.name != "none"

    @property
    def keeps_generation0_params(self) -> bool:
        """Whether the chain state carries the generation-0 model (the likelihood filter's fixed reference)."""
        return self.name == "likelihood_filter" and self.likelihood_reference == "generation0"

    @property
    def metric_names(self) -> tuple[str, ...]:
        if not self.active:
            return ()
        extra = {"watermark_filter": DETECTION_METRICS, "verifier": VERIFIER_METRICS}.get(self.name, ())
        return (KEPT_FRACTION,) + extra

    def select(self, key: jax.Array, model: Any, state: dict, real_part: tuple | None, knobs: dict):
        """(real_keep [P+R+I] or None, synthetic_keep [candidates], metrics) for one chain's generation.

        likelihood_filter: keep candidates whose log-likelihood rank lies in [low, high) (quantiles of this batch).
        verifier: keep a good candidate with probability phi = keep_good, a bad one with psi = keep_bad.
        watermark_filter: drop what the detector flags (or keep it at weight knobs['detected_weight']); the abstract
        detector flags a synthetic candidate with probability true_positive_rate and a detectable real point with
        false_positive_rate.
        """
        samples = state["samples"]
        count = jax.tree.leaves(samples)[0].shape[0]
        real_keep, metrics = None, {}
        if self.name == "likelihood_filter":
            params = state["generation0_params"] if self.keeps_generation0_params else state["params"]
            scores = model.log_likelihood(params, samples, knobs)
            keep = in_quantile_band(scores, knobs["keep_quantile_low"], knobs["keep_quantile_high"])
        elif self.name == "verifier":
            good = model.is_good(samples, knobs)
            keep = jax.random.uniform(key, (count,)) < jnp.where(good, knobs["keep_good"], knobs["keep_bad"])
            metrics["bad_share_candidates"] = jnp.mean(~good)
            kept_bad = jnp.sum(keep & ~good) / jnp.maximum(jnp.sum(keep), 1)
            metrics["bad_share_kept"] = jnp.where(jnp.any(keep), kept_bad, jnp.nan)
        else:
            synthetic_key, real_key = jax.random.split(key)
            if self.model_detector:
                flagged = model.detect_watermark(samples, knobs)
            else:
                flagged = jax.random.uniform(synthetic_key, (count,)) < knobs["true_positive_rate"]
            flagged_weight = knobs.get("detected_weight", jnp.float32(0.0))
            keep = jnp.where(flagged, flagged_weight, 1.0)
            metrics["detected_synthetic_rate"] = jnp.mean(flagged.astype(jnp.float32))
            metrics["detected_real_rate"] = jnp.float32(jnp.nan)
            if real_part is not None:
                points, weights, detectable = real_part
                if self.model_detector:
                    real_flagged = model.detect_watermark(points, knobs)
                else:
                    real_flagged = jax.random.uniform(real_key, weights.shape) < knobs["false_positive_rate"]
                real_flagged = real_flagged & detectable
                looked_at = weights * detectable
                real_keep = jnp.where(real_flagged, flagged_weight, 1.0)
                metrics["detected_real_rate"] = jnp.where(
                    jnp.sum(looked_at) > 0,
                    jnp.sum(real_flagged * looked_at) / jnp.maximum(jnp.sum(looked_at), 1.0),
                    jnp.nan,
                )
        keep = keep.astype(jnp.float32)
        metrics[KEPT_FRACTION] = jnp.mean(keep > 0)
        return real_keep, keep, metrics


def _each(value: Any) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def quantile_pairs(value: Any) -> list[tuple[float, float]]:
    """curation.keep_quantiles: one (low, high) pair, or a tuple of pairs (a sweep); one-line error otherwise."""
    pairs = [value] if len(value) == 2 and all(isinstance(v, numbers.Real) for v in value) else list(value)
    for pair in pairs:
        ok = isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(v, numbers.Real) for v in pair)
        if not ok or not 0.0 <= pair[0] < pair[1] <= 1.0:
            raise ValueError(
                f"config.curation.keep_quantiles: must be a (low, high) pair with 0 <= low < high <= 1, or a tuple of "
                f"such pairs; got {pair!r}"
            )
    return [(float(low), float(high)) for low, high in pairs]


def knob_fields(config: Any, model: Any) -> dict[str, str]:
    """The curation knobs of one static group (none without a curation block)."""
    curation = make_curation(config, model)
    fields = dict(MODEL_DETECTOR_KNOBS if curation.model_detector else KNOB_FIELDS[curation.name])
    if curation.name == "watermark_filter" and "detected_weight" in config.curation:
        fields.update(DETECTED_WEIGHT)
    return fields


def make_curation(config: Any, model: Any) -> Curation:
    """Validate config.curation for one static group and build the stage; one-line errors name the field."""
    block = config.get("curation")
    if block is None:
        return Curation()
    name = block.get("name", "none")
    if name not in CURATIONS:
        raise ValueError(f"config.curation.name: unknown curation {name!r}; allowed: {', '.join(CURATIONS)}")
    oversample = block.get("oversample", 1)
    if not isinstance(oversample, numbers.Integral) or isinstance(oversample, bool) or oversample < 1:
        raise ValueError(f"config.curation.oversample: must be an integer >= 1, got {oversample!r}")
    reference = block.get("likelihood_reference", "current")
    if reference not in LIKELIHOOD_REFERENCES:
        raise ValueError(
            f"config.curation.likelihood_reference: {reference!r}; allowed: {', '.join(LIKELIHOOD_REFERENCES)}"
        )
    needs = {"likelihood_filter": contract.LogLikelihood, "verifier": contract.Verifier}.get(name)
    if needs and not contract.supports(model, needs):
        hook = "log_likelihood" if needs is contract.LogLikelihood else "is_good"
        raise ValueError(f"config.curation.name: {name!r} needs a model with `{hook}`; {config.model.name!r} has none")
    detector = block.get("detector", "auto")
    has_detector = contract.supports(model, contract.WatermarkDetector)
    if detector not in DETECTORS or (detector == "model" and name == "watermark_filter" and not has_detector):
        raise ValueError(
            f"config.curation.detector: {detector!r}; allowed: auto (the model's own detector when it has one), "
            f"abstract (true/false positive rate knobs), model (only for models with detect_watermark)"
        )
    model_detector = name == "watermark_filter" and has_detector and detector != "abstract"
    if name == "likelihood_filter":
        quantile_pairs(block.get("keep_quantiles", (0.1, 1.0)))
    fields = dict(MODEL_DETECTOR_KNOBS if model_detector else KNOB_FIELDS[name])
    if name == "watermark_filter" and "detected_weight" in block:
        fields.update(DETECTED_WEIGHT)
    for knob, path in fields.items():
        if knob == "keep_quantiles":
            continue
        field = path.split(".")[-1]
        if field not in block:
            raise ValueError(f"config.{path}: required by curation {name!r}")
        for value in _each(block[field]):
            bounded = knob != "watermark_z_threshold"
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or (bounded and not 0 <= value <= 1):
                allowed = "a probability in [0, 1]" if bounded else "a number"
                raise ValueError(f"config.{path}: must be {allowed}, got {value!r}")
    return Curation(name, reference, model_detector)
