"""VoxTell backend: what we hand VoxTell and bring back equals its own file-based inference.

A model folder of VoxTell's real architecture (small encoder, the fixed 2048-d prompt
decoder, seeded random weights) is written once per session. The reference is
``VoxTellPredictor.predict_from_files`` on a NIfTI, which reads with nnU-Net's
reorienting reader and writes one NIfTI per prompt back on the source grid; ours reads
the same file with our reader, labels through :class:`VoxTellBackend`, and the two
must be identical voxel for voxel. Crops of the shared CT (RAS) and MR (LPS) keep each
sliding window to a few patches (VoxTell's 12^3-token prompt decoder costs ~2 s a
patch on two CPU cores).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

pytest.importorskip("voxtell")

from conftest import data_file
from napari_textseg.core.errors import InputError
from napari_textseg.core.io import read_volume
from napari_textseg.core.text_prompts import parse_targets
from napari_textseg.engine.text.protocol import OrganResult, Progress, TextVolume
from napari_textseg.engine.text.voxtell import VoxTellBackend, to_voxtell_grid
from napari_textseg.models.voxtell import load_voxtell
from voxtell_models import save_voxtell_folder

PROMPTS = ["liver", "spleen"]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return save_voxtell_folder(tmp_path_factory.mktemp("voxtell") / "voxtell_test")


@pytest.fixture(scope="module")
def predictor(model_folder):
    return load_voxtell(
        model_folder, torch.device("cpu"), model_folder.parent / "text_embeddings.npz"
    )


def _crop(source: Path, out: Path, region) -> Path:
    """A crop of a shared volume with its affine kept (nibabel's slicer)."""
    image = nib.load(source)
    nib.save(image.slicer[region], out)
    return out


def _volume(path: Path) -> TextVolume:
    volume = read_volume(path)
    return TextVolume(volume.data, volume.spacing, volume.modality, volume.geometry, path.name)


def _ours(predictor, path: Path, prompts=PROMPTS) -> list[OrganResult]:
    backend = VoxTellBackend(predictor, _volume(path))
    events = list(backend.run(parse_targets(", ".join(prompts)), list(range(1, len(prompts) + 1))))
    assert any(isinstance(e, Progress) and e.total > 1 for e in events), "no per-patch progress"
    return [e for e in events if isinstance(e, OrganResult)]


def _reference(predictor, path: Path, out: Path, prompts=PROMPTS) -> list[np.ndarray]:
    """VoxTell's own inference, read back with our reader onto the display grid."""
    written = predictor.predict_from_files([str(path)], str(out), prompts)
    return [read_volume(Path(f)).data > 0 for f in written]


@pytest.mark.parametrize(
    ("name", "region"),
    [
        ("abdomen_ct.nii.gz", (slice(30, 66), slice(20, 50), slice(5, 25))),  # RAS
        ("abdomen_mr.nii.gz", (slice(40, 70), slice(20, 56), slice(0, 20))),  # LPS
    ],
)
def test_voxtell_labels_equal_its_own_file_inference(predictor, tmp_path, name, region):
    source = _crop(data_file(name), tmp_path / name, region)
    ours = _ours(predictor, source)
    reference = _reference(predictor, source, tmp_path / "reference")
    for result, expected in zip(ours, reference, strict=True):
        assert result.mask.shape == expected.shape
        assert 0.05 < expected.mean() < 0.95, (
            "random weights gave a trivial mask: the test would prove nothing"
        )
        assert np.array_equal(result.mask, expected), (
            f"{result.target.name}: differs from VoxTell's own output"
        )
        assert 0.5 <= result.confidence <= 1.0
    # Negative control: the display array handed over without VoxTell's axis flips.
    flipped = read_volume(source)
    embeddings = predictor.embed_text_prompts(PROMPTS)
    data, bbox, _ = predictor.preprocess(np.asarray(flipped.data, dtype=np.float32)[None])
    wrong = predictor.predict_sliding_window_return_logits(data, embeddings)[0].float().numpy() > 0
    assert not np.array_equal(wrong, reference[0]), "the flip check cannot fail on this volume"
    assert np.array_equal(to_voxtell_grid(np.asarray(flipped.data))[:, ::-1, ::-1], flipped.data)


def test_voxtell_refuses_microscopy_and_offline_free_text(predictor, monkeypatch):
    nuclei = np.arange(256, dtype=np.float32).reshape(4, 8, 8)  # any image with contrast
    microscopy = VoxTellBackend(predictor, TextVolume(nuclei, (1.0, 1.0, 1.0), "microscopy"))
    with pytest.raises(InputError, match="VoxTell labels CT, MR and PET"):
        microscopy.check_targets(parse_targets("nucleus"))
    ct = VoxTellBackend(
        predictor,
        TextVolume(nuclei, (1.0, 1.0, 1.0), "CT"),
        online=lambda: False,
        text_encoder="no-such-org/no-such-encoder",
    )
    ct.check_targets(parse_targets("liver, spleen"))  # in the bank: fine offline
    with pytest.raises(InputError, match=r"offline, VoxTell only takes.*'livers' \(close: liver\)"):
        ct.check_targets(parse_targets("livers"))
    with pytest.raises(InputError, match="2 dimensions"):
        VoxTellBackend(predictor, TextVolume(nuclei[0], (1.0, 1.0, 1.0), "CT"))


def test_voxtell_cancel_stops_the_pass(predictor, tmp_path):
    source = _crop(
        data_file("abdomen_ct.nii.gz"),
        tmp_path / "ct.nii.gz",
        (slice(30, 66), slice(20, 50), slice(5, 25)),
    )
    run = VoxTellBackend(predictor, _volume(source)).run(parse_targets("liver"), [1])
    for event in run:
        if isinstance(event, Progress) and event.done == 1:
            break
    run.close()  # Cancel: the worker thread stops at the next patch and is joined
    assert not any(t.name == "voxtell-sliding-window" for t in __import__("threading").enumerate())


def test_label_command_runs_voxtell_and_names_the_backend(model_folder, tmp_path, capsys):
    from napari_textseg.cli import main

    source = _crop(
        data_file("abdomen_mr.nii.gz"),
        tmp_path / "mr.nii.gz",
        (slice(40, 70), slice(20, 56), slice(0, 20)),
    )
    out = tmp_path / "organs.nii.gz"
    code = main(
        [
            "label",
            str(source),
            "--text",
            "liver, spleen",
            "--backend",
            "voxtell",
            "--weights",
            str(model_folder),
            "--device",
            "cpu",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "backend: VoxTell" in err
    labels = read_volume(out)
    assert labels.data.shape == read_volume(source).data.shape
    assert set(np.unique(labels.data)) <= {0, 1, 2} and labels.data.any()
    assert set((labels.label_names or {}).values()) <= {"liver", "spleen"}
    # No SAM model, no VoxTell: a clear message, exit 2.
    assert (
        main(
            [
                "label",
                str(source),
                "--text",
                "liver",
                "--backend",
                "medical-sam3",
                "--device",
                "cpu",
                "-o",
                str(out),
            ]
        )
        == 2
    )
    assert "Medical-SAM3" in capsys.readouterr().err


def test_auto_picks_voxtell_once_its_weights_are_in_the_cache(model_folder):
    from napari_textseg.engine.text.backends import choose_backend
    from napari_textseg.models.registry import get_card
    from napari_textseg.models.store import cached_path

    assert choose_backend("auto", "CT", "cpu") == "clip-sam"  # installed, not downloaded
    folder = cached_path(get_card("voxtell_v1.1")).parents[1]
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(model_folder, target_is_directory=True)
    assert choose_backend("auto", "CT", "cpu") == "voxtell"
    assert (
        choose_backend("auto", "microscopy", "cpu") == "clip-sam"
    )  # VoxTell does not label microscopy


def test_offline_free_text_fails_fast_through_the_plugins_own_builder(model_folder, monkeypatch):
    from napari_textseg.engine.text.backends import open_text_backend

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    volume = TextVolume(np.arange(256, dtype=np.float32).reshape(4, 8, 8), (1.0, 1.0, 1.0), "CT")
    backend = open_text_backend(
        "voxtell", volume, device=torch.device("cpu"), weights=str(model_folder)
    )
    backend.text_encoder = "no-such-org/no-such-encoder"  # not in the local hub cache
    with pytest.raises(InputError, match="offline, VoxTell only takes"):
        backend.check_targets(parse_targets("livers"))
