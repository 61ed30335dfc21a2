"""Recognise which official architecture a checkpoint file holds, from its keys and shapes."""

from __future__ import annotations

import os
import re
from pathlib import Path

from napari_textseg.models.checkpoints import read_state_dict
from napari_textseg.models.errors import CheckpointError
from napari_textseg.models.registry import ModelCard, get_card

__all__ = ["infer_card"]

_SAM_BY_WIDTH = {768: "sam_vit_b", 1024: "sam_vit_l", 1280: "sam_vit_h"}
_SAM2_BY_WIDTH = {112: "sam2.1_hiera_base_plus", 144: "sam2.1_hiera_large"}


def infer_card(checkpoint: str | os.PathLike) -> ModelCard:
    """The card of the official model ``checkpoint`` was saved from.

    SAM ViT-B/L/H are told apart by the encoder width; SAM 2.1 Hiera sizes by the
    trunk width and depth. MedSAM and MedSAM2 share their base models' architecture and
    are recognised by their usual file names. Anything else needs ``--model``.
    """
    path = Path(checkpoint)
    name = path.name.lower()
    state = read_state_dict(path, unwrap=("state_dict", "model"))
    width_key = "image_encoder.patch_embed.proj.weight"
    if width_key in state:
        width = int(state[width_key].shape[0])
        if width in _SAM_BY_WIDTH:
            return get_card(
                "medsam_vit_b" if "medsam" in name and width == 768 else _SAM_BY_WIDTH[width]
            )
    trunk_key = "image_encoder.trunk.patch_embed.proj.weight"
    if trunk_key in state:
        if "medsam2" in name:
            return get_card("medsam2")
        width = int(state[trunk_key].shape[0])
        blocks = {
            int(m.group(1))
            for k in state
            if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))
        }
        if width == 96:
            return get_card("sam2.1_hiera_tiny" if len(blocks) <= 12 else "sam2.1_hiera_small")
        if width in _SAM2_BY_WIDTH:
            return get_card(_SAM2_BY_WIDTH[width])
    raise CheckpointError(
        f"cannot tell which architecture {path.name} is; name it with --model ID "
        "(see 'napari-textseg models list')"
    )
