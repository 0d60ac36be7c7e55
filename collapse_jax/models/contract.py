"""The model-family contract, written once: every hook a family may implement, as typed Protocols, plus `supports`.

A family is any importable module exposing `make_model(config, settings) -> Model`; see README "Write your own family".
Importable without jax (jax appears only in annotations): analysis and reports read names and Protocols from here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from collapse_jax.models.fields import choice

if TYPE_CHECKING:
    import jax

PyTree = Any
Knobs = dict[str, "jax.Array"]  # one chain's dynamic values (scalars inside vmap)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FamilySettings:
    """Engine settings a family may read, parsed once from the config (`family_settings`) and handed to make_model."""

    # config.curation.good_region_mass: the truth mass a verifier's `is_good` counts as good (default 0.95).
    good_region_mass: float = 0.95
    # config.num_generations: the horizon (families that size buffers by it, e.g. KDE's pool of centres).
    num_generations: int = 0
    # config.curation.reward when config.curation.name is "preference", else None: a family that offers its own
    # rewards (PreferenceRewards) may report a metric of the one in use (the VAE's preferred_class_share).
    preference_reward: str | None = None


def family_settings(config: Any) -> FamilySettings:
    """Parse the engine settings families read; the one place they are validated (one-line ValueError)."""
    block = config.get("curation") or {}
    mass = block.get("good_region_mass", 0.95)
    if isinstance(mass, bool) or not isinstance(mass, numbers.Real) or not 0.0 < mass < 1.0:
        raise ValueError(f"config.curation.good_region_mass: must be a number in (0, 1), got {mass!r}")
    reward = block.get("reward") if block.get("name") == "preference" else None
    return FamilySettings(
        good_region_mass=float(mass),
        num_generations=int(config.get("num_generations", 0)),
        preference_reward=reward if isinstance(reward, str) else None,
    )


class Model(Protocol):
    """Required: what the engine needs from every family (all methods pure, called inside jit(vmap(...))).

    Data is a pytree whose leaves have a leading sample axis; `weights` is a float [n] 0/1 mask over that axis so pools
    keep static shapes. Static settings (shapes, iteration counts) are Python attributes of the frozen model object;
    per-chain dynamic values arrive in `knobs`.
    """

    # Knob name -> dotted config path of its (scalar or list) value, e.g. {"sampling_bias": "model.sampling_bias"}.
    # The engine expands list values into the chain axis and hands each chain its scalar in `knobs[name]`.
    knob_fields: dict[str, str]
    # Names of the per-generation scalars `evaluate` returns (the results contract; checked once at trace time).
    metric_names: tuple[str, ...]
    # Size of a chain's original real training set (generation 0 fits on it).
    real_data_size: int

    def real_data(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """The chain's original real training set, [real_data_size, ...]; deterministic in `key`."""

    def init(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """Params before any fit (the `previous` of generation 0); the pytree structure every fit returns."""

    def fit(self, key: jax.Array, data: PyTree, weights: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """Fit params to the weighted data set; `previous` is the last generation's params (fine-tuning, gen-0 refs)."""

    def sample(self, key: jax.Array, params: PyTree, num_samples: int, knobs: Knobs) -> PyTree:
        """Draw `num_samples` synthetic data points from the fitted model."""

    def evaluate(self, params: PyTree, samples: PyTree, reference: PyTree, knobs: Knobs) -> dict[str, jax.Array]:
        """Scalar metrics of one chain's fit, keyed exactly by `metric_names` (+ `artifact_names`)."""

    def reference(self) -> PyTree:
        """Held-out real data (or its statistics) shared by all chains; built once on the host, closed over."""


class SufficientStatistics(Protocol):
    """Optional: a fit that depends only on additive statistics lets `accumulate` keep O(1) memory per chain."""

    def statistics(self, data: PyTree, weights: jax.Array) -> PyTree:
        """Statistics of the weighted data set."""

    def merge_statistics(self, a: PyTree, b: PyTree) -> PyTree:
        """Statistics of the union of two data sets."""

    def fit_statistics(self, key: jax.Array, statistics: PyTree, knobs: Knobs, previous: PyTree) -> PyTree:
        """Same params as `fit` on the data the statistics summarize."""


class StatisticsSampler(Protocol):
    """Optional (with SufficientStatistics and EvaluateUsesSamples False): `config.model.sampling = "statistics"`."""

    def sample_statistics(self, key: jax.Array, params: PyTree, count: jax.Array, knobs: Knobs) -> PyTree:
        """Statistics of `count` (traced, may be 0) points drawn from the fit, drawn exactly without the points."""


class TruthSampler(Protocol):
    """Optional: a family that knows its true distribution serves the `fresh` regime and `real_inflow`."""

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> PyTree:
        """Draw `num_samples` new real data points from the true distribution."""


class IsotropicGaussianTruth(Protocol):
    """Optional: the truth is N(true_mean * 1, true_std^2 I_dim) over [n, dim] points (curation toward the truth), or
    is centred and scaled so when the family's GaussianTruthFlag says it is not Gaussian.

    The values here only make the names visible to dir(); `supports` checks the family's own attributes.
    """

    dim: int = 0
    true_mean: float = 0.0
    true_std: float = 0.0


class LocationScale(Protocol):
    """Optional: the fit's location and scale, as a Gaussian's mean and covariance (self-correction's transport map
    N(mean, covariance) -> the IsotropicGaussianTruth; curation.name = "self_correction")."""

    def location_scale(self, params: PyTree) -> tuple[jax.Array, jax.Array]:
        """(mean [dim], covariance [dim, dim]) of the fitted model `params`."""


class GaussianTruthFlag(Protocol):
    """Optional flag with IsotropicGaussianTruth: False when true_mean / true_std only centre and scale a truth that is
    not Gaussian (the Gaussian family's mixture and Student-t truths); operators that move points onto the truth by
    the Gaussian transport map then refuse the family. Undeclared: the truth is the Gaussian IsotropicGaussianTruth
    names."""

    truth_is_gaussian: bool


class LogLikelihood(Protocol):
    """Optional: the likelihood filter's score (curation.name = "likelihood_filter")."""

    def log_likelihood(self, params: PyTree, data: PyTree, knobs: Knobs) -> jax.Array:
        """log p(x_i | params) of each point, [n] float."""


class PoolParams(Protocol):
    """Optional: the family's params hold a weighted pool of points (an exact denoiser's training set), so two fits are
    the same distribution when their pools are the same weighted measure, whatever the slot layout (the conformance
    kit compares fits this way)."""

    def pool(self, params: PyTree) -> tuple[jax.Array, jax.Array]:
        """(points [C, ...], weights [C]) of the stored pool; zero-weight slots are padding."""


class Verifier(Protocol):
    """Optional: the verifier's oracle (curation.name = "verifier"); its region holds the good_region_mass setting."""

    def is_good(self, data: PyTree, knobs: Knobs) -> jax.Array:
        """Whether each point lies in the truth's good region, [n] bool."""


class WatermarkDetector(Protocol):
    """Optional: the family's own detector for curation.name = "watermark_filter" (detector "auto" or "model")."""

    def detect_watermark(self, data: PyTree, knobs: Knobs) -> jax.Array:
        """Whether the family's watermark test flags each point, [n] bool."""


class PreferenceRewards(Protocol):
    """Optional: the family's own rewards for curation.name = "preference" (Ferbach et al. 2024), by curation.reward.

    The operator keeps one of each K candidates with Bradley-Terry probability exp(r_i) / sum_j exp(r_j), r =
    curation.reward_scale (beta) * preference_reward(...); the built-in linear / quadratic rewards need
    IsotropicGaussianTruth instead.
    """

    # Reward name -> the curation knobs it reads beyond reward_scale (each config.curation.<knob> must then be set),
    # e.g. {"class_preference": ("preferred_class",)}; the knobs' fields are declared by curation's operator table.
    preference_rewards: dict[str, tuple[str, ...]]

    def preference_reward(self, kind: str, data: PyTree, knobs: Knobs) -> jax.Array:
        """The unscaled reward s(x) of each point under reward `kind`, [n] float (the operator multiplies by beta)."""


class StaticSweepFields(Protocol):
    """Optional: config fields whose tuple values compile one group each (read from the class, before building)."""

    static_sweep_fields: ClassVar[tuple[str, ...]]


class ArtifactOutputs(Protocol):
    """Optional: non-scalar `evaluate` outputs saved per generation under <workdir>/artifacts (texts, images)."""

    artifact_names: tuple[str, ...]


class EvaluateUsesSamples(Protocol):
    """Optional flag: False when `evaluate` ignores its samples (the engine then draws them where they are consumed)."""

    evaluate_uses_samples: bool


class FitWeighting(Protocol):
    """Optional flag: how `fit` reads its weights. "counts" (the default) weighs a point w as w copies of it, fractional
    w included; "draws" draws training points with probability proportional to weight (SGD batches), equal to counts in
    distribution only; "mask" reads a weight only as in or out of the pool, so the engine refuses the features that give
    points fractional weights (config.regime.real_weight, config.curation.detected_weight strictly between 0 and 1)."""

    fit_weighting: str


class RefitTolerance(Protocol):
    """Optional: the conformance kit's tolerance for sample-then-refit (relative to each param's scale), or None when
    params are not identifiable from samples (label-switching mixtures, neural networks)."""

    refit_tolerance: float | None


class SampleReadsParams(Protocol):
    """Optional flag: False when `sample` legitimately ignores the params (an external labeller relabels truth draws);
    the conformance kit then does not require samples to change with the params."""

    sample_reads_params: bool


FIT_WEIGHTINGS = ("counts", "draws", "mask")


def fit_weighting(family: Any) -> str:
    """The FitWeighting flag ("counts" when the family does not declare it)."""
    value = family.fit_weighting if supports(family, FitWeighting) else "counts"
    if value not in FIT_WEIGHTINGS:
        raise ValueError(f"{type(family).__name__}.fit_weighting: {value!r}; allowed are {FIT_WEIGHTINGS}")
    return value


class WorkingBytes(Protocol):
    """Optional: device bytes one chain's generation holds beyond its state, real data and samples (a training loop's
    activations, gradients and optimizer moments); chain_block "auto" adds them to the chain's working set."""

    def working_bytes_per_chain(self, knobs: Knobs) -> int: ...


class EventMetrics(Protocol):
    """Optional: 0/1 metrics whose first generation at 1 is kept exactly whatever config.record_every is."""

    event_metrics: tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ErrorSwitch:
    """How a results column (a swept config field or knob) turns one of Shumailov et al.'s three sources of error on.

    One rule: `off` (the source is off at these values, compared with the lower-cased label, and on at any other),
    `below` (on when the value is below the column or config.model field named here: fewer bins than outcomes),
    `above` (on when the value exceeds this number: a positive smoothing) or `budget` (on below the largest value the
    run sweeps: fewer samples per generation, fewer layers, a lower learning rate).
    """

    source: str  # "statistical", "expressivity", "approximation" or "sampler" (a diffusion sampler's own error)
    off: tuple[str, ...] = ()
    below: str | None = None
    above: float | None = None
    budget: bool = False
    default: Any = None  # the value of a run whose results lack the column (rules off / above)


# A boolean `population_fit` switch (True: each fit sees its target's population, no sample): the statistical error.
POPULATION_FIT_SWITCH = ErrorSwitch(source="statistical", off=("true", "1", "1.0"), default=False)


class ErrorSources(Protocol):
    """Optional: the family's error-source switches, {results column: ErrorSwitch}, read from the class by the
    report's error-sources section (small multiples per switch combination, drift table)."""

    error_source_switches: ClassVar[dict[str, ErrorSwitch]]


class ConfigFields(Protocol):
    """Optional: the family's config.model fields, each declared once (type, range, default, sweepability, doc): the
    only source of their checks (host/config_schema.validate) and defaults (an absent field takes its default)."""

    config_fields: ClassVar[Any]


class ConfigRules(Protocol):
    """Optional: the family's cross-field rules (fields.implies / requires / needs), applied per static group before
    make_model: what one setting implies for another, or requires of it."""

    config_rules: ClassVar[Any]


# The config.model fields the engine reads of every family (declared here, beside the contract they belong to).
SAMPLINGS = ("points", "statistics")
SHARED_MODEL_FIELDS = {
    "sampling": choice("points or exact sufficient statistics", SAMPLINGS, default="points"),
}


# Metric names the engine's curation stage adds to every family's (NaN at generation 0, where nothing is curated):
# part of the results contract, so analysis names them without importing the core.
KEPT_FRACTION, SYNTHETIC_SHARE = "curation_kept_fraction", "synthetic_share"
# A curation field that is one (low, high) pair is stored as two knobs (results' knob names; sweep.py splits it).
PAIR_KNOBS = {"keep_quantiles": ("keep_quantile_low", "keep_quantile_high")}
DETECTION_METRICS = ("detected_synthetic_rate", "detected_real_rate")
# The verifier's effect on the synthetic candidates: share of bad ones before and after (Feng et al.'s p and p').
VERIFIER_METRICS = ("bad_share_candidates", "bad_share_kept")
# Preference curation (Ferbach et al.): the mean reward r(x) of the kept synthetic points.
PREFERENCE_METRICS = ("mean_reward",)

CAPABILITIES = (
    SufficientStatistics,
    StatisticsSampler,
    TruthSampler,
    IsotropicGaussianTruth,
    LocationScale,
    GaussianTruthFlag,
    LogLikelihood,
    Verifier,
    WatermarkDetector,
    PreferenceRewards,
    StaticSweepFields,
    ArtifactOutputs,
    EvaluateUsesSamples,
    WorkingBytes,
    EventMetrics,
    ErrorSources,
    ConfigFields,
    ConfigRules,
)


@functools.cache
def _members(capability: type) -> tuple[tuple[str, bool], ...]:
    """(name, is_method) of each hook a Protocol declares."""
    methods = [name for name, value in vars(capability).items() if inspect.isfunction(value) and name[0] != "_"]
    attributes = [name for name in getattr(capability, "__annotations__", {}) if name[0] != "_"]
    return tuple((name, True) for name in methods) + tuple((name, False) for name in attributes)


def supports(family: Any, capability: type) -> bool:
    """True when `family` (a model or its class) implements every hook of `capability` (methods must be callable)."""
    for name, is_method in _members(capability):
        if is_method and not callable(getattr(family, name, None)):
            return False
        if not is_method and not hasattr(family, name):
            return False
    return True


def evaluate_uses_samples(family: Any) -> bool:
    """The EvaluateUsesSamples flag (True when the family does not declare it)."""
    return family.evaluate_uses_samples if supports(family, EvaluateUsesSamples) else True


def has_gaussian_truth(family: Any) -> bool:
    """Whether the truth is exactly N(true_mean * 1, true_std^2 I): IsotropicGaussianTruth, unless the family's
    GaussianTruthFlag says its truth is only centred and scaled that way."""
    if not supports(family, IsotropicGaussianTruth):
        return False
    return bool(family.truth_is_gaussian) if supports(family, GaussianTruthFlag) else True


def artifact_names(family: Any) -> tuple[str, ...]:
    """The ArtifactOutputs names (none when the family declares none)."""
    return tuple(family.artifact_names) if supports(family, ArtifactOutputs) else ()


def check_metric_names(family: Any, metrics: dict) -> None:
    """One-line ValueError when `evaluate`'s keys differ from metric_names + artifact_names (checked at trace time)."""
    expected = set(family.metric_names) | set(artifact_names(family))
    missing, extra = sorted(expected - set(metrics)), sorted(set(metrics) - expected)
    if missing or extra:
        name = f"{type(family).__module__}.{type(family).__name__}"
        raise ValueError(
            f"{name}.evaluate: its keys must equal metric_names (+ artifact_names); missing {missing}, extra {extra}"
        )
