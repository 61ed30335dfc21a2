"""Strict loading of SAM, SAM2 and CLIP checkpoints in their official formats."""

import numpy as np
import pytest
import torch

from napari_textseg.core.intensity import normalize_for_model
from napari_textseg.core.io import read_volume
from napari_textseg.models import CheckpointError
from napari_textseg.models.checkpoints import read_state_dict
from napari_textseg.models.device import autocast, pick_device
from napari_textseg.models.loader import load_model
from tiny_models import (
    TINY_CLIP_ARCH,
    TINY_SAM2_ARCH,
    TINY_SAM_ARCH,
    save_tiny_clip,
    save_tiny_sam,
    save_tiny_sam2,
    tiny_card,
)


def _same(model, state):
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.fixture(scope="module")
def cards():
    return {
        "sam": tiny_card("sam", TINY_SAM_ARCH, "test_tiny_sam", "tiny_sam.pth"),
        "sam2": tiny_card("sam2", TINY_SAM2_ARCH, "test_tiny_sam2", "tiny_sam2.pt"),
        "clip": tiny_card("clip", TINY_CLIP_ARCH, "test_tiny_clip", "tiny_clip.bin"),
    }


def test_sam_checkpoint_loads_and_segments_a_ct_slice(cards, tmp_path, ct_path):
    from segment_anything import SamPredictor

    state = save_tiny_sam(tmp_path / "tiny_sam.pth")
    loaded = load_model("test_tiny_sam", tmp_path / "tiny_sam.pth", device="cpu")
    _same(loaded.model, state)
    assert loaded.card.family == "sam" and loaded.device.type == "cpu"
    ct = read_volume(ct_path)
    slice_rgb = np.repeat(normalize_for_model(ct.data[15], "CT")[..., None], 3, axis=2).astype(
        np.uint8
    )
    predictor = SamPredictor(loaded.model)
    predictor.set_image(slice_rgb)
    masks, scores, _ = predictor.predict(
        point_coords=np.array([[60, 50]]), point_labels=np.array([1])
    )
    assert masks.shape == (3, 101, 122) and scores.shape == (3,)


def test_sam2_checkpoint_loads(cards, tmp_path):
    state = save_tiny_sam2(tmp_path / "tiny_sam2.pt")
    loaded = load_model("test_tiny_sam2", tmp_path / "tiny_sam2.pt", device="cpu")
    _same(loaded.model, state)
    # built as build_sam2_video_predictor builds it: the video predictor's settings
    assert type(loaded.model).__name__ == "SAM2VideoPredictor"
    assert loaded.model.binarize_mask_from_pts_for_mem_enc and loaded.model.fill_hole_area == 8
    assert loaded.model.image_size == 128


@pytest.mark.parametrize("filename", ["tiny_clip.bin", "open_clip_model.safetensors"])
def test_clip_checkpoint_loads_and_encodes_text(cards, tmp_path, filename):
    import open_clip

    state = save_tiny_clip(tmp_path / filename)
    loaded = load_model("test_tiny_clip", tmp_path / filename, device="cpu")
    _same(loaded.model, state)
    tokens = open_clip.get_tokenizer("ViT-B-16")(["liver", "left kidney"])
    with torch.no_grad():
        text = loaded.model.encode_text(tokens)
    assert text.shape == (2, 32)


