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


def _spy_direct_opens(monkeypatch):
    """Count the files ``save_npy`` opens for direct I/O."""
    opened = []
    real_open = os.open

    def spy(path, flags, *args):
        if flags & os.O_DIRECT:
            opened.append(path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct.os, "open", spy)
    return opened


@pytest.mark.parametrize("shape", [(300, 1000), (4099,), (512,), (700, 3), (2, 3, 700)])
def test_direct_files_are_np_saves_byte_for_byte(tmp_path, monkeypatch, shape):
    if not _direct_io_works(tmp_path):
        pytest.skip("the temporary folder's file system refuses direct I/O")
    monkeypatch.setattr(direct, "DIRECT_MIN_BYTES", 0)  # every size through the direct path
    opened = _spy_direct_opens(monkeypatch)
    array = np.random.default_rng(7).normal(size=shape)
    direct.save_npy(tmp_path / "d.npy", np.asfortranarray(array))
    np.save(tmp_path / "s.npy", array)
    assert opened == [tmp_path / "d.npy"]  # written directly, not by the fallback
    assert (tmp_path / "d.npy").read_bytes() == (tmp_path / "s.npy").read_bytes()
    back = np.load(tmp_path / "d.npy", allow_pickle=False)
    assert back.shape == shape and back.flags.c_contiguous
    np.testing.assert_array_equal(back, array)


def test_many_staged_chunks_make_the_same_file(tmp_path, monkeypatch):
    if not _direct_io_works(tmp_path):
        pytest.skip("the temporary folder's file system refuses direct I/O")
    monkeypatch.setattr(direct, "DIRECT_MIN_BYTES", 0)
    monkeypatch.setattr(direct, "_CHUNK", 8192)  # the header's chunk, then 12 more
    array = np.random.default_rng(3).normal(size=(123, 107))
    direct.save_npy(tmp_path / "d.npy", array)
    np.save(tmp_path / "s.npy", array)
    assert (tmp_path / "d.npy").read_bytes() == (tmp_path / "s.npy").read_bytes()


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


def test_the_header_is_np_saves(tmp_path):
    array = np.zeros((2, 3))
    np.save(tmp_path / "s.npy", array)
    header = direct.npy_header(array)
    assert (tmp_path / "s.npy").read_bytes() == header + array.tobytes()
