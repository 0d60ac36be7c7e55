"""VAE training throughput: images/s for 1 chain, C chains vmapped in one compiled call, and C chains one after another.

python -m benchmarks.vae_throughput [--config=experiments/configs/vae_digits.py] [--chains=8] [--steps=200]
Steady state (compile excluded and reported separately); training images = chains x steps x batch size.
"""

import time

import jax
import jax.numpy as jnp
import ml_collections
from absl import app, flags
from ml_collections import config_flags

from collapse_jax.models import base


def _knobs(model, config, chains: int) -> dict:
    """Per-chain knobs at the config's (first) values."""
    first = lambda v: v[0] if isinstance(v, (list, tuple)) else v  # noqa: E731
    knobs = {name: jnp.full((chains,), first(getattr(config.model, path.split(".")[-1])), jnp.float32)
             for name, path in model.knob_fields.items()}  # fmt: skip
    return {**knobs, "seed": jnp.arange(chains), "real_fraction": jnp.zeros((chains,))}


def _timed(function, *args, repeats: int = 3) -> tuple[float, float]:
    """(first call incl. compile, best steady-state call) in seconds."""
    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        best = min(best, time.perf_counter() - start)
    return first, best


def throughput(config, chains: int, steps: int, repeats: int = 3, sequential: bool = True) -> dict:
    """Training images/s of 1 chain, `chains` vmapped, and (sequential) `chains` one after another; compile seconds."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.model.steps_per_generation = steps
    model = base.make_model(config)
    batch = model.batch_size
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

    def one_by_one(keys, knobs, previous):
        return [one(keys[i], pick(knobs, i), pick(previous, i)) for i in range(chains)]

    compile_one, time_one = _timed(one, keys[0], pick(knobs, 0), pick(previous, 0), repeats=repeats)
    compile_vmap, time_vmap = _timed(vmapped, keys, knobs, previous, repeats=repeats)
    time_sequential = _timed(one_by_one, keys, knobs, previous, repeats=repeats)[1] if sequential else float("nan")
    images = steps * batch
    return {
        "images_per_s_one_chain": images / time_one,
        "images_per_s_vmapped": chains * images / time_vmap,
        "images_per_s_one_by_one": chains * images / time_sequential,
        "compile_one_s": compile_one,
        "compile_vmapped_s": compile_vmap,
        "pool": data.shape[0],
        "batch": batch,
    }


def _define_flags() -> None:
    """Command-line flags, defined only when this file is the program (the suite imports `throughput`)."""
    config_flags.DEFINE_config_file("config", "experiments/configs/vae_digits.py", "VAE experiment config.")
    flags.DEFINE_integer("chains", 8, "C: chains trained side by side.")
    flags.DEFINE_integer("steps", 200, "Minibatch steps per fit (overrides config.model.steps_per_generation).")
    flags.DEFINE_integer("repeats", 3, "Timed calls after the compiling one; the best is reported.")


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    config, chains, steps = f.config, f.chains, f.steps
    result = throughput(config, chains, steps, f.repeats)
    batch = result["batch"]
    images = steps * batch
    time_one = images / result["images_per_s_one_chain"]
    time_vmap = chains * images / result["images_per_s_vmapped"]
    time_sequential = chains * images / result["images_per_s_one_by_one"]
    compile_one, compile_vmap = result["compile_one_s"], result["compile_vmapped_s"]
    print(f"device: {jax.devices()[0].device_kind}; data {config.model.dataset}, pool {result['pool']}, batch {batch}, "
          f"{steps} steps per fit")  # fmt: skip
    print(f"1 chain:                 {images / time_one:10.0f} training images/s  (compile {compile_one:.1f} s)")
    print(f"{chains} chains vmapped:       {chains * images / time_vmap:10.0f} training images/s  "
          f"(compile {compile_vmap:.1f} s)")  # fmt: skip
    print(f"{chains} chains one by one:    {chains * images / time_sequential:10.0f} training images/s")
    print(f"vmapped / one-by-one: {time_sequential / time_vmap:.2f}x")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
