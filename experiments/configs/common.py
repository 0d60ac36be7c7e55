"""The run fields every experiment config shares, written (and commented) once; a config sets only what is its own.

`get_config()` returns the shared fields with their defaults: seeds and sizes, the regime basics, chunking, the chain
block, checkpoints, plots, TensorBoard, an inactive `curation` block and the `report` block, so every config accepts
the same `--config.<field>=...` overrides (e.g. `--config.curation.name=likelihood_filter`). `finish(config)` lets
every sweepable or optional field take a single value or a tuple, in Python as on the command line. Not a config
itself (no `model` family): experiments/configs/gaussian.py is the smallest complete one. Declarations of every field
(type, range, doc): collapse_jax/host/config_schema.py (a curation operator's own fields: its entry of the table in
collapse_jax/core/curation.py).
"""

import ml_collections

from collapse_jax.host import config_schema


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Independent seeds per knob combination: a count n (seeds 0..n-1) or an explicit tuple of distinct seeds.
    config.seeds = 100
    # Generations after the first fit; results have num_generations + 1 columns (column 0 = fit on real data).
    config.num_generations = 100
    # M: points each generation trains on (and synthetic points each model draws); a tuple compiles once per value.
    config.samples_per_generation = 100
    # Root of every chain's random stream: key = fold_in(fold_in(root_seed, seed), generation).
    config.root_seed = 0

    config.regime = ml_collections.ConfigDict()
    # replace | accumulate | accumulate_subsample | fresh; a tuple sweeps it (one compile per value, one results table).
    config.regime.name = "replace"
    # rho: share of each generation's M points that is real data (a tuple sweeps it inside one compile).
    config.regime.real_fraction = 0.0
    # Keep the raw accumulated pool even when the model has sufficient statistics (slower; for cross-checks; families
    # without sufficient statistics always keep it).
    config.regime.keep_raw_pool = False

    # The model block: each config names its family (a module in collapse_jax/models/) and sets its fields.
    config.model = ml_collections.ConfigDict()

    # K: generations per compiled chunk; the host writes metrics and checkpoints between chunks.
    config.chunk_generations = 10
    # B: chains run in fixed blocks of B (padded); a chain's bits depend on B, not on how many chains run beside it.
    # "auto": the largest block within a per-device memory budget (fast; its bits can change with the chain count);
    # an integer fixes the bits across chain counts, devices and shards.
    config.chain_block = "auto"
    # Keep every k-th generation's metrics on disk (0 and the last always); event generations stay exact.
    config.record_every = 1
    # Save a checkpoint every this many generations (rounded up to a chunk boundary).
    config.checkpoint_every = 10
    # Keep the newest this many checkpoints, plus every keep_period-th generation for later analysis (None: none).
    config.max_checkpoints_to_keep = 2
    config.keep_period = None
    # Figures and report.md after the run (experiments/main.py; experiments.plot redraws them at any time).
    config.make_plots = True
    # TensorBoard summaries into <workdir>/tensorboard after every chunk (needs tensorboardX; may change on a resume).
    config.tensorboard = False

    # Curation between sampling and the next pool (collapse_jax/core/curation.py; README "Mitigations"). Inactive
    # here: a run with this block as written computes exactly what it would without one. Knob fields left None are
    # unset. A new curation operator's fields go here too (None), so `--config.curation.<field>=` can set them.
    config.curation = ml_collections.ConfigDict()
    # none | likelihood_filter | verifier | watermark_filter | selection | preference; a tuple compiles once per value.
    config.curation.name = "none"
    # k: draw k * M synthetic candidates, keep the first survivors up to M.
    config.curation.oversample = 1
    # likelihood_filter: rank by the chain's current model or the generation-0 model.
    config.curation.likelihood_reference = "current"
    # likelihood_filter: (low, high) quantile band of the candidates kept; a tuple of pairs sweeps it.
    config.curation.keep_quantiles = (0.1, 1.0)
    # verifier (Feng et al.): phi, psi = keep probability of a good / bad candidate (chain knobs; required there).
    config.curation.keep_good = None
    config.curation.keep_bad = None
    # The truth mass a verifier's `is_good` counts as good.
    config.curation.good_region_mass = 0.95
    # watermark_filter: auto (the model's own detector when it has one) | abstract | model.
    config.curation.detector = "auto"
    # watermark_filter, abstract detector: flag probability of a synthetic / a detectable real point (chain knobs).
    config.curation.true_positive_rate = None
    config.curation.false_positive_rate = None
    # watermark_filter, the LM's own detector: z-score threshold (None: 4.0, Kirchenbauer et al.).
    config.curation.watermark_z_threshold = None
    # watermark_filter: the weight a flagged point keeps (None: 0, removed; a chain knob when set).
    config.curation.detected_weight = None
    # selection (Qiao et al.): alpha, the share of candidates kept closest to the target (set oversample = 1/alpha to
    # keep M), and the target's offset from the truth's mean in every coordinate (chain knobs; required there).
    config.curation.selection_share = None
    config.curation.target_offset = None
    # preference (Ferbach et al.): K candidates per kept slot (must equal oversample), the reward r(x) (linear |
    # quadratic; the VAE's class_preference) and its scale beta (a chain knob); class_preference's target class c
    # (a chain knob).
    config.curation.candidates = None
    config.curation.reward = None
    config.curation.reward_scale = None
    config.curation.preferred_class = None
    # self_correction (Gillman et al.): gamma, the share of the way each candidate moves along the optimal transport
    # map to the truth (a chain knob; required there; Gaussian family only).
    config.curation.correction_strength = None

    # Figures and breakdowns of report.md (collapse_jax/analysis/breakdown.py; may change on a resume).
    config.report = ml_collections.ConfigDict()
    # Metrics that get strength figures (None: every metric of the run but the bookkeeping ones).
    config.report.metrics = None
    # Breakdown band: the final median leaves +-tolerance x its generation-0 value; one number or {metric: band}.
    config.report.collapse_tolerance = 0.5
    # Strength axes (None: every swept numeric knob).
    config.report.knobs = None
    # {knob: "higher_is_safer" | "lower_is_safer"} (None: decided from the data).
    config.report.directions = None
    # ((knob, value, label), ...) vertical lines on the strength figures (e.g. Feng et al.'s p*).
    config.report.reference_lines = None
    return finish(config)


def finish(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Let every sweepable, optional or multi-typed field hold any value (a single value or a tuple); returns config.

    ml_collections locks a field to the type of its first value, so `config.regime.name = "accumulate"` after a tuple
    raised a TypeError, and `--config.model.sampling_bias='(1.0, 0.8)'` could not override a float. A FieldReference
    of type `object` accepts either; config_flags parses its overrides as Python literals (a bare word stays a string).
    """
    fields, _ = config_schema.declared_fields(config.model.get("name"))
    for path, field in fields.items():
        *parents, leaf = path.split(".")
        node = config
        for part in parents:
            node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
        if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
            continue
        flexible = field.sweepable or field.optional or field.kind in ("any", "strs")
        if flexible and node.get_type(leaf) is not object:
            value = node[leaf]
            with node.ignore_type():
                node[leaf] = ml_collections.FieldReference(value, field_type=object)
    return config
