"""Shumailov et al.'s error sources on the `lm` family: depth as the capacity switch (a static sweep field with its own
cached base model), the training budget as the approximation switch (steps_per_generation, learning_rate, start_from).
"""

import jax
import numpy as np
import pytest
from test_lm_model import lm_config  # noqa: F401  (the shared tiny-corpus config fixture)

from collapse_jax.host import runner, sweep
from collapse_jax.models.base import make_model
from collapse_jax.models.lm import pretraining
from collapse_jax.models.lm.transformer import init_params

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _parameter_count(model) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(init_params(jax.random.key(0), model.network)))


@pytest.fixture(scope="module")
def no_base(lm_config):  # noqa: F811
    return runner.as_config({"model.pretrain_epochs": 0}, lm_config)


def test_each_layer_adds_one_pre_ln_decoder_block_of_parameters(no_base):
    counts = [_parameter_count(make_model(runner.as_config({"model.num_layers": n}, no_base))) for n in (1, 2, 3)]
    h, m = no_base.model.hidden_size, no_base.model.mlp_size
    # One OPT block: two LayerNorms (scale + bias), q/k/v/out projections with biases, fc1 and fc2 with biases.
    block = 2 * 2 * h + 4 * (h * h + h) + (h * m + m) + (m * h + h)
    assert counts[1] - counts[0] == block
    assert counts[2] - counts[1] == block


def test_depth_is_part_of_the_base_model_cache_key(lm_config, monkeypatch):  # noqa: F811
    """make_model asks the pretraining cache for one path per depth (the hash covers the whole TransformerConfig)."""
    asked = []

    def record(path, blocks, test_blocks, network, settings, bos_id):
        asked.append((path, network.num_layers))
        return init_params(jax.random.key(0), network)  # stands in for the trained base (training is not tested here)

    monkeypatch.setattr(pretraining, "load_or_pretrain", record)
    for depth in (1, 2, 1, 3):
        assert make_model(runner.as_config({"model.num_layers": depth}, lm_config)).network.num_layers == depth
    paths = {depth: {path for path, n in asked if n == depth} for depth in (1, 2, 3)}
    assert all(len(path) == 1 for path in paths.values())  # the same depth: the same cache entry
    assert len(set().union(*paths.values())) == 3  # another depth: another base model
    assert all(path.parent.name == "lm_pretrained" for path, _ in asked)


def test_depth_and_start_sweep_as_static_groups_with_a_fixed_step_budget(no_base):
    config = runner.as_config(
        {"model.num_layers": (1, 2), "model.start_from": ("previous", "fresh"), "model.learning_rate": (1e-2, 1e-3),
         "model.steps_per_generation": 3, "regime.name": "replace"},
        no_base,
    )  # fmt: skip
    groups = sweep.expand(config)
    assert [group.labels for group in groups] == [
        {"regime": "replace", "samples_per_generation": 32, "num_layers": n, "start_from": s}
        for n in (1, 2)
        for s in ("previous", "fresh")
    ]
    for group in groups:
        model = make_model(group.config)
        assert model.network.num_layers == group.labels["num_layers"]
        assert model.start_from == group.labels["start_from"]
        assert model.train_settings.num_steps == 3
        np.testing.assert_array_equal(np.unique(group.knobs["learning_rate"]), [1e-3, 1e-2])  # a chain knob


def test_unset_step_budget_keeps_epochs_over_m(no_base):
    model = make_model(no_base)
    c = no_base.model
    assert model.train_settings.num_steps == -(-c.epochs * no_base.samples_per_generation // c.batch_size)


def test_bad_step_budget_names_the_field(no_base):
    with pytest.raises(ValueError, match="config.model.steps_per_generation"):
        sweep.expand(runner.as_config({"model.steps_per_generation": 0}, no_base))
