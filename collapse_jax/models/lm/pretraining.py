"""The base model every chain fine-tunes (Shumailov et al.'s pretrained OPT, in miniature): trained once on the host.

The weights are cached under the data dir by a hash of every setting that decides them, like the corpus itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from collapse_jax.models.lm import training
from collapse_jax.models.lm.transformer import Params, TransformerConfig, init_params

# Bump when the training procedure changes in a way the settings below do not capture (invalidates old caches).
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainSettings:
    """How the base model is trained on the corpus' full training split (one run, one seed)."""

    epochs: int
    batch_size: int
    learning_rate: float
    warmup_fraction: float = 0.02
    end_learning_rate: float = 1e-6
    weight_decay: float = 0.0
    seed: int = 0


def host_constant(tree: Any) -> Any:
    """`tree` (host numpy arrays) fetched by a callback when the program runs, so it is not a compile-time constant.

    The engine closes over the model, and closed-over arrays are embedded in the HLO (measured: a 64 MB matrix gives
    134 MB of HLO text); OPT-125m weights would be ~500 MB of program. A callback without operands is not batched by
    vmap, so it runs once per chain block.
    """
    shapes = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), tree)
    return jax.pure_callback(lambda: tree, shapes)


def cache_path(data_dir: str | os.PathLike, corpus_name: str, network: TransformerConfig, settings: PretrainSettings):
    """<data_dir>/lm_pretrained/<corpus>_<hash of network + settings>.msgpack."""
    record = {
        "corpus": corpus_name,
        "network": dataclasses.asdict(network),
        "settings": dataclasses.asdict(settings),
        "format": FORMAT_VERSION,
    }
    digest = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]
    return Path(data_dir) / "lm_pretrained" / f"{corpus_name}_{digest}.msgpack"


def pretrain(
    blocks: np.ndarray, network: TransformerConfig, settings: PretrainSettings, bos_id: int
) -> tuple[Params, np.ndarray]:
    """Train a random init on every block for `epochs` (AdamW, warmup-cosine); returns params and per-step losses."""
    steps = -(-settings.epochs * len(blocks) // settings.batch_size)
    train_settings = training.TrainSettings(
        batch_size=settings.batch_size,
        num_steps=steps,
        warmup_steps=int(settings.warmup_fraction * steps),
        end_learning_rate=settings.end_learning_rate,
        weight_decay=settings.weight_decay,
        min_valid=len(blocks),
    )
    init_key, train_key = jax.random.split(jax.random.key(settings.seed))

    @jax.jit
    def run(tokens):
        start = init_params(init_key, network)
        weights = jnp.ones(tokens.shape[0], jnp.float32)
        return training.train(
            train_key, start, network, train_settings, tokens, weights, jnp.float32(settings.learning_rate), bos_id
        )

    # The blocks are an argument, not a closure constant: the full split would otherwise be embedded in the program.
    params, losses = run(jnp.asarray(blocks))
    return jax.tree.map(np.asarray, params), np.asarray(losses)


def load_or_pretrain(
    path: Path,
    blocks: np.ndarray,
    test_blocks: np.ndarray,
    network: TransformerConfig,
    settings: PretrainSettings,
    bos_id: int,
) -> Params:
    """The cached base model at `path`, training and saving it first (atomically) when it is missing.

    A JSON record beside it keeps the training time, loss and zero-shot test perplexity (Shumailov: 115 for OPT-125m).
    """
    record_path = path.with_suffix(".json")
    if path.exists():
        if record_path.exists():
            logging.info("Base LM %s: %s", path.name, record_path.read_text())
        return flax.serialization.msgpack_restore(path.read_bytes())
    steps = -(-settings.epochs * len(blocks) // settings.batch_size)
    logging.info(
        "Pretraining the base LM: %d blocks x %d epochs = %d steps -> %s", len(blocks), settings.epochs, steps, path
    )
    started = time.perf_counter()
    params, losses = pretrain(blocks, network, settings, bos_id)
    if not np.all(np.isfinite(losses)):
        raise ValueError("config.model.pretrain_learning_rate: pretraining diverged (non-finite loss); lower it")
    tail = max(1, steps // 20)
    test_nll = -training.batched_token_log_probs(params, network, jnp.asarray(test_blocks), bos_id, 64).mean()
    record = {
        "seconds": round(time.perf_counter() - started, 1),
        "steps": steps,
        "train_loss_first_5pct": float(losses[:tail].mean()),
        "train_loss_last_5pct": float(losses[-tail:].mean()),
        "zero_shot_test_perplexity": float(np.exp(test_nll)),
    }
    logging.info("Pretrained base LM: %s", record)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Temporary file + rename: a concurrent or killed run never leaves a half-written cache.
    for target, payload in (
        (record_path, json.dumps(record).encode()),
        (path, flax.serialization.msgpack_serialize(params)),
    ):
        temporary = target.with_name(f"{target.name}.tmp{os.getpid()}")
        temporary.write_bytes(payload)
        os.replace(temporary, target)
    return params
