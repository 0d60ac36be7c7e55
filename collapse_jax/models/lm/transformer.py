"""OPT-style decoder-only transformer in Flax as pure functions: learned positions, pre-LayerNorm, tied embeddings.

The KV cache is an explicit argument and return value (no mutable collections), so decoding vmaps over chains.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Params = Any
# One layer's cache: {"key", "value"}: [batch, max_length, heads, head_dim]; the model's cache is a tuple of them.
Cache = tuple[dict[str, jax.Array], ...]
ACTIVATIONS = {"relu": jax.nn.relu, "gelu": functools.partial(jax.nn.gelu, approximate=False)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """Static shape of the network (OPT-125m: vocab 50272, 12 layers, 768 wide, 12 heads, mlp 3072, 2048 positions)."""

    vocab_size: int
    num_layers: int
    hidden_size: int
    num_heads: int
    mlp_size: int
    max_positions: int
    # OPT indexes its learned position table at position + 2 (the table has max_positions + 2 rows).
    position_offset: int = 0
    activation: str = "relu"
    layer_norm_eps: float = 1e-5
    # Compute dtype (params stay float32): "bfloat16" on accelerators.
    dtype: str = "float32"

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size: {self.hidden_size} must be divisible by num_heads={self.num_heads}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype: {self.dtype!r}; allowed: float32, bfloat16")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def num_params(self) -> int:
        """Parameter count (tied embeddings counted once)."""
        d, m = self.hidden_size, self.mlp_size
        layer = 4 * (d * d + d) + 2 * d * m + m + d + 4 * d
        return self.vocab_size * d + (self.max_positions + self.position_offset) * d + self.num_layers * layer + 2 * d


def _dense(features: int, config: TransformerConfig, name: str) -> nn.Dense:
    # GPT-2/OPT initialise every matrix from N(0, 0.02^2).
    return nn.Dense(features, dtype=config.dtype, kernel_init=nn.initializers.normal(0.02), name=name)


class SelfAttention(nn.Module):
    """Causal multi-head attention; q is scaled by head_dim^-1/2 after its bias, as in OPT."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, start, cache):
        config = self.config
        batch, length, _ = x.shape
        shape = (batch, length, config.num_heads, config.head_dim)
        query = _dense(config.hidden_size, config, "query")(x).reshape(shape) * config.head_dim**-0.5
        key = _dense(config.hidden_size, config, "key")(x).reshape(shape)
        value = _dense(config.hidden_size, config, "value")(x).reshape(shape)
        query_positions = start + jnp.arange(length)
        if cache is None:
            keys, values, key_positions = key, value, jnp.arange(length)
        else:
            # Write this call's keys at [start, start + length); later slots are masked out by causality below.
            keys = jax.lax.dynamic_update_slice(cache["key"], key.astype(cache["key"].dtype), (0, start, 0, 0))
            values = jax.lax.dynamic_update_slice(cache["value"], value.astype(cache["value"].dtype), (0, start, 0, 0))
            cache = {"key": keys, "value": values}
            key_positions = jnp.arange(keys.shape[1])
        scores = jnp.einsum("bqhd,bkhd->bhqk", query, keys.astype(query.dtype)).astype(jnp.float32)
        causal = key_positions[None, :] <= query_positions[:, None]
        scores = jnp.where(causal, scores, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1).astype(query.dtype)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, values.astype(query.dtype)).reshape(x.shape)
        return _dense(config.hidden_size, config, "out")(out), cache


class DecoderLayer(nn.Module):
    """Pre-LayerNorm block: x + attn(LN(x)), then h + MLP(LN(h))."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, start, cache):
        config = self.config
        norm = functools.partial(nn.LayerNorm, epsilon=config.layer_norm_eps, dtype=config.dtype)
        attended, cache = SelfAttention(config, name="attention")(norm(name="attention_norm")(x), start, cache)
        x = x + attended
        hidden = _dense(config.mlp_size, config, "mlp_in")(norm(name="mlp_norm")(x))
        return x + _dense(config.hidden_size, config, "mlp_out")(ACTIVATIONS[config.activation](hidden)), cache


class DecoderLM(nn.Module):
    """Token ids [batch, length] at positions start.. -> next-token logits [batch, length, vocab] (float32)."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, tokens, start=0, cache: Cache | None = None):
        config = self.config
        init = nn.initializers.normal(0.02)
        embed = nn.Embed(config.vocab_size, config.hidden_size, embedding_init=init, name="token_embedding")
        positions = nn.Embed(
            config.max_positions + config.position_offset,
            config.hidden_size,
            embedding_init=init,
            name="position_embedding",
        )
        x = embed(tokens) + positions(start + config.position_offset + jnp.arange(tokens.shape[1]))[None]
        x = x.astype(config.dtype)
        new_cache = []
        for index in range(config.num_layers):
            layer_cache = None if cache is None else cache[index]
            x, layer_cache = DecoderLayer(config, name=f"layer_{index}")(x, start, layer_cache)
            new_cache.append(layer_cache)
        x = nn.LayerNorm(epsilon=config.layer_norm_eps, dtype=config.dtype, name="final_norm")(x)
        # Tied embeddings: the output projection is the token embedding matrix (no separate lm_head).
        logits = embed.attend(x).astype(jnp.float32)
        return logits, (None if cache is None else tuple(new_cache))


def init_params(key: jax.Array, config: TransformerConfig) -> Params:
    """Random parameters (N(0, 0.02^2) matrices and embeddings, zero biases, unit LayerNorm scales)."""
    return DecoderLM(config).init(key, jnp.zeros((1, 1), jnp.int32))["params"]


def forward(params: Params, config: TransformerConfig, tokens: jax.Array) -> jax.Array:
    """Logits of a full (uncached) pass over tokens [batch, length] starting at position 0."""
    logits, _ = DecoderLM(config).apply({"params": params}, tokens)
    return logits


def init_cache(config: TransformerConfig, batch: int, length: int) -> Cache:
    """Empty KV cache for `batch` sequences of up to `length` tokens."""
    shape = (batch, length, config.num_heads, config.head_dim)
    zeros = jnp.zeros(shape, config.dtype)
    return tuple({"key": zeros, "value": zeros} for _ in range(config.num_layers))


def forward_cached(
    params: Params, config: TransformerConfig, tokens: jax.Array, start: jax.Array, cache: Cache
) -> tuple[jax.Array, Cache]:
    """Logits of tokens [batch, length] at positions start..start+length-1, attending to the cache; updated cache."""
    return DecoderLM(config).apply({"params": params}, tokens, start, cache)
