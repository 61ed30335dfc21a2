"""SAM 2 / 2.1 and MedSAM2: built from the sam2 package's Hydra configs, loaded strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from napari_textseg.models.checkpoints import load_strict, read_state_dict

__all__ = ["build_sam2_model", "load_sam2"]


def build_sam2_model(arch: dict[str, Any]) -> torch.nn.Module:
    """A randomly initialised SAM2 from ``arch["config"]`` plus ``arch["overrides"]``.

    The config names one of the sam2 package's own files (e.g.
    ``configs/sam2.1/sam2.1_hiera_t.yaml``); overrides are Hydra strings that adapt it
    (MedSAM2's 512 px input, or the small models the tests build).

    It is built as ``build_sam2_video_predictor`` builds it, with the video predictor's
    settings (memory of clicked slices encoded from the binarised mask, small-hole fill
    of 8 px, dynamic multimask); a click on one slice does not read those, so the same
    model is also what ``SAM2ImagePredictor`` runs.
    """
    from sam2.build_sam import build_sam2_video_predictor

    return build_sam2_video_predictor(
        arch["config"],
        ckpt_path=None,
        device="cpu",
        mode="eval",
        hydra_overrides_extra=list(arch.get("overrides", ())),
    )


def load_sam2(arch: dict[str, Any], checkpoint: str | Path) -> torch.nn.Module:
    """Build the architecture and load an official SAM2 ``.pt`` (``{"model": state_dict}``)."""
    model = build_sam2_model(arch)
    load_strict(model, read_state_dict(checkpoint, nested_key="model"), Path(checkpoint).name)
    return model
