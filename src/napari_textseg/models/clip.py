"""CLIP text/image encoders through open_clip, loaded strictly from a local file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from napari_textseg.models.checkpoints import load_strict, read_state_dict

__all__ = ["build_clip", "load_clip"]


def build_clip(arch: dict[str, Any]) -> torch.nn.Module:
    """A randomly initialised open_clip model named ``arch["model_name"]``.

    ``arch["model_kwargs"]`` overrides the named config (open_clip's own mechanism),
    which is how small test models are described. OpenAI weights use QuickGELU.
    """
    import open_clip

    return open_clip.create_model(
        arch["model_name"],
        pretrained=None,
        force_quick_gelu=bool(arch.get("quick_gelu", True)),
        **dict(arch.get("model_kwargs", {})),
    ).eval()


def load_clip(arch: dict[str, Any], checkpoint: str | Path) -> torch.nn.Module:
    """Build the architecture and load an open_clip state dict (``.bin``, ``.pt``,
    ``.safetensors``)."""
    model = build_clip(arch)
    state = read_state_dict(checkpoint)
    # open_clip stores logit_scale as a 0-d or 1-d tensor depending on the version.
    if "logit_scale" in state and state["logit_scale"].ndim != model.logit_scale.ndim:
        state["logit_scale"] = state["logit_scale"].reshape(model.logit_scale.shape)
    load_strict(model, state, Path(checkpoint).name)
    return model
