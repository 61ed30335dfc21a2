"""SAM 2 / 2.1 and MedSAM2: built from the sam2 package's Hydra configs, loaded strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from napari_textseg.models.checkpoints import load_strict, read_state_dict

__all__ = ["build_sam2_model", "check_sam2_release", "load_sam2"]

# What the engine calls to run SAM2 as its video predictor does (sam2 1.0 and 1.1 have them).
_NEEDED = (
    "_track_step",
    "_forward_sam_heads",
    "_encode_new_memory",
    "_prepare_backbone_features",
    "_use_multimask",
    "maskmem_tpos_enc",
    "obj_ptr_tpos_proj",
    "max_obj_ptrs_in_encoder",
)


def check_sam2_release(model: torch.nn.Module) -> None:
    """Refuse a sam2 release whose model lacks what faithful propagation needs, naming it."""
    missing = [name for name in _NEEDED if not hasattr(model, name)]
    if missing:
        from importlib.metadata import version

        from napari_textseg.models.errors import UnsupportedReleaseError

        raise UnsupportedReleaseError(
            f"sam2 {version('sam2')} lacks {', '.join(missing)}, which napari-textseg needs to "
            "run SAM 2 "
            "exactly as SAM2VideoPredictor does; install a supported release: pip install "
            "'sam2>=1.0,<2'"
        )


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

    model = build_sam2_video_predictor(
        arch["config"],
        ckpt_path=None,
        device="cpu",
        mode="eval",
        hydra_overrides_extra=list(arch.get("overrides", ())),
    )
    check_sam2_release(model)
    return model


def load_sam2(arch: dict[str, Any], checkpoint: str | Path) -> torch.nn.Module:
    """Build the architecture and load an official SAM2 ``.pt`` (``{"model": state_dict}``)."""
    model = build_sam2_model(arch)
    load_strict(model, read_state_dict(checkpoint, nested_key="model"), Path(checkpoint).name)
    return model
