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

# Time limits in tests only catch hangs: a slow or busy 2-core machine must still pass.
# (pytest-timeout's per-test limit, in pyproject.toml, is above these.)
# What a Qt wait (model load, propagation) may take before the test is called hung, and the
# same for a subprocess; NAPARI_TEXTSEG_HANG_S shortens both while debugging a hang.
HANG_S = int(os.environ.get("NAPARI_TEXTSEG_HANG_S", "900"))
HANG_MS = int(os.environ.get("NAPARI_TEXTSEG_HANG_S", "600")) * 1000
SHARED_DATA = Path(os.environ.get("NAPARI_TEXTSEG_SHARED_DATA", REPO.parent / "shared" / "data"))


def data_file(name: str) -> Path:
    """A real volume: from ../shared/data when present, else the packaged copy (same bytes)."""
    shared = SHARED_DATA / name
    if shared.is_file():
        return shared
    key = next(k for k, v in SAMPLES.items() if v == name)
    return sample_path(key)


def shared_file(name: str) -> Path:
    """A real volume only ../shared/data holds (the tumour NRRDs): CI has it beside the
    clone; elsewhere the test is skipped, never passed."""
    path = SHARED_DATA / name
    if not path.is_file():
        if os.environ.get("CI"):
            raise FileNotFoundError(f"{path}: CI must have the shared data beside the clone")
        pytest.skip(f"{name} is in ../shared/data only (set NAPARI_TEXTSEG_SHARED_DATA)")
    return path


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
    monkeypatch.setenv(
        "NAPARI_TEXTSEG_OPENVINO_CACHE", str(tmp_path_factory.getbasetemp() / "openvino")
    )
    return folder


@pytest.fixture(autouse=True)
def isolated_recovery_dir(tmp_path_factory, monkeypatch) -> Path:
    """Autosaves go to a fresh folder per test, never the user's cache."""
    folder = tmp_path_factory.mktemp("recovery")
    monkeypatch.setenv("NAPARI_TEXTSEG_RECOVERY_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def bad_nrrds(tmp_path_factory) -> Path:
    """Broken NRRD files: 4-D, vector, an unknown encoding, a detached header without its
    data, a damaged gzip payload, and a multi-layer Slicer segmentation."""
    import nrrd
    import numpy as np

    d = tmp_path_factory.mktemp("bad-nrrd")
    data = np.arange(8 * 9 * 10, dtype=np.int16).reshape(8, 9, 10)
    nrrd.write(str(d / "ok.nrrd"), data, {"encoding": "gzip"})
    payload = bytearray((d / "ok.nrrd").read_bytes())
    payload[-60:-30] = bytes(30)
    (d / "corrupt.nrrd").write_bytes(bytes(payload))
    (d / "zstd.nrrd").write_bytes(
        (d / "ok.nrrd").read_bytes().replace(b"encoding: gzip", b"encoding: zstd")
    )
    nrrd.write(str(d / "four_d.nrrd"), np.zeros((8, 9, 10, 2), np.int16), {"kinds": ["domain"] * 4})
    nrrd.write(
        str(d / "vector.nrrd"),
        np.zeros((3, 8, 9, 10), np.float32),
        {"kinds": ["vector"] + ["domain"] * 3},
    )
    nrrd.write(
        str(d / "layered.seg.nrrd"),
        np.zeros((2, 8, 9, 10), np.uint8),
        {"kinds": ["list"] + ["domain"] * 3},
    )
    nrrd.write(str(d / "orphan.nhdr"), data, {"encoding": "raw"}, detached_header=True)
    (d / "orphan.raw").unlink()
    return d


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
    rotation = np.array(
        [[np.cos(a), -np.sin(a), 0, 0], [np.sin(a), np.cos(a), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    )
    path = folder / "oblique.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), rotation @ img.affine), path)
    return path


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Background work left running would hold the interpreter open after the last test
    (CI once waited 90 minutes on one): wait a minute for it, then name it, with its stack,
    and end the run with pytest's own status instead of hanging."""
    import sys
    import time
    import traceback

    def running() -> list[threading.Thread]:
        frames = sys._current_frames()

        def idle_executor(
            thread: threading.Thread,
        ) -> bool:  # the interpreter's exit wakes and joins it
            frame = frames.get(thread.ident)  # type: ignore[arg-type]
            return (
                frame is not None
                and frame.f_code.co_name == "_worker"
                and "concurrent" in frame.f_code.co_filename
            )

        return [
            t
            for t in threading.enumerate()
            if t is not threading.main_thread()
            and not t.daemon
            and t.is_alive()
            and not idle_executor(t)
        ]

    def qt_pool_busy() -> int:
        qtcore = sys.modules.get("qtpy.QtCore")
        return (
            int(qtcore.QThreadPool.globalInstance().activeThreadCount())
            if qtcore is not None
            else 0
        )

    deadline = time.monotonic() + 60
    while (running() or qt_pool_busy()) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not running() and not qt_pool_busy():
        return
    frames = sys._current_frames()
    print(
        f"\nconftest: work still running after the suite: {qt_pool_busy()} Qt pool thread(s), "
        "threads "
        f"{[t.name for t in running()]}; their stacks:",
        file=sys.stderr,
    )
    for thread_id, frame in frames.items():
        if thread_id != threading.main_thread().ident:
            print("".join(traceback.format_stack(frame)), file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(_EXIT_STATUS[-1] if _EXIT_STATUS else 1)
