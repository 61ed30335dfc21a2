"""Max-confidence merge: one label map, no voxel in two organs, confidence decides overlaps."""

import numpy as np
import pytest

from napari_textseg.engine.text.merge import TargetMask, merge_by_confidence


def _box(shape, sl):
    mask = np.zeros(shape, dtype=bool)
    mask[sl] = True
    return mask


def test_overlaps_go_to_the_more_confident_target_and_nothing_else_changes():
    shape = (4, 10, 10)
    liver = TargetMask(1, "liver", _box(shape, np.s_[:, 0:6, 0:6]), 0.6)
    spleen = TargetMask(2, "spleen", _box(shape, np.s_[:, 4:10, 4:10]), 0.9)
    labels = merge_by_confidence([liver, spleen], shape)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[:, 4:6, 4:6] == 2).all()  # the overlap went to the spleen
    assert (labels[:, 0:4, 0:4] == 1).all() and (labels[:, 6:, 6:] == 2).all()


def test_per_voxel_confidence_splits_an_overlap():
    shape = (1, 4, 4)
    left = np.zeros(shape, dtype=np.float32)
    left[..., :2] = 1.0
    a = TargetMask(1, "a", np.ones(shape, bool), left)
    b = TargetMask(2, "b", np.ones(shape, bool), 0.5)
    labels = merge_by_confidence([a, b], shape)
    assert (labels[..., :2] == 1).all() and (labels[..., 2:] == 2).all()


def test_ties_go_to_the_first_target():
    shape = (1, 2, 2)
    labels = merge_by_confidence(
        [
            TargetMask(3, "x", np.ones(shape, bool), 0.5),
            TargetMask(4, "y", np.ones(shape, bool), 0.5),
        ],
        shape,
    )
    assert (labels == 3).all()


@pytest.mark.parametrize(
    "targets, message",
    [
        ([TargetMask(0, "bg", np.ones((2, 2, 2), bool), 1.0)], "positive and distinct"),
        (
            [
                TargetMask(1, "a", np.ones((2, 2, 2), bool), 1.0),
                TargetMask(1, "b", np.ones((2, 2, 2), bool), 1.0),
            ],
            "positive and distinct",
        ),
        ([TargetMask(1, "a", np.ones((3, 2, 2), bool), 1.0)], "not the volume's"),
    ],
)
def test_bad_targets(targets, message):
    with pytest.raises(ValueError, match=message):
        merge_by_confidence(targets, (2, 2, 2))


def test_merging_into_an_existing_map_replaces_only_the_rerun_target():
    from napari_textseg.engine.text.merge import merge_into

    labels = np.zeros((1, 6, 6), dtype=np.uint16)
    labels[0, :, :2] = 1  # liver, confidence 0.9
    labels[0, :, 2:4] = 2  # spleen, confidence 0.3
    labels[0, 5, 5] = 7  # drawn by hand: no confidence
    confidence = {1: 0.9, 2: 0.3}
    new_spleen = np.zeros_like(labels, dtype=bool)
    new_spleen[0, :3, 1:] = True  # overlaps liver, old spleen, background and the hand label
    out = merge_into(labels, confidence, TargetMask(2, "spleen", new_spleen, 0.5))
    assert (out[0, :, :2][:, 0] == 1).all() and (
        out[0, :3, 1] == 1
    ).all()  # liver is more confident
    assert (out[0, :3, 2:] == 2).all()  # background and its own old voxels
    assert (out[0, 3:, 2:4] == 0).all()  # old spleen voxels not in the new mask are cleared
    assert out[0, 5, 5] == 7  # hand-drawn labels are never overwritten
    assert (labels[0, :, 2:4] == 2).all()  # the input map is untouched
    more_sure = merge_into(labels, confidence, TargetMask(2, "spleen", new_spleen, 0.95))
    assert (more_sure[0, :3, 1] == 2).all()
