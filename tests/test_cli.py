"""The napari-textseg command: info, models, demo; one-line errors on bad input."""

import os
import shutil
import subprocess
import sys

import pytest

from napari_textseg.cli import main
from tiny_models import save_tiny_sam2


def test_info_on_ct(ct_path, capsys):
    assert main(["info", str(ct_path)]) == 0
    out = capsys.readouterr().out
    for expected in ["30 x 101 x 122", "3 x 3 x 3 mm", "RAS", "CT", "-1100 .. 1207", "radiological"]:
        assert expected in out


def test_info_on_lps_mr_and_nuclei(mr_path, nuclei_path, capsys):
    assert main(["info", str(mr_path)]) == 0
    out = capsys.readouterr().out
    assert "LPS" in out and "MR" in out and "20 x 91 x 117" in out
    assert main(["info", str(nuclei_path)]) == 0
    assert "no voxel size stored" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["info", "missing.nii.gz"], "no such file"),
    (["info", "notes.txt"], "unsupported file type"),
    (["models", "download", "sam9"], "unknown model 'sam9'"),
    (["models", "verify", "sam_vit_b"], "not downloaded yet"),
    (["models", "verify", "sam_vit_b", "--device", "tpu"], "unknown device"),
])
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
    assert main(["models", "verify", "test_cli_sam2", "--checkpoint", str(tmp_path / "tiny.pt")]) == 0
    assert "loads strictly" in capsys.readouterr().out


@pytest.mark.viewer
def test_demo_opens_the_sample_ct_with_the_widgets(tmp_path):
    """The README's main command, run to a screenshot instead of an interactive session."""
    exe = shutil.which("napari-textseg", path=os.path.dirname(sys.executable))
    assert exe, "the console script is installed"
    shot = tmp_path / "demo.png"
    result = subprocess.run([exe, "demo", "--screenshot", str(shot)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    from PIL import Image

    image = Image.open(shot)
    assert image.width >= 1000 and image.height >= 600
