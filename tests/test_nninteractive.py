"""nnInteractive as a 3-D backend: the same masks as nnInteractive's own session for the same
image and interactions, on the command line, locally and through a server.

The model is the real architecture with hand-set weights (tests/nninteractive_models.py):
its object is where the interactions are, so a prompt passed at the wrong place (axes
swapped, a box off by one) gives another mask, which the negative control shows.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("nnInteractive.inference.inference_session")

from conftest import HANG_S, REPO, data_file
from napari_textseg.cli import main
from napari_textseg.core.io import read_volume, write_labels
from napari_textseg.engine.interactive.nninteractive import (
    NnInteractiveObject,
    box_interaction,
    path_mask,
    polygon_mask,
)
from napari_textseg.engine.interactive.prompts import PromptError
from napari_textseg.models.errors import CheckpointError
from napari_textseg.models.nninteractive import (
    connect_nninteractive,
    nninteractive_folder,
    open_nninteractive,
)
from nninteractive_models import save_nninteractive_folder

CPU = __import__("torch").device("cpu")
POINT = (15.0, 61.0, 40.0)  # z, y, x voxels (napari)
BOX = (10, (30.0, 55.0, 45.0, 80.0))  # slice, (y0, x0, y1, x1) corners
SCRIBBLE = (20, np.array([[70.0, 20.0], [70.0, 45.0]]))  # slice, path (y, x)
LASSO = (5, np.array([[40.0, 30.0], [40.0, 50.0], [60.0, 50.0], [60.0, 30.0]]))
NEGATIVE = (15.0, 60.0, 40.0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_nninteractive_folder(tmp_path_factory.mktemp("nninteractive") / "model")


@pytest.fixture(scope="module")
def ct():
    return read_volume(data_file("abdomen_ct.nii.gz"))


def _reference_steps(shape, swap=False):
    """The interactions as nnInteractive's API takes them, written out by hand: (z, y, x)
    voxels, a box as [[z, z+1], [y0, y1 + 1], [x0, x1 + 1]] over the voxels whose centres it
    covers, masks for the scribble and the lasso. ``swap`` exchanges y and x (a negative
    control: the mistake a wrong axis order makes)."""
    from skimage.draw import polygon2mask

    def yx(y, x):
        return (x, y) if swap else (y, x)

    z, (y0, x0, y1, x1) = BOX
    box = [[z, z + 1], [int(np.ceil(y0)), int(y1) + 1], [int(np.ceil(x0)), int(x1) + 1]]
    if swap:
        box = [box[0], box[2], box[1]]
    scribble = np.zeros(shape, np.uint8)
    sz, ((sy, sx0), (_, sx1)) = SCRIBBLE
    for x in range(int(sx0), int(sx1) + 1):
        scribble[(sz, *yx(int(sy), x))] = 1
    lasso = np.zeros(shape, np.uint8)
    lz, vertices = LASSO
    region = polygon2mask(shape[1:], vertices if not swap else vertices[:, ::-1])
    lasso[lz] = region
    return [
        ("add_point_interaction", [POINT[0], *yx(round(POINT[1]), POINT[2])], True),
        ("add_bbox_interaction", box, True),
        ("add_scribble_interaction", scribble, True),
        ("add_lasso_interaction", lasso, True),
        ("add_point_interaction", [NEGATIVE[0], *yx(NEGATIVE[1], NEGATIVE[2])], False),
    ]


def _ours(obj: NnInteractiveObject, shape):
    return [
        lambda: obj.add_point(POINT),
        lambda: obj.add_box(*BOX),
        lambda: obj.add_scribble(path_mask(shape, *SCRIBBLE)),
        lambda: obj.add_lasso(polygon_mask(shape, *LASSO)),
        lambda: obj.add_point(NEGATIVE, positive=False),
    ]


def _reference_masks(folder, data, autozoom, swap=False):
    session = open_nninteractive(folder, CPU, autozoom=autozoom, threads=2)
    session.set_do_autozoom(autozoom)
    session.set_image(data[None].astype(np.float32))
    target = np.zeros(data.shape, np.uint8)
    session.set_target_buffer(target)
    masks = []
    for call, value, positive in _reference_steps(data.shape, swap):
        getattr(session, call)(value, include_interaction=positive)
        masks.append(target.astype(bool))
    session.undo()
    masks.append(target.astype(bool))
    return masks


@pytest.mark.parametrize("autozoom", [True, False])
def test_points_box_scribble_lasso_and_undo_equal_nninteractive_s_own_session(folder, ct, autozoom):
    data = np.asarray(ct.data)
    reference = _reference_masks(folder, data, autozoom)
    session = open_nninteractive(folder, CPU, autozoom=autozoom, threads=2)
    obj = NnInteractiveObject(session, data, autozoom=autozoom)
    ours = [step() for step in _ours(obj, data.shape)]
    assert obj.undo()
    ours.append(obj.mask)
    for i, (mine, theirs) in enumerate(zip(ours, reference, strict=True)):
        assert theirs.any() and not theirs.all(), i  # a mask that can tell places apart
        np.testing.assert_array_equal(mine, theirs, err_msg=f"step {i}")
    assert not np.array_equal(ours[1], ours[0])  # every interaction changed the object
    # Negative control: the same interactions with y and x exchanged give other masks.
    swapped = _reference_masks(folder, data, autozoom, swap=True)
    assert not any(np.array_equal(a, b) for a, b in zip(ours[:4], swapped[:4], strict=True))


def _label_file(path, ct, mask_pos, mask_neg=None):
    labels = mask_pos.astype(np.uint8)
    if mask_neg is not None:
        labels[mask_neg > 0] = 2
    write_labels(str(path), labels, geometry=ct.geometry, scale=ct.spacing, translate=ct.origin)
    return str(path)


def _cli_args(ct, tmp_path, out):
    shape = np.asarray(ct.data).shape
    scribble = _label_file(tmp_path / "scribble.nii.gz", ct, path_mask(shape, *SCRIBBLE))
    lasso = _label_file(tmp_path / "lasso.nii.gz", ct, polygon_mask(shape, *LASSO))
    z, (y0, x0, y1, x1) = BOX
    return [
        "segment", str(data_file("abdomen_ct.nii.gz")), "--model", "nninteractive",
        "--point", ",".join(str(v) for v in POINT), "--box", f"{z},{y0},{x0},{y1},{x1}",
        "--scribble", scribble, "--lasso", lasso, "--negative", ",".join(str(v) for v in NEGATIVE),
        "-o", str(out),
    ]  # fmt: skip


def test_segment_runs_nninteractive_from_a_local_folder(folder, ct, tmp_path, capsys):
    out = tmp_path / "object.nii.gz"
    assert main([*_cli_args(ct, tmp_path, out), "--checkpoint", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "non-commercial" in err and "interactions took" in err
    reference = _reference_masks(folder, np.asarray(ct.data), autozoom=True)[4]
    np.testing.assert_array_equal(read_volume(str(out)).data > 0, reference)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_segment_on_a_server_gives_the_local_mask(folder, ct, tmp_path):
    """--server URL: the laptop's prompts, the server's model (started here on the CPU)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nnInteractive.inference.server.main", "--model-dir", str(folder),
         "--fold", "0", "--device", "cpu", "--no-torch-compile", "--port", str(port),
         "--torch-n-threads", "2"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HANG_S
        while True:
            try:
                connect_nninteractive(url, timeout_s=2).close()
                break
            except CheckpointError:
                assert server.poll() is None, server.stdout.read()[-3000:]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        out = tmp_path / "remote.nii.gz"
        assert main([*_cli_args(ct, tmp_path, out), "--server", url]) == 0
        reference = _reference_masks(folder, np.asarray(ct.data), autozoom=True)[4]
        np.testing.assert_array_equal(read_volume(str(out)).data > 0, reference)
    finally:
        server.terminate()
        server.wait(timeout=HANG_S)


