"""One call that turns a model id and/or a local checkpoint into a ready model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from napari_textseg.models.device import pick_device
from napari_textseg.models.registry import ModelCard
from napari_textseg.models.store import resolve_checkpoint

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
    if family == "clip":
        from napari_textseg.models.clip import load_clip

        return load_clip
    if family == "sam3":
        from napari_textseg.models.sam3 import load_sam3

        return load_sam3
    raise ValueError(f"unknown model family {family!r}")


def load_model(
    model_id: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    device: str | None = None,
) -> LoadedModel:
    """Build ``model_id``'s architecture, load its checkpoint strictly and move it to a device.

    ``checkpoint`` overrides the cached file. Nothing is downloaded here: use
    :func:`napari_textseg.models.store.download` first.
    """
    target = pick_device(device)
    card, path = resolve_checkpoint(model_id, checkpoint)
    model = _builder(card.family)(card.arch, path)
    return LoadedModel(model=model.to(target).eval(), card=card, checkpoint=path, device=target)
