"""Workdir files: atomic writes leave no temporary on a full disk; a field absent from a saved run takes its default."""

import errno
import os

import pytest

from collapse_jax.host import config_schema
from collapse_jax.store import workdir_io


def test_a_full_disk_during_an_atomic_write_names_the_path_and_bytes_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = str(tmp_path / "events.npz")
    workdir_io.atomic_write(path, lambda handle: handle.write(b"old"))

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(workdir_io.os, "fsync", full)
    with pytest.raises(workdir_io.OutOfDiskSpace, match=rf"out of disk space writing {path}: 1000 bytes needed"):
        workdir_io.atomic_write(path, lambda handle: handle.write(b"x" * 1000))
    assert os.listdir(tmp_path) == ["events.npz"] and open(path, "rb").read() == b"old"


def test_out_of_disk_space_is_one_line_and_still_an_enospc_os_error(tmp_path):
    error = workdir_io.OutOfDiskSpace(str(tmp_path / "f"), 123)
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert "\n" not in str(error) and "123 bytes needed" in str(error)


def test_a_field_absent_from_a_saved_run_reads_as_its_declared_default(gaussian_config, tmp_path):
    defaults = config_schema.declared_defaults("gaussian")
    saved = workdir_io.config_record(gaussian_config)
    del saved["record_every"]
    workdir_io.check_resumable(saved, gaussian_config, str(tmp_path), defaults)  # record_every = 1 was computed
    gaussian_config.record_every = 2
    with pytest.raises(ValueError, match="config.record_every"):
        workdir_io.check_resumable(saved, gaussian_config, str(tmp_path), defaults)
