"""Diversity and tail statistics of generated token blocks, static-shaped so they run per chain under jit(vmap).

distinct-n (Li et al. 2016), seq-rep-4 (Welleck et al. 2020), rare-token mass (the tail that collapses first).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def count_distinct_rows(keys: jax.Array) -> jax.Array:
    """Number of distinct rows of keys [n, k] (lexicographic sort, then count changes)."""
    columns = jax.lax.sort(tuple(keys.T), num_keys=keys.shape[1])
    changed = jnp.zeros(keys.shape[0] - 1, bool)
    for column in columns:
        changed = changed | (column[1:] != column[:-1])
    return 1 + jnp.sum(changed)


def distinct_n(tokens: jax.Array, n: int) -> jax.Array:
    """distinct-n: distinct n-grams / all n-grams over every sample (n-grams never cross samples), Li et al. 2016."""
    length = tokens.shape[1]
    grams = jnp.stack([tokens[:, i : length - n + 1 + i] for i in range(n)], axis=-1).reshape(-1, n)
    return count_distinct_rows(grams) / grams.shape[0]


def seq_repetition(tokens: jax.Array, n: int = 4) -> jax.Array:
    """seq-rep-n = mean over samples of 1 - |unique n-grams| / |n-grams| (Welleck et al. 2020, unlikelihood)."""
    length = tokens.shape[1]
    grams = jnp.stack([tokens[:, i : length - n + 1 + i] for i in range(n)], axis=-1)  # [samples, G, n]
    same = jnp.all(grams[:, :, None, :] == grams[:, None, :, :], axis=-1)  # [samples, G, G]
    earlier = jnp.tril(jnp.ones(same.shape[1:], bool), k=-1)
    repeated = jnp.any(same & earlier, axis=-1)  # n-gram i also occurs at some j < i
    return jnp.mean(jnp.mean(repeated, axis=-1))


def rare_token_ids(train_tokens: np.ndarray, vocab_size: int, mass: float) -> np.ndarray:
    """Bool [vocab]: the least frequent training ids that together hold `mass` of the training tokens (host)."""
    counts = np.bincount(train_tokens.reshape(-1), minlength=vocab_size)[:vocab_size].astype(np.float64)
    order = np.argsort(counts, kind="stable")  # rarest first; never-seen ids (count 0) lead
    cumulative = np.cumsum(counts[order]) / counts.sum()
    rare = np.zeros(vocab_size, bool)
    rare[order[cumulative <= mass]] = True
    return rare


def text_statistics(tokens: jax.Array, rare: jax.Array) -> dict[str, jax.Array]:
    """distinct_1, distinct_2, repetition_rate (seq-rep-4), vocab_used and rare_token_mass of samples [n, L]."""
    return {
        "distinct_1": distinct_n(tokens, 1),
        "distinct_2": distinct_n(tokens, 2),
        "repetition_rate": seq_repetition(tokens, 4),
        "vocab_used": count_distinct_rows(tokens.reshape(-1, 1)).astype(jnp.float32),
        "rare_token_mass": jnp.mean(rare[tokens]),
    }


def perplexity_summary(
    sequence_nll: jax.Array, quantiles: tuple[float, ...], log_edges: np.ndarray, prefix: str
) -> dict[str, jax.Array]:
    """Quantiles of per-sequence perplexity exp(mean NLL) and histogram counts over log-perplexity bins.

    The outer bins absorb everything below/above the edges, so counts always sum to the number of sequences.
    """
    perplexity = jnp.exp(sequence_nll)
    summary = {f"{prefix}_q{round(100 * q):02d}": jnp.quantile(perplexity, q) for q in quantiles}
    inner = jnp.asarray(log_edges[1:-1], jnp.float32)
    bins = jnp.searchsorted(inner, sequence_nll, side="right")
    counts = jnp.zeros(len(log_edges) - 1, jnp.float32).at[bins].add(1.0)
    summary.update({f"{prefix}_hist_{i:02d}": counts[i] for i in range(len(log_edges) - 1)})
    return summary
