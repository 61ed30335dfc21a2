"""Atomic file replacement: write to a temporary file beside the target, then rename.

Inside :func:`atomic_group`, the files written with :func:`atomic_target` are staged and
renamed into place together once every one of them is written: a label map and its names
sidecar appear together or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from napari_textseg.core.errors import WriteError

__all__ = ["atomic_group", "atomic_target", "check_folder", "safe_stem", "split_suffix"]

_MULTI_SUFFIXES = (".nii.gz", ".seg.nrrd", ".labels.json", ".ome.tiff", ".ome.tif")


def split_suffix(path: str | os.PathLike) -> tuple[str, str]:
    """Split ``name.nii.gz`` into ``("name", ".nii.gz")``; multi-part suffixes count as one."""
    name = Path(path).name
    lower = name.lower()
    for suffix in _MULTI_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if stem else (name, "")


def safe_stem(path: str | os.PathLike, also: str = "", default: str = "case") -> str:
    """The file name without its suffix, anything but letters, digits, ``_``, ``-`` (and the
    characters in ``also``) made ``_``: a case id nnU-Net accepts, and a safe file name."""
    return re.sub(rf"[^A-Za-z0-9_\-{re.escape(also)}]", "_", split_suffix(path)[0]) or default


def _explain(err: OSError, target: Path) -> str:
    if err.errno == errno.ENOSPC:
        reason = "the disk is full"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"no permission to write in {target.parent}"
    elif err.errno == errno.ENOENT and target.parent.is_dir():  # /proc and other virtual folders
        reason = f"files cannot be created in {target.parent}"
    else:
        reason = err.strerror or str(err)
    kept = "the existing file is unchanged" if target.exists() else "no file was written"
    return f"cannot write {target}: {reason}; {kept}"


def check_folder(target: str | os.PathLike) -> Path:
    """The folder ``target`` will be written in, refused when it does not exist."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise WriteError(f"cannot write {target}: the folder {folder} does not exist")
    return folder


def check_writable(target: str | os.PathLike) -> Path:
    """:func:`check_folder`, and a file can really be created there (read-only mounts,
    /proc, a full disk): checked before the work, not after it."""
    target = Path(target)
    folder = check_folder(target)
    probe = folder / f".napari-textseg-probe-{secrets.token_hex(4)}"
    try:
        probe.touch(exist_ok=False)
    except OSError as err:
        raise WriteError(_explain(err, target)) from None
    probe.unlink(missing_ok=True)
    return folder


@contextlib.contextmanager
def atomic_target(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` in one rename.

    The temporary file keeps the target's suffix (writers choose the format from it)
    and lives in the same folder, so the final ``os.replace`` is atomic. On any failure
    the temporary file is removed, ``target`` is untouched and a :class:`WriteError`
    with a plain reason (disk full, no permission, ...) is raised.
    """
    target = Path(target)
    folder = check_folder(target)
    stem, suffix = split_suffix(target)
    tmp = folder / f".{stem}.{secrets.token_hex(4)}.partial{suffix}"
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        group = _GROUP.get()
        if group is not None:  # the group renames it with the others
            group.append((tmp, target))
            return
        os.replace(tmp, target)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, WriteError):
            raise
        raise WriteError(_explain(err, target)) from err
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


_GROUP: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("atomic_group", default=None)


@contextlib.contextmanager
def atomic_group() -> Iterator[None]:
    """All-or-nothing for several files: each :func:`atomic_target` inside is staged, and
    they are renamed into place together when the block ends without an error.

    On an error in the block every staged file is removed and every target is left as it
    was. Should a rename fail while committing, the targets already replaced get their
    previous files back. A nested group joins the outer one.
    """
    if _GROUP.get() is not None:
        yield
        return
    staged: list[tuple[Path, Path]] = []
    token = _GROUP.set(staged)
    try:
        yield
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    finally:
        _GROUP.reset(token)
    _commit(staged)


def _commit(staged: list[tuple[Path, Path]]) -> None:
    backups: list[tuple[Path, Path]] = []  # (previous file moved aside, target)
    placed: list[Path] = []
    try:
        for tmp, target in staged:
            if target.exists():
                backup = target.with_name(f".{target.name}.{secrets.token_hex(4)}.previous")
                os.replace(target, backup)
                backups.append((backup, target))
            os.replace(tmp, target)
            placed.append(target)
    except OSError as err:
        for target in placed:
            with contextlib.suppress(OSError):
                target.unlink()
        for backup, target in backups:
            with contextlib.suppress(OSError):
                os.replace(backup, target)
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise WriteError(_explain(err, staged[len(placed)][1])) from err
    for backup, _ in backups:
        with contextlib.suppress(OSError):
            backup.unlink()
