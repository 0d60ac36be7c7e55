"""Conformance kit: checks that a model family keeps the promises the engine relies on, one PASS/FAIL line each.

python -m collapse_jax.testing --config=examples/custom_family/laplace_config.py  (exit status 1 when a check fails)
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models import contract

# Chains per vmapped block in the blocking check (the engine's chain_block), and the seeds of the two blocks: chain 0
# sits in lane 0 of both, beside different neighbours.
BLOCK_SEEDS = ((0, 1, 2, 3), (0, 5, 6, 7))
# statistics + merge + fit_statistics vs fit on the union: the same math in another summation order (float32).
STATISTICS_RTOL, STATISTICS_ATOL = 1e-4, 1e-5
ROOT = 20250101
# Splitting a point's weight (2 = the point twice, 0.5 + 0.5 = weight 1): the same sums in another order (float32).
WEIGHT_RTOL = 1e-4
# Sample-then-refit: REFIT_FACTOR x n points (n = the real set's size) are drawn from a fit and fitted again. A moment
# estimated from N points has standard error sd / sqrt(N) (a variance sd^2 sqrt(2 / N)); the default tolerance is
# REFIT_SIGMAS such errors of a unit-scale param, relative to max(1, |param|): a correct family fails one leaf in ~1e9.
REFIT_FACTOR, REFIT_SIGMAS = 16, 6.0
# The subprocess that recomputes generation 0 in a fresh interpreter (import-time state shows up as other bits).
_CHILD = """
import pickle, sys
import numpy as np
from collapse_jax import testing
recipe, out = pickle.loads(bytes.fromhex(sys.argv[1])), sys.argv[2]
kit = testing.kit_from_recipe(recipe)
np.savez(out, *testing._leaves(kit._fitted()[1:]))
"""


@dataclasses.dataclass(frozen=True)
class Check:
    """One check's outcome: status PASS, FAIL (detail says what to fix) or SKIP (the capability is absent)."""

    name: str
    status: str
    detail: str = ""
    where: str = ""  # the knob group and chain checked, when a config has several

    def line(self) -> str:
        where = f" [{self.where}]" if self.where else ""
        return f"{self.status} {self.name}{where}" + (f": {self.detail}" if self.detail else "")


def _pool_mass_gap(a: tuple, b: tuple) -> float:
    """The largest difference, over every pooled point, of the normalized weight that pools a and b put on it."""
    (points_a, weights_a), (points_b, weights_b) = [(np.asarray(p), np.asarray(w, np.float64)) for p, w in (a, b)]
    points_a, points_b = points_a.reshape(len(points_a), -1), points_b.reshape(len(points_b), -1)
    support = np.concatenate([points_a[weights_a > 0], points_b[weights_b > 0]])

    def mass(points, weights):
        same = np.all(points[None, :, :] == support[:, None, :], axis=-1)
        return same @ weights / max(weights.sum(), 1e-30)

    return float(np.max(np.abs(mass(points_a, weights_a) - mass(points_b, weights_b)), initial=0.0))


class _Failed(Exception):
    """A check's failure; its message says what to fix."""


