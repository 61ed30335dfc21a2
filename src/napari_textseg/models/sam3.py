"""SAM 3 and Medical SAM3: the ``sam3`` package's image model, loaded strictly.

The weights are gated, so they are only ever taken from a local file. The upstream
loader (``sam3.model_builder._load_checkpoint``) loads non-strictly and only prints
missing keys; here a mismatch is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from napari_textseg.models.checkpoints import load_strict, read_state_dict
from napari_textseg.models.errors import CheckpointError

__all__ = ["load_sam3", "sam3_state_dict"]


def sam3_state_dict(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The image-model weights of an official SAM3 checkpoint (``detector.*`` keys)."""
    raw = read_state_dict(checkpoint, unwrap=("model",))
    state = {k.replace("detector.", "", 1): v for k, v in raw.items() if k.startswith("detector.")}
    if not state:
        raise CheckpointError(
            f"{Path(checkpoint).name} holds no 'detector.*' weights; it is not a SAM3 checkpoint"
        )
    return state


def load_sam3(arch: dict[str, Any], checkpoint: str | Path) -> torch.nn.Module:
    """Build the SAM3 image model and load ``checkpoint`` strictly."""
    try:
        from sam3.model_builder import build_sam3_image_model
    except ImportError as err:
        raise CheckpointError(
            "SAM3 needs the 'sam3' package, which is not installed (pip install sam3)"
        ) from err
    model = build_sam3_image_model(
        device="cpu", checkpoint_path=None, load_from_HF=False, **dict(arch.get("build_kwargs", {}))
    )
    load_strict(model, sam3_state_dict(checkpoint), Path(checkpoint).name)
    return model.eval()
