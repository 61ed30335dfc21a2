"""Medical-SAM3 3-D backend: the released policy's pieces, and clear errors where it cannot run.

The SAM3 video model cannot be built on this CPU in test time (860 M parameters, minutes
per clip), so equivalence with the reference ``infer_volume`` is checked on a GPU by
``benchmarks/gpu_check_medical_sam3.py`` and the docs say it is untested here. These
tests pin what does not need the model: clip windows, frame scaling, pixel-score fusion,
the call pattern of one clip, and the install and GPU messages.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_textseg.core.errors import InputError
from napari_textseg.core.io import read_volume
from napari_textseg.core.text_prompts import parse_targets
from napari_textseg.engine.text.backends import choose_backend, why_unavailable
from napari_textseg.engine.text.medical_sam3 import (
    MedicalSam3Backend,
    clip_windows,
    fuse_pixel_scores,
    slice_frames,
)
from napari_textseg.engine.text.protocol import OrganResult, TextVolume
from napari_textseg.models.medical_sam3 import INSTALL_HINT, load_medical_sam3_video


def test_clips_are_independent_four_slice_windows():
    assert clip_windows(10) == [(0, 4), (4, 8), (8, 10)]
    assert clip_windows(3) == [(0, 3)]
    with pytest.raises(ValueError):
        clip_windows(0)


def test_frames_are_windowed_then_min_max_scaled_per_slice(ct_path):
    volume = read_volume(ct_path)
    frames = slice_frames(TextVolume(volume.data, volume.spacing, "CT"))
    assert frames.shape == (*volume.data.shape, 3) and frames.dtype == np.uint8
    for z in (0, 15, 29):  # every slice spans 0..255 on its own
        assert frames[z, ..., 0].min() == 0 and frames[z, ..., 0].max() == 255
    flat = slice_frames(TextVolume(np.zeros((2, 4, 4), np.float32), (1.0, 1.0, 1.0), "MR"))
    assert not flat.any()  # a constant slice is black, not NaN


def test_pixel_score_fusion_takes_a_voxel_only_above_half_and_above_earlier_targets():
    labels = np.zeros((1, 1, 3), np.uint16)
    priority = np.full(labels.shape, 0.5, np.float32)
    mask = np.ones(labels.shape, bool)
    fuse_pixel_scores(labels, priority, mask, np.array([[[0.4, 0.7, 0.9]]], np.float32), 1)
    assert labels.tolist() == [[[0, 1, 1]]]  # 0.4 does not beat the 0.5 floor
    fuse_pixel_scores(labels, priority, mask, np.array([[[0.6, 0.8, 0.8]]], np.float32), 2)
    assert labels.tolist() == [[[2, 2, 1]]]  # 0.8 beats 0.7 but not 0.9


class _ScriptedVideoModel:
    """Answers like Sam3VideoInference with the repository's probability hook: a square per
    slice."""

    def __init__(self, depth, shape):
        self.depth, self.shape, self.calls = depth, shape, []

    def init_state(self, resource_path):
        assert len(resource_path) == self.depth and resource_path.original_size_hw == self.shape
        return {}

    def reset_state(self, state):
        self.calls.append("reset")

    def add_prompt(self, inference_state, frame_idx, text_str):
        self.calls.append(("prompt", frame_idx, text_str))

    def propagate_in_video(self, state, start_frame_idx, max_frame_num_to_track, reverse):
        assert not reverse
        for z in range(start_frame_idx, start_frame_idx + max_frame_num_to_track + 1):
            masks = np.zeros((1, *self.shape), bool)
            masks[0, 2:6, 2:6] = True
            yield (
                z,
                {
                    "out_binary_masks": masks,
                    "out_mask_score_source": "mask_logits",
                    "out_mask_scores": masks.astype(np.float32) * 0.9,
                },
            )


def test_each_clip_is_reset_and_prompted_at_its_first_slice():
    data = np.random.default_rng(0).normal(size=(6, 8, 8)).astype(np.float32)
    model = _ScriptedVideoModel(6, (8, 8))
    events = list(
        MedicalSam3Backend(model, TextVolume(data, (1.0, 1.0, 1.0), "CT")).run(
            parse_targets("liver"), [1]
        )
    )
    assert model.calls == ["reset", ("prompt", 0, "liver"), "reset", ("prompt", 4, "liver")]
    organ = next(e for e in events if isinstance(e, OrganResult))
    assert organ.mask[:, 2:6, 2:6].all() and organ.mask.sum() == 6 * 16
    assert organ.confidence == pytest.approx(0.9)


def test_missing_package_and_cpu_get_clear_messages(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sam3" else real(name, *a)
    )
    with pytest.raises(
        InputError, match="git clone https://github.com/AIM-Research-Lab/Medical-SAM3"
    ):
        load_medical_sam3_video("checkpoint_3D_checkpoint8.pt", "cuda")
    assert "pip install --no-deps" in INSTALL_HINT
    assert "napari-textseg[medical-sam3]" in why_unavailable("medical-sam3", "CT", "cpu")
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "sam3" else real(name, *a)
    )
    assert "needs a CUDA GPU" in why_unavailable("medical-sam3", "CT", "cpu", weights_present=True)
    assert (
        why_unavailable("medical-sam3", "CT", "cpu", weights_present=True, allow_cpu=True) is None
    )
    with pytest.raises(InputError, match="unknown text backend 'gpt'"):
        choose_backend("gpt", "CT", "cpu")
    assert "microscopy" in why_unavailable("voxtell", "microscopy", "cpu")
