"""Language-model collapse: a decoder LM trained on token blocks, whose generated text trains the next generation.

Protocols: Shumailov et al. (Nature 2024) block continuation by beam search; Gerstgrasser et al. (2024) BOS sampling.

Three sources of error (Shumailov et al.; experiments/configs/error_sources_lm.py sweeps them):
- statistical approximation: an LM has no exact population fit (no closed-form fit of a transformer to another
  transformer's text distribution), so there is no `population_fit` switch; the surrogate is a larger M
  (samples_per_generation) at a fixed step budget (model.steps_per_generation), which needs as many training blocks
  under block_continuation (one continuation per prompt) or protocol = unconditional.
- functional expressivity: `model.num_layers` below the default (a static sweep field: one compile per depth). Each
  depth has its own pretrained base model: the cache key hashes the whole TransformerConfig (pretraining.cache_path).
  Ignored with hf_checkpoint (the checkpoint's depth is the model's).
- functional approximation: the training budget, under the LM's existing names (the VAE's in brackets):
  `model.steps_per_generation` [steps_per_generation] (optional; unset: ceil(epochs * M / batch_size)),
  `model.learning_rate` [learning_rate] (a chain knob), `model.start_from` [train_from] = fresh (from scratch) or
  previous (fine-tune; also initial, generation0), a static sweep field.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.data.tokenizer import TextTokenizer
from collapse_jax.models.contract import ErrorSwitch, FamilySettings, family_settings
from collapse_jax.models.fields import at_most, choice, integer, number, text
from collapse_jax.models.lm import decoding, pretraining, text_metrics, training
from collapse_jax.models.lm.model_setup import (
    DECODINGS,
    PROTOCOLS,
    START_FROM,
    check_sizes,
    make_watermark,
    model_corpus,
    pretrained_base,
    quality_threshold,
)
from collapse_jax.models.lm.transformer import ACTIVATIONS, TransformerConfig, init_params
from collapse_jax.models.lm.watermark import WATERMARK_METRICS, Watermark, detection_metrics

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
STATISTICS = ("distinct_1", "distinct_2", "repetition_rate", "vocab_used", "rare_token_mass")


@dataclasses.dataclass(frozen=True, eq=False)
class LanguageModel:
    """Static settings; params are {'weights', 'gen0' (scores generated text), 'fits', 'train_loss'[, 'initial']}."""

    # contract.FitWeighting: each SGD step draws its batch with probability proportional to weight.
    fit_weighting = "draws"

    # Tuple values of these fields compile one group each (the capacity and from-scratch error-source switches).
    static_sweep_fields: ClassVar[tuple[str, ...]] = ("model.num_layers", "model.start_from")
    # Error-source switches by budget (no truth outside the family, no exact fit): the smaller value swept turns the
    # source on (fewer samples per generation, fewer layers, a lower learning rate).
    error_source_switches: ClassVar[dict[str, ErrorSwitch]] = {
        "samples_per_generation": ErrorSwitch(source="statistical", budget=True),
        "num_layers": ErrorSwitch(source="expressivity", budget=True),
        "learning_rate": ErrorSwitch(source="approximation", budget=True),
    }

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
    # Kirchenbauer et al.'s green list (static key, gamma); decoding applies it only when the config sets
    # model.watermark_bias (then a chain knob, delta), and the detector's z threshold outside a watermark_filter run.
    watermark: Watermark = Watermark()
    watermark_z_threshold: float = 4.0
    # is_good's log-perplexity threshold under the base model (model_setup.quality_threshold); None: no verifier.
    good_log_perplexity: float | None = None
    knob_fields: dict = dataclasses.field(
        default_factory=lambda: {"learning_rate": "model.learning_rate", "temperature": "model.temperature"}
    )

    @property
    def watermarked(self) -> bool:
        return "watermark_bias" in self.knob_fields

    @property
    def real_data_size(self) -> int:
        return self.train_blocks.shape[0]

    @property
    def metric_names(self) -> tuple[str, ...]:
        quantiles = tuple(f"ppl_generated_gen0_q{round(100 * q):02d}" for q in QUANTILES)
        histogram = tuple(f"ppl_generated_gen0_hist_{i:02d}" for i in range(len(self.log_edges) - 1))
        watermark = WATERMARK_METRICS if self.watermarked else ()
        return (
            ("ppl_real_test", "ppl_real_test_batch_mean", "train_loss") + quantiles + histogram + STATISTICS + watermark
        )

    # config.model fields, declared once: the only source of their defaults and checks (config_schema.validate).
    config_fields = {
        "data_dir": text("where the token-block corpus is built and cached"),
        "corpus_dir": text("folder of .txt works (None: Shakespeare)", optional=True),
        "corpus_pattern": text("glob of corpus files inside corpus_dir"),
        "test_works": integer("whole works held out for the test split", low=1),
        "validation_works": integer("whole works held out for the validation split", low=0),
        "block_length": integer("L: tokens per block", low=1),
        "vocab_size": integer("byte-level BPE vocabulary", low=1),
        "max_train_blocks": integer("first training blocks kept (0: all)", low=0),
        "max_test_blocks": integer("first test blocks kept (0: all)", low=0),
        "hf_checkpoint": text("local Hugging Face OPT directory (None: random init)", optional=True),
        "pretrain_epochs": integer("epochs of the cached base model (0: none)", low=0, default=0),
        "pretrain_batch_size": integer("batch of the base model's pretraining", low=1),
        "pretrain_learning_rate": number("peak learning rate of the pretraining", low=0.0, low_open=True),
        "num_layers": integer("decoder layers (static: one compile and base model per value)", low=1, sweepable=True),
        "hidden_size": integer("model width", low=1),
        "num_heads": integer("attention heads", low=1),
        "mlp_size": integer("MLP width", low=1),
        "activation": choice("MLP activation", tuple(ACTIVATIONS)),
        "dtype": choice("compute dtype", ("float32", "bfloat16")),
        "epochs": integer("epochs over M blocks per generation", low=1),
        "steps_per_generation": integer(
            "training steps per generation (None: ceil(epochs * M / batch_size))", low=1, optional=True
        ),
        "batch_size": integer("training batch", low=1),
        "learning_rate": number("peak AdamW learning rate", low=0.0, low_open=True, sweepable=True),
        "warmup_fraction": number("share of steps warming up", low=0.0, high=1.0),
        "end_learning_rate": number("cosine floor", low=0.0),
        "weight_decay": number("AdamW weight decay", low=0.0),
        "start_from": choice("where each generation's training starts (static)", START_FROM, sweepable=True),
        "protocol": choice("block_continuation or unconditional", PROTOCOLS),
        "decoding": choice("beam, greedy or sample", DECODINGS),
        "num_beams": integer("beams of beam search", low=1),
        "repetition_penalty": number("CTRL repetition penalty (1: off)", low=0.0, low_open=True),
        "temperature": number("sampling temperature", low=0.0, low_open=True, sweepable=True),
        "top_k": integer("top-k sampling (0: off)", low=0),
        "top_p": number("nucleus sampling (1: off)", low=0.0, high=1.0, low_open=True),
        "decode_batch_size": integer("prompts decoded at once", low=1),
        "eval_batch_size": integer("blocks scored at once", low=1),
        "num_sample_texts": integer("generated blocks saved per chain per generation (at most M)", low=0, default=0),
        "histogram_bins": integer("bins of the perplexity histogram", low=1),
        "histogram_max_perplexity": number("top of the histogram's range", low=1.0, low_open=True),
        "rare_mass_fraction": number("share of training tokens held by the rare ids", low=0.0, high=1.0),
        "watermark_bias": number(
            "delta: green-list logit bias (a chain knob; None: decoding adds no bias)",
            low=0.0,
            sweepable=True,
            optional=True,
        ),
        # Default: the paper's gamma and key, written once on Watermark beside their source.
        "watermark_gamma": number(
            "green-list share of the vocabulary",
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
            default=Watermark.gamma,
        ),
        "watermark_key": integer("watermark hash key (32 bits)", low=0, high=2**32 - 1, default=Watermark.key),
    }
    config_rules = (
        at_most(
            "num_sample_texts",
            "/samples_per_generation",
            "config.model.num_sample_texts: at most samples_per_generation, got {when}",
        ),
    )

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
        return {"tokens": self._decode(decode_key, params["weights"], prefix, length, knobs)}

    def _decode(self, key: jax.Array, weights: Any, prefix: jax.Array, length: int, knobs: dict):
        """Decode in chunks of decode_batch_size prompts (lax.map) so beam caches stay bounded."""
        count, chunk = prefix.shape[0], min(self.decode_batch_size, prefix.shape[0])
        padded = -(-count // chunk) * chunk
        chunks = jnp.pad(prefix, ((0, padded - count), (0, 0))).reshape(-1, chunk, prefix.shape[1])
        keys = jax.random.split(key, chunks.shape[0])
        banned = jnp.asarray(self.banned_ids)
        mark = {"watermark": self.watermark, "watermark_bias": knobs["watermark_bias"]} if self.watermarked else {}

        def one(args):
            chunk_key, chunk_prefix = args
            if self.decoding == "beam":
                return decoding.beam_search(
                    weights, self.network, chunk_prefix, length, self.num_beams, self.repetition_penalty, banned, **mark
                )
            return decoding.generate(
                chunk_key, weights, self.network, chunk_prefix, length, knobs["temperature"],
                self.decoding == "greedy", self.top_k, self.top_p, self.repetition_penalty, banned, **mark,
            )  # fmt: skip

        return jax.lax.map(one, (keys, chunks)).reshape(padded, length)[:count]

    def reference(self) -> dict:
        """Real test blocks and the rare-id mask, shared by every chain."""
        return {"test_tokens": jnp.asarray(self.test_blocks), "rare_ids": jnp.asarray(self.rare_ids)}

    def sequence_nll(self, weights: Any, tokens: jax.Array) -> jax.Array:
        """Mean next-token NLL of each block [n, L] given BOS -> [n] (log of its per-sequence perplexity)."""
        bos = self.tokenizer.bos_id
        return -jnp.mean(training.batched_token_log_probs(weights, self.network, tokens, bos, self.eval_batch_size), 1)

    def log_likelihood(self, params: dict, data: dict, knobs: dict) -> jax.Array:
        """log p(x) = sum_t log p(x_t | BOS, x_<t) of each block's L tokens under params (its prompt is not scored)."""
        bos, batch = self.tokenizer.bos_id, self.eval_batch_size
        return jnp.sum(training.batched_token_log_probs(params["weights"], self.network, data["tokens"], bos, batch), 1)

    def is_good(self, data: dict, knobs: dict) -> jax.Array:
        """Oracle: the block's log-perplexity under the base model is at most good_log_perplexity (the base model's
        high-density region holding good_region_mass of held-out real text; see model_setup.quality_threshold)."""
        if self.good_log_perplexity is None:
            raise ValueError("LanguageModel.is_good: built without a verifier curation (config.curation.name)")
        return self.sequence_nll(pretraining.host_constant(self.pretrained), data["tokens"]) <= self.good_log_perplexity

    def detect_watermark(self, data: dict, knobs: dict) -> jax.Array:
        """Kirchenbauer et al.'s test: z of each block's L - 1 in-block tokens > knobs['watermark_z_threshold']."""
        return self.watermark.z_score(data["tokens"]) > knobs["watermark_z_threshold"]

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
        if self.watermarked:
            threshold = knobs.get("watermark_z_threshold", self.watermark_z_threshold)
            metrics.update(detection_metrics(self.watermark, samples["tokens"], reference["test_tokens"], threshold))
        if self.num_sample_texts:
            # With M = every training block, text i continues training block i: fixed prompts across generations.
            metrics["sample_tokens"] = samples["tokens"][: self.num_sample_texts]
        return metrics


