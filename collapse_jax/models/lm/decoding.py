"""Decoding with a KV cache: greedy, temperature sampling (top-k / top-p) and beam search, all fixed-length.

Repetition penalty follows Hugging Face transformers (Keskar et al. 2019, CTRL): every id already in the sequence
(prompt included) has its score s replaced by s * p if s < 0 else s / p, once per id. An optional green-list watermark
(Kirchenbauer et al. 2023) adds delta where transformers' logits processors act: after the penalty, before temperature.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from collapse_jax.models.lm.transformer import Params, TransformerConfig, forward_cached, init_cache
from collapse_jax.models.lm.watermark import Watermark

NEGATIVE = -1e9  # A finite "minus infinity": keeps sums of scores finite (beam scores add it up).


def apply_repetition_penalty(scores: jax.Array, present: jax.Array, penalty: float | jax.Array) -> jax.Array:
    """s -> s * p if s < 0 else s / p for ids present in the sequence (CTRL, as transformers implements it)."""
    penalized = jnp.where(scores < 0, scores * penalty, scores / penalty)
    return jnp.where(present, penalized, scores)


def restrict_top_k_top_p(logits: jax.Array, top_k: int, top_p: float | jax.Array) -> jax.Array:
    """Keep the top_k largest logits (0: all) and the smallest set whose probability reaches top_p (1: all)."""
    vocab = logits.shape[-1]
    ordered = jnp.sort(logits, axis=-1)[..., ::-1]
    if 0 < top_k < vocab:
        logits = jnp.where(logits < ordered[..., top_k - 1 : top_k], NEGATIVE, logits)
        ordered = jnp.where(jnp.arange(vocab) < top_k, ordered, NEGATIVE)
    # Nucleus (Holtzman et al. 2020): drop a token when the mass of strictly more likely tokens already reaches p.
    probabilities = jax.nn.softmax(ordered, axis=-1)
    mass_before = jnp.cumsum(probabilities, axis=-1) - probabilities
    kept = jnp.where((mass_before < top_p) | (top_p >= 1.0), ordered, jnp.inf)
    threshold = jnp.min(kept, axis=-1, keepdims=True)
    return jnp.where(logits < threshold, NEGATIVE, logits)


def _present(prefix: jax.Array, vocab: int) -> jax.Array:
    """Bool [batch, vocab]: which ids occur in prefix [batch, length]."""
    return jnp.zeros((prefix.shape[0], vocab), bool).at[jnp.arange(prefix.shape[0])[:, None], prefix].set(True)


def _prefill(params: Params, config: TransformerConfig, prefix: jax.Array, total_length: int):
    """Run prefix [batch, P] through an empty cache sized for total_length; logits of the next token."""
    cache = init_cache(config, prefix.shape[0], total_length)
    logits, cache = forward_cached(params, config, prefix, jnp.int32(0), cache)
    return logits[:, -1], cache


def generate(
    key: jax.Array,
    params: Params,
    config: TransformerConfig,
    prefix: jax.Array,
    num_new: int,
    temperature: float | jax.Array = 1.0,
    greedy: bool = False,
    top_k: int = 0,
    top_p: float | jax.Array = 1.0,
    repetition_penalty: float | jax.Array = 1.0,
    banned: jax.Array | None = None,
    watermark: Watermark | None = None,
    watermark_bias: float | jax.Array = 0.0,
) -> jax.Array:
    """num_new tokens after prefix [batch, P] (which starts with BOS): greedy or sampled from softmax(logits / T).

    The penalty and bans act on raw logits, as in transformers' greedy/sampling; `banned` [vocab] bool (e.g. end and
    padding ids) keeps every continuation exactly num_new tokens long. With a watermark, the green list of the
    previous token (the prompt's last token for the first new one) gets + watermark_bias before temperature.
    """
    vocab = config.vocab_size
    banned = jnp.zeros(vocab, bool) if banned is None else banned
    logits, cache = _prefill(params, config, prefix, prefix.shape[1] + num_new)

    def choose(step_key, logits, present, previous):
        logits = apply_repetition_penalty(logits, present, repetition_penalty)
        if watermark is not None:
            logits = watermark.bias(logits, previous, watermark_bias)
        logits = jnp.where(banned, NEGATIVE, logits)
        if greedy:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        logits = restrict_top_k_top_p(logits / temperature, top_k, top_p)
        return jax.random.categorical(step_key, logits, axis=-1).astype(jnp.int32)

    keys = jax.random.split(key, num_new)
    present = _present(prefix, vocab)
    first = choose(keys[0], logits, present, prefix[:, -1])

    def step(carry, inputs):
        token, present, cache = carry
        step_key, position = inputs
        present = present.at[jnp.arange(token.shape[0]), token].set(True)
        logits, cache = forward_cached(params, config, token[:, None], position, cache)
        token = choose(step_key, logits[:, 0], present, token)
        return (token, present, cache), token

    positions = prefix.shape[1] + jnp.arange(num_new - 1, dtype=jnp.int32)
    carry = (first, present, cache)
    _, rest = jax.lax.scan(step, carry, (keys[1:], positions))
    return jnp.concatenate([first[:, None], rest.T], axis=1)


def beam_search(
    params: Params,
    config: TransformerConfig,
    prefix: jax.Array,
    num_new: int,
    num_beams: int,
    repetition_penalty: float | jax.Array = 1.0,
    banned: jax.Array | None = None,
    watermark: Watermark | None = None,
    watermark_bias: float | jax.Array = 0.0,
) -> jax.Array:
    """Highest-scoring of num_beams beams after num_new tokens, scores = sum of penalized log-softmax (transformers).

    Every beam has the same length (end tokens banned), so transformers' length penalty and early stopping are moot.
    A watermark adds watermark_bias to the penalized log-softmax of green ids, as a transformers logits processor does
    in beam search (how Kirchenbauer et al.'s processor acts with several beams).
    """
    batch, vocab = prefix.shape[0], config.vocab_size
    banned = jnp.zeros(vocab, bool) if banned is None else banned
    logits, cache = _prefill(params, config, prefix, prefix.shape[1] + num_new)
    # Beams start as copies of the prompt; only beam 0 is live at the first step (the others score -1e9).
    tile = lambda x: jnp.repeat(x, num_beams, axis=0)  # noqa: E731
    logits, cache = tile(logits), jax.tree.map(tile, cache)
    present = tile(_present(prefix, vocab))
    scores = jnp.tile(jnp.where(jnp.arange(num_beams) == 0, 0.0, NEGATIVE), batch)
    tokens = jnp.zeros((batch * num_beams, num_new), jnp.int32)
    flat_base = (jnp.arange(batch) * num_beams)[:, None]

    def select(logits, scores, present, tokens, cache, index, previous):
        log_probs = apply_repetition_penalty(jax.nn.log_softmax(logits, axis=-1), present, repetition_penalty)
        if watermark is not None:
            log_probs = watermark.bias(log_probs, previous, watermark_bias)
        log_probs = jnp.where(banned, NEGATIVE, log_probs)
        candidates = (scores[:, None] + log_probs).reshape(batch, num_beams * vocab)
        best, flat = jax.lax.top_k(candidates, num_beams)
        source = (flat_base + flat // vocab).reshape(-1)
        token = (flat % vocab).reshape(-1).astype(jnp.int32)
        reorder = lambda x: x[source]  # noqa: E731
        present = reorder(present).at[jnp.arange(batch * num_beams), token].set(True)
        tokens = reorder(tokens).at[:, index].set(token)
        return best.reshape(-1), present, tokens, jax.tree.map(reorder, cache), token

    scores, present, tokens, cache, token = select(logits, scores, present, tokens, cache, 0, tile(prefix[:, -1]))

    def step(carry, index):
        scores, present, tokens, cache, token = carry
        logits, cache = forward_cached(params, config, token[:, None], prefix.shape[1] + index - 1, cache)
        return select(logits[:, 0], scores, present, tokens, cache, index, token), None

    carry = (scores, present, tokens, cache, token)
    (scores, _, tokens, _, _), _ = jax.lax.scan(step, carry, jnp.arange(1, num_new, dtype=jnp.int32))
    # top_k returns beams best-first, so beam 0 of each prompt is the winner.
    return tokens.reshape(batch, num_beams, num_new)[:, 0]
