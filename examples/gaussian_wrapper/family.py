"""The built-in Gaussian's math under another name and other params keys, written outside collapse_jax against its
public contract: self-correction, selection and preference curation serve it through capabilities, not its name.

Params are {'location': mu [d], 'scale': Sigma [d, d]}; every hook delegates to collapse_jax.models.gaussian, so a run
has the built-in family's bits (tests/test_curation_capabilities.py checks it for the three operators).
"""

from __future__ import annotations

import dataclasses

import jax

from collapse_jax.models import gaussian
from collapse_jax.models.contract import FamilySettings, Knobs


def _built_in(params: dict) -> dict:
    return {"mean": params["location"], "cov": params["scale"]}


def _own(params: dict) -> dict:
    return {"location": params["mean"], "scale": params["cov"]}


@dataclasses.dataclass(frozen=True)
class GaussianWrapper:
    """The Gaussian family's hooks with params renamed; the truth N(true_mean * 1, true_std^2 I) (or, with
    config.model.truth, a mixture / Student-t centred and scaled so, which self-correction refuses)."""

    inner: gaussian.GaussianModel

    # Read from the class before any model is built: the built-in's config.model fields, static switches and
    # error-source switches.
    config_fields = gaussian.GaussianModel.config_fields
    config_rules = gaussian.GaussianModel.config_rules
    static_sweep_fields = gaussian.GaussianModel.static_sweep_fields
    error_source_switches = gaussian.GaussianModel.error_source_switches
    evaluate_uses_samples = False  # evaluate reads the params only

    @property
    def knob_fields(self) -> dict:
        return self.inner.knob_fields

    @property
    def metric_names(self) -> tuple[str, ...]:
        return self.inner.metric_names

    @property
    def real_data_size(self) -> int:
        return self.inner.real_data_size

    # IsotropicGaussianTruth and its GaussianTruthFlag: the truth selection and preference curate toward, and the one
    # self-correction's transport map reaches.
    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def true_mean(self) -> float:
        return self.inner.true_mean

    @property
    def true_std(self) -> float:
        return self.inner.true_std

    @property
    def truth_is_gaussian(self) -> bool:
        return self.inner.truth_is_gaussian

    def location_scale(self, params: dict) -> tuple[jax.Array, jax.Array]:
        """LocationScale: the fitted Gaussian's (mean [d], covariance [d, d])."""
        return params["location"], params["scale"]

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> jax.Array:
        """Draw from the truth."""
        return self.inner.sample_truth(key, num_samples, knobs)

    def real_data(self, key: jax.Array, knobs: Knobs) -> jax.Array:
        """The chain's original training set: real_data_size draws from the truth."""
        return self.inner.real_data(key, knobs)

    def init(self, key: jax.Array, knobs: Knobs) -> dict:
        """The params before any fit."""
        return _own(self.inner.init(key, knobs))

    def statistics(self, data: jax.Array, weights: jax.Array) -> dict:
        """Count, mean and scatter of the weighted points (the built-in's mergeable statistics)."""
        return self.inner.statistics(data, weights)

    def merge_statistics(self, a: dict, b: dict) -> dict:
        """Statistics of the union of two data sets."""
        return self.inner.merge_statistics(a, b)

    def fit_statistics(self, key: jax.Array, statistics: dict, knobs: Knobs, previous: dict) -> dict:
        """The fit on the data the statistics summarize."""
        return _own(self.inner.fit_statistics(key, statistics, knobs, _built_in(previous)))

    def sample_statistics(self, key: jax.Array, params: dict, count: jax.Array, knobs: Knobs) -> dict:
        """Statistics of `count` points drawn from the fit, drawn without the points."""
        return self.inner.sample_statistics(key, _built_in(params), count, knobs)

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: Knobs, previous: dict) -> dict:
        """Weighted mean and covariance of the pool."""
        return _own(self.inner.fit(key, data, weights, knobs, _built_in(previous)))

    def sample(self, key: jax.Array, params: dict, num_samples: int, knobs: Knobs) -> jax.Array:
        """x = mu + sqrt(lambda) Sigma^{1/2} z."""
        return self.inner.sample(key, _built_in(params), num_samples, knobs)

    def log_likelihood(self, params: dict, data: jax.Array, knobs: Knobs) -> jax.Array:
        """log N(x_i; mu, Sigma) of each point."""
        return self.inner.log_likelihood(_built_in(params), data, knobs)

    def is_good(self, data: jax.Array, knobs: Knobs) -> jax.Array:
        """Inside the truth's highest-density ball of mass curation.good_region_mass."""
        return self.inner.is_good(data, knobs)

    def reference(self) -> dict:
        """Held-out real moments (the built-in's)."""
        return self.inner.reference()

    def evaluate(self, params: dict, samples: jax.Array, reference: dict, knobs: Knobs) -> dict:
        """The built-in's distances to the truth and held-out NLL."""
        return self.inner.evaluate(_built_in(params), samples, reference, knobs)


def make_model(config, settings: FamilySettings) -> GaussianWrapper:
    """Build the built-in Gaussian from config.model and wrap it."""
    return GaussianWrapper(gaussian.make_model(config, settings))
