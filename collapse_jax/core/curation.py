"""The curation stage between sampling and the next training pool: which synthetic candidates (and real points) survive.

likelihood_filter (quality filters), verifier (Feng et al. 2024), watermark_filter (a detector removes what it flags),
selection (Qiao et al.: keep the alpha share of candidates closest to a target), preference (Ferbach et al.: one of K
candidates per slot, Bradley-Terry on a reward), self_correction (Gillman et al. 2024: every candidate moves a share
gamma of the way along the optimal transport map to the truth; an operator's `transform`).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from collapse_jax.models import contract
from collapse_jax.models.contract import (  # noqa: F401  (PAIR_KNOBS re-exported for the sweep)
    DETECTION_METRICS,
    KEPT_FRACTION,
    PAIR_KNOBS,
    PREFERENCE_METRICS,
    VERIFIER_METRICS,
)
from collapse_jax.models.fields import Field, choice, integer, number, same_setting, text

LIKELIHOOD_REFERENCES = ("current", "generation0")
DETECTORS = ("auto", "abstract", "model")
REWARDS = ("linear", "quadratic")
# The curation's metric names are part of the results contract (models/contract.py): analysis reads them there.


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


def _likelihood_filter(stage: Curation, key: jax.Array, model: Any, state: dict, real_part: tuple | None, knobs: dict):
    """Keep candidates whose log-likelihood rank lies in [low, high) (quantiles of this batch)."""
    params = state["generation0_params"] if stage.keeps_generation0_params else state["params"]
    scores = model.log_likelihood(params, state["samples"], knobs)
    return None, in_quantile_band(scores, knobs["keep_quantile_low"], knobs["keep_quantile_high"]), {}


def _verifier(stage: Curation, key: jax.Array, model: Any, state: dict, real_part: tuple | None, knobs: dict):
    """Keep a good candidate with probability phi = keep_good, a bad one with psi = keep_bad (Feng et al. 2024)."""
    samples = state["samples"]
    count = jax.tree.leaves(samples)[0].shape[0]
    good = model.is_good(samples, knobs)
    keep = jax.random.uniform(key, (count,)) < jnp.where(good, knobs["keep_good"], knobs["keep_bad"])
    metrics = {"bad_share_candidates": jnp.mean(~good)}
    kept_bad = jnp.sum(keep & ~good) / jnp.maximum(jnp.sum(keep), 1)
    metrics["bad_share_kept"] = jnp.where(jnp.any(keep), kept_bad, jnp.nan)
    return None, keep, metrics


def _watermark_filter(stage: Curation, key: jax.Array, model: Any, state: dict, real_part: tuple | None, knobs: dict):
    """Drop what the detector flags (or keep it at weight knobs['detected_weight']); the abstract detector flags a
    synthetic candidate with probability true_positive_rate and a detectable real point with false_positive_rate."""
    samples = state["samples"]
    count = jax.tree.leaves(samples)[0].shape[0]
    real_keep, metrics = None, {}
    synthetic_key, real_key = jax.random.split(key)
    if stage.model_detector:
        flagged = model.detect_watermark(samples, knobs)
    else:
        flagged = jax.random.uniform(synthetic_key, (count,)) < knobs["true_positive_rate"]
    flagged_weight = knobs.get("detected_weight", jnp.float32(0.0))
    keep = jnp.where(flagged, flagged_weight, 1.0)
    metrics["detected_synthetic_rate"] = jnp.mean(flagged.astype(jnp.float32))
    metrics["detected_real_rate"] = jnp.float32(jnp.nan)
    if real_part is not None:
        points, weights, detectable = real_part
        if stage.model_detector:
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
    return real_keep, keep, metrics


def _selection(stage: Curation, key: jax.Array, model: Any, state: dict, real_part: tuple | None, knobs: dict):
    """Keep the floor(alpha n) of the n candidates closest (Euclidean) to the target t = (true_mean + offset) * 1.

    Qiao et al. ("When sample selection bias precipitates model collapse") score -|x - u|^2 in a Mahalanobis norm
    of 0.3 Sigma*; the truth here is isotropic, so that ranking is the Euclidean one. With oversample = 1/alpha the
    kept candidates are exactly the M training slots (their "generate N/alpha, keep N").
    """
    samples = state["samples"]
    target = model.true_mean + knobs["target_offset"]
    distance = jnp.sum((samples - target) ** 2, axis=-1)
    kept = jnp.floor(knobs["selection_share"] * distance.shape[0] + 1e-6)
    return None, band_ranks(distance) < kept, {}


def reward(kind: str, model: Any, samples: Any, knobs: dict) -> jax.Array:
    """r(x) per point, beta = knobs["reward_scale"]: a family's own reward beta * s(x) (PreferenceRewards) when it
    declares `kind`; else linear beta * sum_j x_j or quadratic -beta |x - true_mean * 1|^2 (peaked at the truth's mean).
    """
    if contract.supports(model, contract.PreferenceRewards) and kind in model.preference_rewards:
        return knobs["reward_scale"] * model.preference_reward(kind, samples, knobs)
    if kind == "linear":
        return knobs["reward_scale"] * jnp.sum(samples, axis=-1)
    return -knobs["reward_scale"] * jnp.sum((samples - model.true_mean) ** 2, axis=-1)


def preference_rewards(model: Any) -> tuple[str, ...]:
    """The curation.reward names `model` offers: linear / quadratic with an isotropic Gaussian truth, plus its own."""
    built_in = REWARDS if contract.supports(model, contract.IsotropicGaussianTruth) else ()
    own = tuple(model.preference_rewards) if contract.supports(model, contract.PreferenceRewards) else ()
    return tuple(dict.fromkeys(own + built_in))


def _preference(stage: Curation, key: jax.Array, model: Any, state: dict, real_part: tuple | None, knobs: dict):
    """Ferbach et al.: candidates come in consecutive groups of K (one group per training slot); keep one per group,
    candidate i with the Bradley-Terry probability exp(r_i) / sum_group exp(r_j) (drawn by Gumbel-max)."""
    samples = state["samples"]
    rewards = reward(stage.reward, model, samples, knobs)
    groups = rewards.reshape(-1, stage.candidates)
    winner = jnp.argmax(groups + jax.random.gumbel(key, groups.shape), axis=-1)
    keep = (jnp.arange(stage.candidates) == winner[:, None]).reshape(-1)
    return None, keep, {"mean_reward": jnp.mean(jnp.take_along_axis(groups, winner[:, None], axis=-1))}


def _inverse_sqrt(cov: jax.Array) -> jax.Array:
    """Sigma^{-1/2} = V diag(1 / sqrt(lambda)) V^T (a collapsed direction, lambda = 0, maps to inf: the chain fails)."""
    if cov.shape[-1] == 1:
        return 1.0 / jnp.sqrt(cov)
    eigenvalues, eigenvectors = jnp.linalg.eigh(cov)
    return (eigenvectors / jnp.sqrt(eigenvalues)) @ eigenvectors.T


def _self_correction_transform(stage: Curation, model: Any, state: dict, knobs: dict) -> jax.Array:
    """x -> x + gamma (T(x) - x), T the optimal transport map from the current model N(mu, Sigma) to the truth
    N(mu* 1, s*^2 I): T(x) = mu* + s* Sigma^{-1/2} (x - mu) (Gillman et al.'s ideal correction, at strength gamma).

    (mu, Sigma) is the fit's LocationScale, (mu*, s*) its IsotropicGaussianTruth. The pushforward of N(mu, Sigma) by T
    is N(mu*, s*^2 I) exactly, so gamma = 1 turns the model's samples into draws from the truth; gamma = 0 returns the
    candidates' bits (x + 0 * finite = x).
    """
    samples = state["samples"]
    mean, cov = model.location_scale(state["params"])
    corrected = model.true_mean + model.true_std * (samples - mean) @ _inverse_sqrt(cov)
    return samples + knobs["correction_strength"] * (corrected - samples)


def _keep_all(stage: Curation, key: jax.Array, model: Any, state: dict, real_part: tuple | None, knobs: dict):
    """Every candidate is kept (an operator whose work is its transform)."""
    return None, jnp.ones(jax.tree.leaves(state["samples"])[0].shape[0], bool), {}


def _check_reward(block: Any, model: Any, family: str) -> None:
    """curation.reward must be one `family` offers (preference_rewards), with the knobs its reward reads set."""
    allowed = preference_rewards(model)
    if not allowed:
        raise ValueError(
            f"config.curation.name: 'preference' needs a model with `true_mean` (linear / quadratic rewards) or its "
            f"own `preference_reward`; {family!r} has neither"
        )
    kind = block.get("reward")
    if kind not in allowed:
        raise ValueError(
            f"config.curation.reward: {kind!r} is not a reward of model {family!r}; allowed: {', '.join(allowed)}"
        )
    own = model.preference_rewards if contract.supports(model, contract.PreferenceRewards) else {}
    for knob in own.get(kind, ()):
        if block.get(knob) is None:
            raise ValueError(f"config.curation.{knob}: required by curation.reward {kind!r}")


def check_keep_quantiles_field(value: Any) -> None:
    """The validator's check of curation.keep_quantiles (a non-tuple fails here, before len() in quantile_pairs)."""
    if not isinstance(value, (tuple, list)) or not value:
        raise ValueError(
            f"config.curation.keep_quantiles: must be a (low, high) pair or a tuple of pairs, got {value!r}"
        )
    quantile_pairs(value)


_PROBABILITY = {"low": 0.0, "high": 1.0}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CurationOperator:
    """What one curation name means: its decision function, knobs, model hooks, metrics and extra config checks."""

    # (stage, key, model, state, real_part, knobs) -> (real_keep [P+R+I] or None, keep [candidates], metrics): one
    # chain's decisions. state holds "samples" (the candidates), "params" and, when kept, "generation0_params"; keep
    # is bool or a weight in [0, 1]; metrics are the operator's own (kept_fraction is added by the stage).
    select: Callable[..., tuple] | None
    knob_fields: dict[str, str] = dataclasses.field(default_factory=dict)  # knob name -> config path (per chain)
    # Knobs used only when the config sets their field (watermark_filter's detected_weight: 0 = removed by default).
    optional_knob_fields: dict[str, str] = dataclasses.field(default_factory=dict)
    needs: tuple[type, str] | None = None  # (contract capability, hook name) the family must implement
    metric_names: tuple[str, ...] = ()  # the operator's metrics beyond kept_fraction (names in models/contract.py)
    # config.curation.likelihood_reference applies: the operator scores with the current or the generation-0 model.
    reads_likelihood_reference: bool = False
    # The knobs when the family's own detect_watermark decides (config.curation.detector auto / model); None: the
    # operator has no model-detector form and config.curation.detector does not apply to it.
    model_detector_knob_fields: dict[str, str] | None = None
    # Declarations of the operator's own config.curation fields (host/config_schema.py validates every config with
    # them); experiments/configs/common.py writes each one (None: unset) so `--config.curation.<field>=` works.
    config_fields: dict[str, Field] = dataclasses.field(default_factory=dict)
    # (stage, model, state, knobs) -> the candidates moved: applied before select and before the batch is built; None
    # (every other operator) leaves the engine's step as it traces without it.
    transform: Callable[..., Any] | None = None
    # The operator maps points onto the truth by the Gaussian transport map: the family's truth must be exactly
    # IsotropicGaussianTruth's Gaussian (contract.has_gaussian_truth), not only centred and scaled like it.
    needs_gaussian_truth: bool = False


# The curation operators, by config.curation.name. Adding one (say `self_correction`) is one entry here: its `select`
# function (written like _verifier above), its knob fields, the capability it needs and its config field declarations;
# the allowed names, the validator, the sweep's knobs and the engine all read this table. Outside it, only names: its
# metric names in models/contract.py (and analysis/profile.py's BOOKKEEPING_METRICS), its fields in
# experiments/configs/common.py's curation block (None: unset). tests/test_curation.py checks both against the table.
CURATION_OPERATORS: dict[str, CurationOperator] = {
    "none": CurationOperator(select=None),
    "likelihood_filter": CurationOperator(
        select=_likelihood_filter,
        knob_fields={"keep_quantiles": "curation.keep_quantiles"},
        needs=(contract.LogLikelihood, "log_likelihood"),
        reads_likelihood_reference=True,
        config_fields={
            "likelihood_reference": choice(
                "rank by the chain's current model or the generation-0 model", LIKELIHOOD_REFERENCES, default="current"
            ),
            "keep_quantiles": Field(
                "any",
                "(low, high) quantile band of the candidates kept, or a tuple of bands (a sweep)",
                check=check_keep_quantiles_field,
                default=(0.1, 1.0),
            ),
        },
    ),
    "verifier": CurationOperator(
        select=_verifier,
        knob_fields={"keep_good": "curation.keep_good", "keep_bad": "curation.keep_bad"},
        needs=(contract.Verifier, "is_good"),
        metric_names=VERIFIER_METRICS,
        config_fields={
            "keep_good": number(
                "phi: keep probability of a good candidate", optional=True, sweepable=True, **_PROBABILITY
            ),
            "keep_bad": number(
                "psi: keep probability of a bad candidate", optional=True, sweepable=True, **_PROBABILITY
            ),
        },
    ),
    "watermark_filter": CurationOperator(
        select=_watermark_filter,
        knob_fields={
            "true_positive_rate": "curation.true_positive_rate",
            "false_positive_rate": "curation.false_positive_rate",
        },
        optional_knob_fields={"detected_weight": "curation.detected_weight"},
        metric_names=DETECTION_METRICS,
        model_detector_knob_fields={"watermark_z_threshold": "curation.watermark_z_threshold"},
        config_fields={
            "detector": choice(
                "auto (the model's own detector when it has one) | abstract | model", DETECTORS, default="auto"
            ),
            "true_positive_rate": number("abstract detector's TPR", optional=True, sweepable=True, **_PROBABILITY),
            "false_positive_rate": number("abstract detector's FPR", optional=True, sweepable=True, **_PROBABILITY),
            "watermark_z_threshold": number("LM detector's z threshold", optional=True, sweepable=True),
            "detected_weight": number("weight of a flagged point", optional=True, sweepable=True, **_PROBABILITY),
        },
    ),
    "selection": CurationOperator(
        select=_selection,
        knob_fields={
            "selection_share": "curation.selection_share",
            "target_offset": "curation.target_offset",
        },
        needs=(contract.IsotropicGaussianTruth, "true_mean"),
        config_fields={
            "selection_share": number(
                "alpha: share of the candidates kept (closest to the target)",
                optional=True,
                sweepable=True,
                **_PROBABILITY,
            ),
            "target_offset": number(
                "target = (true_mean + offset) * 1 in every coordinate", optional=True, sweepable=True
            ),
        },
    ),
    # Which rewards a family offers (the built-in ones or its own PreferenceRewards) is checked in make_curation.
    "preference": CurationOperator(
        select=_preference,
        knob_fields={"reward_scale": "curation.reward_scale"},
        # Read by a family reward that declares it (the VAE's class_preference requires it: _check_reward).
        optional_knob_fields={"preferred_class": "curation.preferred_class"},
        metric_names=PREFERENCE_METRICS,
        config_fields={
            "candidates": integer(
                "K: candidates per kept slot, the same setting as curation.oversample (setting one sets both)",
                low=1,
                optional=True,
            ),
            "reward": text(
                "r(x): linear beta sum x | quadratic -beta |x - mu*|^2 (Gaussian truth), or the family's own "
                "(vae: class_preference)",
                optional=True,
            ),
            "reward_scale": number("beta: the reward's scale", optional=True, sweepable=True),
            "preferred_class": integer(
                "c: the class a class reward favours (vae: a feature-classifier class)",
                low=0,
                optional=True,
                sweepable=True,
            ),
        },
    ),
    "self_correction": CurationOperator(
        select=_keep_all,
        transform=_self_correction_transform,
        knob_fields={"correction_strength": "curation.correction_strength"},
        needs=(contract.LocationScale, "location_scale"),
        needs_gaussian_truth=True,
        config_fields={
            "correction_strength": number(
                "gamma: share of the way each candidate moves along the transport map to the truth",
                optional=True,
                sweepable=True,
                **_PROBABILITY,
            ),
        },
    ),
}
CURATIONS = tuple(CURATION_OPERATORS)
# Preference's K candidates per kept slot is the oversampling factor under another name (Ferbach et al.'s K).
CURATION_RULES = (
    same_setting(
        "curation.candidates",
        "curation.oversample",
        "config.curation.candidates: K is curation.oversample under another name; set one of them (got candidates "
        "{when} with oversample {got})",
    ),
)


def operator_config_fields() -> dict[str, Field]:
    """Every operator's own config.curation fields, by dotted path (operators may share a field, declared alike)."""
    fields: dict[str, Field] = {}
    for name, operator in CURATION_OPERATORS.items():
        for field, declaration in operator.config_fields.items():
            if fields.setdefault(f"curation.{field}", declaration) != declaration:
                raise ValueError(f"curation {name!r} declares config.curation.{field} unlike another operator")
    return fields


@dataclasses.dataclass(frozen=True, kw_only=True)
class Curation:
    """Static settings of the curation stage; per-chain strengths arrive in knobs."""

    name: str = "none"
    likelihood_reference: str = "current"  # the model whose likelihood ranks the candidates
    model_detector: bool = False  # watermark_filter with the model's own detector (LM) instead of the abstract one
    reward: str = "linear"  # preference: the reward r(x)
    candidates: int = 1  # preference: K candidates per kept slot

    @property
    def operator(self) -> CurationOperator:
        """This stage's entry of CURATION_OPERATORS."""
        return CURATION_OPERATORS[self.name]

    @property
    def active(self) -> bool:
        return self.operator.select is not None

    @property
    def keeps_generation0_params(self) -> bool:
        """Whether the chain state carries the generation-0 model (the likelihood filter's fixed reference)."""
        return self.operator.reads_likelihood_reference and self.likelihood_reference == "generation0"

    @property
    def metric_names(self) -> tuple[str, ...]:
        if not self.active:
            return ()
        return (KEPT_FRACTION,) + self.operator.metric_names

    def knob_fields(self, block: Any) -> dict[str, str]:
        """Knob name -> config path of this stage's per-chain knobs (optional ones when `block` sets their field)."""
        operator = self.operator
        fields = dict(operator.model_detector_knob_fields if self.model_detector else operator.knob_fields)
        fields.update({k: p for k, p in operator.optional_knob_fields.items() if block.get(_field(p)) is not None})
        return fields

    def select(self, key: jax.Array, model: Any, state: dict, real_part: tuple | None, knobs: dict):
        """(real_keep [P+R+I] or None, synthetic_keep [candidates], metrics) for one chain's generation."""
        real_keep, keep, metrics = self.operator.select(self, key, model, state, real_part, knobs)
        keep = keep.astype(jnp.float32)
        metrics[KEPT_FRACTION] = jnp.mean(keep > 0)
        return real_keep, keep, metrics

    def transform(self, model: Any, state: dict, knobs: dict) -> Any:
        """The candidates state["samples"] after the operator's transform (only called when it has one)."""
        return self.operator.transform(self, model, state, knobs)


def _field(path: str) -> str:
    return path.split(".")[-1]


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


def make_curation(config: Any, model: Any) -> Curation:
    """Validate config.curation for one static group and build the stage; one-line errors name the field."""
    block = config.get("curation")
    if block is None:
        return Curation()
    name = block.name
    operator = CURATION_OPERATORS[name]
    detected = block.get("detected_weight")
    fractional = [w for w in (detected if isinstance(detected, (list, tuple)) else [detected]) if w is not None]
    if any(0 < float(w) < 1 for w in fractional) and contract.fit_weighting(model) == "mask":
        raise ValueError(
            f"config.curation.detected_weight: {detected}; this family's fit reads weights only as in or out of the "
            "pool (fit_weighting = 'mask'), so allowed are 0 and 1"
        )
    if operator.needs and not contract.supports(model, operator.needs[0]):
        hook = operator.needs[1]
        raise ValueError(f"config.curation.name: {name!r} needs a model with `{hook}`; {config.model.name!r} has none")
    if operator.needs_gaussian_truth and not contract.has_gaussian_truth(model):
        raise ValueError(
            f"config.curation.name: {name!r} needs the Gaussian truth N(true_mean * 1, true_std^2 I) (its transport "
            f"map is the Gaussian one); model {config.model.name!r} declares no such truth or a non-Gaussian one"
        )
    detector = block.detector
    has_detector = contract.supports(model, contract.WatermarkDetector)
    detects = operator.model_detector_knob_fields is not None
    if detector == "model" and detects and not has_detector:
        raise ValueError(
            f"config.curation.detector: {detector!r}; allowed: auto (the model's own detector when it has one), "
            f"abstract (true/false positive rate knobs), model (only for models with detect_watermark)"
        )
    stage = Curation(
        name=name,
        likelihood_reference=block.likelihood_reference,
        model_detector=detects and has_detector and detector != "abstract",
    )
    if name == "preference":
        _check_reward(block, model, str(config.model.name))
        stage = dataclasses.replace(stage, reward=block.reward, candidates=int(block.oversample))
    # Which knobs an operator reads can depend on the family (its own watermark detector), so this rule is checked
    # here, with the model, rather than declared; the knobs' values were checked against their declarations.
    for path in stage.knob_fields(block).values():
        if block.get(_field(path)) is None:
            raise ValueError(f"config.{path}: required by curation {name!r}")
    return stage
