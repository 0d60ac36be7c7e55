"""Parity of `hf_import` + our decoder with transformers' OPTForCausalLM: logits, greedy and beam search with penalty.

Needs the `hf` test extra (torch CPU wheel + transformers 5.x); skipped cleanly without them. Never touches a hub.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from collapse_jax.models.lm import decoding  # noqa: E402
from collapse_jax.models.lm.hf_import import load_opt_checkpoint  # noqa: E402
from collapse_jax.models.lm.transformer import forward  # noqa: E402

VOCAB, PROMPT, NEW = 50, 7, 6
# Special ids in OPT's layout: pad 1, bos = eos 2; banning them keeps every continuation NEW tokens long.
BANNED = [1, 2]


@pytest.fixture(scope="module")
def opt_checkpoint(tmp_path_factory):
    """A tiny OPT with *every* parameter randomized (default init hides bias and LayerNorm mistakes), saved locally."""
    torch.manual_seed(0)
    config = transformers.OPTConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, ffn_dim=48, num_attention_heads=4,
        max_position_embeddings=32, word_embed_proj_dim=32, do_layer_norm_before=True, activation_function="relu",
        pad_token_id=1, bos_token_id=2, eos_token_id=2, dropout=0.0, attention_dropout=0.0,
    )  # fmt: skip
    model = transformers.OPTForCausalLM(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            # LayerNorm scales near 1 with spread, everything else O(0.3): large enough that a transposed kernel,
            # a missing bias or a position offset of 0 instead of 2 changes the logits by O(1).
            base = 1.0 if "layer_norm" in name and name.endswith("weight") else 0.0
            parameter.copy_(base + 0.3 * torch.randn_like(parameter))
    directory = tmp_path_factory.mktemp("opt_tiny")
    model.save_pretrained(directory, safe_serialization=True)
    return model, directory


def _prompts(count: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    body = rng.integers(3, VOCAB, size=(count, PROMPT - 1))
    return np.concatenate([np.full((count, 1), 2), body], axis=1).astype(np.int64)  # BOS first, as OPT's tokenizer


def test_imported_logits_match_transformers(opt_checkpoint):
    model, directory = opt_checkpoint
    config, params = load_opt_checkpoint(directory)
    tokens = _prompts(3)
    with torch.no_grad():
        expected = model(torch.as_tensor(tokens)).logits.numpy()
    ours = np.asarray(forward(params, config, jnp.asarray(tokens, jnp.int32)))
    # float32 on both sides over 2 layers of width 32: observed error ~1e-6; 1e-4 leaves margin for BLAS
    # summation order yet is ~1e4 below the O(1) change any wiring mistake causes with these random weights.
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=1e-4)


def _hf_generate(model, tokens, **kwargs):
    with torch.no_grad():
        out = model.generate(
            torch.as_tensor(tokens), attention_mask=torch.ones(tokens.shape, dtype=torch.long), max_new_tokens=NEW,
            min_new_tokens=NEW, suppress_tokens=BANNED, pad_token_id=1, **kwargs,
        )  # fmt: skip
    return out[:, tokens.shape[1] :].numpy()


def _banned(vocab):
    return jnp.zeros(vocab, bool).at[jnp.asarray(BANNED)].set(True)


@pytest.mark.parametrize("penalty", [1.0, 3.0])
def test_greedy_with_repetition_penalty_matches_transformers(opt_checkpoint, penalty):
    model, directory = opt_checkpoint
    config, params = load_opt_checkpoint(directory)
    tokens = _prompts(4)
    expected = _hf_generate(model, tokens, do_sample=False, num_beams=1, repetition_penalty=penalty)
    ours = decoding.generate(
        jax.random.key(0), params, config, jnp.asarray(tokens, jnp.int32), NEW, greedy=True, repetition_penalty=penalty,
        banned=_banned(config.vocab_size),
    )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(ours), expected)


@pytest.mark.parametrize("penalty", [1.0, 3.0])
def test_beam_search_with_repetition_penalty_matches_transformers(opt_checkpoint, penalty):
    model, directory = opt_checkpoint
    config, params = load_opt_checkpoint(directory)
    tokens = _prompts(4)
    expected = _hf_generate(model, tokens, do_sample=False, num_beams=3, repetition_penalty=penalty)
    ours = decoding.beam_search(
        params, config, jnp.asarray(tokens, jnp.int32), NEW, 3, repetition_penalty=penalty,
        banned=_banned(config.vocab_size),
    )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(ours), expected)
