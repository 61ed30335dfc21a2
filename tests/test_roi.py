"""Tumour ROI crops: physical size, centring, exact paste-back, anisotropic spacing."""

import numpy as np
import pytest

from napari_textseg.engine.interactive.prompts import PromptError
from napari_textseg.engine.interactive.roi import roi_around


def test_crop_and_paste_round_trip_is_exact_even_past_the_border():
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 100, size=(20, 40, 50)).astype(np.int16)
    roi = roi_around(np.array([[1, 2, 45]]), (1.0, 1.0, 1.0), 16, volume.shape)
    crop = roi.crop(volume)
    assert crop.shape == (16, 16, 16)
    pasted = roi.paste(crop)
    inside = roi.paste(np.ones(roi.shape, bool))
    np.testing.assert_array_equal(pasted[inside], volume[inside])
    assert not pasted[~inside].any()
    # Zero padding where the box leaves the volume.
    assert (crop[:7] == 0).all()


def test_centre_is_min_plus_max_over_two_and_size_is_physical():
    roi = roi_around(np.array([[10, 20, 30], [14, 30, 40]]), (5.0, 0.7, 0.7), 128, (60, 512, 512))
    assert roi.shape == (26, 183, 183)  # 128 mm at 5 mm and at 0.7 mm
    centre = np.array(roi.start) + np.array(roi.shape) // 2
    np.testing.assert_array_equal(centre, [12, 25, 35])


def test_clicks_wider_than_the_roi_are_refused():
    with pytest.raises(PromptError, match="span more than"):
        roi_around(np.array([[5, 5, 5], [5, 200, 5]]), (1.0, 1.0, 1.0), 64, (10, 256, 256))


def test_roi_coordinates():
    roi = roi_around(np.array([[8, 50, 60]]), (1.0, 1.0, 1.0), 32, (20, 100, 100))
    np.testing.assert_array_equal(roi.to_roi([[8, 50, 60]]), [[16, 16, 16]])