# -- bad input ----------------------------------------------------------------------------


def test_an_unreachable_server_is_one_line(ct, tmp_path, capsys):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    code = main([*_cli_args(ct, tmp_path, tmp_path / "x.nii.gz"), "--server", url])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert f"the nnInteractive server at {url} did not answer" in err[0]
    assert not (tmp_path / "x.nii.gz").exists()


def test_a_folder_without_plans_names_what_is_missing(folder, tmp_path):
    broken = tmp_path / "broken"
    (broken / "fold_0").mkdir(parents=True)
    (broken / "dataset.json").write_text("{}")
    missing = (
        r"plans.json, inference_info.json or inference_session_class.json, "
        r"fold_0/checkpoint_final.pth missing"
    )
    with pytest.raises(CheckpointError, match=missing):
        nninteractive_folder(broken)


def test_no_weights_says_how_to_get_them_and_the_licence(monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_TEXTSEG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CheckpointError) as err:
        nninteractive_folder(None)
    message = str(err.value)
    assert "models download nninteractive" in message and "--checkpoint FOLDER" in message
    assert "non-commercial" in message and "\n" not in message


def test_a_3d_box_and_prompts_outside_the_volume_are_refused():
    with pytest.raises(PromptError, match="2-D boxes"):
        box_interaction(3, 6, (1.0, 1.0, 5.0, 5.0), (10, 20, 20))
    with pytest.raises(PromptError, match="holds no voxel"):
        box_interaction(3, 4, (30.0, 30.0, 40.0, 40.0), (10, 20, 20))
    assert box_interaction(3, 4, (1.5, 2.0, 5.4, 7.0), (10, 20, 20)) == [[3, 4], [2, 6], [2, 8]]


