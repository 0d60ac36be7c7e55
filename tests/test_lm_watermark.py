"""Green-list watermark (Kirchenbauer et al. 2023): hash, z-test, decoding bias on every path, and the LM's curation
hooks (log_likelihood, is_good, detect_watermark) and watermark metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_lm_model import lm_config  # noqa: F401  (the shared tiny-corpus LM fixture)

from collapse_jax.host import runner, sweep
from collapse_jax.models.base import make_model
from collapse_jax.models.lm import decoding
from collapse_jax.models.lm.model_setup import model_corpus
from collapse_jax.models.lm.transformer import TransformerConfig, forward, init_params
from collapse_jax.models.lm.watermark import WATERMARK_METRICS, Watermark

WATERMARK = Watermark(key=12345, gamma=0.25)
VOCAB = 256
NEW = 33  # decoded tokens per prompt: T = 32 scored tokens per block


def _fmix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _reference_is_green(key, previous, token, gamma):
    """The documented hash in plain Python integers: u = fmix32(fmix32(fmix32(key) ^ p) + t * golden) < gamma 2^32."""
    seed = _fmix32(_fmix32(key) ^ previous)
    return _fmix32((seed + token * 0x9E3779B9) & 0xFFFFFFFF) < round(gamma * 2**32)


def test_green_list_matches_the_documented_hash():
    previous, token = np.meshgrid(np.arange(0, 3000, 37), np.arange(0, 50272, 997))
    expected = [_reference_is_green(12345, int(p), int(t), 0.25) for p, t in zip(previous.ravel(), token.ravel())]
    np.testing.assert_array_equal(np.asarray(WATERMARK.is_green(previous, token)).ravel(), expected)


def test_green_lists_hold_gamma_of_the_vocabulary_independently_per_context():
    mask = np.asarray(WATERMARK.green_mask(jnp.arange(1024), 1024))  # [previous, id]
    # 1024^2 pairs, each green w.p. 0.25: the share's sd is sqrt(0.1875) / 1024 = 4.2e-4; 5 sd = 0.0021.
    assert abs(mask.mean() - 0.25) < 0.0021
    # List sizes are Binomial(1024, 0.25): sd sqrt(1024 * 0.1875) = 13.86; the sd of 1024 sizes is within ~2.2% of it
    # (sd of a sample sd ~ sigma / sqrt(2n)), so 10% is > 4 of its sds.
    assert abs(mask.sum(1).std() / np.sqrt(1024 * 0.1875) - 1) < 0.1
    # Independent lists: two contexts share a green id w.p. gamma^2 = 0.0625 (pairs: sd ~ sqrt(.0625 * .9375 / 1024)).
    overlap = (mask[:-1] & mask[1:]).mean(1)
    assert abs(overlap.mean() - 0.0625) < 0.002


def test_the_green_list_is_a_function_of_key_and_previous_token_only():
    lists = np.asarray(WATERMARK.green_mask(jnp.array([[7, 9], [3, 7]]), VOCAB))
    np.testing.assert_array_equal(lists[0, 0], lists[1, 1])  # same previous token, other position / batch row
    # The same bigram (7, t) scores identically wherever it occurs, whatever the rest of the block is.
    t = int(np.flatnonzero(lists[0, 0])[0])
    a, b = jnp.array([[1, 2, 7, t, 5]]), jnp.array([[7, t, 9, 9, 9]])
    assert bool(WATERMARK.is_green(a[:, :-1], a[:, 1:])[0, 2]) and bool(WATERMARK.is_green(b[:, :-1], b[:, 1:])[0, 0])
    # Another key draws other lists: two independent lists disagree on 2 gamma (1 - gamma) = 37.5% of ids.
    other = np.asarray(Watermark(key=54321, gamma=0.25).green_mask(jnp.arange(1024), 1024))
    assert abs((other != np.asarray(WATERMARK.green_mask(jnp.arange(1024), 1024))).mean() - 0.375) < 0.003


def test_hand_made_blocks_give_exactly_the_counted_z():
    # Walk a chain choosing a green (or red) successor of each token: g green among T = 8 scored tokens.
    mask = np.asarray(WATERMARK.green_mask(jnp.arange(VOCAB), VOCAB))
    blocks = []
    for green_count in (0, 2, 5, 8):
        block = [17]
        for step in range(8):
            choices = np.flatnonzero(mask[block[-1]] == (step < green_count))
            block.append(int(choices[step % len(choices)]))
        blocks.append(block)
    green, scored = WATERMARK.green_counts(jnp.array(blocks))
    assert scored == 8 and list(np.asarray(green)) == [0, 2, 5, 8]
    # z = (g - 0.25 * 8) / sqrt(8 * 0.25 * 0.75) = (g - 2) / sqrt(1.5)
    np.testing.assert_allclose(WATERMARK.z_score(jnp.array(blocks)), np.array([-2, 0, 3, 6]) / np.sqrt(1.5), rtol=1e-6)


def test_unwatermarked_text_has_standard_normal_z():
    # Uniform i.i.d. tokens know nothing of the lists: z is a standardized Binomial(64, 0.25), mean 0, sd 1. Over
    # 4000 blocks the mean's sd is 1/sqrt(4000) = 0.016 and the sd's sd is 1/sqrt(8000) = 0.011; tolerance ~5 sd.
    z = np.asarray(WATERMARK.z_score(jax.random.randint(jax.random.key(0), (4000, 65), 0, 1024)))
    assert abs(z.mean()) < 0.08 and abs(z.std() - 1) < 0.055
    # One-sided test at z > 4: a Binomial(64, 0.25) tail P(g >= 30) = 1.6e-5; none of 4000 plain blocks is flagged.
    assert (z > 4).sum() == 0


@pytest.fixture(scope="module")
def decoders():
    """A uniform decoder (zero weights: every next-token distribution is flat) and a peaked random one."""
    config = TransformerConfig(
        vocab_size=VOCAB, num_layers=1, hidden_size=16, num_heads=2, mlp_size=32, max_positions=48
    )
    params = init_params(jax.random.key(0), config)
    return config, jax.tree.map(jnp.zeros_like, params), jax.tree.map(lambda x: 8.0 * x, params)


def _prefix(count):
    prompts = jax.random.randint(jax.random.key(1), (count, 4), 1, VOCAB)
    return jnp.concatenate([jnp.zeros((count, 1), jnp.int32), prompts], 1)


# Decoding paths; the repetition penalty leaves flat (zero) logits unchanged, so the closed forms below still hold.
PATHS = {
    "greedy": dict(greedy=True),
    "top_k_top_p": dict(top_k=8, top_p=0.5, temperature=0.7),
    "sample": dict(repetition_penalty=3.0),
    "beam": None,
}
_COMPILED = {}


def _decode(config, params, path, prefix, watermark_bias=None):
    """One compile per (path, watermarked): delta is traced, so delta = 0 and delta = 2 share the program."""
    if (path, watermark_bias is None) not in _COMPILED:
        mark = {} if watermark_bias is None else {"watermark": WATERMARK}

        def run(params, prefix, delta):
            if path == "beam":
                return decoding.beam_search(params, config, prefix, NEW, 3, 3.0, watermark_bias=delta, **mark)
            return decoding.generate(
                jax.random.key(2), params, config, prefix, NEW, **PATHS[path], watermark_bias=delta, **mark
            )

        _COMPILED[path, watermark_bias is None] = jax.jit(run)
    delta = 0.0 if watermark_bias is None else watermark_bias
    return np.asarray(_COMPILED[path, watermark_bias is None](params, prefix, delta))


@pytest.mark.parametrize("path", ["greedy", "top_k_top_p", "beam"])
def test_a_large_bias_makes_every_token_green_on_every_decoding_path(decoders, path):
    # Flat logits + delta on green ids: greedy / beam / top-k (k = 8 < the smallest list: the tied green ids) and then
    # top-p keep only green ids, so g = T and z = sqrt(T (1 - gamma) / gamma) = sqrt(96) exactly.
    config, uniform, _ = decoders
    prefix = _prefix(64)
    tokens = _decode(config, uniform, path, prefix, watermark_bias=2.0)
    # The first new token is green after the prompt's last token (the bias acts from the first step).
    assert np.asarray(WATERMARK.is_green(prefix[:, -1], tokens[:, 0])).all()
    np.testing.assert_allclose(WATERMARK.z_score(tokens), np.sqrt(32 * 0.75 / 0.25), rtol=1e-6)


def test_sampling_puts_the_closed_form_mass_on_green_ids(decoders):
    # Flat logits over V ids, |G| of them green after the previous token: P(green) = |G| e^d / (|G| e^d + V - |G|).
    config, uniform, _ = decoders
    prefix = _prefix(64)
    tokens = _decode(config, uniform, "sample", prefix, watermark_bias=2.0)
    previous = np.concatenate([np.asarray(prefix[:, -1:]), tokens[:, :-1]], 1)
    sizes = np.asarray(WATERMARK.green_mask(jnp.arange(VOCAB), VOCAB)).sum(1)[previous]
    p = sizes * np.e**2 / (sizes * np.e**2 + VOCAB - sizes)
    green = np.asarray(WATERMARK.is_green(previous, tokens))
    # 64 x 33 independent Bernoulli(p): 5 sd of their sum (sd ~ 21 tokens).
    assert abs(green.sum() - p.sum()) < 5 * np.sqrt((p * (1 - p)).sum())
    # With delta = 2 and gamma = 0.25, P(green) ~ 0.71: z ~ (0.71 - 0.25) 32 / sqrt(6) ~ 6, well past a threshold of 4.
    assert np.mean(np.asarray(WATERMARK.z_score(tokens)) > 4) > 0.8


@pytest.mark.parametrize("path", sorted(PATHS))
def test_zero_bias_leaves_decoding_bit_identical(decoders, path):
    config, _, peaked = decoders
    prefix = _prefix(64)
    plain = _decode(config, peaked, path, prefix)
    np.testing.assert_array_equal(_decode(config, peaked, path, prefix, watermark_bias=0.0), plain)
    # ... while a bias moves it (the comparison can fail).
    assert (_decode(config, peaked, path, prefix, watermark_bias=4.0) != plain).any()


@pytest.fixture(scope="module")
def watermarked_lm(lm_config):  # noqa: F811
    """The tiny LM (random init) with and without a watermark_bias knob, and knobs with a detector threshold."""
    plain = make_model(runner.as_config({"model.pretrain_epochs": 0}, lm_config))
    config = runner.as_config({"model.pretrain_epochs": 0, "model.watermark_bias": [0.0, 8.0]}, lm_config)
    knobs = {"seed": 0, "real_fraction": 0.0, "learning_rate": 1e-2, "temperature": 1.0, "watermark_z_threshold": 4.0}
    return plain, make_model(config), {name: jnp.asarray(value) for name, value in knobs.items()}


def test_lm_watermark_knob_decodes_as_before_at_zero_and_is_detected_when_large(watermarked_lm):
    plain, marked, knobs = watermarked_lm
    assert "watermark_bias" in marked.knob_fields and "watermark_bias" not in plain.knob_fields
    params = marked.init(jax.random.key(1), knobs)
    sample = jax.jit(
        lambda model, delta: model.sample(jax.random.key(4), params, 32, {**knobs, "watermark_bias": delta}),
        static_argnums=0,
    )
    unmarked = sample(plain, 0.0)
    np.testing.assert_array_equal(sample(marked, 0.0)["tokens"], unmarked["tokens"])
    strong = sample(marked, 8.0)
    # A near-uniform random init under a bias of 8: every in-block token is green, so z = sqrt(7 * 3) = 4.58 > 4.
    assert np.asarray(marked.detect_watermark(strong, knobs)).all()
    assert not np.asarray(marked.detect_watermark(unmarked, knobs)).any()
    # Real test text: z > 4 needs all 7 tokens green, probability 0.25^7 = 6e-5 per block.
    reference = marked.reference()
    assert not np.asarray(marked.detect_watermark({"tokens": reference["test_tokens"]}, knobs)).any()
    metrics = jax.jit(lambda samples: marked.evaluate(params, samples, reference, knobs))(strong)
    assert set(WATERMARK_METRICS) <= set(marked.metric_names) and not set(WATERMARK_METRICS) & set(plain.metric_names)
    assert (
        float(metrics["watermark_detect_rate_synthetic"]) == 1.0 and float(metrics["watermark_detect_rate_real"]) == 0
    )
    np.testing.assert_allclose(metrics["watermark_z_mean"], np.sqrt(21), rtol=1e-6)


@pytest.mark.parametrize(
    "field, value", [("watermark_bias", -1.0), ("watermark_gamma", 1.5), ("watermark_key", -3), ("watermark_key", 2.5)]
)
def test_bad_watermark_settings_raise_a_value_error_naming_the_field(lm_config, field, value):  # noqa: F811
    with pytest.raises(ValueError, match=f"config.model.{field}"):
        sweep.expand(runner.as_config({"model.pretrain_epochs": 0, f"model.{field}": value}, lm_config))


def test_lm_log_likelihood_is_the_sum_of_next_token_log_probabilities(watermarked_lm):
    _, model, knobs = watermarked_lm
    params = model.init(jax.random.key(1), knobs)
    tokens = jnp.asarray(model.test_blocks[:5])
    inputs = jnp.concatenate([jnp.full((5, 1), model.tokenizer.bos_id), tokens[:, :-1]], 1)
    log_probs = jax.nn.log_softmax(forward(params["weights"], model.network, inputs), -1)
    expected = np.take_along_axis(np.asarray(log_probs), np.asarray(tokens)[..., None], -1).sum((1, 2))
    np.testing.assert_allclose(model.log_likelihood(params, {"tokens": tokens}, knobs), expected, rtol=1e-5)


def test_lm_is_good_keeps_the_base_models_high_density_region_of_real_text(lm_config):  # noqa: F811
    # Verifier oracle: good iff the base model's log-perplexity <= its good_region_mass quantile on validation text.
    config = runner.as_config({"curation": {"name": "verifier", "good_region_mass": 0.9}}, lm_config)
    model = make_model(config)
    validation = model_corpus(config.model).blocks["validation"]
    good = np.asarray(model.is_good({"tokens": jnp.asarray(validation)}, {}))
    # The threshold is the empirical 0.9 quantile (a share in [0.9, 0.9 + 1/n) of the n blocks lie at or below it);
    # is_good rescores the blocks in another batching, so the block at the threshold may land a float32 ulp above it.
    assert 0.9 - 1 / len(validation) <= good.mean() < 0.9 + 1 / len(validation)
    # Uniform random ids are far outside the base model's typical text (its perplexity on them is ~ the vocabulary).
    noise = jax.random.randint(jax.random.key(0), (64, validation.shape[1]), 3, model.tokenizer.vocab_size)
    assert not np.asarray(model.is_good({"tokens": noise}, {})).any()
    with pytest.raises(ValueError, match="config.curation.good_region_mass"):
        make_model(runner.as_config({"curation.good_region_mass": 1.5}, config))


def test_engine_watermark_filter_drops_exactly_what_the_lm_detector_flags(lm_config, tmp_path):  # noqa: F811
    # Generation g's filter scores generation g - 1's samples with the threshold that generation's evaluate used, so
    # its detected_synthetic_rate equals the previous watermark_detect_rate_synthetic, and the kept share is the rest.
    overrides = {
        "regime.name": "replace", "regime.real_fraction": 0.5, "model.decoding": "greedy", "model.pretrain_epochs": 0,
        "model.watermark_bias": [0.0, 8.0], "curation": {"name": "watermark_filter", "watermark_z_threshold": 4.0},
    }  # fmt: skip
    result = runner.run(runner.as_config(overrides, lm_config), str(tmp_path / "run"))
    metrics = result.metrics
    np.testing.assert_array_equal(
        metrics["detected_synthetic_rate"][:, 1:], metrics["watermark_detect_rate_synthetic"][:, :-1]
    )
    np.testing.assert_array_equal(
        metrics["curation_kept_fraction"][:, 1:], 1 - metrics["detected_synthetic_rate"][:, 1:]
    )
    strong = result.knobs["watermark_bias"] == 8.0
    assert (metrics["detected_synthetic_rate"][strong, 1:] == 1).all()  # every strongly watermarked block is caught
    assert (metrics["synthetic_share"][strong, 1:] == 0).all()  # ... so those generations train on real blocks only
    assert (metrics["detected_real_rate"][:, 1:] == 0).all()  # and no real block is flagged (P = 6e-5 each)


def test_every_curation_group_of_a_sweep_starts_from_the_same_generation_0_model(lm_config):  # noqa: F811
    # Curated pools train by weighted i.i.d. block draws; the "none" group of the same sweep must train the same way,
    # or the comparison "filter vs no filter" also compares two training schemes (it did: generation-0 test perplexity
    # 63.06 vs 63.16 in mitigation_curation_lm before the fix). Same fit, same key -> the same generation-0 metrics.
    overrides = {
        "num_generations": 0, "model.pretrain_epochs": 0, "regime.name": "replace",
        "curation": {"name": ("none", "likelihood_filter"), "keep_quantiles": (0.1, 1.0)},
    }  # fmt: skip
    result = runner.simulate(runner.as_config(overrides, lm_config))
    groups = result.knobs["curation"]
    for metric in ("ppl_real_test", "train_loss", "distinct_2"):
        values = result.metrics[metric][:, 0]
        np.testing.assert_allclose(values[groups == "none"], values[groups == "likelihood_filter"], rtol=1e-5)
