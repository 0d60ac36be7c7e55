"""Language-model throughput: training and sampling tokens/s for 1/4/8 vmapped chains; MFU vs a measured matmul peak.

Run:  python -m benchmarks.lm_throughput [--config=experiments/configs/lm_tiny.py] [--chains=1,4,8] [--steps=32]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

from collapse_jax.lm import decoding, training
from collapse_jax.models.base import make_model

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/lm_tiny.py")
_CHAINS = flags.DEFINE_list("chains", ["1", "4", "8"], "Chain counts to vmap.")
_STEPS = flags.DEFINE_integer("steps", 32, "Training steps per timed call.")


def _timed(fn, *args, repeats: int = 3) -> float:
    """Best wall time of fn(*args) after one compile-and-warm call."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak_flops(size: int = 2048, dtype=jnp.float32) -> float:
    """FLOP/s of a square matmul in this process: the denominator of MFU."""
    a = jnp.ones((size, size), dtype)
    return 2 * size**3 / _timed(jax.jit(lambda x: x @ x), a)


def training_flops_per_token(model) -> float:
    """6N + 12 n_layer d T per token (Kaplan et al. 2020; PaLM appendix B), N without the position table."""
    network, length = model.network, model.train_blocks.shape[1]
    dense = network.num_params() - (network.max_positions + network.position_offset) * network.hidden_size
    return 6 * dense + 12 * network.num_layers * network.hidden_size * length


def main(argv) -> None:
    del argv
    model = make_model(_CONFIG.value)
    settings = training.TrainSettings(
        batch_size=model.train_settings.batch_size, num_steps=_STEPS.value, min_valid=model.real_data_size
    )
    blocks = jnp.asarray(model.train_blocks)
    weights = jnp.ones(blocks.shape[0])
    peak = matmul_peak_flops()
    prompts = jnp.concatenate([jnp.ones((64, 1), jnp.int32), blocks[:64]], axis=1)
    print(
        f"device: {jax.devices()[0].device_kind}; params {model.network.num_params():,}; peak {peak / 1e9:.1f} GFLOP/s"
    )
    for chains in map(int, _CHAINS.value):
        keys = jax.random.split(jax.random.key(0), chains)
        params = jax.vmap(lambda k: model.init(k, {})["weights"])(keys)

        def train(keys, params):
            fit = lambda k, p: training.train(k, p, model.network, settings, blocks, weights, 1e-3, 1)[1]  # noqa: E731
            return jax.vmap(fit)(keys, params)

        seconds = _timed(jax.jit(train), keys, params)
        tokens = chains * _STEPS.value * settings.batch_size * blocks.shape[1]
        mfu = tokens * training_flops_per_token(model) / seconds / peak

        def decode(keys, params):
            one = lambda k, p: decoding.generate(k, p, model.network, prompts, blocks.shape[1])  # noqa: E731
            return jax.vmap(one)(keys, params)

        decode_seconds = _timed(jax.jit(decode), keys, params)
        decoded = chains * 64 * blocks.shape[1]
        print(
            f"chains {chains}: train {tokens / seconds:,.0f} tok/s (MFU {100 * mfu:.1f}%), "
            f"sample {decoded / decode_seconds:,.0f} tok/s"
        )


if __name__ == "__main__":
    app.run(main)
