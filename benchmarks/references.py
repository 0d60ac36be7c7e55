"""Hand-written references that do the engine's work without the engine: the floors its ratios are measured against.

Each reference draws from the same per-chain keys as collapse_jax.core.engine (so its metrics equal the engine's, see
tests/test_benchmarks.py), consumes every value it draws, and is one jit(lax.scan over generations of vmap over chains)
with metrics [chains, K] per chunk; `compile()` returns (init_all, chunk_all) shaped like Engine.compile's.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from collapse_jax.models import _threefry

# The engine's sub-streams of a chain's key fold_in(root, seed) (collapse_jax/core/streams.py: GENERATION = 0,
# REAL_DATA = 1); written out here so the reference restates, rather than borrows, the key derivation.
GENERATION_STREAM, REAL_DATA_STREAM = 0, 1
# How a reference draws its normals: "jax" = jax.random.normal (what a hand-written step calls); "unrolled" = the same
# values bit for bit from the unrolled generator the engine's Gaussian uses (collapse_jax/models/_threefry.py), so the
# engine / reference ratio then measures the engine's overhead alone, not a generator the reference lacks.
NORMAL_DRAWS = {"jax": jax.random.normal, "unrolled": _threefry.normal}
UNIFORM_DRAWS = {"jax": lambda key, shape: jax.random.uniform(key, shape, jnp.float32), "unrolled": _threefry.uniform}


def stream_key(root_seed: int, seed: jax.Array, stream: int) -> jax.Array:
    """fold_in(fold_in(key(root), seed), stream): a chain's generation (0) or real-data (1) stream."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(root_seed), seed), stream)


def generation_keys(stream: jax.Array, generation: jax.Array) -> jax.Array:
    """The engine's (batch, fit, sample) keys of one generation: split(fold_in(stream, generation), 3)."""
    return jax.random.split(jax.random.fold_in(stream, generation), 3)


def _blank(metrics: dict, failed: jax.Array) -> dict:
    """NaN metrics for a failed (non-finite) chain, as the engine reports them."""
    return {name: jnp.where(failed, jnp.nan, value) for name, value in metrics.items()}


