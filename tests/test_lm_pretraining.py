"""The pretrained base model: trained once per settings and cached, fetched at run time rather than compiled in."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_lm_model import KNOBS, lm_config  # noqa: F401  (the shared tiny-corpus config fixture)

from collapse_jax.host import runner
from collapse_jax.models.base import make_model
from collapse_jax.models.lm import pretraining
from collapse_jax.models.lm.transformer import init_params


@pytest.fixture(scope="module")
def pretrained_config(lm_config):  # noqa: F811
    """The shared tiny config: 6 pretraining epochs of 6 batches of 16 blocks at lr 1e-2."""
    assert lm_config.model.pretrain_epochs > 0
    return lm_config


@pytest.fixture(scope="module")
def pretrained_model(pretrained_config):
    return make_model(pretrained_config)


def _knobs():
    return {name: jnp.asarray(value) for name, value in KNOBS.items()}


def test_base_model_is_trained_once_then_loaded_and_cached_by_its_settings(
    pretrained_config, pretrained_model, monkeypatch
):
    def must_not_train(*args, **kwargs):
        raise AssertionError("pretrained again although the cache holds these settings")

    monkeypatch.setattr(pretraining, "pretrain", must_not_train)
    again = make_model(pretrained_config)
    jax.tree.map(np.testing.assert_array_equal, again.pretrained, pretrained_model.pretrained)
    # Another learning rate is another base model: a new cache entry, so it must train.
    with pytest.raises(AssertionError, match="pretrained again"):
        make_model(runner.as_config({"model.pretrain_learning_rate": 5e-3}, pretrained_config))


def test_pretraining_beats_a_random_init_on_the_unseen_test_works(pretrained_config, pretrained_model):
    records = list((Path(pretrained_config.model.data_dir) / "lm_pretrained").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    test = jnp.asarray(pretrained_model.test_blocks)
    random_init = init_params(jax.random.key(0), pretrained_model.network)
    random_ppl = float(jnp.exp(jnp.mean(pretrained_model.sequence_nll(random_init, test))))
    # A random init is near-uniform over the 280 ids (ppl ~ 280); the verse draws 6 of 20 words a line, so a model
    # that has learnt the word list is far below that: 96 steps at lr 1e-2 must at least halve it.
    assert record["zero_shot_test_perplexity"] < random_ppl / 2
    assert record["train_loss_last_5pct"] < record["train_loss_first_5pct"]


def test_init_fetches_the_base_model_at_run_time_instead_of_compiling_it_in(pretrained_model):
    knobs = _knobs()
    init = jax.jit(pretrained_model.init)
    params = init(jax.random.key(1), knobs)
    jax.tree.map(np.testing.assert_array_equal, params["weights"], pretrained_model.pretrained)
    jax.tree.map(np.testing.assert_array_equal, params["gen0"], pretrained_model.pretrained)
    program = init.lower(jax.random.key(1), knobs).as_text()
    weight_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(pretrained_model.pretrained))
    # Embedded weights appear as hex literals (2 characters a byte): the program would be > 2 x weight_bytes long.
    assert len(program) < weight_bytes, (len(program), weight_bytes)
    # Under vmap (the engine's chain axis) every chain starts from the same base weights.
    batched = {name: jnp.stack([value, value]) for name, value in knobs.items()}
    chains = jax.jit(jax.vmap(pretrained_model.init))(jax.random.split(jax.random.key(2), 2), batched)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, np.stack([b, b])), chains["weights"], params["weights"])


def test_generation_zero_fine_tuned_from_the_base_model_beats_one_fine_tuned_from_a_random_init(pretrained_model):
    knobs = _knobs()
    real = pretrained_model.real_data(jax.random.key(0), knobs)
    ones = jnp.ones(pretrained_model.real_data_size)
    fit = jax.jit(lambda previous: pretrained_model.fit(jax.random.key(3), real, ones, knobs, previous))
    with_base = fit(pretrained_model.init(jax.random.key(1), knobs))
    random_init = init_params(jax.random.key(1), pretrained_model.network)
    from_scratch = fit({**with_base, "weights": random_init, "gen0": random_init, "fits": jnp.int32(0)})
    test = jnp.asarray(pretrained_model.test_blocks)
    # Same steps on the same 32 blocks: the start that has seen every training block (and learnt the word list)
    # must end better on the unseen works than the random one.
    base_nll = float(jnp.mean(pretrained_model.sequence_nll(with_base["weights"], test)))
    scratch_nll = float(jnp.mean(pretrained_model.sequence_nll(from_scratch["weights"], test)))
    assert base_nll < scratch_nll, (base_nll, scratch_nll)
