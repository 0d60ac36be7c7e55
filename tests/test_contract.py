"""The family contract: supports() instead of probes, settings parsed once, metric names checked, external modules."""

import pathlib
import textwrap

import pytest

from collapse_jax.host import config_schema, runner, sweep
from collapse_jax.models import base, contract, discrete, gaussian, kde
from collapse_jax.models.vae import family as vae
from examples.custom_family import laplace, laplace_config
from experiments.configs import discrete as discrete_config
from experiments.configs import gaussian as gaussian_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def small_laplace(**overrides):
    settings = {"seeds": 2, "num_generations": 3, "chunk_generations": 3, "chain_block": 2, "make_plots": False}
    return runner.as_config({**settings, "regime.name": "replace", "regime.real_fraction": 0.0, **overrides},
                            laplace_config.get_config())  # fmt: skip


def test_supports_checks_every_hook_of_a_capability_on_models_and_classes():
    model = laplace.make_model(small_laplace(), contract.FamilySettings())
    assert contract.supports(model, contract.TruthSampler) and contract.supports(model, contract.Model)
    assert not contract.supports(model, contract.SufficientStatistics)
    assert contract.supports(gaussian.GaussianModel, contract.SufficientStatistics)
    assert contract.supports(gaussian.GaussianModel, contract.StatisticsSampler)
    assert not contract.supports(gaussian.GaussianModel, contract.EventMetrics)
    assert contract.supports(discrete.DiscreteModel, contract.EventMetrics)
    assert not contract.evaluate_uses_samples(model) and contract.evaluate_uses_samples(vae.VAEModel)


def test_static_sweep_fields_are_read_from_the_family_class_before_any_model_is_built():
    config = runner.as_config({"model.num_outcomes": (3, 5)}, discrete_config.get_config())
    assert "model.num_outcomes" in sweep.static_sweep_fields(config)
    assert base.family_class("kde") is kde.KernelDensityModel
    # The example declares none: only the engine's (its config's inactive curation block is dropped before expansion).
    assert sweep.static_sweep_fields(config_schema.without_unset(small_laplace())) == sweep.ENGINE_STATIC_SWEEP_FIELDS


def test_families_take_engine_settings_as_arguments_and_never_import_curation():
    for path in (REPO / "collapse_jax" / "models").rglob("*.py"):
        assert "collapse_jax.core.curation" not in path.read_text(), path
    settings = contract.family_settings(runner.as_config({"curation": {"good_region_mass": 0.5}}, small_laplace()))
    assert settings == contract.FamilySettings(good_region_mass=0.5, num_generations=3)
    # The mass reaches the family as an argument: the Gaussian's good region follows it, not the config.
    config = runner.as_config({"regime.name": "replace", "model.test_size": 10}, gaussian_config.get_config())
    wide = base.make_model(config, contract.FamilySettings(good_region_mass=0.99))
    narrow = base.make_model(config, contract.FamilySettings(good_region_mass=0.5))
    assert wide.good_radius_sq > narrow.good_radius_sq


@pytest.mark.parametrize("mass", [0.0, 1.0, 1.5, "high", True])
def test_a_bad_good_region_mass_is_one_line_from_the_one_parser(mass):
    with pytest.raises(ValueError, match="config.curation.good_region_mass: must be a number in") as error:
        contract.family_settings(runner.as_config({"curation": {"good_region_mass": mass}}, small_laplace()))
    assert "\n" not in str(error.value)


def test_unknown_model_names_list_the_builtins_and_say_how_to_name_a_module():
    for name in ("no_such_model", "no_such_package.family"):
        with pytest.raises(ValueError, match="config.model.name: unknown model") as error:
            base.family_module(name)
        assert "gaussian, gaussian_classifier" in str(error.value) and "importable module path" in str(error.value)
    with pytest.raises(ValueError, match="has no make_model"):
        base.family_module("collapse_jax.models._metrics")


def write_family(directory, source: str) -> None:
    (directory / "outside_family.py").write_text(textwrap.dedent(source))


def test_an_external_module_runs_and_an_evaluate_key_mismatch_is_one_line_naming_the_family(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_family(
        tmp_path,
        """
        from examples.custom_family import laplace

        class Extra(laplace.LaplaceModel):
            def evaluate(self, params, samples, reference, knobs):
                metrics = super().evaluate(params, samples, reference, knobs)
                return {"bonus": metrics.pop("scale_ratio"), **metrics}

        def make_model(config, settings) -> Extra:
            return Extra(**vars(laplace.make_model(config, settings)))
    """,
    )
    with pytest.raises(ValueError) as error:
        runner.simulate(small_laplace(**{"model.name": "outside_family"}))
    message = str(error.value)
    assert "outside_family.Extra.evaluate" in message and "missing ['scale_ratio'], extra ['bonus']" in message
    assert "\n" not in message
    results = runner.simulate(small_laplace())  # the shipped example, by module path
    assert results.metrics["scale_ratio"].shape == (2, 4) and not results.failed.any()
