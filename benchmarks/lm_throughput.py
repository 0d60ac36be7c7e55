"""Language-model throughput: training and sampling tokens/s for 1/4/8 vmapped chains; MFU vs a measured matmul peak.

Run:  python -m benchmarks.lm_throughput [--config=experiments/configs/lm_tiny.py] [--chains=1,4,8] [--steps=32]
      [--random_tokens]  (the config's network on random token blocks: no corpus, tokenizer or pretraining needed)
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

from collapse_jax.models.lm import decoding, training
from collapse_jax.models.lm.transformer import TransformerConfig, init_params


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


def training_flops_per_token(network: TransformerConfig, length: int) -> float:
    """6N + 12 n_layer d T per token (Kaplan et al. 2020; PaLM appendix B), N without the position table."""
    dense = network.num_params() - (network.max_positions + network.position_offset) * network.hidden_size
    return 6 * dense + 12 * network.num_layers * network.hidden_size * length


def network_of(config) -> TransformerConfig:
    """The network an LM config trains (models/lm.py builds the same from config.model and its tokenizer)."""
    model = config.model
    return TransformerConfig(
        vocab_size=model.vocab_size,
        num_layers=model.num_layers,
        hidden_size=model.hidden_size,
        num_heads=model.num_heads,
        mlp_size=model.mlp_size,
        max_positions=2 * model.block_length + 1,
        activation=model.get("activation", "relu"),
        dtype=model.dtype,
    )


def throughput(network: TransformerConfig, blocks: jax.Array, batch_size: int, chains: int, steps: int,
               peak: float, prompts: int = 64) -> dict:  # fmt: skip
    """Training tokens/s (and MFU against `peak` FLOP/s) and sampling tokens/s of `chains` vmapped models."""
    settings = training.TrainSettings(batch_size=batch_size, num_steps=steps, min_valid=blocks.shape[0])
    weights = jnp.ones(blocks.shape[0])
    length = blocks.shape[1]
    keys = jax.random.split(jax.random.key(0), chains)
    params = jax.vmap(lambda k: init_params(k, network))(keys)

    def train(keys, params):
        fit = lambda k, p: training.train(k, p, network, settings, blocks, weights, 1e-3, 1)[1]  # noqa: E731
        return jax.vmap(fit)(keys, params)

    started = time.perf_counter()
    seconds = _timed(jax.jit(train), keys, params)
    first_call = time.perf_counter() - started
    tokens = chains * steps * batch_size * length
    prefix = jnp.concatenate([jnp.ones((prompts, 1), jnp.int32), blocks[:prompts]], axis=1)

    def decode(keys, params):
        one = lambda k, p: decoding.generate(k, p, network, prefix, length)  # noqa: E731
        return jax.vmap(one)(keys, params)

    decode_seconds = _timed(jax.jit(decode), keys, params)
    return {
        "params": network.num_params(),
        "train_tokens_per_s": tokens / seconds,
        "mfu": tokens * training_flops_per_token(network, length) / seconds / peak,
        "sample_tokens_per_s": chains * prompts * length / decode_seconds,
        "train_compile_s": first_call - 4 * seconds,  # first call minus the timed calls' share: compile, roughly
    }


def random_blocks(network: TransformerConfig, count: int, length: int) -> jax.Array:
    """Token blocks drawn uniformly from the vocabulary (throughput does not depend on the text)."""
    return jax.random.randint(jax.random.key(1), (count, length), 2, network.vocab_size, jnp.int32)


def _define_flags() -> None:
    """Command-line flags, defined only when this file is the program (the suite imports `throughput`)."""
    config_flags.DEFINE_config_file("config", "experiments/configs/lm_tiny.py")
    flags.DEFINE_list("chains", ["1", "4", "8"], "Chain counts to vmap.")
    flags.DEFINE_integer("steps", 32, "Training steps per timed call.")
    flags.DEFINE_bool("random_tokens", False, "Random token blocks instead of the config's corpus.")


def main(argv) -> None:
    del argv
    f = flags.FLAGS
    config = f.config
    if f.random_tokens:
        network, batch_size = network_of(config), config.model.batch_size
        blocks = random_blocks(network, max(256, batch_size), config.model.block_length)
    else:
        from collapse_jax.models.base import make_model

        model = make_model(config)
        network, batch_size = model.network, model.train_settings.batch_size
        blocks = jnp.asarray(model.train_blocks)
    peak = matmul_peak_flops()
    print(f"device: {jax.devices()[0].device_kind}; params {network.num_params():,}; peak {peak / 1e9:.1f} GFLOP/s")
    for chains in map(int, f.chains):
        result = throughput(network, blocks, batch_size, chains, f.steps, peak)
        print(
            f"chains {chains}: train {result['train_tokens_per_s']:,.0f} tok/s (MFU {100 * result['mfu']:.1f}%), "
            f"sample {result['sample_tokens_per_s']:,.0f} tok/s"
        )


if __name__ == "__main__":
    _define_flags()
    app.run(main)
