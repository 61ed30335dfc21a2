"""A VoxTell model folder of the real architecture with seeded random weights, made by the tests.

VoxTell's predictor fixes the prompt decoder (query_dim 2048, 2560-d text embeddings,
a 12^3 token grid at decoder stage 4), so only the encoder can be made small: six
stages of 32 to 320 channels, one block each, strided so that stage 4 is 12^3 for
the patch size. The folder is what ``mrokuss/VoxTell`` publishes: ``plans.json`` and
``fold_0/checkpoint_final.pth``, plus an embedding bank ``.npz`` of random vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

TEXT_DIM = 2560

# Patch 24^3, stage strides 1,1,1,1,2,2: stage 4 is 12^3 tokens, as the decoder needs.
PATCH = (24, 24, 24)
STRIDES = [[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1], [2, 2, 2], [2, 2, 2]]


def plans(patch=PATCH, strides=STRIDES) -> dict:
    """The part of an nnU-Net plans.json that VoxTellPredictor reads."""
    return {
        "configurations": {
            "3d_fullres": {
                "patch_size": list(patch),
                "architecture": {
                    "network_class_name": "voxtell.model.voxtell_model.VoxTellModel",
                    "arch_kwargs": {
                        "n_stages": 6,
                        "features_per_stage": [32, 64, 128, 256, 320, 320],
                        "conv_op": "torch.nn.modules.conv.Conv3d",
                        "kernel_sizes": [[3, 3, 3]] * 6,
                        "strides": strides,
                        "n_blocks_per_stage": [1, 1, 1, 1, 1, 1],
                        "n_conv_per_stage_decoder": [1, 1, 1, 1, 1],
                        "conv_bias": True,
                        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
                        "dropout_op": None,
                        "dropout_op_kwargs": None,
                        "nonlin": "torch.nn.LeakyReLU",
                        "nonlin_kwargs": {"inplace": True},
                    },
                    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
                },
            }
        }
    }


def save_voxtell_folder(
    folder: Path, seed: int = 0, bank_prompts=("liver", "spleen", "left kidney")
) -> Path:
    """Write a model folder (and ``text_embeddings.npz`` beside it); returns the folder."""
    import pydoc

    from voxtell.model.voxtell_model import VoxTellModel

    spec = plans()
    kwargs = dict(spec["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"])
    for key in ("conv_op", "norm_op", "nonlin"):
        kwargs[key] = pydoc.locate(kwargs[key])
    torch.manual_seed(seed)
    # The predictor's own constructor arguments (voxtell.inference.predictor).
    network = VoxTellModel(
        input_channels=1,
        **kwargs,
        decoder_layer=4,
        text_embedding_dim=TEXT_DIM,
        num_maskformer_stages=5,
        num_heads=32,
        query_dim=2048,
        project_to_decoder_hidden_dim=2048,
        deep_supervision=False,
    )
    # He init leaves the prompt path near zero; a wider spread makes every voxel's
    # logit depend on the image, so a flipped or shifted input changes the labels.
    with torch.no_grad():
        for p in network.parameters():
            p.normal_(0.0, 0.05) if p.ndim > 1 else None
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(spec), encoding="utf-8")
    torch.save(
        {"network_weights": network.state_dict()}, folder / "fold_0" / "checkpoint_final.pth"
    )
    rng = np.random.default_rng(seed)
    np.savez(
        folder.parent / "text_embeddings.npz",
        labels=np.array(list(bank_prompts)),
        embeddings=rng.normal(size=(len(bank_prompts), TEXT_DIM)).astype(np.float16),
    )
    return folder
