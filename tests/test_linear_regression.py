"""Tests of the linear-regression model: sklearn parity (OLS, ridge, weights), fixed-design relabelling, and
Gerstgrasser et al.'s Theorem 2 (replace grows linearly, accumulate stays below π²/6 of the first error).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge

from collapse_jax.host import sweep
from collapse_jax.host.runner import as_config, simulate
from collapse_jax.models import base
from experiments.configs import linear_regression as linear_regression_config


def model_config(**overrides) -> ml_collections.ConfigDict:
    """The shipped linear-regression config with dotted-path overrides."""
    return as_config(overrides, linear_regression_config.get_config())


def knobs(seed: int = 0, noise_std: float = 1.0, ridge: float = 0.0) -> dict:
    return {"seed": jnp.int32(seed), "real_fraction": 0.0, "noise_std": noise_std, "ridge": ridge}


def test_fit_matches_sklearn_ols_and_ridge_with_sample_weights():
    """ŵ = (XᵀWX + λI)⁻¹XᵀWy equals sklearn LinearRegression / Ridge (no intercept) with sample_weight."""
    model = base.make_model(model_config(**{"model.dim": 4, "samples_per_generation": 50}))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    y = (x @ np.asarray([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=50)).astype(np.float32)
    weights = (rng.random(50) < 0.8).astype(np.float32)
    data = {"x": jnp.asarray(x), "y": jnp.asarray(y)}
    for ridge, reference in ((0.0, LinearRegression(fit_intercept=False)), (3.0, Ridge(3.0, fit_intercept=False))):
        params = model.fit(None, data, jnp.asarray(weights), knobs(ridge=ridge), model.init(None, {}))
        expected = reference.fit(x, y, sample_weight=weights).coef_
        # float32 normal equations with condition number ~3: relative error ~1e-6; 1e-5 leaves a margin.
        np.testing.assert_allclose(params["weights"], expected, rtol=1e-5, atol=1e-5)


def test_fewer_points_than_dimensions_gives_the_minimum_norm_solution():
    """T < d leaves XᵀX singular: the pseudo-inverse returns numpy lstsq's minimum-norm solution, not NaN."""
    model = base.make_model(model_config(**{"model.dim": 8, "samples_per_generation": 5}))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    params = model.fit(None, {"x": jnp.asarray(x), "y": jnp.asarray(y)}, jnp.ones(5), knobs(), model.init(None, {}))
    expected = np.linalg.lstsq(x.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    # Squaring X into XᵀX doubles the condition number's exponent; 1e-3 is float32 precision at cond ~1e2.
    np.testing.assert_allclose(params["weights"], expected, rtol=1e-3, atol=1e-3)


def test_merged_normal_equations_fit_equals_fit_on_concatenated_pool():
    """XᵀX, Xᵀy and the count are sums over points, so accumulate can keep O(d²) memory."""
    model = base.make_model(model_config())
    first = model.real_data(jax.random.key(0), knobs())
    second = model.sample(jax.random.key(1), {"weights": jnp.ones(10)}, 100, knobs())
    ones = jnp.ones(100)
    merged = model.merge_statistics(model.statistics(first, ones), model.statistics(second, ones))
    from_statistics = model.fit_statistics(None, merged, knobs(), None)
    pool = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, second)
    direct = model.fit(None, pool, jnp.ones(200), knobs(), model.init(None, {}))
    np.testing.assert_allclose(from_statistics["weights"], direct["weights"], rtol=1e-5, atol=1e-6)


def test_samples_relabel_the_chain_fixed_design_with_fresh_noise():
    """Every generation sees the chain's own X; labels are Xŵ + σε with Var(ε σ) = σ²."""
    model = base.make_model(model_config(**{"samples_per_generation": 4000, "model.dim": 3}))
    weights = jnp.asarray([0.3, -1.0, 2.0])
    real = model.real_data(jax.random.key(5), knobs(seed=7, noise_std=0.5))
    synthetic = model.sample(jax.random.key(6), {"weights": weights}, 4000, knobs(seed=7, noise_std=0.5))
    np.testing.assert_array_equal(real["x"], synthetic["x"])
    assert not np.allclose(model.design(knobs(seed=8)), real["x"])  # another chain has another design
    residual = np.asarray(synthetic["y"] - synthetic["x"] @ weights)
    # The sample variance of n Gaussians has relative sd sqrt(2 / n) = 2.2%; 5 sd is 11%.
    assert abs(residual.var() / 0.25 - 1) <= 5 * math.sqrt(2 / 4000)


