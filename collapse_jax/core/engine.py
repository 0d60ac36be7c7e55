"""The model-agnostic collapse-chain engine: one chain's generations as pure functions, compiled for many chains.

run_chunk = jit(lax.map over fixed-size chain blocks of vmap over chains of lax.scan over K generations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from collapse_jax.core import curation as curation_stage
from collapse_jax.core import streams
from collapse_jax.core.regimes import Regime, assemble
from collapse_jax.models import _threefry, contract

# Independent sub-streams of a chain's key fold_in(root, seed) (the table: core/streams.py).
GENERATION_STREAM, REAL_DATA_STREAM = streams.GENERATION, streams.REAL_DATA


def generation_key(root_seed: int, seed: jax.Array, generation: jax.Array) -> jax.Array:
    """key = fold_in(fold_in(fold_in(root, seed), stream 0), generation): a function of seed and generation only."""
    chain = jax.random.fold_in(jax.random.key(root_seed), seed)
    return jax.random.fold_in(jax.random.fold_in(chain, GENERATION_STREAM), generation)


def real_data_key(root_seed: int, seed: jax.Array) -> jax.Array:
    """The key of a chain's original real training set."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(root_seed), seed), REAL_DATA_STREAM)


def _blank_failed(metrics: dict, failed: jax.Array) -> dict:
    """NaN for a failed chain's float outputs (integer artifacts, e.g. token ids, are left as they are)."""
    return {
        name: jnp.where(failed, jnp.nan, value) if jnp.issubdtype(value.dtype, jnp.floating) else value
        for name, value in metrics.items()
    }


# Copies of one generation's samples a step holds at once (the draw, its weighted products, the assembled batch).
TRANSIENT_COPIES = 4


