"""The SAM3 text path's own logic: linking per-slice detections into one 3-D object.

The ``sam3`` package pins numpy < 2.4, which this environment's napari stack does not
allow, so the image model itself is not run here (docs/text.md says so); what does not
need it is tested.
"""

import numpy as np

from napari_textseg.engine.text.sam3_slices import link_slices


def _square(y0, size, shape=(20, 20)):
    mask = np.zeros(shape, dtype=bool)
    mask[y0 : y0 + size, 5 : 5 + size] = True
    return mask


def test_the_track_starts_at_the_most_confident_slice_and_follows_matching_neighbours():
    masks = [
        None,
        _square(14, 4),
        _square(2, 6),
        _square(3, 6),
        _square(3, 7),
        _square(4, 6),
        None,
        _square(3, 6),
    ]
    scores = [0.0, 0.6, 0.75, 0.9, 0.72, 0.71, 0.0, 0.95]
    volume, confidence, seed = link_slices(masks, scores)
    assert seed == 7  # the most confident detection seeds the track
    assert volume[7].any() and not volume[:7].any()  # slice 6 is empty: the track ends there

    scores[7] = 0.5  # too weak to start a track: slice 3 seeds instead
    volume, confidence, seed = link_slices(masks, scores)
    assert seed == 3
    assert [bool(volume[z].any()) for z in range(8)] == [
        False,
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    np.testing.assert_allclose(confidence, np.mean([0.75, 0.9, 0.72, 0.71]))


def test_a_jump_is_cut_unless_the_detection_is_confident():
    masks = [_square(0, 5), _square(12, 5), _square(12, 5)]
    volume, _, seed = link_slices(masks, [0.9, 0.75, 0.75])
    assert seed == 0 and not volume[1].any()  # IoU 0 with the last kept mask
    volume, _, _ = link_slices(masks, [0.9, 0.85, 0.75])
    assert volume[1].any() and volume[2].any()  # a confident detection re-seeds the track


def test_nothing_confident_gives_an_empty_object():
    volume, confidence, seed = link_slices([None, _square(3, 4)], [0.0, 0.4])
    assert not volume.any() and confidence == 0.0 and seed == -1
