"""Sweep expansion and bad-input validation: one-line errors naming the field, before anything compiles."""

import importlib
import pathlib

import numpy as np
import pytest

from collapse_jax.host import runner, sweep


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.name": "no_such_model"}, "config.model.name: unknown model 'no_such_model'; allowed: "),
        ({"regime.name": "recycle"}, "config.regime.name: unknown regime 'recycle'"),
        ({"samples_per_generation": 0}, "config.samples_per_generation: must be an integer >= 1"),
        ({"samples_per_generation": -5}, "config.samples_per_generation: must be an integer >= 1"),
        ({"regime.real_fraction": 1.5}, "config.regime.real_fraction: must be a finite number >= 0 and <= 1"),
        ({"regime.real_fraction": (0.1, -0.2)}, "config.regime.real_fraction: must be a finite number >= 0 and <= 1"),
        ({"num_generations": -1}, "config.num_generations: must be an integer >= 0"),
        ({"seeds": 0}, "config.seeds: a count must be >= 1"),
        ({"seeds": (1, 1)}, "config.seeds: seeds must be distinct"),
        ({"model.estimator": "map"}, "config.model.estimator"),
        ({"model.sampling_bias": -1.0}, "config.model.sampling_bias"),
        ({"model.real_data_size": 10, "regime.real_fraction": 0.5}, "config.regime.real_fraction: .* exceeds"),
        ({"chain_block": 0}, "config.chain_block: must be 'auto' or an integer >= 1, got 0"),
        ({"chain_block": "big"}, "config.chain_block: must be 'auto' or an integer >= 1, got 'big'"),
    ],
)
def test_bad_config_gives_one_line_error_naming_the_field(gaussian_config, tmp_path, overrides, message):
    workdir = tmp_path / "w"
    with pytest.raises(ValueError, match=message) as error:
        runner.run(runner.as_config(overrides, gaussian_config), str(workdir))
    assert "\n" not in str(error.value)
    assert not workdir.exists()  # nothing was written


def test_sweep_expands_knobs_into_chains_and_static_fields_into_groups(gaussian_config):
    config = runner.as_config(
        {
            "regime.name": ("replace", "accumulate"),
            "regime.real_fraction": (0.0, 0.5),
            "model.sampling_bias": (1.0, 0.9),
            "seeds": 3,
        },
        gaussian_config,
    )
    groups = sweep.expand(config)
    assert [g.labels["regime"] for g in groups] == ["replace", "accumulate"]
    for group in groups:
        assert len(group.chain_ids) == 2 * 2 * 3
        combos = set(zip(group.knobs["real_fraction"], group.knobs["sampling_bias"], group.knobs["seed"]))
        assert len(combos) == 12  # the full cartesian product, each chain distinct
    np.testing.assert_array_equal(np.concatenate([g.chain_ids for g in groups]), np.arange(24))


def test_results_carry_knobs_that_say_which_chain_is_which(gaussian_config):
    config = runner.as_config(
        {
            "regime.name": ("replace", "accumulate"),
            "regime.real_fraction": (0.0, 0.5),
            "seeds": (4, 9),
            "num_generations": 2,
        },
        gaussian_config,
    )
    r = runner.simulate(config)
    assert r.metrics["trace_ratio"].shape == (8, 3)
    assert list(r.knobs["regime"]) == ["replace"] * 4 + ["accumulate"] * 4
    assert list(r.knobs["seed"][:4]) == [4, 9, 4, 9]
    assert sorted(r.group_fields) == ["real_fraction", "regime"]
    assert len(r.knob_groups()) == 4


def test_shards_partition_the_sweep_and_reproduce_the_single_job(gaussian_config):
    config = runner.as_config(
        {
            "regime.name": ("replace", "accumulate"),
            "regime.real_fraction": (0.0, 0.5),
            "seeds": 5,
            "num_generations": 3,
        },
        gaussian_config,
    )
    whole = runner.simulate(config)
    parts = [runner.simulate(runner.as_config({"num_shards": 3, "shard_index": i}, config)) for i in range(3)]
    ids = np.concatenate([p.chain_ids for p in parts])
    np.testing.assert_array_equal(ids, np.arange(whole.num_chains))
    for name, values in whole.metrics.items():
        np.testing.assert_array_equal(np.concatenate([p.metrics[name] for p in parts]), values, err_msg=name)
    with pytest.raises(ValueError, match="config.shard_index"):
        runner.simulate(runner.as_config({"num_shards": 3, "shard_index": 3}, config))


CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "configs"
# common.py holds the shared fields every config starts from; it is not a config itself.
SHIPPED_CONFIGS = sorted(path.stem for path in CONFIG_DIR.glob("*.py") if path.stem not in ("__init__", "common"))
# Configs whose models build in well under a second (no data files, no tokenizer or network training at build time).
CHEAP_MODELS = (
    "diffusion",
    "gaussian",
    "discrete",
    "linear_regression",
    "gmm",
    "kde",
    "gaussian_classifier",
    "poisson",
    "bernoulli",
)


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_every_shipped_config_passes_validation_and_cheap_ones_expand(name):
    """A bad shipped config (an unknown report field or band, a real fraction out of range, a bad curation knob in a
    cheap model's config) fails here, not after a long run. Metric names are checked only once a run knows them."""
    config = importlib.import_module(f"experiments.configs.{name}").get_config()
    sweep.validate(config)
    if config.model.name in CHEAP_MODELS and config.model.get("truth") not in ("digits", "fashion_mnist"):
        chain_ids = np.concatenate([group.chain_ids for group in sweep.expand(config)])
        np.testing.assert_array_equal(chain_ids, np.arange(len(chain_ids)))  # groups tile the chain axis in order


def test_vae_curation_config_expands_to_one_group_per_curation_with_its_own_knobs():
    groups = sweep.expand(importlib.import_module("experiments.configs.mitigation_vae_digits").get_config())
    assert [group.labels["curation"] for group in groups] == ["none", "likelihood_filter", "verifier"]
    # 8 seeds x 2 real fractions, times 2 bands / 2 keep_bad values for the curated groups.
    assert [len(group.chain_ids) for group in groups] == [16, 32, 32]
    assert sorted(set(groups[1].knobs["keep_quantile_low"])) == [0.0, 0.1]
    assert sorted(set(groups[2].knobs["keep_bad"])) == [0.0, 0.5]
    assert "keep_bad" not in groups[0].knobs and "keep_quantile_low" not in groups[2].knobs
