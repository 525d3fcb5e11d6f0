"""Large ``.npy`` files written past the page cache (:mod:`riskmodel.io.direct`): the same
array read back, the same data bytes as ``np.save``, and ``np.save`` itself where direct I/O
is refused."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from riskmodel.io import direct


def _direct_io_works(folder):
    """Whether ``folder``'s file system takes direct writes (tmpfs, for one, refuses them)."""
    if not hasattr(os, "O_DIRECT"):
        return False
    import mmap

    buffer = mmap.mmap(-1, 4096)
    try:
        fd = os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
        try:
            os.write(fd, buffer)
        finally:
            os.close(fd)
        return True
    except OSError:
        return False
    finally:
        buffer.close()


def _data_bytes(path):
    raw = path.read_bytes()
    return int.from_bytes(raw[8:10], "little") + 10, raw


@pytest.mark.parametrize("shape", [(300, 1000), (4099,), (3, 7), (0,), (2, 3, 700)])
def test_direct_files_hold_np_saves_data_behind_an_aligned_header(tmp_path, monkeypatch, shape):
    if not _direct_io_works(tmp_path):
        pytest.skip("the temporary folder's file system refuses direct I/O")
    monkeypatch.setattr(direct, "DIRECT_MIN_BYTES", 0)  # every size through the direct path
    array = np.random.default_rng(7).normal(size=shape)
    direct.save_npy(tmp_path / "d.npy", np.asfortranarray(array))
    np.save(tmp_path / "s.npy", array)
    start, raw = _data_bytes(tmp_path / "d.npy")
    ref_start, ref = _data_bytes(tmp_path / "s.npy")
    assert start == 4096  # the direct path, not np.save's 128-byte header
    assert raw[start:] == ref[ref_start:]
    back = np.load(tmp_path / "d.npy", allow_pickle=False)
    assert back.shape == shape and back.flags.c_contiguous
    np.testing.assert_array_equal(back, array)
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy", mmap_mode="r"), array)


def test_a_refused_direct_write_is_np_save(tmp_path, monkeypatch):
    monkeypatch.setattr(direct, "DIRECT_MIN_BYTES", 0)
    real_open = os.open

    def refuse(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct.os, "open", refuse)
    array = np.arange(5000.0)
    direct.save_npy(tmp_path / "d.npy", array)
    np.save(tmp_path / "s.npy", array)
    assert (tmp_path / "d.npy").read_bytes() == (tmp_path / "s.npy").read_bytes()


def test_small_arrays_are_np_save(tmp_path):
    array = np.arange(12.0).reshape(3, 4)
    direct.save_npy(tmp_path / "d.npy", array)
    np.save(tmp_path / "s.npy", array)
    assert (tmp_path / "d.npy").read_bytes() == (tmp_path / "s.npy").read_bytes()


def test_a_missing_folder_raises_as_np_save_does(tmp_path, monkeypatch):
    monkeypatch.setattr(direct, "DIRECT_MIN_BYTES", 0)
    with pytest.raises(FileNotFoundError):
        direct.save_npy(tmp_path / "absent" / "d.npy", np.zeros(10))


def test_the_header_is_numpys_padded():
    array = np.zeros((2, 3))
    header = direct.npy_header(array, 4096)
    assert len(header) == 4096 and header.endswith(b"\n")
    assert header[:8] == np.lib.format.magic(1, 0)
    assert b"'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }" in header
    with pytest.raises(ValueError):
        direct.npy_header(array, 4000)  # not a multiple of 64
