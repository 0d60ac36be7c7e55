"""The model-family interface the engine drives, and the registry that finds a family by name.

A family is one module in `collapse_jax/models/` exposing `make_model(config) -> Model`; nothing else registers it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Protocol

import jax

PyTree = Any
Knobs = dict[str, jax.Array]  # one chain's dynamic values (scalars inside vmap)


class Model(Protocol):
    """What the engine needs from a model family (all methods pure, called inside jit(vmap(...))).

    Data is a pytree whose leaves have a leading sample axis; `weights` is a float [n] 0/1 mask over that axis so pools
    keep static shapes. Static settings (shapes, iteration counts) are Python attributes of the frozen model object;
    per-chain dynamic values arrive in `knobs`.
    """

    # Knob name -> dotted config path of its (scalar or list) value, e.g. {"sampling_bias": "model.sampling_bias"}.
    # The engine expands list values into the chain axis and hands each chain its scalar in `knobs[name]`.
    knob_fields: dict[str, str]
    # Names of the per-generation scalars `evaluate` returns (the results contract).
    metric_names: tuple[str, ...]
    # Size of a chain's original real training set (generation 0 fits on it).
    real_data_size: int

    def real_data(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """The chain's original real training set, [real_data_size, ...]; deterministic in `key`."""

    def init(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """Params before any fit (the `previous` of generation 0); the pytree structure every fit returns."""

    def fit(self, key: jax.Array, data: PyTree, weights: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """Fit params to the weighted data set; `previous` is the last generation's params (fine-tuning, gen-0 refs)."""

    def sample(self, key: jax.Array, params: PyTree, num_samples: int, knobs: Knobs) -> PyTree:
        """Draw `num_samples` synthetic data points from the fitted model."""

    def evaluate(self, params: PyTree, samples: PyTree, reference: PyTree, knobs: Knobs) -> dict[str, jax.Array]:
        """Scalar metrics of one chain's fit; `samples` are the synthetic points drawn from it this generation."""

    def reference(self) -> PyTree:
        """Held-out real data (or its statistics) shared by all chains; built once on the host, closed over."""


class SufficientStatistics(Protocol):
    """Optional: models whose fit depends only on additive statistics let `accumulate` keep O(1) memory per chain."""

    def statistics(self, data: PyTree, weights: jax.Array) -> PyTree:
        """Statistics of the weighted data set."""

    def merge_statistics(self, a: PyTree, b: PyTree) -> PyTree:
        """Statistics of the union of two data sets."""

    def fit_statistics(self, key: jax.Array, statistics: PyTree, knobs: Knobs, previous: PyTree) -> PyTree:
        """Same params as `fit` on the data the statistics summarize."""

    # Optional within this capability: `config.model.sampling = "statistics"` needs it (cost no longer grows with M).
    def sample_statistics(self, key: jax.Array, params: PyTree, count: jax.Array, knobs: Knobs) -> PyTree:
        """Statistics (the structure `statistics` returns) of `count` points drawn from the fitted model, drawn from
        their exact distribution without the points; `count` is a traced per-chain number that may be 0. The family's
        `evaluate` must ignore its samples (`evaluate_uses_samples = False`): it receives None in that mode."""


class TruthSampler(Protocol):
    """Optional: models that know the true distribution can serve the `fresh` regime (new real data each generation)."""

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> PyTree:
        """Draw `num_samples` new real data points from the true distribution."""


def has_sufficient_statistics(model: Any) -> bool:
    """True when the model implements the optional `SufficientStatistics` methods."""
    return all(callable(getattr(model, name, None)) for name in ("statistics", "merge_statistics", "fit_statistics"))


def available_models() -> list[str]:
    """Names of the model families (modules in this package that define `make_model`)."""
    package = importlib.import_module("collapse_jax.models")
    names = [info.name for info in pkgutil.iter_modules(package.__path__) if info.name not in ("base",)]
    return sorted(name for name in names if not name.startswith("_"))


def make_model(config: Any) -> Model:
    """Build the model family named by `config.model.name` from its module `collapse_jax.models.<name>`."""
    name = config.model.name
    allowed = available_models()
    if name not in allowed:
        raise ValueError(f"config.model.name: unknown model {name!r}; allowed: {', '.join(allowed)}")
    module = importlib.import_module(f"collapse_jax.models.{name}")
    return module.make_model(config)
