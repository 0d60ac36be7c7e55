"""A Laplace location-scale family fitted by MLE, written outside collapse_jax against its public contract only.

Fit: location = weighted median, scale = weighted mean absolute deviation from it (the Laplace MLE, Norton 1984).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from collapse_jax.models.contract import FamilySettings, Knobs
from collapse_jax.models.fields import integer, number


@dataclasses.dataclass(frozen=True)
class LaplaceModel:
    """Truth Laplace(true_location, true_scale); data are scalars [n]; params {'location', 'scale'}."""

    true_location: float
    true_scale: float
    real_data_size: int
    knob_fields = {"sampling_bias": "model.sampling_bias"}  # lambda: sample Laplace(mu, lambda b), one per chain
    metric_names = ("location_error", "scale_ratio", "kl_to_truth")
    evaluate_uses_samples = False  # evaluate reads the params only
    # config.model fields, checked before anything runs (a misspelled or out-of-range field is a one-line error); the
    # only place their ranges and defaults are written.
    config_fields = {
        "true_location": number("the truth's location"),
        "true_scale": number("the truth's scale b", low=0.0, low_open=True),
        "sampling_bias": number("lambda: sample Laplace(mu, lambda b)", low=0.0, low_open=True, sweepable=True),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
    }

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> jax.Array:
        """Draw `num_samples` points from the truth."""
        return self.true_location + self.true_scale * jax.random.laplace(key, (num_samples,))

    def real_data(self, key: jax.Array, knobs: Knobs) -> jax.Array:
        """The chain's original training set: real_data_size draws from the truth."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: Knobs) -> dict:
        """The truth (only its structure matters: every fit overwrites it)."""
        return {"location": jnp.float32(self.true_location), "scale": jnp.float32(self.true_scale)}

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: Knobs, previous: dict) -> dict:
        """mu = weighted median (first sorted point with cumulative weight >= half); b = sum w |x - mu| / sum w."""
        order = jnp.argsort(data)
        cumulative = jnp.cumsum(weights[order])
        # Zero-weight slots never raise the cumulative weight, so the first index reaching half is a weighted point.
        half = jnp.searchsorted(cumulative, 0.5 * cumulative[-1])
        location = data[order][jnp.minimum(half, data.shape[0] - 1)]
        scale = jnp.sum(weights * jnp.abs(data - location)) / jnp.maximum(jnp.sum(weights), 1.0)
        return {"location": location, "scale": scale}

    def sample(self, key: jax.Array, params: dict, num_samples: int, knobs: Knobs) -> jax.Array:
        """x = mu + lambda b e, e ~ Laplace(0, 1)."""
        noise = jax.random.laplace(key, (num_samples,))
        return params["location"] + knobs["sampling_bias"] * params["scale"] * noise

    def reference(self) -> None:
        """No held-out set: the metrics compare the fit with the known truth in closed form."""
        return None

    def evaluate(self, params: dict, samples: None, reference: None, knobs: Knobs) -> dict:
        """KL(truth || fit) = log(b / b0) + (b0 exp(-|d| / b0) + |d|) / b - 1 with d = mu - mu0."""
        distance = jnp.abs(params["location"] - self.true_location)
        scale, true_scale = params["scale"], self.true_scale
        kl = jnp.log(scale / true_scale) + (true_scale * jnp.exp(-distance / true_scale) + distance) / scale - 1.0
        return {"location_error": distance, "scale_ratio": scale / true_scale, "kl_to_truth": kl}


def make_model(config, settings: FamilySettings) -> LaplaceModel:
    """Build the family from its resolved config: every field was checked against config_fields, and an absent
    optional one is None (the engine's settings are unused: no verifier here)."""
    model = config.model
    real_data_size = model.real_data_size or config.samples_per_generation
    return LaplaceModel(float(model.true_location), float(model.true_scale), int(real_data_size))
