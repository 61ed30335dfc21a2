"""The checkpoint store: a cache folder, verified downloads and licence acceptance.

- The cache is the platform's user cache (``platformdirs``), or ``$NAPARI_TEXTSEG_CACHE``.
- Direct URLs are fetched with pooch (checksum verified; pooch cannot resume, so a
  broken download starts again), Hugging Face files with huggingface_hub (which resumes).
- A model's licence must be accepted once before its first download; acceptance is
  recorded in the cache folder.
- Without a network, the error names the file, where to get it and where to put it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import platformdirs

from napari_textseg.models.errors import (
    CheckpointError,
    LicenseNotAcceptedError,
    OfflineError,
)
from napari_textseg.models.registry import ModelCard, get_card

__all__ = [
    "CACHE_ENV",
    "accept_license",
    "cache_dir",
    "cached_path",
    "download",
    "is_license_accepted",
    "resolve_checkpoint",
]

CACHE_ENV = "NAPARI_TEXTSEG_CACHE"
_ACCEPTED_FILE = "accepted_licenses.json"


def cache_dir() -> Path:
    """The folder holding downloaded checkpoints (created on first use)."""
    root = os.environ.get(CACHE_ENV)
    folder = Path(root) if root else Path(platformdirs.user_cache_dir("napari-textseg")) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_path(card: ModelCard) -> Path:
    """Where ``card``'s checkpoint lives: in the cache (it may not be there yet), or in
    the package for the bundled phantom models."""
    if card.bundled:
        from napari_textseg.data import bundled_model_path

        return bundled_model_path(card.filename)
    return cache_dir() / card.id / card.filename


def _accepted() -> dict[str, str]:
    file = cache_dir() / _ACCEPTED_FILE
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_license_accepted(card: ModelCard) -> bool:
    """True once the user has accepted ``card``'s licence."""
    return _accepted().get(card.id) == card.license


def accept_license(card: ModelCard) -> None:
    """Record that the user accepted ``card``'s licence."""
    accepted = _accepted()
    accepted[card.id] = card.license
    file = cache_dir() / _ACCEPTED_FILE
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(accepted, indent=1), encoding="utf-8")
    os.replace(tmp, file)


def _offline_message(card: ModelCard, target: Path) -> str:
    return (
        f"cannot download {card.filename} for {card.id}: no network, or the server is unreachable. "
        f"Without a network, fetch it from {card.source} on another machine and put it at "
        f"{target}, or pass the file with --checkpoint FILE"
    )


def _fetch_url(card: ModelCard, target: Path, progressbar: bool) -> None:
    import pooch
    import requests

    try:
        pooch.retrieve(
            url=card.url,  # type: ignore[arg-type]
            known_hash=card.known_hash,
            fname=target.name,
            path=target.parent,
            progressbar=progressbar,
        )
    except ValueError as err:  # pooch's checksum mismatch
        raise CheckpointError(
            f"the download of {card.filename} failed its checksum ({err}); nothing was kept. "
            "Try again; if it keeps failing, the file on the server has changed"
        ) from err
    except (requests.RequestException, OSError) as err:
        raise OfflineError(_offline_message(card, target)) from err


def _fetch_hf(card: ModelCard, target: Path) -> None:
    from huggingface_hub import hf_hub_download

    try:
        # hf_hub_download resumes an interrupted download on the next call.
        downloaded = hf_hub_download(
            repo_id=card.hf_repo,  # type: ignore[arg-type]
            filename=card.filename,
            cache_dir=target.parent / ".hf",
        )
    except Exception as err:  # connection, offline-mode and hub errors all mean "not here"
        raise OfflineError(_offline_message(card, target)) from err
    shutil.copyfile(downloaded, target)


def download(
    card: ModelCard | str,
    *,
    progressbar: bool = True,
    confirm_license: Callable[[ModelCard], bool] | None = None,
) -> Path:
    """Fetch ``card``'s checkpoint into the cache (if not there) and return its path.

    ``confirm_license`` is asked once per model before the first download, with the
    card (its ``license`` and ``license_url``); without it, an unaccepted licence raises
    :class:`LicenseNotAcceptedError`.
    """
    card = get_card(card) if isinstance(card, str) else card
    target = cached_path(card)
    if target.is_file():
        return target
    if card.bundled:
        raise CheckpointError(
            f"{card.id} should ship with napari-textseg but {target} is missing; "
            "reinstall the package (pip install --force-reinstall napari-textseg)"
        )
    if card.local_only:
        raise CheckpointError(
            f"{card.id} cannot be downloaded by the plugin: {card.note}. "
            f"Put the file at {target} or pass it with --checkpoint FILE"
        )
    if not is_license_accepted(card):
        if confirm_license is None or not confirm_license(card):
            raise LicenseNotAcceptedError(
                f"{card.id} is released under {card.license} ({card.license_url}); "
                "accept the licence to download it (command line: --accept-license)"
            )
        accept_license(card)
    target.parent.mkdir(parents=True, exist_ok=True)
    if card.url:
        _fetch_url(card, target, progressbar)
    else:
        _fetch_hf(card, target)
    return target


def resolve_checkpoint(
    model_id: str | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> tuple[ModelCard, Path]:
    """The card and the checkpoint file to load, without downloading anything.

    A local ``checkpoint`` wins (``model_id`` then names its architecture); otherwise
    the cached file of ``model_id`` is used. A missing file raises an error that says
    how to get it.
    """
    if model_id is None and checkpoint is None:
        raise CheckpointError("name a model (--model ID) or a checkpoint file (--checkpoint FILE)")
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {path} does not exist")
        if model_id is None:
            from napari_textseg.models.infer import infer_card

            return infer_card(path), path
        return get_card(model_id), path
    card = get_card(model_id)  # type: ignore[arg-type]
    path = cached_path(card)
    if not path.is_file():
        if card.bundled:
            how = "it should ship with the package: reinstall napari-textseg"
        elif card.local_only:
            how = f"get it from {card.homepage} ({card.note})"
        else:
            how = f"run 'napari-textseg models download {card.id}'"
        raise CheckpointError(
            f"{card.id} is not downloaded yet: {how}, put the file at {path}, "
            "or pass a local file with --checkpoint FILE"
        )
    return card, path
