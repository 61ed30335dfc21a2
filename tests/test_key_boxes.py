"""Key boxes: corrections for box models. Each slice takes the mask propagated from its
nearest key box (a tie to the box drawn later); a box drawn after a propagation changes
only the slices nearest to it, and one Undo reverts it. On the shared CT, three boxes
round the liver (at a quarter, a half and three quarters of it) beat one box."""

import numpy as np
import pytest

from conftest import data_file
from napari_textseg.cli import main
from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.engine.interactive.propagate import PropagationSettings, owned_end
from napari_textseg.engine.interactive.session import SegmentationSession
from threshold_backend import ThresholdBackend, spheres

NO_POINTS = (np.zeros((0, 3)), np.zeros(0, dtype=int))


class BoxOnlyThreshold(ThresholdBackend):
    """A box-only model with exact masks: the bright region inside the box."""

    box_only = True
    title = "BoxThreshold"

    def model_box(self, box_yx, orig):
        y0, x0, y1, x1 = box_yx
        return np.array([x0, y0, x1, y1])

    def box_from_mask(self, mask):
        if not mask.any():
            return None
        ys, xs = np.nonzero(mask)
        return np.array([xs.min() - 2, ys.min() - 2, xs.max() + 3, ys.max() + 3])

    def decode_model_box(self, features, box):
        from napari_textseg.engine.interactive.prompts import SlicePrompts

        x0, y0, x1, y1 = box
        return self.decode(features, SlicePrompts(box=(y0, x0, y1, x1)))


def _session():
    volume, [cylinder] = spheres(shape=(40, 64, 64), radius=12.0)  # slices 3..27
    return SegmentationSession(volume, (1.0, 1.0, 1.0), "MR", BoxOnlyThreshold()), cylinder


BOX = (18.0, 18.0, 46.0, 46.0)


@pytest.mark.parametrize("drawn, middle_owner", [((10, 20), 20), ((20, 10), 10)])
def test_each_slice_takes_the_mask_of_its_nearest_key_box(drawn, middle_owner):
    session, cylinder = _session()
    session.set_prompts(*NO_POINTS, {z: BOX for z in drawn})
    mask = session.propagate(PropagationSettings())
    np.testing.assert_array_equal(mask, cylinder)
    source = session.result.source
    assert all(source[z] == 10 for z in range(3, 15)) and all(
        source[z] == 20 for z in range(16, 28)
    )
    assert source[15] == middle_owner  # equally near both: the box drawn later
    assert owned_end(10, 20, {10: 0, 20: 1}) == 14 and owned_end(20, 10, {10: 0, 20: 1}) == 15


def test_a_key_box_after_a_propagation_replaces_only_the_slices_nearest_to_it_and_undo_reverts_it():
    session, _ = _session()
    session.set_prompts(*NO_POINTS, {20: BOX})
    before = session.propagate(PropagationSettings())
    kept = {z: m.copy() for z, m in session.result.masks.items()}
    # A second box, on slice 6, that takes in less of the object: only slices 6..12 change.
    session.set_prompts(*NO_POINTS, {20: BOX, 6: (18.0, 18.0, 46.0, 32.0)})
    key = session.new_key_slice()
    assert key == 6
    after = session.propagate(PropagationSettings(), from_slice=key)
    changed = sorted(z for z in range(40) if not np.array_equal(before[z], after[z]))
    assert changed and set(changed) <= set(range(3, 13)), changed
    assert all(np.array_equal(after[z], kept[z]) for z in range(14, 28))
    # The same two boxes propagated at once give the same mask.
    fresh, _ = _session()
    fresh.set_prompts(*NO_POINTS, {20: BOX, 6: (18.0, 18.0, 46.0, 32.0)})
    np.testing.assert_array_equal(fresh.propagate(PropagationSettings()), after)
    assert session.undo() == [20]
    np.testing.assert_array_equal(session.mask(), before)


def test_points_beside_boxes_are_ignored_with_one_line_and_points_alone_are_refused():
    session, _ = _session()
    checked = session.check_prompts(np.array([[20.0, 30.0, 30.0]]), np.array([1]), {20: BOX})
    assert (
        checked.note == "BoxThreshold takes boxes only: the 1 point was ignored and the boxes used"
    )
    assert len(checked.points) == 0 and checked.by_slice[20].box is not None
    with pytest.raises(ValueError, match="box-prompted"):
        session.check_prompts(np.array([[20.0, 30.0, 30.0]]), np.array([1]), None)


def _liver_boxes(organs: np.ndarray) -> tuple[np.ndarray, list[str]]:
    liver = organs == 5
    zs = np.nonzero(liver.any(axis=(1, 2)))[0]
    boxes = []
    for fraction in (0.5, 0.25, 0.75):  # the first box on the middle slice, then the corrections
        z = int(zs.min() + (zs.max() - zs.min()) * fraction)
        ys, xs = np.nonzero(liver[z])
        boxes.append(f"{z},{ys.min()},{xs.min()},{ys.max() + 1},{xs.max() + 1}")
    return liver, boxes


def test_three_key_boxes_give_the_liver_on_the_command_line(tmp_path, capsys):
    organs = read_volume(data_file("abdomen_ct_organs.nii.gz")).data
    liver, boxes = _liver_boxes(organs)
    scores = {}
    for n in (1, 3):
        out = tmp_path / f"liver{n}.nii.gz"
        args = [
            "segment",
            str(data_file("abdomen_ct.nii.gz")),
            "--propagate",
            "-o",
            str(out),
            "--point",
            "14,60,40",
        ]  # a point beside the boxes: ignored, with one line
        for box in boxes[:n]:
            args += ["--box", box]
        assert main(args) == 0
        assert "the 1 point was ignored and the boxes used" in capsys.readouterr().err
        scores[n] = dice(read_volume(out).data > 0, liver)
    print("liver Dice, 1 and 3 key boxes:", scores)
    assert scores[3] >= 0.91 and scores[3] > scores[1] + 0.05, scores


def test_the_command_line_shows_a_progress_bar_on_a_terminal_only(tmp_path, capsys, monkeypatch):
    import napari_textseg.cli.segment as segment_command

    args = [
        "segment",
        str(data_file("abdomen_ct.nii.gz")),
        "--box",
        "15,40,40,60,60",
        "--propagate",
        "--slice-range",
        "13,17",
    ]
    assert main([*args, "-o", str(tmp_path / "quiet.nii.gz")]) == 0
    assert "propagating" not in capsys.readouterr().err  # a log or a pipe gets no bar
    monkeypatch.setattr(segment_command, "_stderr_is_terminal", lambda: True)
    assert main([*args, "-o", str(tmp_path / "bar.nii.gz")]) == 0
    err = capsys.readouterr().err
    assert "propagating" in err and "/5 [" in err and "slice" in err  # (tqdm may skip drawing 5/5)
