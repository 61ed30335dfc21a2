"""Reading checkpoint files and loading them strictly: every key and shape must match."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from napari_textseg.models.errors import CheckpointError

__all__ = ["load_strict", "read_state_dict"]

_SHOW = 5  # how many offending keys a message lists


def _read(path: Path) -> object:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def _first_sentence(err: Exception) -> str:
    """torch's zip reader appends a paragraph of advice meant for its own developers."""
    return str(err).splitlines()[0].split(". ")[0] if str(err) else type(err).__name__


def _kind_of_other_file(path: Path) -> str | None:
    """What a file that cannot be a PyTorch checkpoint looks like, or None when it might be one.

    torch.save writes a zip archive (``PK``), older releases a pickle (byte 0x80), and
    safetensors starts with an 8-byte header length; a web page or a note saved under
    the checkpoint's name starts with text.
    """
    if path.suffix == ".safetensors":
        return None
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith((b"PK", b"\x80")):
        return None
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "a web page (HTML), as a download page saves when the real link needs a login"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "a text file"


def read_state_dict(
    path: str | os.PathLike,
    *,
    nested_key: str | None = None,
    unwrap: tuple[str, ...] = ("state_dict",),
) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` on the CPU, refusing arbitrary pickled code.

    ``nested_key`` picks an entry that must exist (SAM2 stores ``{"model": ...}``);
    entries named in ``unwrap`` are taken when present. A DataParallel ``"module."``
    prefix is undone. Damaged files raise :class:`CheckpointError` saying so.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path.name} is empty (0 bytes); download it again")
    other = _kind_of_other_file(path)
    if other is not None:
        raise CheckpointError(
            f"{path.name} is not a checkpoint: it is {other}; pass the model's weights file "
            "(.pth or .pt) itself"
        )
    try:
        obj = _read(path)
    # torch.load on a file that is not a checkpoint at all (a text file, HTML saved from a
    # download page) fails inside the unpickler with KeyError, IndexError or the like
    except (
        RuntimeError,
        EOFError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
    ) as err:
        raise CheckpointError(
            f"checkpoint {path.name} is truncated or corrupt and cannot be read "
            f"({_first_sentence(err)}); "
            "delete it and download it again, or pass an intact file"
        ) from err
    if nested_key is not None:
        if not isinstance(obj, Mapping) or nested_key not in obj:
            found = ", ".join(list(obj)[:_SHOW]) if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(
                f"checkpoint {path.name} has no {nested_key!r} entry (found: {found}); "
                "it is not in this model family's official format"
            )
        obj = obj[nested_key]
    for key in unwrap:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        if (
            nested_key is None
            and isinstance(obj, Mapping)
            and isinstance(obj.get("model"), Mapping)
        ):
            raise CheckpointError(
                f"checkpoint {path.name} is in the SAM 2 format ({{'model': state dict}}), not "
                "this model "
                "family's; load it with a SAM 2 model"
            )
        raise CheckpointError(f"checkpoint {path.name} does not hold a state dict of tensors")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _listing(keys: list[str]) -> str:
    more = f" and {len(keys) - _SHOW} more" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def load_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    """Load ``state`` into ``model``; any missing, unexpected or misshapen key is an error."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(
        k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    if misshapen:
        shapes = [f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}" for k in misshapen]
        problems.append(f"{len(misshapen)} key(s) of the wrong shape: {_listing(shapes)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {name} does not match the model architecture ("
            + "; ".join(problems)
            + "); is it the right file for this model?"
        )
    model.load_state_dict(state, strict=True)
