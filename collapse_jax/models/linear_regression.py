"""Linear-regression collapse: fixed inputs X, each generation relabels X with the last fit plus fresh noise, refit OLS.

Semantics of Gerstgrasser et al. ("Is Model Collapse Inevitable?", 2024, Thm 2) and Dohmatob et al. (2024); with
synthetic_inputs = "fresh" the fit labels new inputs (the generator of "Strong Model Collapse", Dohmatob et al. 2025).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from collapse_jax.models.contract import FamilySettings, Knobs, PyTree, family_settings
from collapse_jax.models.fields import choice, integer, number

# Where a generation's synthetic inputs come from: the chain's fixed design (relabelled), or fresh x ~ N(0, I).
SYNTHETIC_INPUTS = ("design", "fresh")

# The chain's design X is drawn from fold_in(fold_in(root, seed), DESIGN_STREAM): a sub-stream of the chain's key that
# the engine's generation (0) and real-data (1) streams never reach: X is fixed per chain, independent across chains.
# Reserved in the library's stream table, core/streams.py (LINEAR_REGRESSION_DESIGN), which a family may not import.
DESIGN_STREAM = 2**31 - 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class LinearRegressionModel:
    """y = x·w* + ε with x ~ N(0, I_d), ε ~ N(0, σ²), w* = 1/√d (unit norm); data = {"x": [n, d], "y": [n]}."""

    # Config fields whose tuple values compile one group each.
    static_sweep_fields: ClassVar[tuple[str, ...]] = ("model.dim",)

    dim: int
    design_size: int  # T: rows of the chain's fixed input matrix X (= M; real_data_size with fresh synthetic inputs)
    root_seed: int
    test_size: int
    test_seed: int
    good_region_mass: float  # m: is_good keeps residuals inside the noise's central interval of mass m
    good_residual_z: float  # z = Phi^-1((1 + m) / 2): that interval is |y - x.w*| <= sigma z
    synthetic_inputs: str = "design"  # design: relabel X; fresh: label new x ~ N(0, I) drawn from the sample key

    knob_fields: ClassVar[dict[str, str]] = {"noise_std": "model.noise_std", "ridge": "model.ridge"}
    # evaluate() reads only the params: the engine draws each generation's samples where the next one consumes them.
    evaluate_uses_samples: ClassVar[bool] = False
    metric_names: ClassVar[tuple[str, ...]] = ("test_mse", "test_mse_empirical")

    # config.model fields, declared once (collapse_jax/host/config_schema.py validates them before anything runs).
    config_fields: ClassVar[dict] = {
        "dim": integer("d: features (static: one compile per value)", low=1, sweepable=True),
        "noise_std": number("sigma: label noise", low=0.0, sweepable=True),
        "ridge": number("ridge penalty of every fit", low=0.0, sweepable=True),
        "test_size": integer("held-out test points", low=1),
        "test_seed": integer("seed of the test set", low=0),
        "real_data_size": integer(
            "None or samples_per_generation (the design); any size with synthetic_inputs = fresh", low=1, optional=True
        ),
        "synthetic_inputs": choice(
            "design: samples relabel the fixed design X | fresh: samples label new inputs x ~ N(0, I)",
            SYNTHETIC_INPUTS,
            noun="input source",
            default="design",
        ),
    }

    @property
    def real_data_size(self) -> int:
        """Generation 0 trains on the T labelled rows of the design."""
        return self.design_size

    def true_weights(self) -> jax.Array:
        """w* = (1/√d, ..., 1/√d): the OLS error ‖ŵ - w*‖² does not depend on w*, so any fixed unit vector serves."""
        return jnp.full((self.dim,), self.dim**-0.5, jnp.float32)

    def design(self, knobs: Knobs) -> jax.Array:
        """The chain's fixed inputs X [T, d], x ~ N(0, I): a function of (root_seed, seed) only, like its key."""
        chain_key = jax.random.fold_in(jax.random.key(self.root_seed), knobs["seed"])
        return jax.random.normal(jax.random.fold_in(chain_key, DESIGN_STREAM), (self.design_size, self.dim))

    def _label(self, key: jax.Array, x: jax.Array, weights: jax.Array, knobs: Knobs) -> jax.Array:
        """Labels y = x·w + σ ε with fresh ε ~ N(0, 1)."""
        noise_std = jnp.asarray(knobs["noise_std"], jnp.float32)
        return x @ weights + noise_std * jax.random.normal(key, (x.shape[0],), jnp.float32)

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> PyTree:
        """Fresh real data for the `fresh` regime: new inputs x ~ N(0, I) labelled by w* plus noise."""
        input_key, noise_key = jax.random.split(key)
        x = jax.random.normal(input_key, (num_samples, self.dim), jnp.float32)
        return {"x": x, "y": self._label(noise_key, x, self.true_weights(), knobs)}

    def real_data(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """The chain's design X with true labels y = Xw* + ε (the noise ε comes from `key`)."""
        x = self.design(knobs)
        return {"x": x, "y": self._label(key, x, self.true_weights(), knobs)}

    def init(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """Zero weights (only the structure matters: every fit overwrites them)."""
        del key, knobs
        return {"weights": jnp.zeros((self.dim,), jnp.float32)}

    def statistics(self, data: PyTree, weights: jax.Array) -> PyTree:
        """Weighted normal equations: Gram XᵀWX [d, d], moment XᵀWy [d], and the weight total."""
        weights = weights.astype(jnp.float32)
        weighted_x = data["x"] * weights[:, None]
        return {"gram": weighted_x.T @ data["x"], "moment": weighted_x.T @ data["y"], "count": jnp.sum(weights)}

    def merge_statistics(self, a: PyTree, b: PyTree) -> PyTree:
        """Statistics of the union of two data sets (all three are sums over points)."""
        return jax.tree.map(jnp.add, a, b)

    def fit_statistics(self, key: jax.Array, statistics: PyTree, knobs: Knobs, previous: PyTree) -> PyTree:
        """Ridge/OLS ŵ = (XᵀWX + λI)⁺ XᵀWy, the minimizer of sklearn Ridge's Σ w_j (y_j - x_j·w)² + λ‖w‖²."""
        del key, previous
        ridge = jnp.asarray(knobs["ridge"], jnp.float32)
        gram = statistics["gram"] + ridge * jnp.eye(self.dim, dtype=jnp.float32)
        # The pseudo-inverse gives the minimum-norm solution when T < d (or a collapsed pool) leaves XᵀX singular,
        # where a Cholesky solve would return NaN and fail the chain.
        return {"weights": jnp.linalg.pinv(gram, hermitian=True) @ statistics["moment"]}

    def fit(self, key: jax.Array, data: PyTree, weights: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """Weighted OLS/ridge on the pool (same result as `fit_statistics` on its normal equations)."""
        return self.fit_statistics(key, self.statistics(data, weights), knobs, previous)

    def sample(self, key: jax.Array, params: PyTree, num_samples: int, knobs: Knobs) -> PyTree:
        """Relabel the chain's design with the fit, y = Xŵ + σε (rows reused cyclically if more than T are asked), or
        with fresh synthetic inputs label new x ~ N(0, I) the same way."""
        if self.synthetic_inputs == "fresh":
            input_key, key = jax.random.split(key)
            x = jax.random.normal(input_key, (num_samples, self.dim), jnp.float32)
        else:
            x = self.design(knobs)[jnp.arange(num_samples) % self.design_size]
        return {"x": x, "y": self._label(key, x, params["weights"], knobs)}

    def log_likelihood(self, params: PyTree, data: PyTree, knobs: Knobs) -> jax.Array:
        """Conditional log N(y_i; x_i.w, sigma^2) [n] of the fit's label model; x is not modelled (the fixed design).

        sigma is the noise_std knob the model samples with (it is not refitted); sigma = 0 is a point mass: +inf where
        y = x.w exactly, -inf elsewhere.
        """
        noise_std = jnp.asarray(knobs["noise_std"], jnp.float32)
        residual = data["y"] - data["x"] @ params["weights"]
        scale = jnp.where(noise_std > 0, noise_std, 1.0)
        density = -0.5 * (residual / scale) ** 2 - jnp.log(scale) - 0.5 * math.log(2.0 * math.pi)
        return jnp.where(noise_std > 0, density, jnp.where(residual == 0, jnp.inf, -jnp.inf))

    def is_good(self, data: PyTree, knobs: Knobs) -> jax.Array:
        """|y - x.w*| <= sigma Phi^-1((1 + m) / 2): the label lies in the truth's central noise interval of mass m."""
        residual = data["y"] - data["x"] @ self.true_weights()
        return jnp.abs(residual) <= jnp.asarray(knobs["noise_std"], jnp.float32) * self.good_residual_z

    def evaluate(self, params: PyTree, samples: PyTree, reference: PyTree, knobs: Knobs) -> dict[str, jax.Array]:
        """test_mse = ‖ŵ - w*‖² (= E_x[(x·ŵ - x·w*)²] for x ~ N(0, I)); test_mse_empirical on held-out inputs."""
        del samples, knobs
        error = params["weights"] - self.true_weights()
        return {
            "test_mse": jnp.sum(error**2),
            # Noise-free test labels x·w*, so this is an unbiased estimate of test_mse (relative sd √(2 / test_size)).
            "test_mse_empirical": jnp.mean((reference["x"] @ error) ** 2),
        }

    def reference(self) -> PyTree:
        """Held-out inputs x ~ N(0, I) [test_size, d], shared by all chains (drawn from `test_seed`)."""
        return {"x": jax.random.normal(jax.random.key(self.test_seed), (self.test_size, self.dim), jnp.float32)}


def make_model(config: Any, settings: FamilySettings | None = None) -> LinearRegressionModel:
    """Build the model from its resolved config (dim, noise_std, ridge, test_size) with T = samples_per_generation, or
    T = real_data_size when synthetic inputs are fresh (the design is then only the real training set)."""
    model, design_size = config.model, config.samples_per_generation
    fresh = model.synthetic_inputs == "fresh"
    # The real set is the design every generation relabels, so its size is M: a computed tie no declaration can say.
    if model.real_data_size is not None and model.real_data_size != design_size and not fresh:
        raise ValueError(
            f"config.model.real_data_size: got {model.real_data_size!r}; allowed: None or samples_per_generation "
            f"({design_size}), since the real set is the design every generation relabels (or synthetic_inputs = "
            "'fresh')"
        )
    if fresh and model.real_data_size is not None:
        design_size = model.real_data_size
    settings = family_settings(config) if settings is None else settings
    mass = settings.good_region_mass
    z = statistics.NormalDist().inv_cdf(0.5 * (1.0 + mass))
    return LinearRegressionModel(
        dim=model.dim,
        design_size=design_size,
        root_seed=config.root_seed,
        test_size=model.test_size,
        test_seed=model.test_seed,
        good_region_mass=mass,
        good_residual_z=z,
        synthetic_inputs=model.synthetic_inputs,
    )


def strong_collapse_error(dim: int, noise_std: float, generator_size: int, training_size: int, share: float) -> float:
    """E‖ŵ - w*‖² of OLS on N points, a share p labelled by a generator fitted on n0 real points, 1 - p real (Strong
    Model Collapse, Dohmatob, Feng, Subramonian & Kempe 2025, re-derived for isotropic x ~ N(0, I_d)):

        p² e_g (1 + (d + 1)(1 - p) / (p N)) + σ² d / (N - d - 1),   e_g = σ² d / (n0 - d - 1).

    ŵ - w* = A δ + (XᵀX)⁻¹Xᵀε with δ the generator's error (isotropic, E‖δ‖² = e_g) and A = (XᵀX)⁻¹X_sᵀX_s; to first
    order in the Wisharts' fluctuations E tr(AᵀA) / d = p² (1 + (d + 1)(1 - p) / (p N)), and the noise term is exact.
    As N -> ∞ the error stays at the floor p² e_g: only a better generator (larger n0) or a smaller share lowers it.
    """
    noise = noise_std**2 * dim / (training_size - dim - 1)
    if share == 0:
        return noise
    generator_error = noise_std**2 * dim / (generator_size - dim - 1)
    return share**2 * generator_error * (1 + (dim + 1) * (1 - share) / (share * training_size)) + noise