def _leaves(tree: Any) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def _same_bits(a: Any, b: Any) -> bool:
    """Same structure and bit-identical leaves (NaN equal to NaN)."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(x.shape == y.shape and x.tobytes() == y.tobytes() for x, y in zip(_leaves(a), _leaves(b)))


def _finite(tree: Any) -> bool:
    return all(np.isfinite(x).all() for x in _leaves(tree) if np.issubdtype(x.dtype, np.inexact))


# Primitives that draw random bits; a method whose trace holds one is a method that draws.
_RANDOM_PRIMITIVES = {"random_bits", "threefry2x32", "random_seed", "random_wrap"}


def _draws(function: Callable, *args: Any) -> bool:
    """Whether `function(*args)`'s trace draws random numbers (a random primitive anywhere, sub-jaxprs included)."""

    def walk(jaxpr: Any) -> bool:
        for equation in jaxpr.eqns:
            if equation.primitive.name in _RANDOM_PRIMITIVES:
                return True
            for value in equation.params.values():
                for sub in value if isinstance(value, (list, tuple)) else (value,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns") and walk(inner):
                        return True
        return False

    return walk(jax.make_jaxpr(function)(*args).jaxpr)


def _at(tree: Any, path: tuple) -> Any:
    """The leaf of `tree` at a key path from jax.tree_util.tree_leaves_with_path."""
    for entry in path:
        for attribute in ("key", "idx", "name"):
            if hasattr(entry, attribute):
                part = getattr(entry, attribute)
                tree = getattr(tree, part) if attribute == "name" else tree[part]
                break
    return tree


def _size(data: Any) -> int:
    return int(jax.tree.leaves(data)[0].shape[0])


def _junk(data: Any) -> Any:
    """Other values in the same slots: reversed points, floats also moved and stretched (finite, plausible scale)."""
    flipped = jax.tree.map(lambda x: jnp.flip(x, axis=0), data)
    return jax.tree.map(lambda x: 3.0 * x + 7.0 if jnp.issubdtype(x.dtype, jnp.inexact) else x, flipped)


# Checks of the traced program rather than of the knob values it runs on.
CODE_CHECKS = ("deterministic", "key_dependent", "sufficient_statistics", "optional_hooks", "fresh_process")


class Kit:
    """The checks for one family built with its knobs (one chain's scalars, as the engine hands them inside vmap)."""

    def __init__(self, model: Any, knobs: dict, num_samples: int, recipe: tuple | None = None):
        self.model, self.num_samples = model, num_samples
        self.knobs = {name: jnp.asarray(value) for name, value in knobs.items()}
        self.name = f"{type(model).__module__}.{type(model).__name__}"
        # How a fresh process rebuilds this kit: ("config", config, group, chain) or ("model", model, knobs, M).
        self.recipe = recipe if recipe is not None else ("model", model, knobs, num_samples)
        self.cross_process = True  # check_process runs once per family: on the first kit of a config
        # Checks of the traced code (not of knob values) run on a group's first chain only: a later chain would only
        # recompile the same program (the LM's kit spent most of its time there).
        self.first_chain = True
        self.where = ""

    def for_chain(self, knobs: dict, recipe: tuple | None = None) -> Kit:
        """The same family's kit for another chain's knobs, sharing the compiled fit, sample and evaluate."""
        other = Kit(self.model, knobs, self.num_samples, recipe)
        other.first_chain = False
        for name in ("_jitted", "_jitted_evaluate", "_jitted_blocks", "_jitted_init", "_jitted_log_likelihood"):
            if name in self.__dict__:
                other.__dict__[name] = self.__dict__[name]
        return other

    def _keys(self, knobs: dict) -> tuple:
        return jax.random.split(jax.random.fold_in(jax.random.key(ROOT), knobs["seed"]), 4)

    def _data(self, knobs: dict) -> Any:
        return self.model.real_data(self._keys(knobs)[0], knobs)

    def _fit(self, data: Any, weights: jax.Array, knobs: dict) -> Any:
        _, init_key, fit_key, _ = self._keys(knobs)
        return self.model.fit(fit_key, data, weights, knobs, self.model.init(init_key, knobs))

    def _generation(self, knobs: dict) -> tuple[Any, Any]:
        """The engine's generation 0 for one chain: real data -> fit -> samples (traced whole, for vmap)."""
        data = self._data(knobs)
        params = self._fit(data, jnp.ones(_size(data), jnp.float32), knobs)
        return params, self.model.sample(self._keys(knobs)[3], params, self.num_samples, knobs)

    @functools.cached_property
    def _jitted(self) -> tuple[Callable, Callable]:
        """One compiled fit(data, weights, knobs) and sample(params, knobs) shared by the checks (fewer compiles)."""
        return jax.jit(self._fit), jax.jit(lambda p, k: self.model.sample(self._keys(k)[3], p, self.num_samples, k))

    @functools.cached_property
    def _normal_fit(self) -> tuple[Any, Any, Any]:
        fit, sample = self._jitted
        data = jax.jit(self._data)(self.knobs)
        params = fit(data, jnp.ones(_size(data), jnp.float32), self.knobs)
        return data, params, sample(params, self.knobs)

    def _fitted(self) -> tuple[Any, Any, Any]:
        """(real data, params fitted to it, samples drawn from them), computed once per kit."""
        return self._normal_fit

    def check_deterministic(self) -> None:
        """Two separate traces of fit and sample with the same key give the same bits."""
        data, params, samples = self._fitted()
        # A second, separate trace: Python-side state read at trace time (a counter) shows up as different bits.
        again = jax.jit(lambda d, w, k: self._fit(d, w, k))(data, jnp.ones(_size(data), jnp.float32), self.knobs)
        if not _same_bits(params, again):
            raise _Failed(
                "fit gave different bits for the same key in two traces: read no Python-side state (counters, "
                "np.random, time) and draw every random number from `key`"
            )
        again = jax.jit(lambda p, k: self.model.sample(self._keys(k)[3], p, self.num_samples, k))(params, self.knobs)
        if not _same_bits(samples, again):
            raise _Failed(
                "sample gave different bits for the same key in two traces: read no Python-side state (counters, "
                "np.random, time) and draw every random number from `key`"
            )

    def check_key_dependent(self) -> None:
        """Every keyed method that draws random numbers draws them from its key: real_data, init, fit, sample (which
        always draws). A method that draws from a fixed key gives every chain and generation the same draws."""
        data, params, _ = self._fitted()
        model, knobs, n = self.model, self.knobs, self.num_samples
        ones = jnp.ones(_size(data), jnp.float32)
        previous = model.init(self._keys(knobs)[1], knobs)
        keyed = {
            "sample": lambda key: model.sample(key, params, n, knobs),
            "real_data": lambda key: model.real_data(key, knobs),
            "init": lambda key: model.init(key, knobs),
            "fit": lambda key: model.fit(key, data, ones, knobs, previous),
        }
        for method, call in keyed.items():
            if method != "sample" and not _draws(call, jax.random.key(1)):
                continue  # deterministic (a fixed data set, a closed-form fit): nothing to draw from the key
            draw = jax.jit(call)
            if _same_bits(draw(jax.random.key(1)), draw(jax.random.key(2))):
                raise _Failed(
                    f"{method} gave the same output for two different keys: derive every draw from its `key` "
                    "argument (jax.random.split / fold_in), not from a fixed key or a constant"
                )

    def check_blocks(self) -> None:
        """A chain's bits inside a fixed-size vmapped block do not depend on the other chains in the block."""
        seeds = jnp.asarray(BLOCK_SEEDS, self.knobs["seed"].dtype)
        blocked = {name: jnp.broadcast_to(value, seeds.shape) for name, value in self.knobs.items()}
        blocked["seed"] = seeds
        out = self._jitted_blocks(blocked)
        first, second = (jax.tree.map(lambda x, b=b: x[b, 0], out) for b in range(2))
        if not _same_bits(first, second):
            raise _Failed(
                "chain 0's fit or samples changed with the other chains in its vmapped block: compute each chain "
                "from its own arguments only (no reductions over the chain axis, no host callbacks or state)"
            )

    @functools.cached_property
    def _jitted_init(self) -> Callable:
        return jax.jit(self.model.init)

    @functools.cached_property
    def _jitted_blocks(self) -> Callable:
        return jax.jit(lambda k: jax.lax.map(jax.vmap(self._generation), k))

    def check_masked_slots(self) -> None:
        """Zero-weight slots do not change a fit: zeros or junk there give bit-identical params, or (families that
        keep the pool in their params, e.g. KDE centres) bit-identical samples and metrics."""
        data, fit, sample = self._fitted()[0], *self._jitted
        n = _size(data)
        # Pools of the real set's size, so families with a capacity derived from the config (KDE) accept them.
        keep = jnp.arange(n) < (n + 1) // 2
        pools = [
            jax.tree.map(lambda x, y: jnp.where(keep.reshape((n,) + (1,) * (x.ndim - 1)), x, y), data, pad)
            for pad in (jax.tree.map(jnp.zeros_like, data), _junk(data))
        ]
        fits = [fit(pool, keep.astype(jnp.float32), self.knobs) for pool in pools]
        if _same_bits(*fits):
            return
        draws = [sample(params, self.knobs) for params in fits]
        if not _same_bits(*draws) or not _same_bits(*(self._evaluate(params, s) for params, s in zip(fits, draws))):
            raise _Failed(
                "fit changed when only zero-weight slots changed: weight every per-point term by `weights` "
                "(sums of w * f(x), counts as sum(w)), never by slot position or the array length"
            )

    @functools.cached_property
    def _jitted_evaluate(self) -> Callable:
        reference = self.model.reference()  # built once on the host, closed over, as the engine does
        return jax.jit(lambda p, s, k: self.model.evaluate(p, s, reference, k))

    def _evaluate(self, params: Any, samples: Any) -> dict:
        """evaluate as the engine calls it (None for the samples of a family whose evaluate ignores them)."""
        samples = samples if contract.evaluate_uses_samples(self.model) else None
        return self._jitted_evaluate(params, samples, self.knobs)

    def check_metrics(self) -> None:
        """evaluate returns exactly metric_names (+ artifact_names), each a finite scalar on a normal fit."""
        _, params, samples = self._fitted()
        metrics = self._evaluate(params, samples)
        try:
            contract.check_metric_names(self.model, metrics)
        except ValueError as error:
            raise _Failed(str(error)) from None
        bad = [name for name in self.model.metric_names if np.ndim(metrics[name]) != 0]
        if bad:
            raise _Failed(f"metrics {bad} are not scalars: return one number per chain (arrays go in artifact_names)")
        bad = [name for name in self.model.metric_names if not np.isfinite(np.asarray(metrics[name])).all()]
        if bad:
            raise _Failed(f"metrics {bad} are not finite on a fit to the real data: guard the formula (logs, ratios)")

    def check_statistics(self) -> str | None:
        """fit_statistics(merge(statistics(A), statistics(B))) equals fit(A u B) to float32 tolerance."""
        model = self.model
        if not contract.supports(model, contract.SufficientStatistics):
            return "no statistics / merge_statistics / fit_statistics"
        data = self._fitted()[0]
        n = _size(data)
        first = (jnp.arange(n) < n // 2).astype(jnp.float32)

        def both(d: Any, k: dict) -> tuple:
            _, init_key, fit_key, _ = self._keys(k)
            previous = model.init(init_key, k)
            merged = model.merge_statistics(model.statistics(d, first), model.statistics(d, 1.0 - first))
            direct = model.fit(fit_key, d, jnp.ones(n, jnp.float32), k, previous)
            return model.fit_statistics(fit_key, merged, k, previous), direct

        merged, direct = jax.jit(both)(data, self.knobs)
        paths = [path for path, _ in jax.tree_util.tree_leaves_with_path(merged)]
        for path, a, b in zip(paths, _leaves(merged), _leaves(direct)):
            if a.shape != b.shape or not np.allclose(a, b, rtol=STATISTICS_RTOL, atol=STATISTICS_ATOL):
                raise _Failed(
                    f"fit_statistics(merge_statistics(statistics(A), statistics(B))) differs from fit(A u B) at "
                    f"{jax.tree_util.keystr(path)}: make statistics additive (Chan et al.'s pairwise merge)"
                )
        if contract.supports(model, contract.StatisticsSampler):
            _, params, _ = self._fitted()
            drawn = jax.jit(lambda p, k: model.sample_statistics(self._keys(k)[3], p, jnp.float32(n), k))(
                params, self.knobs
            )
            shapes = jax.tree.map(lambda x: (x.shape, x.dtype), drawn)
            if shapes != jax.tree.map(lambda x: (x.shape, x.dtype), model.statistics(data, jnp.ones(n))):
                raise _Failed("sample_statistics must return the structure, shapes and dtypes `statistics` returns")
        return None

    def check_degenerate(self) -> None:
        """All points equal, a single point, an empty pool: finite params (whose samples are finite) or a flagged
        failure, i.e. a non-finite param, which the engine turns into `failed` and a frozen chain."""
        data = self._fitted()[0]
        n = _size(data)
        ones, single = jnp.ones(n, jnp.float32), jnp.zeros(n, jnp.float32).at[0].set(1.0)
        equal = jax.tree.map(lambda x: jnp.broadcast_to(x[:1], x.shape), data)
        cases = {"all points equal": (equal, ones), "a single point": (data, single), "an empty pool": (data, 0 * ones)}
        fit, sample = self._jitted
        for case, (points, weights) in cases.items():
            params = fit(points, weights, self.knobs)
            if _finite(params) and not _finite(sample(params, self.knobs)):
                raise _Failed(
                    f"on {case}, fit returned finite params whose samples are not finite: the engine flags a failure "
                    f"only on a non-finite param, so return one (e.g. NaN) or keep the degenerate fit samplable"
                )

    def check_hooks(self) -> str | None:
        """sample_truth / location_scale / log_likelihood / is_good / detect_watermark / preference_reward (each
        declared reward): shapes and dtypes, when present."""
        model, knobs = self.model, self.knobs
        data, params, samples = self._fitted()
        n = self.num_samples
        present, unavailable = [], []
        if contract.supports(model, contract.TruthSampler):
            present.append("sample_truth")
            truth = jax.jit(lambda k: model.sample_truth(self._keys(k)[1], n, k))(knobs)
            expected = jax.tree.map(lambda x: ((n,) + x.shape[1:], x.dtype), data)
            if jax.tree.map(lambda x: (x.shape, x.dtype), truth) != expected:
                raise _Failed("sample_truth must return real_data's structure and dtypes with a leading axis of n")
        if contract.supports(model, contract.LocationScale):
            present.append("location_scale")
            mean, cov = (np.asarray(x) for x in jax.jit(model.location_scale)(params))
            dim = mean.shape[0] if mean.ndim == 1 else -1
            if cov.shape != (dim, dim) or not np.issubdtype(mean.dtype, np.floating):
                raise _Failed(
                    f"location_scale must return (mean [d], covariance [d, d]); got {mean.shape}, {cov.shape}"
                )
            if contract.supports(model, contract.IsotropicGaussianTruth) and dim != model.dim:
                raise _Failed(f"location_scale's mean has {dim} coordinates; the truth's dim is {model.dim}")
            if np.all(np.isfinite(cov)) and not np.allclose(cov, cov.T, rtol=1e-5, atol=1e-6):
                raise _Failed("location_scale's covariance must be symmetric")
        scorers = {
            "log_likelihood": (contract.LogLikelihood, lambda s, k: model.log_likelihood(params, s, k), np.floating),
            "is_good": (contract.Verifier, lambda s, k: model.is_good(s, k), np.bool_),
            "detect_watermark": (contract.WatermarkDetector, lambda s, k: model.detect_watermark(s, k), np.bool_),
        }
        if contract.supports(model, contract.PreferenceRewards):
            for kind in model.preference_rewards:
                reward = functools.partial(model.preference_reward, kind)
                scorers[f"preference_reward({kind!r})"] = (contract.PreferenceRewards, reward, np.floating)
        for hook, (capability, score, dtype) in scorers.items():
            if not contract.supports(model, capability):
                continue
            try:
                values = np.asarray(jax.jit(score)(samples, knobs))
            except (ValueError, KeyError) as error:
                # A hook this build refuses with a one-line error (the LM's is_good without a verifier curation), or
                # one reading a knob only its curation adds (watermark_z_threshold), is unavailable for this config.
                reason = f"needs knob {error}" if isinstance(error, KeyError) else str(error).strip().splitlines()[0]
                unavailable.append(f"{hook} ({reason})")
                continue
            present.append(hook)
            if values.shape != (n,) or not np.issubdtype(values.dtype, dtype):
                raise _Failed(
                    f"{hook} must return one {dtype.__name__} per point, shape ({n},); got {values.shape} "
                    f"{values.dtype}"
                )
        if unavailable and not present:
            return "unavailable for this config: " + "; ".join(unavailable)
        return None if present else "no sample_truth / log_likelihood / is_good / detect_watermark / preference_reward"

    def _close(self, a: Any, b: Any, rtol: float) -> str | None:
        """None when every float leaf of a and b agrees within rtol x max(1, max |leaf of a|); else the first path."""
        if jax.tree.structure(a) != jax.tree.structure(b):
            return "the params' structure"
        for path, x in jax.tree_util.tree_leaves_with_path(a):
            x, y = np.asarray(x), np.asarray(b if not path else _at(b, path))
            if x.shape != y.shape:
                return jax.tree_util.keystr(path)
            if not np.issubdtype(x.dtype, np.inexact):
                if not np.array_equal(x, y):
                    return jax.tree_util.keystr(path)
                continue
            scale = max(1.0, float(np.nanmax(np.abs(x)))) if x.size else 1.0
            if not np.allclose(x, y, rtol=0.0, atol=rtol * scale, equal_nan=True):
                return jax.tree_util.keystr(path)
        return None

    def _same_distribution(self, a: Any, b: Any, rtol: float) -> str | None:
        """Params agree (see _close), or, for a family whose params hold its pool (KDE centres), the log-likelihood
        of the real data under both agrees."""
        where = self._close(a, b, rtol)
        if where is not None and contract.supports(self.model, contract.PoolParams):
            gap = _pool_mass_gap(self.model.pool(a), self.model.pool(b))
            return None if gap <= rtol else f"the pool's weighted measure (mass differs by {gap:.3g} at a point)"
        if where is None or not contract.supports(self.model, contract.LogLikelihood):
            return where
        data = self._fitted()[0]
        score = self._jitted_log_likelihood
        return self._close(score(a, data, self.knobs), score(b, data, self.knobs), rtol)

    @functools.cached_property
    def _jitted_log_likelihood(self) -> Callable:
        return jax.jit(self.model.log_likelihood)

    def check_fractional_weights(self) -> str | None:
        """Weights are counts, fractions included: a point at weight 2 fits as the point twice, and a point split into
        two halves of weight 0.5 fits as the point once (to float32 tolerance), in params or, for a family that keeps
        its pool in its params, in log-likelihood. "draws" (SGD batches) agrees in law only; "mask" is refused by the
        engine's fractional-weight features."""
        weighting = contract.fit_weighting(self.model)
        if weighting == "mask":
            return "fit_weighting = 'mask': the engine refuses regime.real_weight and fractional detected_weight"
        if weighting == "draws":
            return "fit_weighting = 'draws': batches drawn with probability proportional to weight (counts in law only)"
        data = self._fitted()[0]
        fit = self._jitted[0]
        n = _size(data)
        ones, last = jnp.ones(n, jnp.float32), n - 1
        # The last slot holds a copy of point 0: pools that count point 0 twice, once, or in fractions.
        twice = jax.tree.map(lambda x: x.at[last].set(x[0]), data)
        cases = (
            ("a point at weight 2", ones.at[0].set(2.0).at[last].set(0.0), "the point twice at weight 1", ones),
            ("a point in two halves of weight 0.5", ones.at[0].set(0.5).at[last].set(0.5), "the point once at "
             "weight 1", ones.at[last].set(0.0)),
        )  # fmt: skip
        for case, weights, other, other_weights in cases:
            where = self._same_distribution(fit(twice, weights, self.knobs), fit(twice, other_weights, self.knobs),
                                            WEIGHT_RTOL)  # fmt: skip
            if where is not None:
                raise _Failed(
                    f"the fit with {case} differs from the fit with {other} at {where}: weights are counts, read "
                    "fractions too (sums of w * f(x), counts as sum(w)), never `weights > 0` as a mask, or declare "
                    "fit_weighting = 'mask'"
                )
        return None

    def check_statistical(self) -> str | None:
        """fit reads its data; sample reads its params; a fit to many points sampled from a fit comes back close to it
        (refit_tolerance; by default 6 standard errors of a unit-scale moment for families whose params are moments,
        i.e. that have sufficient statistics; others are refitted only when they declare a tolerance)."""
        model, knobs = self.model, self.knobs
        if getattr(model, "population_fit", False):
            return "population_fit: the fit targets the previous fit's distribution, not its data"
        data, params, samples = self._fitted()
        fit, sample = self._jitted
        n = _size(data)
        # Another pool of the same size: the generation's samples first, the real points after them.
        other = jax.tree.map(lambda x, y: jnp.concatenate([y, x])[:n], data, samples)
        ones = jnp.ones(n, jnp.float32)
        if _same_bits(params, fit(other, ones, knobs)):
            raise _Failed(
                "fit gave the same params for two different pools: fit the points it is given (weighted by "
                "`weights`), not a constant or fresh draws of the truth"
            )
        # Against the params before any fit (far from a fit, unlike a refit's): a family whose samples never read its
        # params (an external labeller) declares sample_reads_params = False.
        previous = self._jitted_init(self._keys(knobs)[1], knobs)
        if getattr(model, "sample_reads_params", True) and _same_bits(samples, sample(previous, knobs)):
            raise _Failed(
                "sample gave the same points for the fitted and the initial params (same key): draw from `params`"
            )
        default = contract.supports(model, contract.SufficientStatistics)
        tolerance = getattr(
            model, "refit_tolerance", REFIT_SIGMAS * np.sqrt(2.0 / (REFIT_FACTOR * n)) if default else None
        )
        if tolerance is None:
            return None
        many = REFIT_FACTOR * n
        points = jax.jit(lambda p, k: model.sample(self._keys(k)[3], p, many, k))(params, knobs)
        refit = jax.jit(self._fit)(points, jnp.ones(many, jnp.float32), knobs)
        where = self._close(params, refit, float(tolerance))
        if where is not None:
            raise _Failed(
                f"a fit to {many} points sampled from a fit is off at {where} by more than {tolerance:.3g} (relative): "
                "sample must draw from the distribution the params describe (or declare refit_tolerance)"
            )
        return None

    def check_process(self) -> str | None:
        """Generation 0 recomputed in a fresh Python process gives the same bits (import-time randomness, a module
        global set from the clock or np.random, makes a resume or another job's chains differ)."""
        if not self.cross_process:
            return "run on the first group's first chain"
        with tempfile.TemporaryDirectory() as folder:
            out = os.path.join(folder, "generation0.npz")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, pickle.dumps(self.recipe).hex(), out],
                capture_output=True, text=True, env=env, timeout=900,
            )  # fmt: skip
            if done.returncode != 0:
                last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
                raise _Failed(f"generation 0 in a fresh process failed: {last}")
            with np.load(out) as saved:
                again = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        mine = _leaves(self._fitted()[1:])
        if len(mine) != len(again) or not all(a.tobytes() == b.tobytes() for a, b in zip(mine, again)):
            raise _Failed(
                "generation 0 gave other bits in a fresh process: no randomness at import time or in module "
                "globals (draw everything from the keys the engine passes)"
            )
        return None

    CHECKS: tuple[tuple[str, str], ...] = (
        ("deterministic", "check_deterministic"),
        ("key_dependent", "check_key_dependent"),
        ("vmap_blocks", "check_blocks"),
        ("masked_slots", "check_masked_slots"),
        ("metric_names", "check_metrics"),
        ("fractional_weights", "check_fractional_weights"),
        ("statistical_sanity", "check_statistical"),
        ("fresh_process", "check_process"),
        ("sufficient_statistics", "check_statistics"),
        ("degenerate_data", "check_degenerate"),
        ("optional_hooks", "check_hooks"),
    )

    def run(self, names: tuple[str, ...] | None = None) -> list[Check]:
        """Every check (or those named); an exception inside a family's method is that check's FAIL."""
        results = []
        for name, method in self.CHECKS:
            if names is not None and name not in names:
                continue
            if not self.first_chain and name in CODE_CHECKS:
                results.append(
                    Check(name, "SKIP", "a check of the traced code: run on the group's first chain", self.where)
                )
                continue
            try:
                skipped = getattr(self, method)()
                results.append(
                    Check(name, "SKIP", skipped, self.where) if skipped else Check(name, "PASS", "", self.where)
                )
            except _Failed as failure:
                results.append(Check(name, "FAIL", str(failure), self.where))
            except Exception as error:  # the family raised: report it as this check's failure, in one line
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                results.append(Check(name, "FAIL", f"{self.name} raised {type(error).__name__}: {first}", self.where))
        return results