def tree_nbytes(tree: Any) -> int:
    """Bytes of every array (or abstract array) in a pytree."""
    return sum(int(np.prod(x.shape)) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


# XLA:CPU hands reductions (and the matmuls feeding them) to YNNPACK library fusions by default. For the engine's
# vmapped per-chain reductions ([chains, M, d] summed over M) those run 10-50x slower than XLA's own loops (profile in
# BUILD_NOTES.md, "Throughput at the limit"); library matmuls stay on, since large dots (VAE, LM) gain from them.
CPU_LIBRARY_FUSIONS = "LIBRARY_FUSION_TYPE_DOT"


def compiler_options() -> dict[str, str] | None:
    """XLA options of the engine's compiles: on CPU, library fusions for matmuls only (None elsewhere)."""
    if jax.default_backend() != "cpu":
        return None
    return {"xla_cpu_experimental_ynn_fusion_type": CPU_LIBRARY_FUSIONS}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Engine:
    """One static group's compiled chain functions (model, regime and shapes are closed over)."""

    model: Any
    regime: Regime
    reference: Any
    root_seed: int
    num_generations: int
    chunk_generations: int
    chain_block: int  # B: chains per vmapped block (resolved from "auto" by runner.build_engine)
    curation: curation_stage.Curation = curation_stage.Curation()
    # Which of the two bit-identical generators families' normal and uniform draws trace (models/_threefry.py): the
    # unrolled threefry or jax.random itself. Same values either way; only the cost differs by backend.
    generator: str = "unrolled"

    @property
    def bookkeeping_metrics(self) -> tuple[str, ...]:
        """Curation / supply metrics the engine adds to the model's (NaN at generation 0)."""
        share = (contract.SYNTHETIC_SHARE,) if self.curation.active or self.regime.reports_supply else ()
        return self.curation.metric_names + share

    def _evaluate(self, params: Any, samples: Any, knobs: dict) -> dict:
        """The model's metrics on the first M candidates (so oversampling leaves the sample metrics comparable)."""
        if self.regime.oversample > 1 and samples is not None:
            samples = jax.tree.map(lambda x: x[: self.regime.samples_per_generation], samples)
        metrics = self.model.evaluate(params, samples, self.reference, knobs)
        contract.check_metric_names(self.model, metrics)  # Python dict keys: checked once per trace, not per step
        return metrics

    @property
    def draws_when_consumed(self) -> bool:
        """Whether a generation's samples are drawn where the next generation consumes them, not carried in the state.

        Families whose `evaluate` ignores the samples (`evaluate_uses_samples = False`) need the samples of generation
        g only to build generation g + 1's batch. Drawing them there, from the carried params and generation g's
        sample key, gives the same values as drawing at g, but the [M] samples never enter the scan carry: no freeze
        select, no finite check and no re-read over them, and XLA fuses the draw with the statistics that consume it
        (3.4x -> ~1.1x the hand-fused step on the Gaussian, BUILD_NOTES.md "Throughput at the limit").
        """
        return self.regime.synthetic_statistics or not contract.evaluate_uses_samples(self.model)

    def bytes_per_chain(self, knobs: dict) -> int:
        """Device bytes one chain holds in a block: its state, its real data and one generation's transients.

        `knobs` are one chain's (scalars). The transients (the draw, the products its statistics form, the batch)
        are counted as TRANSIENT_COPIES copies of a generation's samples; a family that trains (activations,
        gradients, optimizer moments) adds its own `working_bytes_per_chain` (contract.WorkingBytes).
        """
        state = jax.eval_shape(lambda k: self.init_chain(k)[0], knobs)
        key = jax.random.key(0)
        # Statistics sampling draws no points: its transients are a few statistics, counted as none.
        samples = None if self.regime.synthetic_statistics else jax.eval_shape(self._draw, key, state["params"], knobs)
        real = jax.eval_shape(lambda k: self.model.real_data(k, knobs), key)
        working = (
            self.model.working_bytes_per_chain(knobs) if contract.supports(self.model, contract.WorkingBytes) else 0
        )
        return tree_nbytes(state) + tree_nbytes(real) + TRANSIENT_COPIES * tree_nbytes(samples) + int(working)

    def _draw(self, key: jax.Array, params: Any, knobs: dict) -> Any:
        return self.model.sample(key, params, self.regime.candidates, knobs)

    def init_chain(self, knobs: dict) -> tuple[dict, dict]:
        """Generation 0: fit the chain's original real data; returns (state, metrics)."""
        model = self.model
        real = model.real_data(real_data_key(self.root_seed, knobs["seed"]), knobs)
        init_key, fit_key, sample_key = jax.random.split(generation_key(self.root_seed, knobs["seed"], 0), 3)
        params, pool = self.regime.start(fit_key, model, real, knobs, model.init(init_key, knobs))
        if self.draws_when_consumed:
            samples, carried = None, {"sample_key": jax.random.key_data(sample_key)}
            failed = ~_all_finite(params)
        else:
            samples = self._draw(sample_key, params, knobs)
            carried = {"samples": samples}
            failed = ~(_all_finite(params) & _all_finite(samples))
        metrics = self._evaluate(params, samples, knobs)
        metrics.update({name: jnp.float32(jnp.nan) for name in self.bookkeeping_metrics})
        metrics = _blank_failed(metrics, failed)
        state = {"params": params, **carried, "pool": pool, "failed": failed}
        if self.curation.keeps_generation0_params:
            state["generation0_params"] = params
        return state, {**metrics, "failed": failed.astype(jnp.float32)}

    def _keys_and_real_part(self, knobs: dict, generation: jax.Array) -> tuple:
        """Generation g's (batch, fit, sample) keys and the real part of its batch (None when it has none)."""
        batch_key, fit_key, sample_key = jax.random.split(generation_key(self.root_seed, knobs["seed"], generation), 3)
        real = None
        if self.regime.needs_real_data_each_generation:
            real = self.model.real_data(real_data_key(self.root_seed, knobs["seed"]), knobs)
        return batch_key, fit_key, sample_key, self.regime.real_batch(batch_key, self.model, real, knobs, generation)

    def step_chain(self, state: dict, knobs: dict, generation: jax.Array) -> tuple[dict, dict]:
        """Generation g >= 1: build the batch, update the pool, refit, sample; failed or finished chains stay frozen."""
        if self.regime.synthetic_statistics:
            return self._step_chain_statistics(state, knobs, generation)
        model, regime = self.model, self.regime
        batch_key, fit_key, sample_key, real_part = self._keys_and_real_part(knobs, generation)
        if self.draws_when_consumed:
            # Generation g - 1's samples, drawn now from its params and its key (the values carrying them would hold).
            previous = self._draw(jax.random.wrap_key_data(state["sample_key"]), state["params"], knobs)
            state_view = {**state, "samples": previous}
        else:
            previous, state_view = state["samples"], state
        if self.curation.operator.transform is not None:  # static: other operators trace as without the hook
            previous = self.curation.transform(model, state_view, knobs)
            state_view = {**state_view, "samples": previous}
        synthetic_keep = None
        metrics = {}
        if self.curation.active:
            curation_key = jax.random.fold_in(batch_key, streams.CURATION)
            real_keep, synthetic_keep, metrics = self.curation.select(curation_key, model, state_view, real_part, knobs)
            if real_keep is not None:
                points, real_weights, detectable = real_part
                real_part = (points, real_weights * real_keep, detectable)
        synthetic_weights = regime.synthetic_weights(synthetic_keep, regime.real_count(knobs, generation))
        real_part, synthetic_weights = regime.mix_weights(real_part, synthetic_weights, knobs)
        batch, weights = assemble(real_part, previous, synthetic_weights)
        if contract.SYNTHETIC_SHARE in self.bookkeeping_metrics:
            metrics[contract.SYNTHETIC_SHARE] = jnp.sum(synthetic_weights) / jnp.maximum(jnp.sum(weights), 1.0)
        params, pool = regime.step(fit_key, model, state["pool"], batch, weights, knobs, state["params"])
        if self.draws_when_consumed:
            samples, carried = None, {"sample_key": jax.random.key_data(sample_key)}
            finite = _all_finite(params)
        else:
            samples = self._draw(sample_key, params, knobs)
            carried = {"samples": samples}
            finite = _all_finite(params) & _all_finite(samples)
        metrics = {**self._evaluate(params, samples, knobs), **metrics}
        return self._finish_step(state, generation, params, pool, carried, finite, metrics)

    def _step_chain_statistics(self, state: dict, knobs: dict, generation: jax.Array) -> tuple[dict, dict]:
        """step_chain under model.sampling = "statistics": generation g - 1's synthetic data arrive as sufficient
        statistics drawn from its params with its sample key (the key its points would have used), merged with the
        real points' statistics; no [M]-sized array is built, so a chain-generation costs the same at every M."""
        model, regime = self.model, self.regime
        batch_key, fit_key, sample_key, real_part = self._keys_and_real_part(knobs, generation)
        num_synthetic = (regime.samples_per_generation - regime.real_count(knobs, generation)).astype(jnp.float32)
        previous_key = jax.random.wrap_key_data(state["sample_key"])
        synthetic = model.sample_statistics(previous_key, state["params"], num_synthetic, knobs)
        params, pool = regime.step_statistics(
            fit_key, model, state["pool"], real_part, synthetic, knobs, state["params"]
        )
        metrics = self._evaluate(params, None, knobs)
        if contract.SYNTHETIC_SHARE in self.bookkeeping_metrics:
            real_weight = 0.0 if real_part is None else jnp.sum(real_part[1])
            metrics[contract.SYNTHETIC_SHARE] = num_synthetic / jnp.maximum(real_weight + num_synthetic, 1.0)
        carried = {"sample_key": jax.random.key_data(sample_key)}
        return self._finish_step(state, generation, params, pool, carried, _all_finite(params), metrics)

    def _finish_step(self, state, generation, params, pool, carried, finite, metrics) -> tuple[dict, dict]:
        """Freeze failed or finished chains (state unchanged) and blank a failed chain's metrics."""
        active = generation <= self.num_generations
        newly_failed = active & ~finite
        failed = state["failed"] | newly_failed
        # Past the last generation (the tail of a chunk) the state is left unchanged, so one compile serves every chunk.
        keep_old = failed | ~active
        new_state = {**state, "params": params, **carried, "pool": pool}
        new_state = jax.tree.map(lambda old, new: jnp.where(keep_old, old, new), state, new_state)
        new_state["failed"] = failed
        metrics = _blank_failed(metrics, failed)
        return new_state, {**metrics, "failed": failed.astype(jnp.float32)}

    def chunk_chain(self, state: dict, knobs: dict, start: jax.Array) -> tuple[dict, dict]:
        """K generations start, ..., start + K - 1 of one chain as a lax.scan; metrics [K] each."""

        def body(carry: dict, generation: jax.Array):
            return self.step_chain(carry, knobs, generation)

        generations = start + jnp.arange(self.chunk_generations, dtype=jnp.int32)
        return jax.lax.scan(body, state, generations)

    def _blocked(self, chain_fn: Callable, *chain_args: Any, shared: tuple = ()) -> Any:
        """Apply `chain_fn` to [C, ...] arguments as lax.map over blocks of B chains, vmapped inside a block.

        XLA vectorizes a vmap differently for different batch sizes (~1e-6 differences between 4 and 64 chains); fixed
        blocks make a chain's bits independent of how many chains run beside it. C must be a multiple of B.
        """
        block = self.chain_block

        def to_blocks(x):
            return x.reshape((x.shape[0] // block, block) + x.shape[1:])

        def from_blocks(x):
            return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])

        blocked = jax.tree.map(to_blocks, chain_args)
        batched = jax.vmap(lambda *args: chain_fn(*args, *shared))
        out = jax.lax.map(lambda args: batched(*args), blocked)
        return jax.tree.map(from_blocks, out)

    def init_all(self, knobs: dict) -> tuple[dict, dict]:
        """init_chain for all chains; knobs [C] with C a multiple of chain_block."""
        with _threefry.generator(self.generator):
            return self._blocked(self.init_chain, knobs)

    def chunk_all(self, state: dict, knobs: dict, start: jax.Array) -> tuple[dict, dict]:
        """chunk_chain for all chains; metrics come back [C, K]."""
        with _threefry.generator(self.generator):
            return self._blocked(self.chunk_chain, state, knobs, shared=(start,))

    def compile(self, mesh: Mesh | None = None) -> tuple[Callable, Callable]:
        """The jitted (init_all, chunk_rows) pair; `start` is traced, so every chunk reuses one compile.

        chunk_rows is chunk_all with each metric as rows [K, C], the metric files' layout, transposed in the compiled
        program: the host appends what arrives (artifacts, [C, K, ...], keep the chain axis first).
        With a mesh, shard_map gives each device its own contiguous blocks of chains (no communication): a chain's
        bits are the same on 1 or 8 devices, or across hosts, because every device runs the same block program.
        check_vma=False: models' training loops start scans from constants (optimizer state, step counters) whose
        "varies over the chains axis" type differs from the carry's; chains never communicate, so nothing is lost.
        """
        options = compiler_options()
        init_all, chunk_all = self.init_all, self.chunk_all
        if mesh is not None:
            chains = PartitionSpec(mesh.axis_names[0])
            init_all = jax.shard_map(init_all, mesh=mesh, in_specs=chains, out_specs=chains, check_vma=False)
            chunk_all = jax.shard_map(
                chunk_all, mesh=mesh, in_specs=(chains, chains, PartitionSpec()), out_specs=chains, check_vma=False
            )

        def chunk_rows(state: dict, knobs: dict, start: jax.Array) -> tuple[dict, dict]:
            state, outputs = chunk_all(state, knobs, start)
            return state, {name: value.T if value.ndim == 2 else value for name, value in outputs.items()}

        return jax.jit(init_all, compiler_options=options), jax.jit(chunk_rows, compiler_options=options)
