"""The `lm` model family: config validation, fit/sample/evaluate semantics, and engine runs (sweep, resume)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_resumed

from collapse_jax.analysis.lm_report import histogram_edges, write_lm_report
from collapse_jax.host import runner, sweep
from collapse_jax.models.base import make_model
from collapse_jax.store import artifacts
from experiments.configs.lm_tiny import get_config

WORDS = "thou art the king of night and day my lord what say you now to me fair sweet love".split()
KNOBS = {"seed": 0, "real_fraction": 0.0, "learning_rate": 1e-2, "temperature": 1.0}


@pytest.fixture(scope="module")
def lm_config(tmp_path_factory):
    """lm_tiny shrunk to seconds: 7 random-verse works, 8-token blocks, a 1-layer 32-wide decoder, 32 blocks."""
    corpus = tmp_path_factory.mktemp("verse")
    rng = np.random.default_rng(0)
    for index in range(7):
        (corpus / f"work_{index}.txt").write_text("\n".join(" ".join(rng.choice(WORDS, 6)) for _ in range(80)))
    config = get_config()
    overrides = {
        "model.data_dir": str(tmp_path_factory.mktemp("tfds")), "model.corpus_dir": str(corpus),
        "model.corpus_pattern": "*.txt", "model.test_works": 2, "model.validation_works": 1,
        "model.block_length": 8, "model.vocab_size": 280, "model.num_layers": 1, "model.hidden_size": 32,
        "model.num_heads": 2, "model.mlp_size": 64, "model.max_train_blocks": 32, "model.max_test_blocks": 32,
        "model.num_beams": 2, "model.decode_batch_size": 16, "model.eval_batch_size": 16, "model.batch_size": 8,
        "model.epochs": 8, "model.learning_rate": 1e-2, "samples_per_generation": 32, "seeds": 1,
        "num_generations": 2, "make_plots": False, "model.num_sample_texts": 3,
        # The base model every chain fine-tunes: 6 epochs over the training works (cached under data_dir).
        "model.pretrain_epochs": 6, "model.pretrain_batch_size": 16, "model.pretrain_learning_rate": 1e-2,
    }  # fmt: skip
    return runner.as_config(overrides, config)


@pytest.fixture(scope="module")
def model(lm_config):
    """The family without a base model: generation 0 starts from a random init."""
    return make_model(runner.as_config({"model.pretrain_epochs": 0}, lm_config))


@pytest.mark.parametrize(
    "field, value",
    [("protocol", "chat"), ("decoding", "nucleus"), ("start_from", "scratch"), ("temperature", 0.0),
     ("learning_rate", -1.0), ("num_layers", 0), ("repetition_penalty", 0.0), ("num_sample_texts", 10**6)],
)  # fmt: skip
def test_bad_config_raises_a_value_error_naming_the_field(lm_config, field, value):
    # The sweep checks every field against its declaration before it builds anything.
    with pytest.raises(ValueError, match=f"config.model.{field}"):
        sweep.expand(runner.as_config({f"model.{field}": value}, lm_config))


def _knobs():
    return {name: jnp.asarray(value) for name, value in KNOBS.items()}


def test_first_fit_lowers_test_perplexity_and_is_kept_as_generation_zero(model):
    knobs = _knobs()
    real = model.real_data(jax.random.key(0), knobs)
    initial = model.init(jax.random.key(1), knobs)
    ones = jnp.ones(model.real_data_size)
    fitted = jax.jit(lambda p: model.fit(jax.random.key(2), real, ones, knobs, p))(initial)
    test = jnp.asarray(model.test_blocks)
    before = float(jnp.exp(jnp.mean(model.sequence_nll(initial["weights"], test))))
    after = float(jnp.exp(jnp.mean(model.sequence_nll(fitted["weights"], test))))
    # A random init is near-uniform over 280 ids; 64 AdamW steps on a 20-word verse must cut that at least in half.
    assert after < before / 2
    assert int(fitted["fits"]) == 1
    jax.tree.map(np.testing.assert_array_equal, fitted["gen0"], fitted["weights"])
    refit = model.fit(jax.random.key(3), real, ones, knobs, fitted)
    jax.tree.map(np.testing.assert_array_equal, refit["gen0"], fitted["weights"])  # later fits never touch gen0


def test_samples_are_block_length_and_never_use_banned_ids(model):
    knobs = _knobs()
    params = model.init(jax.random.key(1), knobs)
    for count in (model.real_data_size, 5):  # every block continued once, or a random subset of prompts
        tokens = np.asarray(model.sample(jax.random.key(4), params, count, knobs)["tokens"])
        assert tokens.shape == (count, model.train_blocks.shape[1])
        assert not model.banned_ids[tokens].any()


def test_evaluate_returns_the_contract_and_consistent_perplexities(model):
    knobs = _knobs()
    params = model.init(jax.random.key(1), knobs)
    samples = model.sample(jax.random.key(4), params, 32, knobs)
    metrics = model.evaluate(params, samples, model.reference(), knobs)
    assert sorted(metrics) == sorted(model.metric_names + model.artifact_names)
    # The artifact is the first num_sample_texts generated blocks, as int32 ids (decoded on the host later).
    np.testing.assert_array_equal(metrics["sample_tokens"], samples["tokens"][:3])
    nll = model.sequence_nll(params["weights"], jnp.asarray(model.test_blocks))
    assert np.isclose(float(metrics["ppl_real_test"]), float(jnp.exp(jnp.mean(nll))), rtol=1e-5)
    # 32 test blocks in 2 full batches of 16: the batch mean of batch means equals the overall mean.
    assert np.isclose(float(metrics["ppl_real_test_batch_mean"]), float(metrics["ppl_real_test"]), rtol=1e-5)
    histogram = sum(float(metrics[name]) for name in model.metric_names if "_hist_" in name)
    assert histogram == 32
    q = [float(metrics[f"ppl_generated_gen0_q{p:02d}"]) for p in (5, 25, 50, 75, 95)]
    assert q == sorted(q)


def test_engine_run_resumed_with_more_generations_is_bit_identical(lm_config, tmp_path):
    # accumulate: the raw pool's capacity grows with num_generations, so this also checks that batches do not
    # depend on the pool's padding (one regime keeps the test to one compile per run). Chains start from the
    # pretrained base model, which the compiled init fetches from the host at run time.
    config = runner.as_config({"regime.name": "accumulate", "model.decoding": "greedy"}, lm_config)
    straight = runner.run(config, str(tmp_path / "straight"))
    assert straight.metrics["ppl_real_test"].shape == (2, 3)  # real fractions 0 and 0.1 x 1 seed; 2 fits + gen 0
    assert np.isfinite(straight.metrics["ppl_real_test"]).all()
    runner.run(runner.as_config({"num_generations": 1}, config), str(tmp_path / "resumed"))
    resumed = runner.run(config, str(tmp_path / "resumed"))
    assert_resumed(str(tmp_path / "resumed"), 1, 2)
    for name in straight.metrics:
        np.testing.assert_array_equal(straight.metrics[name], resumed.metrics[name], err_msg=name)
    for generation in range(3):
        chain_ids, tokens = artifacts.load(str(tmp_path / "straight"), "sample_tokens", generation)
        assert tokens.shape == (2, 3, 8) and tokens.dtype == np.int32  # 2 chains x num_sample_texts x L
        np.testing.assert_array_equal(chain_ids, straight.chain_ids)
        np.testing.assert_array_equal(tokens, artifacts.load(str(tmp_path / "resumed"), "sample_tokens", generation)[1])
    # The decoded report shows, for chain 0's first text, its prompt (training block 0: M = every block) and the
    # tokenizer's decoding of the saved ids at every generation.
    plot, samples = write_lm_report(str(tmp_path / "straight"), straight)
    assert os.path.getsize(plot) > 0
    text = open(samples).read()
    model = make_model(config)  # the cached corpus and base model: no rebuild
    assert repr(model.tokenizer.decode(model.train_blocks[0])) in text
    for generation in range(3):
        tokens = artifacts.load(str(tmp_path / "straight"), "sample_tokens", generation)[1]
        assert f"generation {generation}: {model.tokenizer.decode(tokens[0, 0])!r}" in text


def test_histogram_edges_of_the_report_are_the_models_bins(model, lm_config):
    np.testing.assert_allclose(np.log(histogram_edges(lm_config.model)), model.log_edges, rtol=1e-6, atol=1e-9)
