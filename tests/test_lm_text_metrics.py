"""Generated-text statistics against plain-Python definitions (distinct-n, seq-rep-4, rare mass, ppl summary)."""

import jax.numpy as jnp
import numpy as np

from collapse_jax.models.lm import text_metrics


def _grams(row, n):
    return [tuple(row[i : i + n]) for i in range(len(row) - n + 1)]


def test_distinct_n_and_seq_rep_match_their_definitions():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 6, size=(5, 12))  # a small vocabulary so n-grams repeat
    for n in (1, 2):
        grams = [g for row in tokens.tolist() for g in _grams(row, n)]
        assert np.isclose(float(text_metrics.distinct_n(jnp.asarray(tokens), n)), len(set(grams)) / len(grams))
    rep = np.mean([1 - len(set(_grams(row, 4))) / len(_grams(row, 4)) for row in tokens.tolist()])
    assert np.isclose(float(text_metrics.seq_repetition(jnp.asarray(tokens), 4)), rep)


def test_rare_ids_hold_the_requested_share_of_training_tokens():
    counts = np.array([50, 1, 30, 2, 0, 17])  # 100 tokens; rarest first: 4 (0), 1 (1), 3 (2), 5 (17) ...
    train = np.repeat(np.arange(6), counts)
    rare = text_metrics.rare_token_ids(train, 6, 0.1)
    assert rare.tolist() == [False, True, False, True, True, False]  # 0 + 1 + 2 = 3% <= 10%, adding 17 passes it
    stats = text_metrics.text_statistics(jnp.array([[1, 3, 0, 0]]), jnp.asarray(rare))
    assert float(stats["rare_token_mass"]) == 0.5 and float(stats["vocab_used"]) == 3


def test_perplexity_quantiles_and_histogram_counts():
    nll = jnp.log(jnp.array([2.0, 4.0, 8.0, 16.0, 5000.0]))
    edges = np.log(np.array([1.0, 3.0, 10.0, 1000.0]))
    summary = text_metrics.perplexity_summary(nll, (0.5,), edges, "p")
    assert np.isclose(float(summary["p_q50"]), 8.0, rtol=1e-5)
    # Bins [1,3) [3,10) [10,inf): 2 | 4, 8 | 16, 5000 (the last bin absorbs overflow).
    assert [float(summary[f"p_hist_{i:02d}"]) for i in range(3)] == [1.0, 2.0, 2.0]
