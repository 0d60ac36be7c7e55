"""Host-side setup of the `lm` family: config validation, the corpus, the pretrained base model, and the static
settings of its curation hooks (watermark, quality oracle threshold); models/lm.py assembles the model from these.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from collapse_jax.data.text_corpus import TokenBlocks, model_corpus  # noqa: F401  (model_corpus: re-exported)
from collapse_jax.models.lm import pretraining, training
from collapse_jax.models.lm.transformer import TransformerConfig
from collapse_jax.models.lm.watermark import Watermark

PROTOCOLS = ("block_continuation", "unconditional")
DECODINGS = ("beam", "greedy", "sample")
START_FROM = ("previous", "initial", "generation0", "fresh")
QUALITY_BLOCKS = 4096  # at most this many validation blocks set the quality oracle's threshold


def _choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"config.model.{field}: {value!r} is not allowed; use one of {', '.join(allowed)}")
    return value


def check_model_config(config: Any) -> tuple[str, str, str]:
    """Validate `config.model` (one-line errors naming the field); returns (protocol, decoding, start_from)."""
    model = config.model
    protocol = _choice(model.protocol, PROTOCOLS, "protocol")
    decoding_name = _choice(model.decoding, DECODINGS, "decoding")
    start_from = _choice(model.start_from, START_FROM, "start_from")
    for name in ("num_layers", "hidden_size", "num_heads", "mlp_size", "block_length", "batch_size", "epochs"):
        if name in model and model[name] is not None and not (isinstance(model[name], int) and model[name] >= 1):
            raise ValueError(f"config.model.{name}: must be a positive integer, got {model[name]!r}")
    if decoding_name == "beam" and model.num_beams < 1:
        raise ValueError(f"config.model.num_beams: must be >= 1 for beam search, got {model.num_beams!r}")
    if not model.repetition_penalty > 0:
        raise ValueError(f"config.model.repetition_penalty: must be > 0, got {model.repetition_penalty!r}")
    for value in np.atleast_1d(model.temperature):
        if not value > 0:
            raise ValueError(f"config.model.temperature: must be > 0, got {value!r}")
    for value in np.atleast_1d(model.learning_rate):
        if not value > 0:
            raise ValueError(f"config.model.learning_rate: must be > 0, got {value!r}")
    for value in np.atleast_1d(model.get("watermark_bias", 0.0)):
        if isinstance(value, (bool, np.bool_)) or not (isinstance(value, (int, float, np.number)) and value >= 0):
            raise ValueError(f"config.model.watermark_bias: must be a number >= 0 (delta), got {value!r}")
    for name in ("pretrain_epochs", "num_sample_texts"):
        if not (isinstance(model.get(name, 0), int) and model.get(name, 0) >= 0):
            raise ValueError(f"config.model.{name}: must be an integer >= 0, got {model[name]!r}")
    if not model.get("num_sample_texts", 0) <= config.samples_per_generation:
        raise ValueError(f"config.model.num_sample_texts: at most samples_per_generation, got {model.num_sample_texts}")
    return protocol, decoding_name, start_from


def make_watermark(config: Any) -> tuple[Watermark, float]:
    """The model's watermark (key, gamma) and the detector's default z threshold (curation.watermark_z_threshold when
    it is one number, else 4.0, Kirchenbauer et al.'s choice) used by the metrics outside a watermark_filter run."""
    model = config.model
    defaults = Watermark()
    watermark = Watermark(
        key=model.get("watermark_key", defaults.key), gamma=model.get("watermark_gamma", defaults.gamma)
    )
    threshold = (config.get("curation") or {}).get("watermark_z_threshold")  # None: unset (common.py)
    return watermark, float(threshold) if threshold is not None and np.ndim(threshold) == 0 else 4.0


def pretrained_base(model: Any, data_dir: str, corpus: Any, network: TransformerConfig) -> Any:
    """The base model trained once on the corpus' full training split (cached under data_dir by its settings)."""
    if not (isinstance(model.pretrain_batch_size, int) and model.pretrain_batch_size >= 1):
        raise ValueError(
            f"config.model.pretrain_batch_size: must be a positive integer, got {model.pretrain_batch_size!r}"
        )
    if not model.pretrain_learning_rate > 0:
        raise ValueError(f"config.model.pretrain_learning_rate: must be > 0, got {model.pretrain_learning_rate!r}")
    settings = pretraining.PretrainSettings(
        epochs=model.pretrain_epochs,
        batch_size=model.pretrain_batch_size,
        learning_rate=float(model.pretrain_learning_rate),
        end_learning_rate=float(model.end_learning_rate),
        weight_decay=float(model.weight_decay),
    )
    path = pretraining.cache_path(data_dir, corpus.directory.parent.name, network, settings)
    blocks = corpus.blocks
    return pretraining.load_or_pretrain(
        path, blocks["train"], blocks["test"], network, settings, corpus.tokenizer.bos_id
    )


def quality_threshold(
    config: Any, mass: float, pretrained: Any, network: TransformerConfig, corpus: Any
) -> float | None:
    """The LM verifier's oracle threshold: the good_region_mass quantile of the base model's per-block log-perplexity
    over held-out real text (validation works, at most QUALITY_BLOCKS blocks); None when no curation uses `is_good`.

    A block x of L tokens is good iff -log p_base(x) / L <= this threshold: the set {x: p_base(x) >= c} is the high
    density region of the base model (our stand-in for the true text distribution), and c is set so that it holds
    good_region_mass of real text, as the HDR holding that mass does for the other families' truths.
    """
    block = config.get("curation") or {}
    names = block.get("name", "none")
    if "verifier" not in (names if isinstance(names, (tuple, list)) else (names,)):
        return None
    if pretrained is None:
        raise ValueError(
            "config.curation.name: the LM's verifier scores text with a base model; set config.model.pretrain_epochs "
            "> 0 or config.model.hf_checkpoint"
        )
    blocks = corpus.blocks["validation"][:QUALITY_BLOCKS]
    if not len(blocks):
        raise ValueError("config.model.validation_works: the LM's verifier needs held-out validation text; use >= 1")
    batch = min(int(config.model.eval_batch_size), len(blocks))
    bos = corpus.tokenizer.bos_id
    score = jax.jit(lambda weights, tokens: training.batched_token_log_probs(weights, network, tokens, bos, batch))
    log_perplexity = -np.mean(np.asarray(score(pretrained, blocks)), axis=1)
    # The smallest observed value with a share >= mass of the blocks at or below it (the empirical quantile).
    return float(np.quantile(log_perplexity, mass, method="inverted_cdf"))
