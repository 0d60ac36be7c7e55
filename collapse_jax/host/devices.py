"""Devices and hosts: the 1-D "chains" mesh, placing chain-axis arrays on it, gathering them back, jax.distributed.

Every process expands the same sweep, so each can build its own shard of a global array from the full host copy.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

CHAINS_AXIS = "chains"
AUTO_BLOCK = "auto"
# chain_block = "auto": the memory one device may spend on a block of chains (their state plus one generation's
# transients). On CPU a block is cache-bound long before it is memory-bound: blocks whose working set outgrows the
# cache lose 1.1x (Gaussian, M = 100) to 2.6x (discrete, M = 1000, K = 6) against blocks near 8 MiB, a quarter of the
# 32 MiB L3 of the machine measured (BUILD_NOTES, "Automatic chain blocks"). A fixed number, not the host's cache size,
# so "auto" gives the same bits on every CPU. Accelerators use a quarter of the device's memory.
CPU_BLOCK_MEMORY_BYTES = 8 << 20
ACCELERATOR_BLOCK_MEMORY_SHARE = 0.25
# chunk_generations = "auto": chunks of about this many chain-generations (~4 s of Gaussian work on the 2-core CPU,
# ~0.1-0.4 s on a GPU), so a chunk's fixed cost (its dispatch, the metrics' copy, the host loop: 13 ms at 10^4 chains
# and 24 ms at 10^5 under load, from K = 1 against K = 10 with 20 generations timed as a whole: 25.8 vs 12.6 and 158 vs
# 134 ms/generation; BUILD_NOTES, "Chunks and the host loop") stays a few percent of it. Never longer than an integer
# checkpoint_every, so checkpoints come as often as the config asks, and never more than CHUNK_METRIC_BYTES of metrics
# per chunk: two chunks are in flight on the host.
CHUNK_CHAIN_GENERATIONS = 4_000_000
CHUNK_METRIC_BYTES = 256 << 20
# checkpoint_every = "auto": a checkpoint at generation 0, at the end of the first chunk that finishes at least this
# many seconds after the previous checkpoint, at the last generation and on a stop request. A checkpoint costs a fixed
# ~25 ms of host work at 10^4 Gaussian chains (Orbax's synchronous part and an fsync of the metric files), a third of
# a 10-generation chunk (BUILD_NOTES, "Chunks and the host loop"); by wall time its share stays below 0.1% whatever a
# generation costs, and a kill loses at most this long plus one chunk.
CHECKPOINT_SECONDS = 30.0


def chain_mesh() -> Mesh:
    """A 1-D mesh over all devices of all processes (jax.make_mesh defaults to Explicit axes; vmapped scans need
    Auto)."""
    return Mesh(np.asarray(jax.devices()), (CHAINS_AXIS,))


def chain_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (chain) axis split over the mesh, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(CHAINS_AXIS))


def shard_chains(tree: Any, mesh: Mesh) -> Any:
    """Global arrays from full host copies (identical in every process): each device takes its slice of chains."""
    sharding = chain_sharding(mesh)

    def place(value):
        value = np.asarray(value)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(place, tree)


def to_host(tree: Any) -> Any:
    """Full numpy copies of (possibly multi-process) global arrays, in every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def is_primary() -> bool:
    """Only process 0 writes results, metrics files and plots."""
    return jax.process_index() == 0


def maybe_initialize_distributed(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> None:
    """jax.distributed.initialize when flags are given or SLURM runs several tasks; a no-op for one process."""
    slurm_tasks = int(os.environ.get("SLURM_NTASKS", "1"))
    if coordinator_address is None and slurm_tasks <= 1:
        return
    if coordinator_address is not None:
        if num_processes is None or process_id is None:
            raise ValueError("--coordinator_address: also pass --num_processes and --process_id")
        # A low heartbeat timeout: otherwise a dead peer blocks the others for 100 s (measured, jax 0.10.2).
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            coordinator_bind_address=coordinator_address,
            initialization_timeout=120,
            heartbeat_timeout_seconds=10,
        )
    else:
        jax.distributed.initialize()  # SLURM: coordinator, process count and id are auto-detected
    logging.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )


