"""Host-side setup of the `lm` family: the checks that need the corpus or compare fields, the pretrained base model,
and the static settings of its curation hooks (watermark, quality oracle threshold); lm/family.py assembles the model.
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


def check_sizes(config: Any, train_blocks: np.ndarray, max_positions: int) -> None:
    """The checks no declaration or rule can state: they compare a field with the corpus or the network (the imported
    checkpoint's position table); each a one-line ValueError naming the field."""
    model, samples = config.model, config.samples_per_generation
    if 2 * model.block_length + 1 > max_positions:
        raise ValueError(f"config.model.block_length: BOS + 2 blocks must fit {max_positions} positions")
    if model.protocol == "block_continuation" and samples > len(train_blocks):
        raise ValueError(
            f"config.samples_per_generation: {samples} continuations need as many prompts; the corpus has "
            f"{len(train_blocks)} training blocks (block_continuation continues each at most once)"
        )


def make_watermark(config: Any) -> tuple[Watermark, float]:
    """The model's watermark (key, gamma) and the detector's default z threshold (curation.watermark_z_threshold when
    it is one number, else 4.0, Kirchenbauer et al.'s choice) used by the metrics outside a watermark_filter run."""
    watermark = Watermark(key=config.model.watermark_key, gamma=config.model.watermark_gamma)
    threshold = (config.get("curation") or {}).get("watermark_z_threshold")  # None: unset (common.py)
    return watermark, float(threshold) if threshold is not None and np.ndim(threshold) == 0 else 4.0


def pretrained_base(model: Any, data_dir: str, corpus: Any, network: TransformerConfig) -> Any:
    """The base model trained once on the corpus' full training split (cached under data_dir by its settings)."""
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
