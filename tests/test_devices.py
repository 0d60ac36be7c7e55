"""Scale-out invariances: the same bits on 1, 2 and 8 devices and across 2 processes; checkpoints move between them."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import assert_resumed, resumes

from collapse_jax.host import devices, runner
from collapse_jax.store import workdir_io

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from device_worker import small_config  # noqa: E402

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "device_worker.py")


def worker(*arguments: str, timeout: int = 300) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, WORKER, *arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen, timeout: int = 300) -> None:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]


def assert_metrics_equal(path, expected):
    with np.load(path) as saved:
        for name, values in expected.metrics.items():
            np.testing.assert_array_equal(saved[name], values, err_msg=name)


@pytest.fixture(scope="module")
def one_device():
    return runner.simulate(small_config(6))


@pytest.mark.parametrize("count", [2, 8])
def test_results_are_bit_identical_on_1_2_and_8_devices(one_device, tmp_path, count):
    out = str(tmp_path / "m.npz")
    finish(worker(f"--devices={count}", f"--out={out}"))
    assert_metrics_equal(out, one_device)


def test_the_cpu_devices_setting_splits_the_chains_over_that_many_devices_with_the_same_bits(one_device, tmp_path):
    out = str(tmp_path / "m.npz")
    finish(worker("--cpu_devices=2", f"--out={out}"))  # the worker asserts 2 devices despite XLA_FLAGS' 1
    assert_metrics_equal(out, one_device)


def test_cpu_devices_after_jax_started_is_kept_when_it_matches_and_refused_in_one_line_when_not():
    count = jax.device_count()  # this process started JAX long ago
    assert devices.apply_cpu_devices(1) is None
    assert devices.apply_cpu_devices(count) == (None if count == 1 else count)
    with pytest.raises(
        ValueError, match=rf"^config.cpu_devices: {count + 1} CPU devices must be set before JAX starts"
    ):
        devices.apply_cpu_devices(count + 1)
    with pytest.raises(ValueError, match=r"^config.cpu_devices: must be 'auto' or an integer >= 1, got 0$"):
        devices.apply_cpu_devices(0)


def test_a_run_may_resume_with_another_cpu_devices_setting():
    # Like a resume on another machine: with an integer chain_block the bits do not depend on the device count.
    config = small_config(4)
    saved = workdir_io.config_record(config)
    workdir_io.check_resumable(saved, runner.as_config({"cpu_devices": "auto"}, config), "/tmp/moved")  # no error


def test_a_run_saved_on_8_devices_resumes_on_1_and_back(one_device, tmp_path):
    workdir = str(tmp_path / "w")
    finish(worker("--devices=8", "--generations=2", f"--workdir={workdir}"))
    runner.run(small_config(4), workdir)  # 8 -> 1 device
    assert_resumed(workdir, 2, 4)
    out = str(tmp_path / "m.npz")
    finish(worker("--devices=8", "--generations=6", f"--workdir={workdir}", f"--out={out}"))  # 1 -> 8
    # The second resume, group by group after the first's: every group continued from generation 4.
    first, second = resumes(workdir)[: len(resumes(workdir)) // 2], resumes(workdir)[len(resumes(workdir)) // 2 :]
    assert second == [{**resume, "from_generation": 4, "to_generation": 6} for resume in first]
    assert_metrics_equal(out, one_device)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_with_jax_distributed_match_one_process(one_device, tmp_path):
    # 2 processes x 2 CPU devices each; each process holds its shard of chains; process 0 writes the results.
    workdir, out = str(tmp_path / "w"), str(tmp_path / "m.npz")
    for attempt in range(3):  # a port taken between choosing and binding: retry with another
        port = free_port()
        common = ["--devices=2", "--num_processes=2", f"--port={port}", f"--workdir={workdir}", f"--out={out}"]
        processes = [worker(*common, f"--process_id={i}") for i in range(2)]
        outputs = [p.communicate(timeout=300)[0] for p in processes]
        if all(p.returncode == 0 for p in processes):
            break
        assert attempt < 2 and any("address" in o.lower() for o in outputs), outputs[0][-3000:] + outputs[1][-3000:]
    assert_metrics_equal(out, one_device)
    # The 2-process checkpoint restores in one process: extending the run resumes from it.
    extended = runner.run(small_config(8), workdir)
    assert_resumed(workdir, 6, 8)
    np.testing.assert_array_equal(extended.metrics["trace_ratio"][:, :7], one_device.metrics["trace_ratio"])
