"""Append-only metric files: each chunk appends one slab, earlier bytes are never rewritten, torn tails are cut back."""

import os
import shutil

import numpy as np
import pytest

from collapse_jax.analysis import results
from collapse_jax.host import runner
from collapse_jax.store import metric_log, workdir_io


def assert_same_metrics(a, b):
    assert a.metrics.keys() == b.metrics.keys()
    np.testing.assert_array_equal(a.generations, b.generations)
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)


def test_recorded_generations_are_zero_every_kth_and_the_last():
    np.testing.assert_array_equal(metric_log.expected_generations(10, 4), [0, 4, 8, 10])
    np.testing.assert_array_equal(metric_log.expected_generations(8, 4), [0, 4, 8])
    np.testing.assert_array_equal(metric_log.expected_generations(3, 1), [0, 1, 2, 3])


def test_each_chunk_appends_exactly_one_chunk_of_rows_and_never_rewrites_earlier_bytes(
    gaussian_config, tmp_path, monkeypatch
):
    workdir = str(tmp_path / "w")
    path = os.path.join(metric_log.directory(workdir, 0), "trace_ratio.f32")
    seen = []  # (size, inode, bytes) after every append
    original = metric_log.append

    def watched(*args):
        original(*args)
        with open(path, "rb") as handle:
            seen.append((os.path.getsize(path), os.stat(path).st_ino, handle.read()))

    monkeypatch.setattr(metric_log, "append", watched)
    config = runner.as_config({"num_generations": 9, "chunk_generations": 3}, gaussian_config)
    runner.run(config, workdir)
    row = 8 * 4  # 8 chains of float32
    assert [size for size, _, _ in seen] == [row, 4 * row, 7 * row, 10 * row]  # generation 0, then one chunk each
    assert len({inode for _, inode, _ in seen}) == 1  # appended in place, never replaced
    for (_, _, before), (_, _, after) in zip(seen, seen[1:]):
        assert after.startswith(before)  # earlier bytes untouched


def test_a_torn_chunk_is_cut_back_to_the_checkpoint_and_recomputed_bit_identically(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    straight = runner.simulate(gaussian_config)
    runner.run(gaussian_config, workdir)
    # Lose the newest checkpoint (an asynchronous save still in flight at a kill): the rows of generations 4-6 are
    # now past the checkpoint, and a half-written row is torn onto the end of one file.
    shutil.rmtree(os.path.join(workdir, "checkpoints", "group_000", "6"))
    folder = metric_log.directory(workdir, 0)
    with open(os.path.join(folder, "trace_ratio.f32"), "ab") as handle:
        handle.write(b"\x00" * 13)
    resumed = runner.run(gaussian_config, workdir)
    assert_same_metrics(straight, resumed)
    assert os.path.getsize(os.path.join(folder, "trace_ratio.f32")) == 7 * 8 * 4
    np.testing.assert_array_equal(np.fromfile(os.path.join(folder, "generations.i32"), np.int32), np.arange(7))


def test_extending_num_generations_keeps_appending_to_the_same_files(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    runner.run(runner.as_config({"num_generations": 3}, gaussian_config), workdir)
    first = open(os.path.join(metric_log.directory(workdir, 0), "trace_ratio.f32"), "rb").read()
    extended = runner.run(gaussian_config, workdir)
    assert open(os.path.join(metric_log.directory(workdir, 0), "trace_ratio.f32"), "rb").read().startswith(first)
    assert_same_metrics(runner.simulate(gaussian_config), extended)


def test_partial_runs_load_with_nan_for_generations_not_yet_written(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    runner.run(gaussian_config, workdir)
    metric_log.truncate(workdir, 0, 3)
    partial = results.load(workdir)
    assert partial.metrics["trace_ratio"].shape == (8, 7)
    assert np.isfinite(partial.metrics["trace_ratio"][:, :4]).all()
    assert np.isnan(partial.metrics["trace_ratio"][:, 4:]).all()


@pytest.mark.parametrize("keep", ["all", "mask"])
def test_kept_rows_are_the_chunks_rows_uncopied_unless_generations_are_dropped_or_cast(keep):
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((9, 70)).astype(np.float32)  # [generations, chains], as the compiled chunk returns them
    rows[2, 0] = np.nan
    mask = slice(None) if keep == "all" else np.arange(9) % 3 == 0
    buffer = np.full((12, 64), np.nan, np.float32)  # a reused buffer with room for more generations
    for chains in (70, 64):  # 64: the padding chains cut off, each row still contiguous
        kept = metric_log.kept_rows(rows[:, :chains], mask, buffer if chains == 64 else None)
        np.testing.assert_array_equal(kept, rows[mask, :chains])
        assert kept.dtype == np.float32 and kept.strides[1] == 4
        assert np.shares_memory(kept, rows) == (keep == "all")  # all generations kept: a view, written as it is
        assert np.shares_memory(kept, buffer) == (keep == "mask" and chains == 64)
    flags = metric_log.kept_rows(rng.random((9, 64)) < 0.5, mask, buffer)  # 0/1 event metrics arrive as bool
    assert flags.dtype == np.float32 and flags.flags.c_contiguous and set(np.unique(flags)) <= {0.0, 1.0}


def test_rows_cut_from_padded_rows_are_written_as_the_contiguous_copy_would_be(tmp_path, monkeypatch):
    rows = np.arange(2_000 * 7, dtype=np.float32).reshape(2_000, 7)[:, :5]  # more rows than one writev takes
    metric_log.write_slab(str(tmp_path / "cut.f32"), rows)
    metric_log.write_slab(str(tmp_path / "copy.f32"), np.ascontiguousarray(rows))
    assert (tmp_path / "cut.f32").read_bytes() == (tmp_path / "copy.f32").read_bytes() == rows.tobytes()
    # A short writev (a disk filling up) is an error: append cuts every file back and reports the full disk.
    metric_log.start(str(tmp_path), 0, 5, ["x"], 1)
    before = {name: os.path.getsize(os.path.join(metric_log.directory(str(tmp_path), 0), name))
              for name in os.listdir(metric_log.directory(str(tmp_path), 0))}  # fmt: skip
    monkeypatch.setattr(os, "writev", lambda descriptor, buffers: sum(len(b) for b in buffers) // 2)
    with pytest.raises(workdir_io.OutOfDiskSpace):
        metric_log.append(str(tmp_path), 0, np.arange(2_000), {"x": rows})
    after = {name: os.path.getsize(os.path.join(metric_log.directory(str(tmp_path), 0), name)) for name in before}
    assert after == before


def test_a_large_slab_is_written_back_and_dropped_from_the_page_cache_a_small_one_is_not(tmp_path, monkeypatch):
    dropped = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, start, length, advice: dropped.append((start, length, advice)))
    path = str(tmp_path / "m.f32")
    small = np.arange(10, dtype=np.float32)
    large = np.zeros(metric_log.DROP_CACHE_BYTES // 4, np.float32)
    metric_log.write_slab(path, small)
    metric_log.write_slab(path, large)
    assert dropped == [(small.nbytes, large.nbytes, os.POSIX_FADV_DONTNEED)]  # only the large slab's own range
    written = np.fromfile(path, np.float32)
    np.testing.assert_array_equal(written, np.concatenate([small, large]))
