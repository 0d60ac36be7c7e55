"""Learned diffusion throughput: chain-generations/s (train_steps AdamW steps + M samples) of C chains vmapped in one
compiled program, against a plain single-model Flax + optax loop (a jitted train step called from Python, then the
same jitted sampler) doing the same steps, measured side by side in one process.

python -m benchmarks.diffusion_throughput [--config=experiments/configs/diffusion_toy.py] [--chains=1,16,64]
    [--config.cpu_devices=auto]
Steady state (the first call, with its compile, is reported apart). The GPU sizes for benchmarks/suite.py are printed.
The vmapped program splits its chains over the process's devices, as the engine does (padding chains to a multiple of
them); on CPU the config's cpu_devices sets how many, as experiments.main does. The plain loop runs on one.
"""

import time

import jax
import jax.numpy as jnp
import optax
from absl import app, flags
from ml_collections import config_flags

from collapse_jax.host import devices, runner
from collapse_jax.models import base
from collapse_jax.models.diffusion import training

# The suite's accelerator sizes: diffusion_toy's MLP at these chain counts (one H100 holds all of them many times).
GPU_CHAINS = (64, 256, 1024)


def _knobs(config, chains: int) -> dict:
    """Per-chain knobs at the config's (first) values."""
    first = lambda v: v[0] if isinstance(v, (list, tuple)) else v  # noqa: E731
    model = config.model
    values = {
        "sampling_bias": model.sampling_bias,
        "truncation": model.truncation,
        "train_steps": model.train_steps,
        "learning_rate": model.learning_rate,
    }
    knobs = {name: jnp.full((chains,), first(value), jnp.float32) for name, value in values.items()}
    return {**knobs, "seed": jnp.arange(chains), "real_fraction": jnp.zeros((chains,))}


def _best(function, *args, repeats: int) -> tuple[float, float]:
    """(first call incl. compile, best of `repeats` steady-state calls) in seconds."""
    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    first, best = time.perf_counter() - start, float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        best = min(best, time.perf_counter() - start)
    return first, best


def vmapped_program(model, samples: int):
    """jit(vmap(one chain-generation)): fit the chain's real data from its previous network, then sample; its
    arguments' chain axis is split over the devices (devices.shard_chains), so the program runs on all of them."""

    def generation(key, knobs, previous):
        fit_key, sample_key = jax.random.split(key)
        data = model.real_data(jax.random.fold_in(key, 7), knobs)
        params = model.fit(fit_key, data, jnp.ones(data.shape[0]), knobs, previous)
        return model.sample(sample_key, params, samples, knobs)

    return jax.jit(jax.vmap(generation))