def _select(condition: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def make_model(config: Any, settings: FamilySettings | None = None) -> LanguageModel:
    """Build the LM family from its resolved config (base.make_model fills the declared defaults): the token-block
    corpus (built once, cached), an imported OPT checkpoint or the cached base model."""
    model = config.model
    pretrained, network = None, None
    if model.hf_checkpoint is not None:
        from collapse_jax.models.lm.hf_import import load_opt_checkpoint

        network, pretrained = load_opt_checkpoint(model.hf_checkpoint, dtype=model.dtype)
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
    check_sizes(config, train_blocks, network.max_positions)
    samples = config.samples_per_generation
    if model.hf_checkpoint is None and model.pretrain_epochs:
        pretrained = pretrained_base(model, data_dir, corpus, network)
    # A fixed budget (steps_per_generation) keeps the compute equal across M; unset, epochs over M blocks.
    steps = model.steps_per_generation or -(-model.epochs * samples // model.batch_size)
    banned = np.zeros(network.vocab_size, bool)
    banned[[tokenizer.eos_id, tokenizer.pad_id, tokenizer.bos_id]] = True
    banned[tokenizer.vocab_size :] = True
    settings = family_settings(config) if settings is None else settings
    watermark, z_threshold = make_watermark(config)
    knob_fields = {"learning_rate": "model.learning_rate", "temperature": "model.temperature"}
    if model.watermark_bias is not None:  # delta, a chain knob; unset, decoding adds no bias and no knob exists
        knob_fields["watermark_bias"] = "model.watermark_bias"
    return LanguageModel(
        network=network,
        train_settings=training.TrainSettings(
            batch_size=model.batch_size,
            num_steps=steps,
            warmup_steps=int(model.warmup_fraction * steps),
            end_learning_rate=model.end_learning_rate,
            weight_decay=model.weight_decay,
            min_valid=samples,
            # A curated pool may hold fewer than M valid blocks, and fractional weights: draw blocks by weight. Any
            # config with a curation block trains this way in every group (its "none" group too), so a sweep compares
            # curations from one generation-0 model; configs without one keep Shumailov's epochs.
            sampling="weighted" if config.get("curation") else "epochs",
        ),
        protocol=model.protocol,
        decoding=model.decoding,
        num_beams=int(model.num_beams),
        repetition_penalty=float(model.repetition_penalty),
        top_k=int(model.top_k),
        top_p=float(model.top_p),
        start_from=model.start_from,
        decode_batch_size=int(model.decode_batch_size),
        eval_batch_size=int(model.eval_batch_size),
        train_blocks=train_blocks,
        test_blocks=test_blocks,
        rare_ids=text_metrics.rare_token_ids(train_blocks, network.vocab_size, model.rare_mass_fraction),
        banned_ids=banned,
        log_edges=np.linspace(0.0, np.log(model.histogram_max_perplexity), model.histogram_bins + 1),
        tokenizer=tokenizer,
        pretrained=pretrained,
        num_sample_texts=int(model.num_sample_texts),
        watermark=watermark,
        watermark_z_threshold=z_threshold,
        good_log_perplexity=quality_threshold(config, settings.good_region_mass, pretrained, network, corpus),
        knob_fields=knob_fields,
    )