@pytest.mark.viewer
def test_the_panel_segments_with_a_click_and_a_lasso_undoes_and_commits(
    make_napari_viewer_proxy, qtbot, folder, ct
):
    """nnInteractive in the TextSeg panel: a click, then a lasso drawn with the Lasso tool,
    S: the preview is what the engine gives for the same two interactions; Ctrl+Z takes the
    lasso back; C commits the object."""
    from conftest import HANG_MS
    from napari_textseg._napari.prompts_controller import PREVIEW_LAYER, controller_for

    viewer = make_napari_viewer_proxy()
    viewer.open(str(data_file("abdomen_ct.nii.gz")), plugin="napari-textseg")
    _, panel = viewer.window.add_plugin_dock_widget("napari-textseg", "TextSeg")
    controller = controller_for(viewer)
    workspace = controller.workspace
    model = workspace.settings.model
    model.model_id, model.checkpoint, model.device = "nninteractive", str(folder), "cpu"
    assert "non-commercial" in panel.model_section.licence.text()
    with qtbot.waitSignal(workspace.model_ready, timeout=HANG_MS):
        panel.load.click()
    controller.prompts_layer().add(np.array(POINT))
    panel.prompts.lasso.click()
    strokes = controller.layers.strokes()
    assert viewer.layers.selection.active.name == strokes.name
    assert strokes.mode == "add_polygon_lasso"
    z, vertices = LASSO
    strokes.add_polygons([np.column_stack([np.full(len(vertices), z), vertices])])
    panel.prompts.segment.click()
    qtbot.waitUntil(lambda: "voxels in" in panel.prompts.status.text(), timeout=HANG_MS)
    assert "on this CPU" in panel.prompts.status.text()  # said once, with the time it took

    data = np.asarray(ct.data)
    obj = NnInteractiveObject(open_nninteractive(folder, CPU, threads=2), data)
    after_click = obj.add_point(POINT)
    expected = obj.add_lasso(polygon_mask(data.shape, *LASSO))
    np.testing.assert_array_equal(viewer.layers[PREVIEW_LAYER].data > 0, expected)
    assert not np.array_equal(after_click, expected)

    controller.undo()
    np.testing.assert_array_equal(viewer.layers[PREVIEW_LAYER].data > 0, after_click)
    labels = controller.commit()
    np.testing.assert_array_equal(labels.data > 0, after_click)


def test_the_network_on_openvino_gives_the_same_masks(folder, ct):
    """The runtime flag (panel: encoder row; --runtime) puts nnInteractive's network on
    OpenVINO f32; its masks are the eager network's."""
    from napari_textseg.models.nninteractive import network_runtime

    data = np.asarray(ct.data)
    reference = _reference_masks(folder, data, autozoom=True)
    session = open_nninteractive(folder, CPU, threads=2, runtime="openvino", precision="f32")
    assert network_runtime(session) == "OpenVINO f32"
    obj = NnInteractiveObject(session, data)
    ours = [step() for step in _ours(obj, data.shape)]
    for i, (mine, theirs) in enumerate(zip(ours, reference[:5], strict=True)):
        np.testing.assert_array_equal(mine, theirs, err_msg=f"step {i}")
