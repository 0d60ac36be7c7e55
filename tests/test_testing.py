"""The conformance kit: every built-in family and the example pass it; broken families fail the matching check."""

import pathlib
import subprocess
import sys

import broken_families
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_lm_model import lm_config  # noqa: F401  (the shared tiny-corpus LM fixture)
from test_vae import tiny_config

from collapse_jax import testing
from collapse_jax.host import runner
from collapse_jax.models import contract
from examples.custom_family import laplace, laplace_config
from experiments.configs import (
    bernoulli,
    discrete,
    gaussian,
    gmm,
    kde,
    linear_regression,
    mitigation_verifier,
    poisson,
)

REPO = pathlib.Path(__file__).resolve().parents[1]

SMALL = {"seeds": 1, "num_generations": 2, "chunk_generations": 1, "chain_block": 1}
# Each family's shipped config, shrunk: the first static group, one chain, small M and test sets.
LIGHT_FAMILIES = {
    "gaussian": (gaussian, {"regime.name": "replace", "regime.real_fraction": 0.0, "model.test_size": 200}),
    "discrete": (discrete, {"regime.name": "replace", "samples_per_generation": 64}),
    "gmm": (
        gmm,
        {"samples_per_generation": 32, "model.test_size": 100, "model.max_iterations": 5, "model.kmeans_iterations": 2},
    ),
    "kde": (kde, {"regime.name": "replace", "samples_per_generation": 32, "model.test_size": 100}),
    "linear_regression": (linear_regression, {"regime.name": "replace", "model.test_size": 200}),
    "gaussian_classifier": (mitigation_verifier, {"samples_per_generation": 64}),
    # Truths far from the absorbing states, so the first chain's fit can draw different points for different keys.
    "poisson": (poisson, {"regime.name": "replace", "samples_per_generation": 64, "model.rate": 2.0}),
    "bernoulli": (bernoulli, {"regime.name": "replace", "samples_per_generation": 64, "model.probability": 0.5}),
    "examples.custom_family.laplace": (laplace_config, {"regime.name": "replace", "samples_per_generation": 64}),
}


def assert_conforms(checks: list[testing.Check]) -> None:
    failures = [check.line() for check in checks if check.status == "FAIL"]
    assert not failures, failures
    passed = {check.name for check in checks if check.status == "PASS"}
    assert {
        "deterministic",
        "key_dependent",
        "vmap_blocks",
        "masked_slots",
        "metric_names",
        "degenerate_data",
    } <= passed


@pytest.mark.parametrize("family", list(LIGHT_FAMILIES))
def test_family_passes_the_conformance_kit(family):
    config_module, overrides = LIGHT_FAMILIES[family]
    config = runner.as_config({**SMALL, **overrides}, config_module.get_config())
    assert config.model.name == family
    assert_conforms(testing.check_config(config, write=lambda line: None))


def test_vae_passes_the_conformance_kit(tmp_path):
    config = runner.as_config({**SMALL, "samples_per_generation": 32}, tiny_config(str(tmp_path)))
    assert_conforms(testing.check_config(config, write=lambda line: None))


def test_language_model_passes_the_conformance_kit(lm_config):  # noqa: F811
    config = runner.as_config({**SMALL, "samples_per_generation": 8}, lm_config)
    assert_conforms(testing.check_config(config, write=lambda line: None))


class CountingSample(laplace.LaplaceModel):
    """Impure: a Python-side counter, read at trace time, moves the draws."""

    calls = [0]

    def sample(self, key, params, num_samples, knobs):
        self.calls[0] += 1
        return super().sample(jax.random.fold_in(key, self.calls[0]), params, num_samples, knobs)


class FixedKeySample(laplace.LaplaceModel):
    """Ignores its key: every chain and generation draws the same noise."""

    def sample(self, key, params, num_samples, knobs):
        return super().sample(jax.random.key(0), params, num_samples, knobs)


class LeakyFit(laplace.LaplaceModel):
    """Ignores the weights' mask in its location: masked slots move the fit."""

    def fit(self, key, data, weights, knobs, previous):
        params = super().fit(key, data, weights, knobs, previous)
        return {**params, "location": jnp.median(data)}


