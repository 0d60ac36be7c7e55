"""Conformance kit: checks that a model family keeps the promises the engine relies on, one PASS/FAIL line each.

python -m collapse_jax.testing --config=examples/custom_family/laplace_config.py  (exit status 1 when a check fails)
"""

from __future__ import annotations

import dataclasses
import functools
import sys
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


@dataclasses.dataclass(frozen=True)
class Check:
    """One check's outcome: status PASS, FAIL (detail says what to fix) or SKIP (the capability is absent)."""

    name: str
    status: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.status} {self.name}" + (f": {self.detail}" if self.detail else "")


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


def _size(data: Any) -> int:
    return int(jax.tree.leaves(data)[0].shape[0])


def _junk(data: Any) -> Any:
    """Other values in the same slots: reversed points, floats also moved and stretched (finite, plausible scale)."""
    flipped = jax.tree.map(lambda x: jnp.flip(x, axis=0), data)
    return jax.tree.map(lambda x: 3.0 * x + 7.0 if jnp.issubdtype(x.dtype, jnp.inexact) else x, flipped)


class Kit:
    """The checks for one family built with its knobs (one chain's scalars, as the engine hands them inside vmap)."""

    def __init__(self, model: Any, knobs: dict, num_samples: int):
        self.model, self.num_samples = model, num_samples
        self.knobs = {name: jnp.asarray(value) for name, value in knobs.items()}
        self.name = f"{type(model).__module__}.{type(model).__name__}"

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
        """Different keys give different samples."""
        _, params, _ = self._fitted()
        draw = jax.jit(lambda k, p, c: self.model.sample(k, p, self.num_samples, c))
        first, second = draw(jax.random.key(1), params, self.knobs), draw(jax.random.key(2), params, self.knobs)
        if _same_bits(first, second):
            raise _Failed(
                "sample gave the same points for two different keys: derive every draw from its `key` argument "
                "(jax.random.split / fold_in), not from a fixed key or a constant"
            )

    def check_blocks(self) -> None:
        """A chain's bits inside a fixed-size vmapped block do not depend on the other chains in the block."""
        seeds = jnp.asarray(BLOCK_SEEDS, self.knobs["seed"].dtype)
        blocked = {name: jnp.broadcast_to(value, seeds.shape) for name, value in self.knobs.items()}
        blocked["seed"] = seeds
        out = jax.jit(lambda k: jax.lax.map(jax.vmap(self._generation), k))(blocked)
        first, second = (jax.tree.map(lambda x, b=b: x[b, 0], out) for b in range(2))
        if not _same_bits(first, second):
            raise _Failed(
                "chain 0's fit or samples changed with the other chains in its vmapped block: compute each chain "
                "from its own arguments only (no reductions over the chain axis, no host callbacks or state)"
            )

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

    CHECKS: tuple[tuple[str, str], ...] = (
        ("deterministic", "check_deterministic"),
        ("key_dependent", "check_key_dependent"),
        ("vmap_blocks", "check_blocks"),
        ("masked_slots", "check_masked_slots"),
        ("metric_names", "check_metrics"),
        ("sufficient_statistics", "check_statistics"),
        ("degenerate_data", "check_degenerate"),
        ("optional_hooks", "check_hooks"),
    )

    def run(self) -> list[Check]:
        """Every check; an exception inside a family's method is that check's FAIL."""
        results = []
        for name, method in self.CHECKS:
            try:
                skipped = getattr(self, method)()
                results.append(Check(name, "SKIP", skipped) if skipped else Check(name, "PASS"))
            except _Failed as failure:
                results.append(Check(name, "FAIL", str(failure)))
            except Exception as error:  # the family raised: report it as this check's failure, in one line
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                results.append(Check(name, "FAIL", f"{self.name} raised {type(error).__name__}: {first}"))
        return results


def kit_for_config(config: Any) -> Kit:
    """The kit for the family of `config` (its first static group, its first chain's knobs, M samples)."""
    from collapse_jax.host import runner, sweep  # host modules; imported here so the kit module stays light

    group = sweep.expand(config)[0]
    knobs = {name: value[0] for name, value in runner.padded_knobs(group.knobs, 1).items()}
    return Kit(group.model, knobs, int(group.config.samples_per_generation))


def check_config(config: Any, write: Callable[[str], Any] = print) -> list[Check]:
    """Run every check on the family of `config`, writing one line per check."""
    results = kit_for_config(config).run()
    for result in results:
        write(result.line())
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
