"""Label export refuses bad input with a clear message and never damages an existing file."""

import errno
import os

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_textseg.core.errors import WriteError
from napari_textseg.core.io import read_volume, write_labels


@pytest.fixture
def organs(organs_path):
    return read_volume(organs_path)


def test_int64_labels_are_stored_compactly(organs, tmp_path):
    out = tmp_path / "int64.nii.gz"
    write_labels(out, organs.data.astype(np.int64), geometry=organs.geometry)
    assert nib.load(out).get_data_dtype() == np.uint8


def test_values_beyond_32_bits_and_negative_values_are_refused(organs, tmp_path):
    huge = organs.data.astype(np.int64)
    huge[0, 0, 0] = 2**40
    with pytest.raises(WriteError, match="does not fit in 32 bits.*relabel"):
        write_labels(tmp_path / "x.nii.gz", huge, geometry=organs.geometry)
    negative = organs.data.astype(np.int16)
    negative[0, 0, 0] = -1
    with pytest.raises(WriteError, match=">= 0"):
        write_labels(tmp_path / "x.nii.gz", negative, geometry=organs.geometry)
    with pytest.raises(WriteError, match="integers"):
        write_labels(
            tmp_path / "x.nii.gz", organs.data.astype(np.float32), geometry=organs.geometry
        )
    assert not list(tmp_path.iterdir())


def test_shape_mismatch_with_the_source_is_refused(organs, tmp_path):
    with pytest.raises(
        WriteError,
        match=r"labels shape \(30, 101, 121\) differs from the source image shape \(30, 101, 122\)",
    ):
        write_labels(tmp_path / "x.nii.gz", organs.data[:, :, 1:], geometry=organs.geometry)


def test_unknown_suffix_and_missing_folder(organs, tmp_path):
    with pytest.raises(WriteError, match="cannot write labels as .png"):
        write_labels(tmp_path / "x.png", organs.data)
    with pytest.raises(WriteError, match="does not exist"):
        write_labels(tmp_path / "nowhere" / "x.nii.gz", organs.data)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unwritable_folder(organs, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(WriteError, match="no permission"):
            write_labels(locked / "x.nii.gz", organs.data)
    finally:
        locked.chmod(0o700)


def _disk_fills_after(nbytes, monkeypatch, module, name):
    """Make the format writer write ``nbytes`` of its file, then fail as a full disk does."""
    real = getattr(module, name)

    def filling(img_or_path, path_or_data=None, *args, **kwargs):
        target = path_or_data if module is nib else img_or_path
        with open(target, "wb") as handle:
            handle.write(b"\0" * nbytes)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, name, filling)
    return real


@pytest.mark.parametrize(
    "suffix, module, name", [(".nii.gz", nib, "save"), (".tif", tifffile, "imwrite")]
)
def test_full_disk_keeps_the_existing_file_intact(
    organs, tmp_path, monkeypatch, suffix, module, name
):
    out = tmp_path / f"organs{suffix}"
    write_labels(out, organs.data, geometry=organs.geometry, scale=organs.spacing)
    before = out.read_bytes()
    _disk_fills_after(1000, monkeypatch, module, name)
    edited = organs.data.copy()
    edited[edited == 5] = 0
    with pytest.raises(WriteError, match="the disk is full; the existing file is unchanged"):
        write_labels(out, edited, geometry=organs.geometry, scale=organs.spacing)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no partial files left


def test_full_disk_on_a_new_file_leaves_nothing(organs, tmp_path, monkeypatch):
    _disk_fills_after(10, monkeypatch, nib, "save")
    with pytest.raises(WriteError, match="no file was written"):
        write_labels(tmp_path / "new.nii.gz", organs.data, geometry=organs.geometry)
    assert not list(tmp_path.iterdir())


def test_permission_error_is_explained(organs, tmp_path, monkeypatch):
    """The same message non-root users get from a read-only folder (root bypasses chmod)."""

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(nib, "save", denied)
    with pytest.raises(WriteError, match=f"no permission to write in {tmp_path}"):
        write_labels(tmp_path / "x.nii.gz", organs.data, geometry=organs.geometry)


def _sidecar_disk_full(monkeypatch):
    """The label map writes, then the disk fills while its names sidecar is written."""
    import napari_textseg.core.io.sidecar as sidecar

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sidecar.json, "dump", full)
    monkeypatch.setattr(sidecar.json, "dumps", full)


def test_a_failure_at_the_sidecar_writes_neither_file(organs, tmp_path, monkeypatch):
    """All or nothing (issue 27): a label map without its names would lose them silently."""
    out = tmp_path / "full" / "out.nii.gz"
    out.parent.mkdir()
    _sidecar_disk_full(monkeypatch)
    with pytest.raises(WriteError, match="the disk is full; no file was written"):
        write_labels(out, organs.data, geometry=organs.geometry, label_names={5: "liver"})
    assert not list(out.parent.iterdir())


def test_a_failure_at_the_sidecar_keeps_both_older_files_byte_for_byte(
    organs, tmp_path, monkeypatch
):
    out = tmp_path / "organs.nii.gz"
    written = write_labels(out, organs.data, geometry=organs.geometry, label_names={5: "liver"})
    before = {p: open(p, "rb").read() for p in written}
    edited = organs.data.copy()
    edited[edited == 5] = 0
    _sidecar_disk_full(monkeypatch)
    with pytest.raises(WriteError, match="the disk is full"):
        write_labels(out, edited, geometry=organs.geometry, label_names={1: "spleen"})
    assert {p: open(p, "rb").read() for p in written} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        os.path.basename(p) for p in written
    )


def test_a_failed_rename_while_committing_restores_the_older_files(organs, tmp_path, monkeypatch):
    from napari_textseg.core.io import atomic

    out = tmp_path / "organs.nii.gz"
    written = write_labels(out, organs.data, geometry=organs.geometry, label_names={5: "liver"})
    before = {p: open(p, "rb").read() for p in written}
    real, calls = os.replace, []

    def second_rename_fails(src, dst):
        calls.append(dst)
        if str(src).endswith(".partial.labels.json"):
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", second_rename_fails)
    with pytest.raises(WriteError, match="Input/output error"):
        write_labels(out, organs.data * 0, geometry=organs.geometry, label_names={1: "spleen"})
    monkeypatch.undo()
    assert {p: open(p, "rb").read() for p in written} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        os.path.basename(p) for p in written
    )
