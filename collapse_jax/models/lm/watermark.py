"""The green-list watermark of Kirchenbauer et al. (2023): a keyed hash of the previous token marks green ids,
decoding adds delta to their logits, and a one-proportion z-test on the green count detects the watermark.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

# murmur3's 32-bit finalizer constants (Appleby, MurmurHash3 fmix32) and the golden-ratio increment (Knuth).
_MIX_1, _MIX_2, _GOLDEN = 0x85EBCA6B, 0xC2B2AE35, 0x9E3779B9


def _fmix32(h: jax.Array) -> jax.Array:
    """murmur3 fmix32: a bijection of uint32 with full avalanche (every input bit flips each output bit w.p. ~1/2)."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(_MIX_1)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(_MIX_2)
    return h ^ (h >> 16)


def context_seed(key: int, previous: jax.Array) -> jax.Array:
    """uint32 seed of the green list after token `previous` (any shape): fmix32(fmix32(key) xor previous)."""
    return _fmix32(_fmix32(jnp.uint32(key)) ^ jnp.asarray(previous).astype(jnp.uint32))


def pair_hash(key: int, previous: jax.Array, token: jax.Array) -> jax.Array:
    """uint32 u(key, p, t) = fmix32(seed(key, p) + t * golden) for broadcastable previous / token id arrays."""
    seed = context_seed(key, previous)
    return _fmix32(seed + jnp.asarray(token).astype(jnp.uint32) * jnp.uint32(_GOLDEN))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Watermark:
    """Static watermark settings: the secret hash key and the green share gamma (Kirchenbauer et al. 2023).

    Green list: instead of a seeded permutation of the vocabulary (a sort of V ids per step, or a [V, V] table), each
    pair (previous token p, candidate id t) hashes to a 32-bit word u(key, p, t) and t is green after p iff
    u < gamma 2^32. With a well-mixed hash every id is green with probability gamma independently, so a list holds
    gamma |V| ids on average (Binomial(V, gamma) rather than exactly floor(gamma V)); the detector's null hypothesis
    (text written without the list has each token green with probability gamma) is the paper's. A decoding step costs
    V integer hashes per sequence and no more memory than the logits.
    """

    # The paper's defaults (config.model.watermark_key / watermark_gamma declare their ranges: [0, 2^32), (0, 1)).
    key: int = 15485863  # the paper's default hash key (the millionth prime)
    gamma: float = 0.25

    @property
    def threshold(self) -> int:
        """u < threshold is green: P(green) = threshold / 2^32 = gamma up to 2^-32."""
        return min(round(self.gamma * 2**32), 2**32 - 1)

    def is_green(self, previous: jax.Array, token: jax.Array) -> jax.Array:
        """Bool: whether `token` is on the green list of `previous` (broadcasting)."""
        return pair_hash(self.key, previous, token) < jnp.uint32(self.threshold)

    def green_mask(self, previous: jax.Array, vocab_size: int) -> jax.Array:
        """Bool [..., V]: the green list after each token of `previous` [...]; a function of (key, previous) only."""
        return self.is_green(jnp.asarray(previous)[..., None], jnp.arange(vocab_size, dtype=jnp.uint32))

    def bias(self, scores: jax.Array, previous: jax.Array, delta: jax.Array | float) -> jax.Array:
        """scores [..., V] + delta on the green list of previous [...] (Kirchenbauer et al.'s soft watermark).

        delta = 0 adds an exact 0.0, so every score (and hence every decoded token) is unchanged.
        """
        green = self.green_mask(previous, scores.shape[-1])
        return scores + jnp.where(green, jnp.asarray(delta, scores.dtype), jnp.zeros((), scores.dtype))

    def green_counts(self, tokens: jax.Array) -> tuple[jax.Array, int]:
        """(g [n], T): green tokens among the T = L - 1 scored tokens of blocks [n, L].

        Token t of a block is scored against its predecessor t - 1 in the block; the first token's predecessor (a
        prompt token or BOS) is not part of the data, so it is skipped (the prompt is never scored).
        """
        green = self.is_green(tokens[:, :-1], tokens[:, 1:])
        return jnp.sum(green, axis=1), tokens.shape[1] - 1

    def z_score(self, tokens: jax.Array) -> jax.Array:
        """z = (g - gamma T) / sqrt(T gamma (1 - gamma)) of blocks [n, L] -> [n] (Kirchenbauer et al. 2023)."""
        green, scored = self.green_counts(tokens)
        expected = self.gamma * scored
        return (green.astype(jnp.float32) - expected) / jnp.sqrt(scored * self.gamma * (1.0 - self.gamma))


def detection_metrics(
    watermark: Watermark, samples: jax.Array, real: jax.Array, threshold: jax.Array | float
) -> dict[str, jax.Array]:
    """Mean z of the samples and the shares of samples (true positive rate) / real blocks (false positive rate) with
    z > threshold; both scored on their L - 1 in-block tokens."""
    sample_z, real_z = watermark.z_score(samples), watermark.z_score(real)
    return {
        "watermark_z_mean": jnp.mean(sample_z),
        "watermark_detect_rate_synthetic": jnp.mean((sample_z > threshold).astype(jnp.float32)),
        "watermark_detect_rate_real": jnp.mean((real_z > threshold).astype(jnp.float32)),
    }


WATERMARK_METRICS = ("watermark_z_mean", "watermark_detect_rate_synthetic", "watermark_detect_rate_real")