class NaNSamples(laplace.LaplaceModel):
    """A zero scale (all points equal) gives finite params whose samples are not finite: nothing flags the chain."""

    def sample(self, key, params, num_samples, knobs):
        return super().sample(key, params, num_samples, knobs) / jnp.where(params["scale"] > 0, 1.0, 0.0)


FORM_CHECKS = ("deterministic", "key_dependent", "vmap_blocks", "masked_slots", "metric_names", "degenerate_data")


def kit(family: type) -> testing.Kit:
    model = family(true_location=0.0, true_scale=1.0, real_data_size=64)
    return testing.Kit(model, {"seed": np.int32(0), "real_fraction": np.float32(0), "sampling_bias": np.float32(1)}, 64)


@pytest.mark.parametrize(
    "family, check, advice",
    [
        (CountingSample, "deterministic", "sample gave different bits for the same key in two traces: read no Python"),
        (FixedKeySample, "key_dependent", "derive every draw from its `key` argument"),
        (LeakyFit, "masked_slots", "weight every per-point term by `weights`"),
        (NaNSamples, "degenerate_data", "fit returned finite params whose samples are not finite: the engine flags"),
    ],
)
def test_a_broken_family_fails_the_matching_check_saying_what_to_fix(family, check, advice):
    # The contract-form checks (the substance checks, a subprocess and refits, are tested on the Gaussian below).
    checks = {result.name: result for result in kit(family).run(FORM_CHECKS)}
    assert checks[check].status == "FAIL" and advice in checks[check].detail, checks[check].line()
    assert checks[check].line().startswith(f"FAIL {check}: ")
    # The other core checks still pass: each failure points at its own cause.
    others = [c.line() for name, c in checks.items() if name != check and c.status == "FAIL"]
    assert not others, others


GAUSSIAN_KNOBS = {"seed": np.int32(3), "real_fraction": np.float32(0), "sampling_bias": np.float32(1)}


@pytest.mark.parametrize(
    "family, check, message",
    [
        (
            broken_families.MaskWeights,
            "fractional_weights",
            "the fit with a point at weight 2 differs from the fit with the point twice at weight 1 at ",
        ),
        (broken_families.FixedRealData, "key_dependent", "real_data gave the same output for two different keys: "),
        (broken_families.ImportTimeNoise, "fresh_process", "generation 0 gave other bits in a fresh process: "),
        (
            broken_families.SampleIgnoresParams,
            "statistical_sanity",
            "sample gave the same points for the fitted and the initial params (same key): draw from `params`",
        ),
        (
            broken_families.FitIgnoresData,
            "statistical_sanity",
            "fit gave the same params for two different pools: fit the points it is given",
        ),
    ],
)
def test_a_family_that_would_give_wrong_science_fails_its_check_with_one_line(family, check, message):
    # Only the failing check runs here (each is a compile or a subprocess); the unbroken test below runs them all.
    (result,) = testing.Kit(broken_families.build(family), GAUSSIAN_KNOBS, 64).run((check,))
    line = result.line()
    assert line.startswith(f"FAIL {check}: ") and message in line and "\n" not in line, line


def test_the_unbroken_wrapper_passes_the_substance_checks():
    """The same Gaussian without a fault: the five checks above pass, so each failure is its fault's."""
    from examples.gaussian_wrapper.family import GaussianWrapper

    checks = testing.Kit(broken_families.build(GaussianWrapper), GAUSSIAN_KNOBS, 64).run()
    assert not [c.line() for c in checks if c.status != "PASS"], [c.line() for c in checks]


class Rewarded(laplace.LaplaceModel):
    """Declares a preference reward (the PreferenceRewards capability): minus the distance to the true location."""

    preference_rewards = {"closeness": ()}

    def preference_reward(self, kind, data, knobs):
        return -jnp.abs(data - self.true_location)


class MisshapenReward(Rewarded):
    """A reward with a trailing axis: [n, 1] instead of one number per point."""

    def preference_reward(self, kind, data, knobs):
        return super().preference_reward(kind, data, knobs)[:, None]


