"""One-parameter families whose MLE is the sample mean (Poisson rate, Bernoulli probability): the shared hooks.

Statistics are (sum, count), so accumulate keeps O(1) memory and `model.sampling = "statistics"` draws only the sum.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from collapse_jax.models.contract import Knobs, PyTree


@dataclasses.dataclass(frozen=True)
class MeanFitFamily:
    """Data are scalars [n] (float32 counts or 0/1); params {parameter: scalar}; the truth is the chain's knob.

    Subclasses name the parameter (also the knob and the metric), draw points and sums, and say which fitted values
    are absorbing (`alive`: the chain can still move away from them).
    """

    real_data_size: int

    parameter: ClassVar[str]
    # evaluate() reads only the params: the engine draws each generation's samples where the next one consumes them.
    evaluate_uses_samples: ClassVar[bool] = False
    # 0/1 metric whose first generation at 1 is kept exactly whatever config.record_every is (the extinction time).
    event_metrics: ClassVar[tuple[str, ...]] = ("absorbed",)
    # Set by each family: {parameter: "model.<parameter>"}, (parameter, "survived", "absorbed") and its fields.
    knob_fields: ClassVar[dict[str, str]]
    metric_names: ClassVar[tuple[str, ...]]
    config_fields: ClassVar[dict]

    def draw(self, key: jax.Array, parameter: jax.Array, num_samples: int) -> jax.Array:
        """`num_samples` i.i.d. points from the family at `parameter`."""
        raise NotImplementedError

    def alive(self, parameter: jax.Array) -> jax.Array:
        """Whether `parameter` is not an absorbing state of the refit chain."""
        raise NotImplementedError

    def _truth(self, knobs: Knobs) -> jax.Array:
        return jnp.asarray(knobs[self.parameter], jnp.float32)

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> jax.Array:
        """Draw `num_samples` points from the truth (the chain's knob)."""
        return self.draw(key, self._truth(knobs), num_samples)

    def real_data(self, key: jax.Array, knobs: Knobs) -> jax.Array:
        """The chain's original training set: `real_data_size` draws from the truth."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """The truth: the params structure, and the fallback of a fit that sees no data."""
        del key
        return {self.parameter: self._truth(knobs)}

    def statistics(self, data: jax.Array, weights: jax.Array) -> dict:
        """Weighted sum and count (the sufficient statistics of the mean)."""
        weights = weights.astype(jnp.float32)
        return {"sum": jnp.sum(weights * data), "count": jnp.sum(weights)}

    def merge_statistics(self, a: dict, b: dict) -> dict:
        """Statistics of the union of two data sets."""
        return {"sum": a["sum"] + b["sum"], "count": a["count"] + b["count"]}

    def fit_statistics(self, key: jax.Array, statistics: dict, knobs: Knobs, previous: PyTree) -> PyTree:
        """MLE = sum / count; an empty weighted pool has no estimate, so it keeps the previous fit."""
        del key, knobs
        count = statistics["count"]
        mean = statistics["sum"] / jnp.maximum(count, 1e-30)
        return {self.parameter: jnp.where(count > 0, mean, previous[self.parameter])}

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """The weighted sample mean (same result as `fit_statistics` on the pool's statistics)."""
        return self.fit_statistics(key, self.statistics(data, weights), knobs, previous)

    def sample(self, key: jax.Array, params: PyTree, num_samples: int, knobs: Knobs) -> jax.Array:
        """`num_samples` i.i.d. points from the fitted parameter."""
        del knobs
        return self.draw(key, params[self.parameter], num_samples)

    def evaluate(self, params: PyTree, samples: Any, reference: PyTree, knobs: Knobs) -> dict[str, jax.Array]:
        """The fitted parameter, and whether it is still off its absorbing states (survived = 1 - absorbed)."""
        del samples, reference, knobs
        value = params[self.parameter]
        alive = self.alive(value)
        return {
            self.parameter: value,
            "survived": alive.astype(jnp.float32),
            "absorbed": (~alive).astype(jnp.float32),
        }

    def reference(self) -> PyTree:
        """Nothing held out: the truth is the chain's knob."""
        return {}


def build(family: type[MeanFitFamily], config: Any) -> MeanFitFamily:
    """Build the family from its resolved config (the validator has checked the declared fields)."""
    return family(real_data_size=int(config.model.real_data_size or config.samples_per_generation))
