"""VAE training throughput: images/s for 1 chain, C chains vmapped in one compiled call, and C chains one after another.

python -m benchmarks.vae_throughput [--config=experiments/configs/vae_digits.py] [--chains=8] [--steps=200]
Steady state (compile excluded and reported separately); training images = chains x steps x batch size.
"""

import time

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

from collapse_jax.models import base

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/vae_digits.py", "VAE experiment config.")
_CHAINS = flags.DEFINE_integer("chains", 8, "C: chains trained side by side.")
_STEPS = flags.DEFINE_integer("steps", 200, "Minibatch steps per fit (overrides config.model.steps_per_generation).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls after the compiling one; the best is reported.")


def _knobs(model, config, chains: int) -> dict:
    """Per-chain knobs at the config's (first) values."""
    first = lambda v: v[0] if isinstance(v, (list, tuple)) else v  # noqa: E731
    knobs = {name: jnp.full((chains,), first(getattr(config.model, path.split(".")[-1])), jnp.float32)
             for name, path in model.knob_fields.items()}  # fmt: skip
    return {**knobs, "seed": jnp.arange(chains), "real_fraction": jnp.zeros((chains,))}


def _timed(function, *args) -> tuple[float, float]:
    """(first call incl. compile, best steady-state call) in seconds."""
    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(_REPEATS.value):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        best = min(best, time.perf_counter() - start)
    return first, best


def main(argv: list[str]) -> None:
    del argv
    config = _CONFIG.value
    config.model.steps_per_generation = _STEPS.value
    model = base.make_model(config)
    chains, steps, batch = _CHAINS.value, _STEPS.value, model.batch_size
    data = model.real_data(None, {})
    weights = jnp.ones(data.shape[0])
    knobs = _knobs(model, config, chains)
    keys = jax.random.split(jax.random.PRNGKey(0), chains)
    previous = jax.vmap(model.init)(keys, knobs)

    def fit_one(key, knob, prev):
        return model.fit(key, data, weights, knob, prev)

    one = jax.jit(fit_one)
    vmapped = jax.jit(jax.vmap(fit_one))
    pick = lambda tree, i: jax.tree.map(lambda x: x[i], tree)  # noqa: E731

    def sequential(keys, knobs, previous):
        return [one(keys[i], pick(knobs, i), pick(previous, i)) for i in range(chains)]

    compile_one, time_one = _timed(one, keys[0], pick(knobs, 0), pick(previous, 0))
    compile_vmap, time_vmap = _timed(vmapped, keys, knobs, previous)
    _, time_sequential = _timed(sequential, keys, knobs, previous)
    images = steps * batch
    print(f"device: {jax.devices()[0].device_kind}; data {config.model.dataset}, pool {data.shape[0]}, batch {batch}, "
          f"{steps} steps per fit")  # fmt: skip
    print(f"1 chain:                 {images / time_one:10.0f} training images/s  (compile {compile_one:.1f} s)")
    print(f"{chains} chains vmapped:       {chains * images / time_vmap:10.0f} training images/s  "
          f"(compile {compile_vmap:.1f} s)")  # fmt: skip
    print(f"{chains} chains one by one:    {chains * images / time_sequential:10.0f} training images/s")
    print(f"vmapped / one-by-one: {time_sequential / time_vmap:.2f}x")


if __name__ == "__main__":
    app.run(main)