def block_memory_bytes() -> int:
    """The memory budget of one block of chains on this backend's devices."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return CPU_BLOCK_MEMORY_BYTES
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    return int(ACCELERATOR_BLOCK_MEMORY_SHARE * limit) if limit else 2 << 30


def resolve_chain_block(setting: Any, chains: int, devices: int, bytes_per_chain: int, budget: int) -> int:
    """chain_block as an int: the setting itself, or for "auto" the largest block whose chains fit the budget.

    "auto" splits each device's chains into the fewest equal blocks of at most budget / bytes_per_chain chains (so
    padding stays below one chain per block). A chain's bits depend on the block size, so "auto" results can change
    with the number of chains or devices; an integer block fixes them (README, "Which settings fix the bits").
    """
    if setting != AUTO_BLOCK:
        return int(setting)
    per_device = max(1, -(-chains // devices))
    largest = max(1, budget // max(1, bytes_per_chain))
    blocks = -(-per_device // largest)
    return -(-per_device // blocks)


def auto_or_count(field: str, value: Any) -> int | str:
    """A setting that is "auto" or a positive int (a command-line override of a str field arrives as digits)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value == AUTO_BLOCK or (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"config.{field}: must be 'auto' or an integer >= 1, got {value!r}")


def cpu_devices_setting(value: Any) -> int | str:
    """config.cpu_devices as "auto" or a positive int."""
    return auto_or_count("cpu_devices", value)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; os.cpu_count() where the platform has none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def apply_cpu_devices(setting: Any) -> int | None:
    """Start JAX's CPU backend with config.cpu_devices devices ("auto": usable_cores()); returns the count, or None
    for 1, which leaves the process's own choice (JAX_NUM_CPU_DEVICES, XLA_FLAGS) in force.

    Chains are split over devices like over an accelerator's, so a family whose per-chain operations are too small
    for XLA to thread (a small MLP's [64, 64] matmuls) runs on every core. It must run before JAX starts a backend:
    experiments.main calls it first; a process that has already used JAX gets a one-line ValueError.
    """
    count = cpu_devices_setting(setting)
    count = usable_cores() if count == AUTO_BLOCK else count
    if count == 1:
        return None
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        if jax.default_backend() != "cpu" or jax.device_count() == count:
            return count
        raise ValueError(
            f"config.cpu_devices: {count} CPU devices must be set before JAX starts (this process already runs "
            f"{jax.device_count()}); pass it to python -m experiments.main or set JAX_NUM_CPU_DEVICES={count}"
        )
    jax.config.update("jax_num_cpu_devices", count)
    return count


def chunk_generations_setting(value: Any) -> int | str:
    """config.chunk_generations as "auto" or a positive int."""
    return auto_or_count("chunk_generations", value)


def checkpoint_every_setting(value: Any) -> int | str:
    """config.checkpoint_every as "auto" or a positive int."""
    return auto_or_count("checkpoint_every", value)


def resolve_chunk_generations(
    setting: Any, chains: int, metrics: int, num_generations: int, checkpoint_every: Any
) -> int:
    """chunk_generations as an int: the setting itself, or for "auto" about CHUNK_CHAIN_GENERATIONS chain-generations
    per chunk, at most an integer checkpoint_every and num_generations, with at most CHUNK_METRIC_BYTES of metrics, and
    the run's generations split evenly over the chunks."""
    setting = chunk_generations_setting(setting)
    if setting != AUTO_BLOCK:
        return int(setting)
    chains = max(1, chains)
    by_work = -(-CHUNK_CHAIN_GENERATIONS // chains)
    by_memory = CHUNK_METRIC_BYTES // (chains * max(1, metrics) * 4)
    every = checkpoint_every_setting(checkpoint_every)
    by_checkpoints = num_generations if every == AUTO_BLOCK else every
    longest = max(1, min(by_work, by_memory, by_checkpoints, num_generations))
    # The last chunk computes all K generations (past the run's end the state stays frozen), so the run is split into
    # equal chunks: fewer than one wasted generation per chunk instead of up to K - 1 (650 generations in chunks of
    # 400 would compute 800).
    chunks = -(-num_generations // longest)
    return max(1, -(-num_generations // chunks))