def test_gerstgrasser_theorem_2_replace_grows_linearly_accumulate_stays_below_pi_squared_over_6():
    """E‖ŵ_n - w*‖² = σ²d/(T-d-1)·n (replace) and σ²d/(T-d-1)·Σ_{i<=n} 1/i² (accumulate); d = 10, T = 100.

    One engine run (two regimes x two noise levels in the chain axis) also checks test_mse_empirical.
    """
    dim, samples, generations, seeds = 10, 100, 19, 1024
    results = simulate(
        model_config(
            **{
                "model.noise_std": (0.5, 1.0),
                "num_generations": generations,
                "seeds": seeds,
                "chunk_generations": generations + 1,
            }
        )
    )
    fits = np.arange(1, generations + 2)
    for noise_std in (0.5, 1.0):
        first_error = noise_std**2 * dim / (samples - dim - 1)  # E tr((XᵀX)⁻¹) = d / (T - d - 1): 0.1124 at σ = 1
        expected = {"replace": first_error * fits, "accumulate": first_error * np.cumsum(1.0 / fits**2)}
        for regime, curve in expected.items():
            chosen = (results.knobs["regime"] == regime) & np.isclose(results.knobs["noise_std"], noise_std)
            errors = results.metrics["test_mse"][chosen]
            assert len(errors) == seeds and not results.failed[chosen].any()
            # 4 standard errors per generation, from the chains' own spread.
            tolerance = 4 * errors.std(axis=0) / math.sqrt(seeds)
            assert np.all(np.abs(errors.mean(axis=0) - curve) <= tolerance), (regime, noise_std)
        accumulate = results.metrics["test_mse"][
            (results.knobs["regime"] == "accumulate") & np.isclose(results.knobs["noise_std"], noise_std)
        ]
        # The π²/6 bound holds for the expectation; the mean of 1024 chains may sit above it by its standard error.
        bound = math.pi**2 / 6 * first_error
        assert accumulate.mean(axis=0)[-1] <= bound + 4 * accumulate[:, -1].std() / math.sqrt(seeds)
    check_empirical_test_mse_within_held_out_spectrum(results)


def check_empirical_test_mse_within_held_out_spectrum(results) -> None:
    """test_mse_empirical = vᵀSv with S the held-out covariance, so its ratio to ‖v‖² is in [λmin(S), λmax(S)]."""
    model = base.make_model(model_config())
    x = np.asarray(model.reference()["x"], np.float64)
    eigenvalues = np.linalg.eigvalsh(x.T @ x / len(x))
    ratio = results.metrics["test_mse_empirical"] / results.metrics["test_mse"]
    # Rayleigh quotient bounds, with float32 slack of 1e-4.
    assert np.all(ratio >= eigenvalues[0] - 1e-4) and np.all(ratio <= eigenvalues[-1] + 1e-4)
    # Bai–Yin: the spectrum of 10,000 isotropic points in d = 10 lies within (1 ± √(d/n))² ≈ 1 ± 6.4%, so the
    # empirical metric agrees with test_mse to ~6% for every chain.
    assert eigenvalues[0] > (1 - math.sqrt(10 / len(x))) ** 2 - 0.01
    assert eigenvalues[-1] < (1 + math.sqrt(10 / len(x))) ** 2 + 0.01


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model.dim", 0),
        ("model.noise_std", -1.0),
        ("model.ridge", (0.0, -0.1)),
        ("model.test_size", 0),
        ("model.real_data_size", 50),
    ],
)
def test_bad_config_raises_one_line_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"config.{field}") as error:
        sweep.expand(model_config(**{field: value}))
    assert "\n" not in str(error.value)
