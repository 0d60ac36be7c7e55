"""Subprocess body for device/host tests: XLA_FLAGS (fake CPU devices) must be set before jax is imported.

python tests/device_worker.py --devices=8 --generations=6 --out=metrics.npz [--workdir=W] [--port=P --process_id=i]
    [--cpu_devices=N: the devices come from devices.apply_cpu_devices (the CLI's path), over an XLA_FLAGS count of 1]
"""

import argparse
import os
import sys

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--process_id", type=int, default=0)
    parser.add_argument("--num_processes", type=int, default=1)
    parser.add_argument("--cpu_devices", type=int, default=None)
    args = parser.parse_args()
    # Kept: the suite's compile setting (tests/conftest.py), so these bits compare with the test process's own.
    inherited = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{inherited} --xla_force_host_platform_device_count={args.devices}".strip()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from collapse_jax.host import devices, runner  # noqa: E402
from experiments.configs import gaussian  # noqa: E402


def small_config(generations: int):
    """The device tests' sweep: 2 static groups x 2 real fractions x 10 seeds, blocks of 4 (so padding differs)."""
    overrides = {
        "regime.name": ("replace", "accumulate_subsample"),
        "regime.real_fraction": (0.0, 0.2),
        "seeds": 10,
        "num_generations": generations,
        "chunk_generations": 2,
        "chain_block": 4,
        "checkpoint_every": 1,
        "make_plots": False,
        "model.test_size": 1000,
        "model.dim": 2,
    }
    return runner.as_config(overrides, gaussian.get_config())


if __name__ == "__main__":
    if args.cpu_devices is not None:
        devices.apply_cpu_devices(args.cpu_devices)  # the setting wins over the process's XLA_FLAGS count
        args.devices = args.cpu_devices
    if args.port is not None:
        address = f"127.0.0.1:{args.port}"
        devices.maybe_initialize_distributed(address, args.num_processes, args.process_id)
    assert jax.device_count() == args.devices * args.num_processes, jax.devices()
    result = runner.run(small_config(args.generations), args.workdir)
    if args.out and devices.is_primary():
        np.savez(args.out, **result.metrics)
