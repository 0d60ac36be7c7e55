"""LM training's block sampling: epoch permutations for full pools, weighted i.i.d. draws for curated pools."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.models.lm import training, transformer
from collapse_jax.models.lm.transformer import TransformerConfig


def test_epochs_visit_every_valid_block_once_per_epoch():
    weights = jnp.asarray([1, 0, 1, 1, 0, 1, 1, 1], jnp.float32)  # 6 valid blocks
    settings = training.TrainSettings(batch_size=3, num_steps=4, min_valid=6)
    indices = np.asarray(training.batch_indices(jax.random.key(0), weights, settings)).ravel()
    for epoch in (indices[:6], indices[6:]):
        assert sorted(epoch) == [0, 2, 3, 5, 6, 7]


def test_weighted_draws_follow_the_weights_and_never_pick_a_removed_block():
    weights = jnp.asarray([1.0, 0.0, 0.25, 0.0, 1.0], jnp.float32)
    settings = training.TrainSettings(batch_size=100, num_steps=400, sampling="weighted")
    indices = np.asarray(training.batch_indices(jax.random.key(1), weights, settings)).ravel()
    counts = np.bincount(indices, minlength=5) / indices.size
    assert counts[1] == 0 and counts[3] == 0
    # P = (1, 0.25, 1) / 2.25; 40,000 draws: SE = sqrt(p (1 - p) / n) <= 0.0025, 5 SE.
    np.testing.assert_allclose(counts[[0, 2, 4]], np.asarray([1.0, 0.25, 1.0]) / 2.25, atol=0.0125)


@pytest.mark.parametrize("sampling", ["epochs", "weighted"])
def test_a_pool_without_valid_blocks_leaves_the_model_unchanged(sampling):
    config = TransformerConfig(vocab_size=16, num_layers=1, hidden_size=8, num_heads=1, mlp_size=16, max_positions=8)
    params = transformer.init_params(jax.random.key(2), config)
    blocks = jnp.zeros((6, 4), jnp.int32)
    settings = training.TrainSettings(batch_size=2, num_steps=3, min_valid=1, sampling=sampling)
    trained, _ = training.train(jax.random.key(3), params, config, settings, blocks, jnp.zeros(6), 1e-2, 1)
    for new, old in zip(jax.tree.leaves(trained), jax.tree.leaves(params)):
        np.testing.assert_array_equal(new, old)
    moved, _ = training.train(jax.random.key(3), params, config, settings, blocks, jnp.ones(6), 1e-2, 1)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(moved), jax.tree.leaves(params)))
