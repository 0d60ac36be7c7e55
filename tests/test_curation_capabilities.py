"""Curation asks a family for capabilities, never its name: an outside Gaussian family (examples/gaussian_wrapper)
runs self-correction, selection and preference with the built-in Gaussian's bits."""

import dataclasses

import ml_collections
import numpy as np
import pytest

from collapse_jax import testing
from collapse_jax.core import curation
from collapse_jax.host import runner
from collapse_jax.models import base, contract
from examples.gaussian_wrapper import family as wrapper
from examples.gaussian_wrapper import self_correction_config
from experiments.configs import gaussian as shipped_gaussian

WRAPPER = "examples.gaussian_wrapper.family"
OPERATORS = {
    # gamma 0 (the candidates' bits), 0.5 and 1 (draws from the truth) in one compile.
    "self_correction": {"name": "self_correction", "correction_strength": (0.0, 0.5, 1.0)},
    "selection": {"name": "selection", "selection_share": 0.5, "target_offset": (0.0, 1.0), "oversample": 2},
    "preference": {"name": "preference", "candidates": 4, "oversample": 4, "reward": "quadratic", "reward_scale": 0.5},
}


def curated(config: ml_collections.ConfigDict, model_name: str, fields: dict) -> ml_collections.ConfigDict:
    config = runner.as_config({"model.name": model_name, "model.dim": 2, "seeds": 4}, config)
    config.curation = ml_collections.ConfigDict(fields)
    return config


@pytest.mark.parametrize("operator", list(OPERATORS))
def test_an_outside_gaussian_family_curates_with_the_built_in_gaussians_bits(gaussian_config, operator):
    """The wrapper's params are {'location', 'scale'}, not the built-in's {'mean', 'cov'}, and its name is a module
    path: self-correction reaches its fit through LocationScale and its truth through IsotropicGaussianTruth (as
    selection and preference do), so every metric of every chain equals the built-in family's bit for bit."""
    built_in = runner.simulate(curated(gaussian_config, "gaussian", OPERATORS[operator]))
    outside = runner.simulate(curated(gaussian_config, WRAPPER, OPERATORS[operator]))
    assert set(outside.metrics) == set(built_in.metrics)
    for name, values in built_in.metrics.items():
        np.testing.assert_array_equal(outside.metrics[name], values, err_msg=name)
    assert np.all(np.isfinite(built_in.metrics["trace_ratio"]))


def test_the_gaussian_and_its_wrapper_expose_the_fit_and_truth_capabilities():
    config = runner.as_config({"regime.name": "replace", "model.test_size": 10}, shipped_gaussian.get_config())
    outside = runner.as_config({"model.name": wrapper.__name__}, config)
    for model in (base.make_model(config), base.make_model(outside)):
        assert contract.supports(model, contract.LocationScale) and contract.has_gaussian_truth(model)
    # A truth only centred and scaled like N(true_mean * 1, true_std^2 I) is declared so.
    student = runner.as_config({"model.truth": "student_t"}, config)
    assert not base.make_model(student).truth_is_gaussian
    assert not contract.has_gaussian_truth(base.make_model(runner.as_config({"model.name": wrapper.__name__}, student)))
    # Without IsotropicGaussianTruth there is no Gaussian truth, whatever the flag.
    assert not contract.has_gaussian_truth(dataclasses.make_dataclass("Flag", [("truth_is_gaussian", bool)])(True))


@pytest.mark.parametrize("model_name", ["gaussian", WRAPPER])
def test_self_correction_refuses_a_non_gaussian_truth_in_one_line_naming_the_curation(gaussian_config, model_name):
    config = curated(gaussian_config, model_name, {"name": "self_correction", "correction_strength": 0.5})
    config = runner.as_config({"model.dim": 1, "model.truth": "mixture"}, config)
    with pytest.raises(
        ValueError, match=r"^config\.curation\.name: 'self_correction' needs the Gaussian truth"
    ) as error:
        curation.make_curation(config, base.make_model(config))
    assert "\n" not in str(error.value)


def test_the_wrappers_config_passes_the_conformance_kit():
    overrides = {"seeds": 1, "num_generations": 2, "chunk_generations": 1, "chain_block": 1, "regime.name": "replace"}
    config = runner.as_config({**overrides, "model.test_size": 200}, self_correction_config.get_config())
    assert config.model.name == WRAPPER and config.curation.name == "self_correction"
    checks = testing.check_config(config, write=lambda line: None)
    assert not [check.line() for check in checks if check.status == "FAIL"]
