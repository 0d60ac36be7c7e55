"""Decoding: KV cache parity, beam search against brute-force enumeration, sampling frequencies, penalty semantics."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.models.lm import decoding
from collapse_jax.models.lm.transformer import TransformerConfig, forward, forward_cached, init_cache, init_params

VOCAB = 5


@pytest.fixture(scope="module")
def tiny():
    """A random 2-layer decoder over 5 tokens, weights scaled up so its next-token distributions are far from flat."""
    config = TransformerConfig(
        vocab_size=VOCAB, num_layers=2, hidden_size=16, num_heads=2, mlp_size=32, max_positions=16, position_offset=2
    )
    params = jax.tree.map(lambda x: 8.0 * x, init_params(jax.random.key(0), config))
    return config, params


def test_cached_decoding_matches_full_forward(tiny):
    config, params = tiny
    tokens = jax.random.randint(jax.random.key(1), (3, 9), 0, VOCAB)
    logits_a, cache = forward_cached(params, config, tokens[:, :4], jnp.int32(0), init_cache(config, 3, 12))
    logits_b, _ = forward_cached(params, config, tokens[:, 4:], jnp.int32(4), cache)
    # Same float32 math in a different order (cache slots vs. one pass): differences ~1e-6.
    np.testing.assert_allclose(jnp.concatenate([logits_a, logits_b], 1), forward(params, config, tokens), atol=1e-4)


def test_repetition_penalty_divides_positive_and_multiplies_negative_scores_of_present_ids():
    scores = jnp.array([[-2.0, 1.0, 3.0, -1.0]])
    present = jnp.array([[True, True, False, False]])
    np.testing.assert_allclose(decoding.apply_repetition_penalty(scores, present, 2.0), [[-4.0, 0.5, 3.0, -1.0]])


def _next_log_probs(params, config, sequence, penalty):
    """Penalized log-softmax of the token after `sequence`, computed without a cache, in numpy."""
    logits = _forward(params, config, jnp.asarray([sequence]))
    log_probs = np.asarray(jax.nn.log_softmax(logits[0, -1]))
    present = np.isin(np.arange(VOCAB), sequence)
    return np.where(present, np.where(log_probs < 0, log_probs * penalty, log_probs / penalty), log_probs)


_forward = jax.jit(forward, static_argnums=1)


def _penalized_score(params, config, prefix, continuation, penalty):
    """Beam-search score by definition: sum over steps of the penalized log-softmax of the chosen token."""
    sequence, total = list(prefix), 0.0
    for token in continuation:
        total += _next_log_probs(params, config, sequence, penalty)[token]
        sequence.append(token)
    return total


@pytest.mark.parametrize("penalty", [1.0, 2.0])
def test_beam_search_with_enough_beams_finds_the_brute_force_best_continuation(tiny, penalty):
    config, params = tiny
    prefix, num_new = [1, 3, 0], 3
    candidates = list(itertools.product(range(VOCAB), repeat=num_new))
    scores = [_penalized_score(params, config, prefix, c, penalty) for c in candidates]
    best = candidates[int(np.argmax(scores))]
    # With V^(n-1) = 25 beams no prefix of the optimum can be pruned, so beam search is exhaustive.
    found = decoding.beam_search(params, config, jnp.asarray([prefix]), num_new, VOCAB ** (num_new - 1), penalty)
    assert tuple(np.asarray(found[0]).tolist()) == best


def _reference_beam_search(params, config, prefix, num_new, num_beams, penalty):
    """Plain-Python beam search (no cache): keep the num_beams best (score, sequence) pairs each step."""
    beams = [(0.0, list(prefix))]
    for _ in range(num_new):
        expanded = []
        for score, sequence in beams:
            log_probs = _next_log_probs(params, config, sequence, penalty)
            expanded += [(score + log_probs[token], sequence + [token]) for token in range(VOCAB)]
        beams = sorted(expanded, key=lambda item: -item[0])[:num_beams]
    return beams[0][1][len(prefix) :]


@pytest.mark.parametrize("num_beams", [1, 2, 3])
def test_beam_search_with_few_beams_matches_a_plain_reference(tiny, num_beams):
    config, params = tiny
    prefixes = [[1, 4, 4], [2, 0, 3]]
    found = decoding.beam_search(params, config, jnp.asarray(prefixes), 4, num_beams, 1.5)
    for row, prefix in zip(np.asarray(found), prefixes, strict=True):
        assert row.tolist() == _reference_beam_search(params, config, prefix, 4, num_beams, 1.5)


def test_banned_ids_never_appear(tiny):
    config, params = tiny
    banned = jnp.zeros(VOCAB, bool).at[jnp.array([0, 2])].set(True)
    prefix = jnp.tile(jnp.array([[1, 3]]), (64, 1))
    sampled = decoding.generate(jax.random.key(3), params, config, prefix, 6, banned=banned)
    beams = decoding.beam_search(params, config, prefix[:2], 6, 3, banned=banned)
    assert not np.isin(np.asarray(sampled), [0, 2]).any() and not np.isin(np.asarray(beams), [0, 2]).any()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampled_first_token_frequencies_match_softmax_of_logits_over_temperature(tiny, temperature):
    config, params = tiny
    prefix, draws = jnp.array([[1, 3, 0]]), 4000
    logits = forward(params, config, prefix)[0, -1]
    expected = np.asarray(jax.nn.softmax(logits / temperature))
    tokens = decoding.generate(jax.random.key(4), params, config, jnp.tile(prefix, (draws, 1)), 1, temperature)
    observed = np.bincount(np.asarray(tokens[:, 0]), minlength=VOCAB) / draws
    # Each frequency is binomial: 4.5 standard errors per token keeps the 5-token family-wise false alarm < 1e-4.
    np.testing.assert_array_less(np.abs(observed - expected), 4.5 * np.sqrt(expected * (1 - expected) / draws) + 1e-3)


def test_top_k_and_top_p_keep_exactly_the_most_likely_tokens():
    logits = jnp.log(jnp.array([[0.5, 0.05, 0.3, 0.15, 0.0001]]))
    keep_k = decoding.restrict_top_k_top_p(logits, 2, 1.0) > decoding.NEGATIVE
    assert np.asarray(keep_k[0]).tolist() == [True, False, True, False, False]
    # Nucleus 0.9: 0.5 + 0.3 = 0.8 < 0.9, so 0.15 joins; 0.95 >= 0.9 stops there.
    keep_p = decoding.restrict_top_k_top_p(logits, 0, 0.9) > decoding.NEGATIVE
    assert np.asarray(keep_p[0]).tolist() == [True, False, True, True, False]
    keep_all = decoding.restrict_top_k_top_p(logits, 0, 1.0) > decoding.NEGATIVE
    assert bool(keep_all.all())
