"""Segment Anything (v1) and MedSAM: built from a card's architecture, loaded strictly."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch

from napari_textseg.models.checkpoints import load_strict, read_state_dict

__all__ = ["build_sam", "load_sam"]


def build_sam(arch: dict[str, Any]) -> torch.nn.Module:
    """A randomly initialised ``segment_anything.modeling.Sam`` of the given architecture.

    The defaults are the official ones (1024 px input, 16 px patches, 256-d prompts);
    the card's ``arch`` sets the encoder width, depth, heads and global-attention blocks,
    and may shrink the rest for small test models.
    """
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    image_size = int(arch.get("image_size", 1024))
    patch_size = int(arch.get("patch_size", 16))
    prompt_dim = int(arch.get("prompt_embed_dim", 256))
    embedding_size = image_size // patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=int(arch["encoder_depth"]),
            embed_dim=int(arch["encoder_embed_dim"]),
            img_size=image_size,
            mlp_ratio=float(arch.get("mlp_ratio", 4)),
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=int(arch["encoder_num_heads"]),
            patch_size=patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(arch["encoder_global_attn_indexes"]),
            window_size=int(arch.get("window_size", 14)),
            out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(image_size, image_size),
            mask_in_chans=int(arch.get("mask_in_chans", 16)),
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=int(arch.get("decoder_depth", 2)),
                embedding_dim=prompt_dim,
                mlp_dim=int(arch.get("decoder_mlp_dim", 2048)),
                num_heads=int(arch.get("decoder_num_heads", 8)),
            ),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=int(arch.get("iou_head_hidden_dim", 256)),
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def load_sam(arch: dict[str, Any], checkpoint: str | Path) -> torch.nn.Module:
    """Build the architecture and load an official SAM/MedSAM ``.pth`` (a plain state dict)."""
    model = build_sam(arch)
    load_strict(model, read_state_dict(checkpoint), Path(checkpoint).name)
    return model