def _scan_chunk(step, state: Any, knobs: dict, start: jax.Array, chunk_generations: int):
    """lax.scan over K generations of vmap(step) over chains; metrics come back [chains, K]."""
    batched = jax.vmap(step, in_axes=(0, 0, None))

    def body(carry, generation):
        return batched(carry, knobs, generation)

    generations = start + jnp.arange(chunk_generations, dtype=jnp.int32)
    state, metrics = jax.lax.scan(body, state, generations)
    return state, {name: value.T for name, value in metrics.items()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class GaussianReference:
    """d = 1 Gaussian chain under replace, rho = 0, hand-fused: draw M from N(mu, lambda s^2), refit by MLE, evaluate.

    The state carries the fit (mu, s^2), not the samples: generation g draws the samples of generation g - 1 with that
    generation's sample key, fits them, and evaluates the fit, which is the engine's generation g in one pass.
    """

    samples_per_generation: int  # M
    chunk_generations: int  # K
    root_seed: int = 0
    ddof: int = 0  # 0: MLE, 1: unbiased
    true_mean: float = 0.0
    true_std: float = 1.0
    test_mean: float = 0.0  # held-out set's mean and MLE variance (the engine's model.reference())
    test_variance: float = 1.0
    real_data_size: int = 0  # 0: M
    normal_draws: str = "jax"  # "jax" | "unrolled": NORMAL_DRAWS

    def _fit(self, points: jax.Array) -> tuple[jax.Array, jax.Array]:
        """mu = mean(x), s^2 = sum (x - mu)^2 / (n - ddof)."""
        mean = jnp.mean(points)
        return mean, jnp.sum((points - mean) ** 2) / max(points.shape[0] - self.ddof, 1)

    def _metrics(self, mean: jax.Array, variance: jax.Array) -> dict:
        """collapse_jax.models.gaussian.evaluate for d = 1 (Gelbrich W2; exact NLL of the held-out moments)."""
        true_variance = self.true_std**2
        clamped = jnp.maximum(variance, 0.0)
        error = (mean - self.true_mean) ** 2
        nll = 0.5 * (
            math.log(2 * math.pi) + jnp.log(clamped) + (self.test_variance + (self.test_mean - mean) ** 2) / clamped
        )
        return {
            "mean_sq_error": error,
            "trace_ratio": variance / true_variance,
            "logdet_ratio": jnp.log(clamped) - math.log(true_variance),
            "w2_sq_to_truth": error + clamped + true_variance - 2.0 * self.true_std * jnp.sqrt(clamped),
            "nll_real_test": jnp.where(jnp.isfinite(nll), nll, jnp.inf),
        }

    def init_chain(self, knobs: dict) -> tuple[dict, dict]:
        """Generation 0: fit the chain's real data (the engine's real-data stream)."""
        size = self.real_data_size or self.samples_per_generation
        noise = NORMAL_DRAWS[self.normal_draws](stream_key(self.root_seed, knobs["seed"], REAL_DATA_STREAM), (size,))
        mean, variance = self._fit(self.true_mean + self.true_std * noise)
        failed = ~(jnp.isfinite(mean) & jnp.isfinite(variance))
        state = {"mean": mean, "variance": variance, "failed": failed}
        return state, {**_blank(self._metrics(mean, variance), failed), "failed": failed.astype(jnp.float32)}

    def step_chain(self, state: dict, knobs: dict, generation: jax.Array) -> tuple[dict, dict]:
        """Generation g: samples of g - 1, x = mu + sqrt(lambda) z s; fit; metrics; failed chains keep their fit."""
        stream = stream_key(self.root_seed, knobs["seed"], GENERATION_STREAM)
        sample_key = generation_keys(stream, generation - 1)[2]
        noise = NORMAL_DRAWS[self.normal_draws](sample_key, (self.samples_per_generation,))
        root = jnp.sqrt(jnp.maximum(state["variance"], 0.0))
        samples = state["mean"] + (jnp.sqrt(knobs["sampling_bias"]) * noise) * root
        mean, variance = self._fit(samples)
        failed = state["failed"] | ~(jnp.isfinite(mean) & jnp.isfinite(variance) & jnp.all(jnp.isfinite(samples)))
        metrics = {**_blank(self._metrics(mean, variance), failed), "failed": failed.astype(jnp.float32)}
        mean = jnp.where(failed, state["mean"], mean)
        variance = jnp.where(failed, state["variance"], variance)
        return {"mean": mean, "variance": variance, "failed": failed}, metrics

    def init_all(self, knobs: dict) -> tuple[dict, dict]:
        return jax.vmap(self.init_chain)(knobs)

    def chunk_all(self, state: dict, knobs: dict, start: jax.Array) -> tuple[dict, dict]:
        return _scan_chunk(self.step_chain, state, knobs, start, self.chunk_generations)

    def compile(self):
        return jax.jit(self.init_all), jax.jit(self.chunk_all)


@dataclasses.dataclass(frozen=True)
class RandomFloor:
    """The Gaussian chain's draws alone: M normals per chain per generation from the same keys, every value summed."""

    samples_per_generation: int
    chunk_generations: int
    root_seed: int = 0
    normal_draws: str = "jax"  # "jax" | "unrolled": NORMAL_DRAWS

    def init_all(self, knobs: dict) -> tuple[jax.Array, dict]:
        return jnp.zeros(knobs["seed"].shape, jnp.float32), {}

    def chunk_all(self, total: jax.Array, knobs: dict, start: jax.Array) -> tuple[jax.Array, dict]:
        def step(total, knobs, generation):
            stream = stream_key(self.root_seed, knobs["seed"], GENERATION_STREAM)
            draw = NORMAL_DRAWS[self.normal_draws]
            noise = draw(generation_keys(stream, generation - 1)[2], (self.samples_per_generation,))
            return total + jnp.sum(noise), {}

        return _scan_chunk(step, total, knobs, start, self.chunk_generations)

    def compile(self):
        return jax.jit(self.init_all), jax.jit(self.chunk_all)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiscreteReference:
    """Categorical (Wright–Fisher) chain under replace, rho = 0: M inverse-CDF draws, counts, add-alpha refit, metrics.

    The draws are counted without materialising indices: #(index <= i) = #(u < F_i) for the cumulative F, with F set
    to +inf from the last outcome still alive (the engine clips a uniform rounded up to the total onto it).
    """

    num_outcomes: int  # K
    samples_per_generation: int  # M
    chunk_generations: int
    root_seed: int = 0
    real_data_size: int = 0  # 0: M
    uniform_draws: str = "jax"  # "jax" | "unrolled": UNIFORM_DRAWS (the same values)

    def _truth(self, knobs: dict) -> jax.Array:
        """Zipf p0(i) ∝ i^-beta (collapse_jax.models.discrete.truth_probabilities)."""
        log_ranks = jnp.log(jnp.arange(1, self.num_outcomes + 1, dtype=jnp.float32))
        return jax.nn.softmax(-jnp.asarray(knobs["zipf_exponent"], jnp.float32) * log_ranks)

    def _counts(self, key: jax.Array, probabilities: jax.Array, size: int) -> jax.Array:
        cumulative = jnp.cumsum(probabilities)
        uniforms = UNIFORM_DRAWS[self.uniform_draws](key, (size,)) * cumulative[-1]
        last_alive = self.num_outcomes - 1 - jnp.argmax((probabilities > 0)[::-1])
        bounds = jnp.where(jnp.arange(self.num_outcomes) >= last_alive, jnp.inf, cumulative)
        at_most = jnp.sum(uniforms[:, None] < bounds[None, :], axis=0)
        return jnp.diff(at_most, prepend=0).astype(jnp.float32)

    def _fit(self, counts: jax.Array, knobs: dict, previous: jax.Array) -> jax.Array:
        """p_i = (c_i + alpha) / (sum c + K alpha); an empty pool with alpha = 0 keeps the previous fit."""
        smoothing = jnp.asarray(knobs["smoothing"], jnp.float32)
        total = jnp.sum(counts) + self.num_outcomes * smoothing
        return jnp.where(total > 0, (counts + smoothing) / jnp.maximum(total, 1e-30), previous)

    def _metrics(self, probabilities: jax.Array, knobs: dict) -> dict:
        """The seven metrics of collapse_jax.models.discrete.evaluate."""
        truth = self._truth(knobs)
        alive = probabilities > 0
        support = jnp.sum(alive).astype(jnp.float32)
        tail = truth <= jnp.maximum(1.0 / self.samples_per_generation, jnp.min(truth)) * (1.0 + 1e-6)
        logs = jnp.log(jnp.where(alive, probabilities, 1.0))
        absorbed = support == 1
        return {
            "entropy": -jnp.sum(jnp.where(alive, probabilities * logs, 0.0)),
            "support_size": support,
            "kl_to_truth": jnp.sum(jax.scipy.special.xlogy(probabilities, probabilities / truth)),
            "tail_mass": jnp.sum(jnp.where(tail & alive, truth, 0.0)) / jnp.sum(jnp.where(tail, truth, 0.0)),
            "heterozygosity": 1.0 - jnp.sum(probabilities**2),
            "absorbed": absorbed.astype(jnp.float32),
            "absorbed_outcome": jnp.where(absorbed, jnp.argmax(probabilities), -1).astype(jnp.float32),
        }

    def _finish(self, probabilities, previous, failed_before, knobs) -> tuple[dict, dict]:
        failed = failed_before | ~jnp.all(jnp.isfinite(probabilities))
        metrics = {**_blank(self._metrics(probabilities, knobs), failed), "failed": failed.astype(jnp.float32)}
        return {"probabilities": jnp.where(failed, previous, probabilities), "failed": failed}, metrics

    def init_chain(self, knobs: dict) -> tuple[dict, dict]:
        """Generation 0: add-alpha fit of real_data_size draws from p0 (the engine's real-data stream)."""
        key = stream_key(self.root_seed, knobs["seed"], REAL_DATA_STREAM)
        counts = self._counts(key, self._truth(knobs), self.real_data_size or self.samples_per_generation)
        uniform = jnp.full((self.num_outcomes,), 1.0 / self.num_outcomes, jnp.float32)
        return self._finish(self._fit(counts, knobs, uniform), uniform, jnp.bool_(False), knobs)

    def step_chain(self, state: dict, knobs: dict, generation: jax.Array) -> tuple[dict, dict]:
        """Generation g: count generation g - 1's M draws from the current fit, refit, evaluate."""
        stream = stream_key(self.root_seed, knobs["seed"], GENERATION_STREAM)
        previous = state["probabilities"]
        counts = self._counts(generation_keys(stream, generation - 1)[2], previous, self.samples_per_generation)
        return self._finish(self._fit(counts, knobs, previous), previous, state["failed"], knobs)

    def init_all(self, knobs: dict) -> tuple[dict, dict]:
        return jax.vmap(self.init_chain)(knobs)

    def chunk_all(self, state: dict, knobs: dict, start: jax.Array) -> tuple[dict, dict]:
        return _scan_chunk(self.step_chain, state, knobs, start, self.chunk_generations)

    def compile(self):
        return jax.jit(self.init_all), jax.jit(self.chunk_all)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FamilyReference:
    """Any family's fit / sample / evaluate under replace, rho = 0, in a plain scan(vmap): no blocks, regimes or pools.

    Used for the GMM, whose cost is its EM: k-means++ and Lloyd init, max_iterations EM steps, M draws from the fit
    (collapse_jax/models/gmm.py), the same keys and calls as the engine's generation, so the ratio isolates the engine.
    """

    model: Any
    reference: Any  # model.reference()
    chunk_generations: int
    samples_per_generation: int
    root_seed: int = 0

    def _finish(self, params, samples, state, knobs) -> tuple[dict, dict]:
        finite = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves((params, samples)) if x.dtype.kind == "f"]
        failed = state["failed"] | ~jnp.all(jnp.stack(finite))
        metrics = _blank(self.model.evaluate(params, samples, self.reference, knobs), failed)
        new = {"params": params, "samples": samples, "failed": failed}
        new = jax.tree.map(lambda old, value: jnp.where(failed, old, value), state, new)
        return {**new, "failed": failed}, {**metrics, "failed": failed.astype(jnp.float32)}

    def init_chain(self, knobs: dict) -> tuple[dict, dict]:
        model = self.model
        real = model.real_data(stream_key(self.root_seed, knobs["seed"], REAL_DATA_STREAM), knobs)
        init_key, fit_key, sample_key = generation_keys(stream_key(self.root_seed, knobs["seed"], 0), 0)
        weights = jnp.ones(real.shape[0], jnp.float32)
        params = model.fit(fit_key, real, weights, knobs, model.init(init_key, knobs))
        samples = model.sample(sample_key, params, self.samples_per_generation, knobs)
        blank = {"params": params, "samples": samples, "failed": jnp.bool_(False)}
        return self._finish(params, samples, blank, knobs)

    def step_chain(self, state: dict, knobs: dict, generation: jax.Array) -> tuple[dict, dict]:
        _, fit_key, sample_key = generation_keys(stream_key(self.root_seed, knobs["seed"], 0), generation)
        weights = jnp.ones(self.samples_per_generation, jnp.float32)
        params = self.model.fit(fit_key, state["samples"], weights, knobs, state["params"])
        samples = self.model.sample(sample_key, params, self.samples_per_generation, knobs)
        return self._finish(params, samples, state, knobs)

    def init_all(self, knobs: dict) -> tuple[dict, dict]:
        return jax.vmap(self.init_chain)(knobs)

    def chunk_all(self, state: dict, knobs: dict, start: jax.Array) -> tuple[dict, dict]:
        return _scan_chunk(self.step_chain, state, knobs, start, self.chunk_generations)

    def compile(self):
        return jax.jit(self.init_all), jax.jit(self.chunk_all)
