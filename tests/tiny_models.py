"""Small models of the real SAM, SAM2 and CLIP architectures, saved in the official formats.

They have random weights: they prove that building, saving, strict loading and the
model plumbing work, not that anything is segmented well.
"""

from __future__ import annotations

from pathlib import Path

import torch

from napari_textseg.models.registry import ModelCard, register_card
from napari_textseg.models.sam2_sizes import small_sam2_overrides

TINY_SAM_ARCH = {
    "image_size": 64,
    "encoder_embed_dim": 32,
    "encoder_depth": 2,
    "encoder_num_heads": 2,
    "encoder_global_attn_indexes": (1,),
    "window_size": 2,
    "prompt_embed_dim": 32,
    "mask_in_chans": 4,
    "decoder_mlp_dim": 64,
    "iou_head_hidden_dim": 32,
}

TINY_SAM2_ARCH = {
    "config": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "overrides": small_sam2_overrides(
        128,
        embed=8,
        model=32,
        memory=16,
        stages=(1, 1, 2, 1),
        global_blocks=(3,),
        attention_layers=1,
        feedforward=64,
    ),
}


def clip_arch(image_size: int, patch_size: int, layers: int) -> dict:
    """A small open_clip ViT-B-16 variant: width 32, one text layer."""
    return {
        "model_name": "ViT-B-16",
        "model_kwargs": {
            "embed_dim": 32,
            "vision_cfg": {
                "image_size": image_size,
                "layers": layers,
                "width": 32,
                "patch_size": patch_size,
                "head_width": 16,
            },
            "text_cfg": {
                "context_length": 77,
                "vocab_size": 49408,
                "width": 32,
                "heads": 2,
                "layers": 1,
            },
        },
    }


TINY_CLIP_ARCH = clip_arch(32, 16, 1)
TINY_DENSE_CLIP_ARCH = clip_arch(64, 8, 2)  # 8 x 8 patches: room for dense maps to be spatial


def tiny_card(family: str, arch: dict, model_id: str, filename: str, **kwargs) -> ModelCard:
    """Register a card for a tiny test model and return it."""
    return register_card(
        ModelCard(
            id=model_id,
            family=family,
            title=f"tiny test {family}",
            arch=arch,
            filename=filename,
            license="Apache-2.0",
            license_url="https://www.apache.org/licenses/LICENSE-2.0",
            homepage="https://example.invalid/tests",
            **kwargs,
        )
    )


def save_tiny_sam(path: Path) -> dict[str, torch.Tensor]:
    """A tiny SAM saved as the official ``.pth``: a plain state dict."""
    from napari_textseg.models.sam import build_sam

    torch.manual_seed(0)
    state = build_sam(TINY_SAM_ARCH).state_dict()
    torch.save(state, path)
    return state


def save_tiny_sam2(path: Path) -> dict[str, torch.Tensor]:
    """A tiny SAM2 saved as the official ``.pt``: ``{"model": state_dict}``."""
    from napari_textseg.models.sam2 import build_sam2_model

    torch.manual_seed(0)
    state = build_sam2_model(TINY_SAM2_ARCH).state_dict()
    torch.save({"model": state}, path)
    return state


def registered_tiny_sam2(folder: Path, card_id: str) -> Path:
    """A tiny SAM2 checkpoint saved in ``folder`` and a card ``card_id`` that loads it."""
    path = folder / "tiny_sam2.pt"
    tiny_card("sam2", TINY_SAM2_ARCH, card_id, path.name)
    save_tiny_sam2(path)
    return path


def save_tiny_clip(path: Path, arch: dict | None = None) -> dict[str, torch.Tensor]:
    """A tiny open_clip model saved as a state dict (``.bin``) or ``.safetensors``."""
    from napari_textseg.models.clip import build_clip

    torch.manual_seed(0)
    state = build_clip(arch or TINY_CLIP_ARCH).state_dict()
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return state