def test_sam_key_mismatch_fails_loudly(cards, tmp_path):
    state = save_tiny_sam(tmp_path / "good.pth")
    missing = dict(state)
    del missing["mask_decoder.iou_token.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): mask_decoder.iou_token.weight"):
        load_model("test_tiny_sam", tmp_path / "missing.pth")
    extra = dict(state, **{"surprise.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\): surprise.weight"):
        load_model("test_tiny_sam", tmp_path / "extra.pth")
    wrong = dict(state)
    wrong["mask_decoder.iou_token.weight"] = torch.zeros(1, 7)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(
        CheckpointError, match=r"wrong shape: mask_decoder.iou_token.weight \(1, 7\)"
    ):
        load_model("test_tiny_sam", tmp_path / "wrong.pth")


def test_a_sam_checkpoint_is_not_accepted_as_sam2(cards, tmp_path):
    save_tiny_sam(tmp_path / "tiny_sam.pth")
    with pytest.raises(CheckpointError, match="no 'model' entry.*official format"):
        load_model("test_tiny_sam2", tmp_path / "tiny_sam.pth")


def test_a_sam2_checkpoint_is_not_accepted_as_sam(cards, tmp_path):
    save_tiny_sam2(tmp_path / "tiny_sam2.pt")
    with pytest.raises(CheckpointError, match="SAM 2 format.*load it with a SAM 2 model"):
        load_model("test_tiny_sam", tmp_path / "tiny_sam2.pt")


@pytest.mark.parametrize(
    ("model_id", "filename", "message"),
    [
        ("sam2.1_hiera_tiny", "MedSAM2_latest.pt", "MedSAM2 checkpoint .*512 px.*'medsam2'"),
        ("medsam2", "sam2.1_hiera_tiny.pt", "official SAM 2 checkpoint .*1024 px"),
        ("sam_vit_b", "medsam_vit_b.pth", "MedSAM checkpoint .*'medsam_vit_b'"),
        ("medsam_vit_b", "sam_vit_b_01ec64.pth", "official SAM checkpoint"),
    ],
)
def test_an_official_file_for_another_card_of_its_architecture_is_refused(
    tmp_path, model_id, filename, message
):
    # the architectures match shape for shape, so only the file's name can tell
    path = tmp_path / filename
    path.write_bytes(b"not read: refused by name first")
    with pytest.raises(CheckpointError, match=message):
        load_model(model_id, path)


def test_a_sam2_release_without_the_video_predictor_internals_is_refused(monkeypatch):
    from sam2.modeling.sam2_base import SAM2Base

    from napari_textseg.models import UnsupportedReleaseError
    from napari_textseg.models.sam2 import build_sam2_model

    monkeypatch.delattr(SAM2Base, "_encode_new_memory")
    with pytest.raises(
        UnsupportedReleaseError, match=r"sam2 \d.* lacks _encode_new_memory.*sam2>=1.0,<2"
    ):
        build_sam2_model(TINY_SAM2_ARCH)


def test_another_architecture_is_refused(cards, tmp_path):
    save_tiny_sam(tmp_path / "tiny_sam.pth")
    with pytest.raises(CheckpointError, match="does not match the model architecture"):
        load_model("sam_vit_b", tmp_path / "tiny_sam.pth")


@pytest.mark.parametrize("cut", [0.5, 0.02])
def test_truncated_checkpoint_is_a_clear_error(cards, tmp_path, cut):
    save_tiny_sam2(tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CheckpointError, match="cut.pt is truncated or corrupt.*download it again"):
        load_model("test_tiny_sam2", tmp_path / "cut.pt")


def test_empty_and_non_checkpoint_files(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_state_dict(tmp_path / "empty.pt")
    (tmp_path / "page.pt").write_text("<html>404 Not Found</html>")
    with pytest.raises(CheckpointError, match="page.pt is not a checkpoint: it is a web page"):
        read_state_dict(tmp_path / "page.pt")


@pytest.mark.parametrize("text", ["hello\n", "checkpoint goes here", "e" * 40])
def test_a_text_file_given_as_a_checkpoint_is_a_clear_error(tmp_path, text):
    """Issue 17: such files made the unpickler raise KeyError or IndexError, a traceback; issue 27:
    "truncated or corrupt ... download it again" pointed the wrong way."""
    (tmp_path / "notes.pth").write_text(text)
    with pytest.raises(
        CheckpointError, match="notes.pth is not a checkpoint: it is a text file"
    ) as info:
        read_state_dict(tmp_path / "notes.pth")
    assert "download it again" not in str(info.value)


def test_pickled_code_is_refused(tmp_path):
    torch.save({"weights": np.zeros(3, dtype=object)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        read_state_dict(tmp_path / "evil.pt")


def test_sam3_needs_its_package_or_loads_strictly(tmp_path):
    from napari_textseg.models.sam3 import sam3_state_dict

    torch.save(
        {"model": {"detector.backbone.w": torch.zeros(2), "tracker.x": torch.zeros(1)}},
        tmp_path / "s3.pt",
    )
    assert list(sam3_state_dict(tmp_path / "s3.pt")) == ["backbone.w"]
    torch.save({"model": {"tracker.x": torch.zeros(1)}}, tmp_path / "not_s3.pt")
    with pytest.raises(CheckpointError, match="not a SAM3 checkpoint"):
        sam3_state_dict(tmp_path / "not_s3.pt")
    try:
        import sam3  # noqa: F401
    except ImportError:
        with pytest.raises(CheckpointError, match="needs the 'sam3' package"):
            load_model("sam3", tmp_path / "s3.pt")


def test_device_policy(monkeypatch):
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setenv("NAPARI_TEXTSEG_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
    with autocast(torch.device("cpu")):
        assert torch.get_autocast_dtype("cuda") is not None
        assert not torch.is_autocast_enabled("cpu")
