"""VoxTell's own predictor, from a model folder (a download, or a local folder), and where
the download puts its files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from napari_textseg.core.errors import InputError
from napari_textseg.models.registry import ModelCard

__all__ = ["cached_voxtell", "load_voxtell"]


def _require_voxtell() -> None:
    try:
        import voxtell  # noqa: F401
    except ImportError as err:
        raise InputError(
            'the VoxTell backend needs the voxtell package: pip install "napari-textseg[voxtell]"'
        ) from err


def load_voxtell(
    model_dir: str | Path, device: torch.device, bank: str | Path | None = None
) -> Any:
    """VoxTell's own predictor on ``device``, from a model folder; nothing is downloaded here.

    ``bank`` is the published ``text_embeddings.npz``; without it every prompt needs the
    text encoder.
    """
    _require_voxtell()
    from voxtell.inference.predictor import VoxTellPredictor

    folder = Path(model_dir)
    for needed in ("plans.json", "fold_0/checkpoint_final.pth"):
        if not (folder / needed).is_file():
            raise InputError(f"{folder} is not a VoxTell model folder: {needed} is missing")
    return VoxTellPredictor(
        model_dir=str(folder),
        device=device,
        embedding_bank=str(bank) if bank else None,
        use_precomputed_embeddings=False,
    )


def cached_voxtell(card: ModelCard) -> tuple[Path, Path]:
    """The downloaded model folder of ``card`` and its text-embedding bank (the download's layout:
    ``<cache>/<model>/fold_0/checkpoint_final.pth`` and
    ``<cache>/embeddings/.../text_embeddings.npz``)."""
    from napari_textseg.models.store import cached_path

    checkpoint = cached_path(card)
    return checkpoint.parents[1], checkpoint.parents[2] / card.extra_files[1]


def local_voxtell(folder: str | Path) -> tuple[Path, Path]:
    """A local model folder and the bank beside it (as the model page lays them out)."""
    return Path(folder), Path(folder).parent / "text_embeddings.npz"
