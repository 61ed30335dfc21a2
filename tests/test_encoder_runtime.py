"""Where LiteMedSAM's encoder runs: OpenVINO f32 equal to eager PyTorch (the recipe's
equivalence tests in test_litemedsam.py run on it), bf16 as an opt-in, the converted model
cached, and PyTorch with one line saying why when OpenVINO is missing or fails."""

import numpy as np
import pytest
import torch

from napari_textseg.models import encoder_runtime
from napari_textseg.models.encoder_runtime import make_encoder
from napari_textseg.models.loader import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def encoder_module():
    return load_model("litemedsam", device="cpu").model.image_encoder


@pytest.fixture(scope="module")
def slice_input():
    from conftest import data_file
    from napari_textseg.core.intensity import challenge_uint8
    from napari_textseg.core.io import read_volume
    from napari_textseg.engine.interactive.litemedsam_slices import LiteMedSamSliceModel

    ct = read_volume(data_file("abdomen_ct.nii.gz"))
    frame = challenge_uint8(ct.data, "CT", "soft_tissue")[15]
    lite = load_model("litemedsam", device="cpu")
    image, _ = LiteMedSamSliceModel(lite.model, CPU).model_input(frame)
    return image


def test_openvino_f32_equals_eager_and_bf16_is_an_explicit_choice(
    encoder_module, slice_input, tmp_path
):
    eager = make_encoder(encoder_module, 256, CPU, "torch")
    f32 = make_encoder(encoder_module, 256, CPU, "auto", "f32", cache=tmp_path)
    assert (eager.tag, f32.tag, f32.note) == ("torch-f32", "openvino-f32", None)
    reference = eager(slice_input)
    assert float((f32(slice_input) - reference).abs().max()) < 1e-4
    bf16 = make_encoder(encoder_module, 256, CPU, "openvino", "bf16", cache=tmp_path)
    difference = float((bf16(slice_input) - reference).abs().max())
    assert bf16.tag == "openvino-bf16" and difference < 0.5
    converted = sorted(p.name for p in tmp_path.iterdir())
    assert len(converted) == 2 and all(
        f"ov{encoder_runtime.openvino_version()}" in n for n in converted
    )
    # A second load reads the converted model, whatever OpenVINO's converter would do now.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "openvino.convert_model",
            lambda *a, **k: (_ for _ in ()).throw(AssertionError("converted")),
        )
        again = make_encoder(encoder_module, 256, CPU, "openvino", "f32", cache=tmp_path)
    assert again.note is None and torch.equal(again(slice_input), f32(slice_input))


def test_without_openvino_the_encoder_runs_on_pytorch_with_one_line(encoder_module, monkeypatch):
    monkeypatch.setattr(encoder_runtime, "openvino_version", lambda: None)
    for runtime in ("auto", "openvino"):
        encoder = make_encoder(encoder_module, 256, CPU, runtime)
        assert encoder.tag == "torch-f32"
        assert (
            encoder.note
            == "openvino is not installed (pip install openvino); the encoder runs on PyTorch in "
            "f32"
        )


def test_a_failed_conversion_falls_back_to_pytorch_with_the_reason(
    encoder_module, slice_input, monkeypatch, tmp_path
):
    def broken(*_args, **_kwargs):
        raise RuntimeError("Cannot convert aten::frobnicate\nmore detail")

    monkeypatch.setattr("openvino.convert_model", broken)
    encoder = make_encoder(encoder_module, 256, CPU, "openvino", cache=tmp_path)
    assert encoder.tag == "torch-f32"
    assert encoder.note == (
        "OpenVINO could not run the encoder (Cannot convert aten::frobnicate); "
        "it runs on PyTorch in f32"
    )
    assert list(tmp_path.iterdir()) == []  # nothing half-converted left behind
    eager = make_encoder(encoder_module, 256, CPU, "torch")
    assert torch.equal(encoder(slice_input), eager(slice_input))


def test_a_damaged_converted_model_is_converted_again(encoder_module, slice_input, tmp_path):
    first = make_encoder(encoder_module, 256, CPU, "openvino", cache=tmp_path)
    xml = next(tmp_path.glob("*/encoder.xml"))
    xml.write_text("<net>truncated")
    again = make_encoder(encoder_module, 256, CPU, "openvino", cache=tmp_path)
    assert again.tag == "openvino-f32" and again.note is None
    np.testing.assert_array_equal(again(slice_input).numpy(), first(slice_input).numpy())