def kits_for_config(config: Any) -> list[Kit]:
    """One kit per (static group, chain) checked: every group's first and last chain (their knobs differ in a sweep);
    chains of a group share its compiled functions, and only the first kit runs the fresh-process check."""
    from collapse_jax.host import runner, sweep  # host modules; imported here so the kit module stays light

    kits = []
    for index, group in enumerate(sweep.expand(config)):
        rows = runner.padded_knobs(group.knobs, 1)
        chains = len(next(iter(rows.values())))
        first = None
        for chain in sorted({0, chains - 1}):
            knobs = {name: value[chain] for name, value in rows.items()}
            recipe = ("config", config, index, chain)
            if first is None:
                kit = first = Kit(group.model, knobs, int(group.config.samples_per_generation), recipe)
            else:
                kit = first.for_chain(knobs, recipe)
            kit.cross_process = not kits
            kit.where = f"group {index}, chain {chain}"
            kits.append(kit)
    return kits


def kit_from_recipe(recipe: tuple) -> Kit:
    """Rebuild a kit from its recipe (in a fresh process: check_process)."""
    if recipe[0] == "model":
        _, model, knobs, num_samples = recipe
        return Kit(model, knobs, num_samples)
    _, config, index, chain = recipe
    return next(kit for kit in kits_for_config(config) if kit.where == f"group {index}, chain {chain}")


def check_config(config: Any, write: Callable[[str], Any] = print) -> list[Check]:
    """Run every check on the family of `config`, for every knob group (first and last chain), one line per check."""
    results = []
    for kit in kits_for_config(config):
        for result in kit.run():
            write(result.line())
            results.append(result)
    return results


def main(argv: list[str]) -> None:
    """Check the family of --config; exit 1 when a check fails, 2 (one line) when the config is bad."""
    from absl import flags

    del argv
    try:
        results = check_config(flags.FLAGS.config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if any(r.status == "FAIL" for r in results) else 0)


if __name__ == "__main__":
    from absl import app

    from collapse_jax.host import cli

    help_string = "Config file of the family to check (experiments/configs/*.py)."
    app.run(main, argv=cli.define_config_flag(sys.argv, help_string))