def test_a_declared_preference_reward_is_checked_for_one_float_per_point():
    checks = {result.name: result for result in kit(Rewarded).run(("optional_hooks",))}
    assert checks["optional_hooks"].status == "PASS", checks["optional_hooks"].line()
    checks = {result.name: result for result in kit(MisshapenReward).run(("optional_hooks",))}
    assert checks["optional_hooks"].status == "FAIL"
    assert "preference_reward('closeness') must return one floating per point, shape (64,)" in (
        checks["optional_hooks"].detail
    ), checks["optional_hooks"].line()


class Located(laplace.LaplaceModel):
    """Exposes its fit's location and scale (the LocationScale capability) as a 1-D mean and a 1 x 1 covariance."""

    def location_scale(self, params):
        return jnp.reshape(params["location"], (1,)), jnp.reshape(2.0 * params["scale"] ** 2, (1, 1))


class FlatCovariance(Located):
    """A covariance without its second axis."""

    def location_scale(self, params):
        mean, cov = super().location_scale(params)
        return mean, cov[0]


def test_a_declared_location_scale_is_checked_for_a_mean_and_a_square_covariance():
    checks = {result.name: result for result in kit(Located).run(("optional_hooks",))}
    assert checks["optional_hooks"].status == "PASS", checks["optional_hooks"].line()
    checks = {result.name: result for result in kit(FlatCovariance).run(("optional_hooks",))}
    assert checks["optional_hooks"].status == "FAIL"
    assert "location_scale must return (mean [d], covariance [d, d]); got (1,), (1,)" in (
        checks["optional_hooks"].detail
    ), checks["optional_hooks"].line()


def test_a_wrong_metric_name_fails_the_metric_check():
    class Renamed(laplace.LaplaceModel):
        metric_names = ("location_error", "scale_ratio", "kl")

    checks = {result.name: result for result in kit(Renamed).run(("metric_names",))}
    assert checks["metric_names"].status == "FAIL"
    assert "missing ['kl'], extra ['kl_to_truth']" in checks["metric_names"].detail


def test_the_command_prints_one_line_per_check_and_exits_zero_on_the_example():
    done = subprocess.run(
        [sys.executable, "-m", "collapse_jax.testing", "--config=examples/custom_family/laplace_config.py",
         "--config.samples_per_generation=32"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    # One line per check for each knob group's first and last chain, each saying which.
    names = [name for name, _ in testing.Kit.CHECKS]
    assert len(lines) % len(names) == 0 and len(lines) >= len(names)
    assert [line.split()[1].rstrip(":") for line in lines] == names * (len(lines) // len(names))
    assert all("[group " in line for line in lines)
    assert all(line.startswith(("PASS ", "SKIP ")) for line in lines)
    assert contract.supports(laplace.LaplaceModel, contract.TruthSampler)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"regime.name": "fresh", "regime.real_fraction": 0.5, "regime.real_weight": 0.4},
            r"^config\.regime\.real_weight: this family's fit reads weights only as in or out of the pool",
        ),
        (
            {"curation": {"name": "watermark_filter", "detected_weight": 0.25}},
            r"^config\.curation\.detected_weight: 0\.25; this family's fit reads weights only as in or out",
        ),
    ],
)
def test_a_family_declaring_mask_weights_is_refused_fractional_weights_in_one_line(
    gaussian_config, monkeypatch, overrides, message
):
    from collapse_jax.models import gaussian as gaussian_family

    monkeypatch.setattr(gaussian_family.GaussianModel, "fit_weighting", "mask", raising=False)
    config = runner.as_config({k: v for k, v in overrides.items() if k != "curation"}, gaussian_config)
    if "curation" in overrides:
        config.curation = overrides["curation"]
    with pytest.raises(ValueError, match=message) as error:
        runner.simulate(config)
    assert "\n" not in str(error.value)


class DeclaredMask(broken_families.MaskWeights):
    """The mask-reading fit, declared: the engine refuses fractional weights for it, so the kit does not fail it."""

    fit_weighting = "mask"


def test_a_declared_mask_fit_is_reported_not_failed():
    kit = testing.Kit(broken_families.build(DeclaredMask), GAUSSIAN_KNOBS, 64)
    (result,) = kit.run(("fractional_weights",))
    assert result.status == "SKIP" and "fit_weighting = 'mask'" in result.detail, result.line()
