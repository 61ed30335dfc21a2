"""An nnInteractive model folder of the real architecture with hand-set weights, made by the tests.

The network is nnU-Net's ``ResidualEncoderUNet`` (the class nnInteractive v1.0 uses, there
with 6 stages of 32-320 features) shrunk to 3 stages of 4-16 features, built from
self-written plans by nnInteractive's own trainer stub, and saved as the released folder is
laid out (``plans.json``, ``dataset.json``, ``inference_session_class.json``,
``fold_0/checkpoint_final.pth``). Random weights light up the whole volume and make
nnInteractive's refinement take a minute; these weights are set by hand so that the object
is where the interactions are: the stem sums the positive interaction channels (and the
previous segmentation) minus the negative ones, every other layer passes that one feature
through, and the head thresholds it. A prompt given at the wrong place therefore gives a
mask at the wrong place, which is what the equivalence tests need to see.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

PATCH = (64, 64, 64)
# Network input channels: the image, then nnInteractive's 7 interaction channels (its
# legacy channel mapping: previous segmentation; box/lasso +/-; point +/-; scribble +/-).
SIGNS = {1: 1.0, 2: 1.0, 3: -1.0, 4: 1.0, 5: -1.0, 6: 1.0, 7: -1.0}


def plans() -> dict:
    """An nnU-Net ResEnc plans file with one small 3d_fullres configuration."""
    resample = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    return {
        "dataset_name": "Dataset999_tiny",
        "plans_name": "nnUNetResEncUNetLPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": list(PATCH),
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "nnUNetPlannerResEncL",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
        "configurations": {
            "3d_fullres": {
                "data_identifier": "tiny_3d_fullres",
                "preprocessor_name": "DefaultPreprocessor",
                "batch_size": 1,
                "patch_size": list(PATCH),
                "median_image_size_in_voxels": list(PATCH),
                "spacing": [1.0, 1.0, 1.0],
                "normalization_schemes": ["ZScoreNormalization"],
                "use_mask_for_norm": [False],
                "resampling_fn_data": "resample_data_or_seg_to_shape",
                "resampling_fn_seg": "resample_data_or_seg_to_shape",
                "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
                "resampling_fn_data_kwargs": resample,
                "resampling_fn_seg_kwargs": {**resample, "is_seg": True, "order": 1},
                "resampling_fn_probabilities_kwargs": {**resample, "order": 1},
                "batch_dice": False,
                "architecture": {
                    "network_class_name": (
                        "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
                    ),
                    "arch_kwargs": {
                        "n_stages": 3,
                        "features_per_stage": [4, 8, 16],
                        "conv_op": "torch.nn.modules.conv.Conv3d",
                        "kernel_sizes": [[3, 3, 3]] * 3,
                        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
                        "n_blocks_per_stage": [1, 1, 1],
                        "n_conv_per_stage_decoder": [1, 1],
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
        },
    }


def _hand_set(network: torch.nn.Module) -> None:
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        stem = network.encoder.stem.convs[0]
        for channel, sign in SIGNS.items():
            stem.conv.weight[0, channel, 1, 1, 1] = sign
        stem.norm.weight[0] = 1.0
        last = network.decoder.stages[-1].convs[0]  # its input: (upsampled, skip) features
        last.conv.weight[0, network.decoder.transpconvs[-1].out_channels, 1, 1, 1] = 1.0
        last.norm.weight[0] = 1.0
        head = network.decoder.seg_layers[-1]
        head.weight[1, 0] = 1.0
        head.bias[1] = -1.0  # foreground: one standard deviation above the patch's mean


def save_nninteractive_folder(folder: Path) -> Path:
    """Write the model folder; returns it."""
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    spec = plans()
    manager = PlansManager(spec)
    network = nnInteractiveTrainer_stub.build_network_architecture(
        manager, manager.get_configuration("3d_fullres"), 8, 2, enable_deep_supervision=False
    )
    _hand_set(network)
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(spec), encoding="utf-8")
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "object": 1},
               "numTraining": 1, "file_ending": ".nii.gz"}  # fmt: skip
    (folder / "dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    session = {"point_radius": 2, "preferred_scribble_thickness": [1, 1, 1],
               "interaction_decay": 0.9, "pad_mode_image": "constant"}  # fmt: skip
    (folder / "inference_session_class.json").write_text(json.dumps(session), encoding="utf-8")
    checkpoint = {
        "network_weights": network.state_dict(),
        "trainer_name": "nnInteractiveTrainer_stub",
        "init_args": {"configuration": "3d_fullres"},
    }
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    return folder
