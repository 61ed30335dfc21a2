"""One call that turns a model id and/or a local checkpoint into a ready model."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from napari_textseg.models.device import pick_device
from napari_textseg.models.errors import CheckpointError
from napari_textseg.models.registry import ModelCard
from napari_textseg.models.store import (
    CLI_WORDING,
    Wording,
    check_installed,
    resolve_checkpoint,
    verify_package_file,
)

__all__ = ["LoadedModel", "load_model"]


@dataclass
class LoadedModel:
    """A model on its device, with the card that describes it and the file it came from."""

    model: torch.nn.Module
    card: ModelCard
    checkpoint: Path
    device: torch.device


def _builder(family: str):
    if family == "sam":
        from napari_textseg.models.sam import load_sam

        return load_sam
    if family == "sam2":
        from napari_textseg.models.sam2 import load_sam2

        return load_sam2
    if family == "litemedsam":
        from napari_textseg.models.litemedsam import load_litemedsam

        return load_litemedsam
    if family == "clip":
        from napari_textseg.models.clip import load_clip

        return load_clip
    if family == "sam3":
        from napari_textseg.models.sam3 import load_sam3

        return load_sam3
    raise ValueError(f"unknown model family {family!r}")


def input_size(card: ModelCard) -> int:
    """The model input size (px) a SAM, SAM2 or LiteMedSAM card builds."""
    if card.family == "sam2":
        for override in card.arch.get("overrides", ()):
            if override.startswith("++model.image_size="):
                return int(override.split("=", 1)[1])
        return 1024
    return int(card.arch.get("image_size", 1024))


# Official file names and what they need: loading one under another card of the same
# architecture succeeds shape for shape, and every mask comes out wrong.
_NAMED_FILES = (
    (
        re.compile(r"medsam2", re.I),
        "sam2",
        lambda c: input_size(c) == 512,
        "a MedSAM2 checkpoint (SAM 2.1 Hiera-tiny at 512 px); load it as 'medsam2'",
    ),
    (
        re.compile(r"^sam2(\.1)?_hiera_", re.I),
        "sam2",
        lambda c: input_size(c) == 1024,
        "an official SAM 2 checkpoint (1024 px input); load it as its sam2.1_hiera_* model",
    ),
    (
        re.compile(r"^medsam(?!2)", re.I),
        "sam",
        lambda c: c.arch.get("preprocess") == "medsam",
        "a MedSAM checkpoint (its own preprocessing); load it as 'medsam_vit_b'",
    ),
    (
        re.compile(r"^sam_vit_[blh]_", re.I),
        "sam",
        lambda c: c.arch.get("preprocess", "sam") == "sam",
        "an official SAM checkpoint; load it as its sam_vit_* model",
    ),
)


def check_file_fits_card(card: ModelCard, path: Path) -> None:
    """Refuse an official checkpoint, known by its file name, given for a card it does not fit."""
    for pattern, family, fits, what in _NAMED_FILES:
        if card.family == family and pattern.search(path.name) and not fits(card):
            raise CheckpointError(
                f"{path.name} is {what}, not {card.id!r}: with the wrong input size "
                "or preprocessing every mask would be wrong"
            )


def load_model(
    model_id: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    device: str | None = None,
    wording: Wording = CLI_WORDING,
) -> LoadedModel:
    """Build ``model_id``'s architecture, load its checkpoint strictly and move it to a device.

    ``checkpoint`` overrides the cached file. Nothing is downloaded here: use
    :func:`napari_textseg.models.store.download` first. ``wording`` names, in messages,
    where the user gives a file and how they download (flags, or a panel's controls).
    """
    target = pick_device(device)
    card, path = resolve_checkpoint(model_id, checkpoint, wording)
    check_file_fits_card(card, path)
    check_installed(card)
    if (
        card.package_data and checkpoint is None
    ):  # weights shipped by another package: the released file?
        verify_package_file(card, path)
    model = _builder(card.family)(card.arch, path)
    return LoadedModel(model=model.to(target).eval(), card=card, checkpoint=path, device=target)
