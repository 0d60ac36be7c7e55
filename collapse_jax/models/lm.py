"""Language-model collapse: a decoder LM trained on token blocks, whose generated text trains the next generation.

Protocols: Shumailov et al. (Nature 2024) block continuation by beam search; Gerstgrasser et al. (2024) BOS sampling.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.data.text_corpus import TokenBlocks, corpus_config, load_corpus
from collapse_jax.data.tokenizer import TextTokenizer
from collapse_jax.lm import decoding, pretraining, text_metrics, training
from collapse_jax.lm.transformer import TransformerConfig, init_params

PROTOCOLS = ("block_continuation", "unconditional")
DECODINGS = ("beam", "greedy", "sample")
START_FROM = ("previous", "initial", "generation0", "fresh")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
STATISTICS = ("distinct_1", "distinct_2", "repetition_rate", "vocab_used", "rare_token_mass")


@dataclasses.dataclass(frozen=True, eq=False)
class LanguageModel:
    """Static settings; params are {'weights', 'gen0' (scores generated text), 'fits', 'train_loss'[, 'initial']}."""

    network: TransformerConfig
    train_settings: training.TrainSettings
    protocol: str
    decoding: str
    num_beams: int
    repetition_penalty: float
    top_k: int
    top_p: float
    start_from: str
    decode_batch_size: int
    eval_batch_size: int
    train_blocks: np.ndarray  # int32 [n_train, L]: the real training set, identical for every chain
    test_blocks: np.ndarray
    rare_ids: np.ndarray  # bool [vocab]
    banned_ids: np.ndarray  # bool [vocab]: end/padding ids and padded vocabulary rows (fixed-length continuations)
    log_edges: np.ndarray  # log-perplexity bin edges of the generated-text histogram
    tokenizer: TextTokenizer
    # Start of generation 0: imported Hugging Face weights or the base model pretrained on the full training split
    # (host numpy arrays, fetched at run time rather than embedded in the program), or None for a random init.
    pretrained: Any = None
    num_sample_texts: int = 0  # generated blocks per chain per generation kept as the `sample_tokens` artifact
    knob_fields = {"learning_rate": "model.learning_rate", "temperature": "model.temperature"}

    @property
    def real_data_size(self) -> int:
        return self.train_blocks.shape[0]

    @property
    def metric_names(self) -> tuple[str, ...]:
        quantiles = tuple(f"ppl_generated_gen0_q{round(100 * q):02d}" for q in QUANTILES)
        histogram = tuple(f"ppl_generated_gen0_hist_{i:02d}" for i in range(len(self.log_edges) - 1))
        return ("ppl_real_test", "ppl_real_test_batch_mean", "train_loss") + quantiles + histogram + STATISTICS

    @property
    def artifact_names(self) -> tuple[str, ...]:
        """Non-scalar outputs of `evaluate` (saved per generation under <workdir>/artifacts, not metrics)."""
        return ("sample_tokens",) if self.num_sample_texts else ()

    def real_data(self, key: jax.Array, knobs: dict) -> dict:
        """The corpus training blocks (the same for every chain; chains differ by init, batches and decoding)."""
        return {"tokens": jnp.asarray(self.train_blocks)}

    def _initial_weights(self, key: jax.Array) -> Any:
        if self.pretrained is not None:
            return pretraining.host_constant(self.pretrained)
        return init_params(key, self.network)

    def init(self, key: jax.Array, knobs: dict) -> dict:
        """Pretrained or random weights; `gen0` is a placeholder until the first fit overwrites it."""
        weights = self._initial_weights(key)
        params = {"weights": weights, "gen0": weights, "fits": jnp.int32(0), "train_loss": jnp.float32(0.0)}
        if self.start_from == "initial":
            params["initial"] = weights
        return params

    def fit(self, key: jax.Array, data: dict, weights: jax.Array, knobs: dict, previous: dict) -> dict:
        """Train from the chosen start on the weighted blocks (AdamW, cosine schedule, all steps in one scan)."""
        first = previous["fits"] == 0
        init_key, train_key = jax.random.split(key)
        start = {
            "previous": lambda: previous["weights"],
            "initial": lambda: previous["initial"],
            "generation0": lambda: _select(first, previous["weights"], previous["gen0"]),
            "fresh": lambda: init_params(init_key, self.network),
        }[self.start_from]()
        bos = self.tokenizer.bos_id
        new, losses = training.train(
            train_key, start, self.network, self.train_settings, data["tokens"], weights, knobs["learning_rate"], bos
        )
        tail = max(1, len(range(self.train_settings.num_steps)) // 10)
        params = dict(previous, weights=new, gen0=_select(first, new, previous["gen0"]), fits=previous["fits"] + 1)
        params["train_loss"] = jnp.mean(losses[-tail:])
        return params

    def sample(self, key: jax.Array, params: dict, num_samples: int, knobs: dict) -> dict:
        """num_samples blocks of L new tokens: continuations of training blocks, or unconditional samples from BOS."""
        length = self.train_blocks.shape[1]
        prompt_key, decode_key = jax.random.split(key)
        bos = jnp.full((num_samples, 1), self.tokenizer.bos_id, jnp.int32)
        if self.protocol == "block_continuation":
            # Shumailov continues every training block once; a smaller M takes a random subset of prompts.
            if num_samples == self.real_data_size:
                prompts = jnp.asarray(self.train_blocks)
            else:
                chosen = jax.random.permutation(prompt_key, self.real_data_size)[:num_samples]
                prompts = jnp.asarray(self.train_blocks)[chosen]
            prefix = jnp.concatenate([bos, prompts], axis=1)
        else:
            prefix = bos
        return {"tokens": self._decode(decode_key, params["weights"], prefix, length, knobs["temperature"])}

    def _decode(self, key: jax.Array, weights: Any, prefix: jax.Array, length: int, temperature: jax.Array):
        """Decode in chunks of decode_batch_size prompts (lax.map) so beam caches stay bounded."""
        count, chunk = prefix.shape[0], min(self.decode_batch_size, prefix.shape[0])
        padded = -(-count // chunk) * chunk
        chunks = jnp.pad(prefix, ((0, padded - count), (0, 0))).reshape(-1, chunk, prefix.shape[1])
        keys = jax.random.split(key, chunks.shape[0])
        banned = jnp.asarray(self.banned_ids)

        def one(args):
            chunk_key, chunk_prefix = args
            if self.decoding == "beam":
                return decoding.beam_search(
                    weights, self.network, chunk_prefix, length, self.num_beams, self.repetition_penalty, banned
                )
            return decoding.generate(
                chunk_key, weights, self.network, chunk_prefix, length, temperature, self.decoding == "greedy",
                self.top_k, self.top_p, self.repetition_penalty, banned,
            )  # fmt: skip

        return jax.lax.map(one, (keys, chunks)).reshape(padded, length)[:count]

    def reference(self) -> dict:
        """Real test blocks and the rare-id mask, shared by every chain."""
        return {"test_tokens": jnp.asarray(self.test_blocks), "rare_ids": jnp.asarray(self.rare_ids)}

    def sequence_nll(self, weights: Any, tokens: jax.Array) -> jax.Array:
        """Mean next-token NLL of each block [n, L] given BOS -> [n] (log of its per-sequence perplexity)."""
        bos = self.tokenizer.bos_id
        return -jnp.mean(training.batched_token_log_probs(weights, self.network, tokens, bos, self.eval_batch_size), 1)

    def evaluate(self, params: dict, samples: dict, reference: dict, knobs: dict) -> dict:
        """Test perplexity (token-weighted and Shumailov's batch mean), gen-0 scores of the samples, text statistics."""
        test_nll = self.sequence_nll(params["weights"], reference["test_tokens"])
        # Shumailov et al. report exp(mean over evaluation batches of the batch-mean loss); the last batch may be short.
        batch_ids = jnp.arange(test_nll.shape[0]) // self.eval_batch_size
        num_batches = int(np.ceil(test_nll.shape[0] / self.eval_batch_size))
        batch_sums = jax.ops.segment_sum(test_nll, batch_ids, num_batches)
        batch_sizes = jax.ops.segment_sum(jnp.ones_like(test_nll), batch_ids, num_batches)
        generated_nll = self.sequence_nll(params["gen0"], samples["tokens"])
        metrics = {
            # All blocks have L tokens, so the token-weighted mean NLL is the mean over blocks.
            "ppl_real_test": jnp.exp(jnp.mean(test_nll)),
            "ppl_real_test_batch_mean": jnp.exp(jnp.mean(batch_sums / batch_sizes)),
            "train_loss": params["train_loss"],
        }
        metrics.update(text_metrics.perplexity_summary(generated_nll, QUANTILES, self.log_edges, "ppl_generated_gen0"))
        metrics.update(text_metrics.text_statistics(samples["tokens"], reference["rare_ids"]))
        if self.num_sample_texts:
            # With M = every training block, text i continues training block i: fixed prompts across generations.
            metrics["sample_tokens"] = samples["tokens"][: self.num_sample_texts]
        return metrics


def _select(condition: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def _choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"config.model.{field}: {value!r} is not allowed; use one of {', '.join(allowed)}")
    return value


def make_model(config: Any) -> LanguageModel:
    """Validate `config.model`, build (or reuse) the token-block corpus, optionally import an OPT checkpoint."""
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
    for name in ("pretrain_epochs", "num_sample_texts"):
        if not (isinstance(model.get(name, 0), int) and model.get(name, 0) >= 0):
            raise ValueError(f"config.model.{name}: must be an integer >= 0, got {model[name]!r}")
    if not model.get("num_sample_texts", 0) <= config.samples_per_generation:
        raise ValueError(f"config.model.num_sample_texts: at most samples_per_generation, got {model.num_sample_texts}")
    pretrained, network = None, None
    checkpoint = model.get("hf_checkpoint")
    if checkpoint is not None:
        from collapse_jax.lm.hf_import import load_opt_checkpoint

        network, pretrained = load_opt_checkpoint(checkpoint, dtype=model.dtype)
    data_dir = os.path.expanduser(model.data_dir)
    corpus = model_corpus(model)
    tokenizer = corpus.tokenizer
    train_blocks = corpus.blocks["train"][: model.max_train_blocks or None]
    test_blocks = corpus.blocks["test"][: model.max_test_blocks or None]
    if network is None:
        network = TransformerConfig(
            vocab_size=tokenizer.vocab_size,
            num_layers=model.num_layers,
            hidden_size=model.hidden_size,
            num_heads=model.num_heads,
            mlp_size=model.mlp_size,
            max_positions=2 * model.block_length + 1,
            activation=model.activation,
            dtype=model.dtype,
        )
    if 2 * model.block_length + 1 > network.max_positions:
        raise ValueError(f"config.model.block_length: BOS + 2 blocks must fit {network.max_positions} positions")
    samples = config.samples_per_generation
    if protocol == "block_continuation" and samples > len(train_blocks):
        raise ValueError(
            f"config.samples_per_generation: {samples} continuations need as many prompts; the corpus has "
            f"{len(train_blocks)} training blocks (block_continuation continues each at most once)"
        )
    if checkpoint is None and model.get("pretrain_epochs", 0):
        pretrained = _pretrained_base(model, data_dir, corpus, network)
    steps = -(-model.epochs * samples // model.batch_size)
    banned = np.zeros(network.vocab_size, bool)
    banned[[tokenizer.eos_id, tokenizer.pad_id, tokenizer.bos_id]] = True
    banned[tokenizer.vocab_size :] = True
    return LanguageModel(
        network=network,
        train_settings=training.TrainSettings(
            batch_size=model.batch_size,
            num_steps=steps,
            warmup_steps=int(model.warmup_fraction * steps),
            end_learning_rate=model.end_learning_rate,
            weight_decay=model.weight_decay,
            min_valid=samples,
        ),
        protocol=protocol,
        decoding=decoding_name,
        num_beams=int(model.num_beams),
        repetition_penalty=float(model.repetition_penalty),
        top_k=int(model.top_k),
        top_p=float(model.top_p),
        start_from=start_from,
        decode_batch_size=int(model.decode_batch_size),
        eval_batch_size=int(model.eval_batch_size),
        train_blocks=train_blocks,
        test_blocks=test_blocks,
        rare_ids=text_metrics.rare_token_ids(train_blocks, network.vocab_size, model.rare_mass_fraction),
        banned_ids=banned,
        log_edges=np.linspace(0.0, np.log(model.histogram_max_perplexity), model.histogram_bins + 1),
        tokenizer=tokenizer,
        pretrained=pretrained,
        num_sample_texts=int(model.get("num_sample_texts", 0)),
    )


def model_corpus(model: Any) -> TokenBlocks:
    """The token-block corpus (and tokenizer) that `config.model` names, built once and cached under its data_dir."""
    settings = corpus_config(
        corpus_dir=model.corpus_dir,
        pattern=model.corpus_pattern,
        block_length=model.block_length,
        vocab_size=model.vocab_size,
        tokenizer_dir=model.get("hf_checkpoint"),
        test_works=model.test_works,
        validation_works=model.validation_works,
    )
    return load_corpus(os.path.expanduser(model.data_dir), settings)


def _pretrained_base(model: Any, data_dir: str, corpus: Any, network: TransformerConfig) -> Any:
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