def plain_loop(model, samples: int, steps: int, learning_rate: float, knobs: dict):
    """One model at a time, as a single-model script trains it: a jitted AdamW step called `steps` times from Python
    on minibatches drawn the same way (uniform over the M real points), then one jitted sampler call."""
    net = model.net
    optimizer = optax.adamw(learning_rate, weight_decay=training.WEIGHT_DECAY)

    @jax.jit
    def train_step(params, opt_state, data, key):
        index_key, time_key, noise_key = jax.random.split(key, 3)
        batch = data[jax.random.randint(index_key, (model.batch_size,), 0, data.shape[0])]
        t = jax.random.uniform(time_key, (model.batch_size,))
        noise = jax.random.normal(noise_key, batch.shape)
        gradient = jax.grad(lambda p: training.denoising_loss(net, p, model.schedule, batch, t, noise))(params)
        updates, opt_state = optimizer.update(gradient, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    @jax.jit
    def sample(key, params, data):
        box = {"low": jnp.min(data, axis=0), "high": jnp.max(data, axis=0)}
        return model.sample(key, {"net": params, **box}, samples, knobs)

    def generation(key, params):
        data = model.real_data(jax.random.fold_in(key, 7), knobs)
        opt_state = optimizer.init(params)
        for step in range(steps):
            params, opt_state = train_step(params, opt_state, data, jax.random.fold_in(key, step))
        return sample(key, params, data)

    def flops(key, params) -> float:
        """XLA's count of the floating-point operations of one generation: `steps` train steps and the sampler."""
        data = model.real_data(jax.random.fold_in(key, 7), knobs)
        opt_state = optimizer.init(params)
        step = train_step.lower(params, opt_state, data, key).compile().cost_analysis()["flops"]
        return steps * step + sample.lower(key, params, data).compile().cost_analysis()["flops"]

    generation.flops = flops
    return generation


def matmul_flops_per_s(size: int = 1024, repeats: int = 5) -> float:
    """The machine's float32 matmul rate ([size, size] @ [size, size], best of `repeats`): the compute roof."""
    a = jnp.ones((size, size), jnp.float32)
    product = jax.jit(lambda x, y: x @ y)
    _, best = _best(product, a, a, repeats=repeats)
    return 2 * size**3 / best


def main(argv) -> None:
    del argv
    devices.apply_cpu_devices(FLAGS.config.cpu_devices)
    config = runner.as_config({"regime.name": "replace", "regime.real_fraction": 0.0}, FLAGS.config)
    model = base.make_model(config)
    samples = config.samples_per_generation
    steps, rate = model.max_train_steps, float(_knobs(config, 1)["learning_rate"][0])
    mesh = devices.chain_mesh()
    print(
        f"diffusion throughput ({mesh.size} {jax.devices()[0].platform} device(s)): mixture MLP width {model.width} "
        f"depth {model.depth}, "
        f"{steps} AdamW steps of batch {model.batch_size}, M = {samples} samples in {model.sampling_steps} steps"
    )
    one_knobs = jax.tree.map(lambda x: x[0], _knobs(config, 1))
    loop = plain_loop(model, samples, steps, rate, one_knobs)
    start_params = model.net.init(jax.random.key(0))
    first, best = _best(loop, jax.random.key(1), start_params, repeats=FLAGS.repeats)
    loop_rate = 1.0 / best
    print(f"  plain Flax+optax loop: {loop_rate:.3f} chain-generations/s ({best:.2f} s each; first {first:.1f} s)")
    rates = {}
    program = vmapped_program(model, samples)
    for chains in (int(c) for c in FLAGS.chains.split(",")):
        padded = -(-chains // mesh.size) * mesh.size  # the engine's padding chains: computed, then dropped
        knobs = _knobs(config, padded)
        keys = jax.random.split(jax.random.key(2), padded)
        previous = jax.vmap(model.init)(keys, knobs)
        keys = jax.random.wrap_key_data(devices.shard_chains(jax.random.key_data(keys), mesh))
        knobs, previous = devices.shard_chains((knobs, previous), mesh)
        first, best = _best(program, keys, knobs, previous, repeats=FLAGS.repeats)
        rates[chains] = chains / best
        print(
            f"  vmapped, {chains:4d} chains: {rates[chains]:.3f} chain-generations/s ({best:.2f} s per call; "
            f"first {first:.1f} s)"
        )
    # The loop again: a shared machine's load drifts, so the ratios use the mean of the loop's two measurements.
    _, again = _best(loop, jax.random.key(1), start_params, repeats=FLAGS.repeats)
    loop_rate = 0.5 * (loop_rate + 1.0 / again)
    print(f"  plain loop again: {1.0 / again:.3f} chain-generations/s; ratios to their mean {loop_rate:.3f}:")
    for chains, rate in rates.items():
        print(f"    {chains:4d} chains: {rate / loop_rate:.2f}x the plain loop")
    # The roof: a chain-generation's FLOPs at the machine's large-matmul rate. No program, vmapped or not, runs a
    # chain-generation faster than that, so loop time / roof time bounds the speed-up any batching can give here.
    flops, peak = loop.flops(jax.random.key(1), start_params), matmul_flops_per_s()
    roof = flops / peak
    print(
        f"  roof: {flops / 1e9:.2f} GFLOP per chain-generation (XLA's count) at {peak / 1e9:.1f} GFLOP/s (1024^2 "
        f"float32 matmul) = {roof:.3f} s; the loop takes {1.0 / loop_rate:.3f} s, so batching can gain at most "
        f"{1.0 / loop_rate / roof:.2f}x here; the vmapped program runs at "
        + ", ".join(f"{rate * roof:.0%}" for rate in rates.values())
        + " of the roof"
    )
    print(
        "GPU sizes for benchmarks/suite.py: python -m benchmarks.diffusion_throughput --chains="
        + ",".join(str(c) for c in GPU_CHAINS)
        + " --config.model.train_steps=1000 --config.samples_per_generation=1024"
    )


FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "experiments/configs/diffusion_toy.py", "the diffusion config to time")
flags.DEFINE_string("chains", "1,16,64", "chain counts of the vmapped program")
flags.DEFINE_integer("repeats", 2, "steady-state calls timed (best kept)")

if __name__ == "__main__":
    app.run(main)
