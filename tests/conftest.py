"""Shared fixtures: the real sample volumes and an isolated model cache."""

from __future__ import annotations

import http.server
import os
import threading
from functools import partial
from pathlib import Path

import pytest

from napari_textseg._napari._triton import keep_triton_out_without_cuda
from napari_textseg.data import SAMPLES, sample_path

# As in napari with the plugin: whichever test first imports torch after a viewer's
# OpenGL canvas exists must not load triton's LLVM beside Mesa's (a segfault).
keep_triton_out_without_cuda()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NAPARI_TEXTSEG_SHARED_DATA", REPO.parent / "shared" / "data"))


def data_file(name: str) -> Path:
    """A real volume: from ../shared/data when present, else the packaged copy (same bytes)."""
    shared = SHARED_DATA / name
    if shared.is_file():
        return shared
    key = next(k for k, v in SAMPLES.items() if v == name)
    return sample_path(key)


DATA_FILES = [
    "abdomen_ct.nii.gz",
    "abdomen_ct_organs.nii.gz",
    "abdomen_mr.nii.gz",
    "nuclei_3d.tif",
    "nuclei_3d_labels.tif",
]


@pytest.fixture
def ct_path() -> Path:
    return data_file("abdomen_ct.nii.gz")


@pytest.fixture
def organs_path() -> Path:
    return data_file("abdomen_ct_organs.nii.gz")


@pytest.fixture
def mr_path() -> Path:
    return data_file("abdomen_mr.nii.gz")


@pytest.fixture
def nuclei_path() -> Path:
    return data_file("nuclei_3d.tif")


@pytest.fixture(autouse=True)
def isolated_model_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own empty checkpoint cache; nothing touches the user's."""
    cache = tmp_path_factory.mktemp("model-cache")
    monkeypatch.setenv("NAPARI_TEXTSEG_CACHE", str(cache))
    return cache


@pytest.fixture(autouse=True)
def isolated_embedding_cache(tmp_path_factory, monkeypatch) -> Path:
    """Slice embeddings go to a fresh folder per test; converted OpenVINO encoders to one
    folder per run (converting LiteMedSAM's takes seconds, and the key holds the weights' hash)."""
    folder = tmp_path_factory.mktemp("embeddings")
    monkeypatch.setenv("NAPARI_TEXTSEG_EMBEDDING_CACHE", str(folder))
    monkeypatch.setenv("NAPARI_TEXTSEG_OPENVINO_CACHE", str(tmp_path_factory.getbasetemp() / "openvino"))
    return folder


@pytest.fixture(autouse=True)
def isolated_recovery_dir(tmp_path_factory, monkeypatch) -> Path:
    """Autosaves go to a fresh folder per test, never the user's cache."""
    folder = tmp_path_factory.mktemp("recovery")
    monkeypatch.setenv("NAPARI_TEXTSEG_RECOVERY_DIR", str(folder))
    return folder


@pytest.fixture
def served(tmp_path):
    """A loopback HTTP server over a folder holding a tiny SAM checkpoint."""
    folder = tmp_path / "www"
    folder.mkdir()
    from tiny_models import save_tiny_sam

    state = save_tiny_sam(folder / "tiny_sam.pth")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder, state
    server.shutdown()
    server.server_close()


def write_oblique_ct(ct_path: Path, folder: Path, degrees: float = 15.0) -> Path:
    """The shared CT with its grid rotated about z, as scanners write tilted acquisitions."""
    import nibabel as nib
    import numpy as np

    img = nib.load(ct_path)
    a = np.radians(degrees)
    rotation = np.array([[np.cos(a), -np.sin(a), 0, 0], [np.sin(a), np.cos(a), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    path = folder / "oblique.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), rotation @ img.affine), path)
    return path
