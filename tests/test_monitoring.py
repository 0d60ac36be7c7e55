"""TensorBoard chunk summaries: event files a reader with its own CRC-32C check parses, holding the exact quantiles."""

import glob
import os
import struct

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from collapse_jax.host import monitoring, runner


def crc32c(data: bytes) -> int:
    """Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), independent of tensorboardX's table version."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant (tensorflow/core/lib/hash/crc32c.h)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_scalars(logdir: str) -> dict[str, dict[int, float]]:
    """tag -> {step: value} from every event file in logdir, checking each TFRecord's length and data CRCs."""
    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        with open(path, "rb") as handle:
            data = handle.read()
        offset = 0
        while offset < len(data):
            header = data[offset : offset + 8]
            (length,) = struct.unpack("<Q", header)
            (length_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
            assert masked(crc32c(header)) == length_crc
            record = data[offset + 12 : offset + 12 + length]
            (record_crc,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
            assert masked(crc32c(record)) == record_crc
            offset += 16 + length
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def test_crc32c_matches_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720, iSCSI)


def test_chunk_summaries_are_the_per_group_quantiles_over_seeds_with_failed_chains_left_out(tmp_path):
    rng = np.random.default_rng(0)
    chains, steps = 12, 3
    knobs = {"seed": np.arange(chains) % 6, "real_fraction": np.repeat([0.0, 0.5], 6)}
    chunks = []
    for first in (1, 4):
        trace = rng.lognormal(size=(chains, steps)).astype(np.float32)
        failed = np.zeros((chains, steps), np.float32)
        failed[0, 1:] = 1.0  # chain 0 goes non-finite at the chunk's second generation: the engine NaNs its metrics
        trace[0, 1:] = np.nan
        chunks.append((trace, failed, list(range(first, first + steps))))
        monitoring.write_chunk_summary(
            str(tmp_path), {"trace_ratio": trace, "failed": failed}, knobs, chunks[-1][2], labels={"regime": "replace"}
        )
    monitoring.close_all()
    scalars = read_scalars(str(tmp_path))
    for rho, rows in ((0.0, slice(0, 6)), (0.5, slice(6, 12))):
        label = monitoring.group_label({"real_fraction": rho, "regime": "replace"})
        for trace, failed, generations in chunks:
            for column, generation in enumerate(generations):
                values = trace[rows, column]
                values = values[np.isfinite(values)]
                for stat, q in monitoring.QUANTILES.items():
                    # Event files store float32 simple_value: agreement to float32 rounding of the exact quantile.
                    expected = np.quantile(values.astype(np.float64), q)
                    assert scalars[f"trace_ratio/{stat}/{label}"][generation] == pytest.approx(expected, rel=1e-6)
                assert scalars[f"failed_chains/{label}"][generation] == failed[rows, column].sum()
    median_tag = "trace_ratio/median/" + monitoring.group_label({"real_fraction": 0.0, "regime": "replace"})
    assert set(scalars[median_tag]) == set(range(1, 7))  # both chunks, at their generations


def test_group_labels_are_tag_safe_and_stable():
    assert monitoring.group_label({"regime": "replace", "real_fraction": 0.1}) == "real_fraction_0.1__regime_replace"
    assert monitoring.group_label({"name": "a b/c"}) == "name_a_b_c"
    assert monitoring.group_label({}) == "all_chains"


def test_summarize_workdir_writes_each_finished_generation_once(gaussian_config, tmp_path):
    config = runner.as_config({"regime.real_fraction": (0.0, 0.5), "seeds": 4}, gaussian_config)
    workdir = str(tmp_path / "run")
    run = runner.run(config, workdir)
    assert monitoring.summarize_workdir(workdir) > 0
    assert monitoring.summarize_workdir(workdir) == 0  # nothing new: a polling sidecar does not duplicate points
    assert monitoring.poll(str(tmp_path))  # the sidecar finds the run below tmp_path and sees it finished
    monitoring.close_all()
    scalars = read_scalars(os.path.join(workdir, monitoring.LOGDIR))
    for row, (_, chains) in zip(run.summary("trace_ratio"), run.knob_groups()):
        # Tags name every knob but the seed (constant ones too), so a sweep's shards share tags.
        labels = {name: values[chains[0]].item() for name, values in run.knobs.items() if name != "seed"}
        series = scalars[f"trace_ratio/median/{monitoring.group_label(labels)}"]
        assert sorted(series) == list(range(config.num_generations + 1))
        np.testing.assert_allclose([series[g] for g in sorted(series)], row["median"], rtol=1e-6)


def test_a_run_with_tensorboard_on_writes_the_same_summaries_itself(gaussian_config, tmp_path):
    config = runner.as_config({"regime.real_fraction": (0.0, 0.5), "seeds": 4}, gaussian_config)
    sidecar_dir, inline_dir = str(tmp_path / "sidecar"), str(tmp_path / "inline")
    runner.run(config, sidecar_dir)
    monitoring.summarize_workdir(sidecar_dir)
    monitoring.close_all()
    config.tensorboard = True
    runner.run(config, inline_dir)
    assert monitoring.summarize_workdir(inline_dir) == 0  # the run already wrote every generation
    monitoring.close_all()
    inline = read_scalars(os.path.join(inline_dir, monitoring.LOGDIR))
    assert inline == read_scalars(os.path.join(sidecar_dir, monitoring.LOGDIR)) and len(inline) > 10


def test_without_tensorboardx_nothing_is_written_and_nothing_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(monitoring, "_writer_class", lambda: None)
    metrics = {"trace_ratio": np.ones((2, 1), np.float32)}
    assert monitoring.write_chunk_summary(str(tmp_path), metrics, {"seed": np.arange(2)}, [1]) == 0
    assert os.listdir(tmp_path) == []
    with pytest.raises(ImportError, match="tensorboardX"):
        monitoring.ChunkSummaryWriter(str(tmp_path))
