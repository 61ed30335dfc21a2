"""Window presets and normalisation (methods.md section 4), on real CT and MR voxels."""

import numpy as np
import pytest

from napari_textseg.core.intensity import (
    WINDOW_PRESETS,
    Window,
    apply_window,
    contrast_limits,
    normalize_for_model,
    percentile_normalize,
)
from napari_textseg.core.io import read_volume


def test_presets_match_the_methods_digest():
    expected = {
        "soft_tissue": (400, 40),
        "lung": (1500, -160),
        "brain": (80, 40),
        "bone": (1800, 400),
    }
    assert {k: (w.width, w.level) for k, w in WINDOW_PRESETS.items()} == expected


@pytest.mark.parametrize("name", list(WINDOW_PRESETS))
def test_window_maps_its_limits_to_0_and_255(name):
    low, high = WINDOW_PRESETS[name].limits
    out = apply_window(np.array([low - 100, low, (low + high) / 2, high, high + 100]), name)
    np.testing.assert_allclose(out, [0, 0, 127.5, 255, 255])
    assert out.dtype == np.float32


def test_window_is_nan_safe():
    out = apply_window(np.array([np.nan, 40.0, np.inf, -np.inf]))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, [0, 127.5, 255, 0])


def test_unknown_preset_and_bad_window_are_clear_errors():
    with pytest.raises(ValueError, match="unknown CT window preset 'liver'.*soft_tissue"):
        apply_window(np.zeros(3), "liver")
    with pytest.raises(ValueError, match="positive"):
        Window(width=0, level=0)


def test_percentile_normalisation_on_real_mr(mr_path):
    mr = read_volume(mr_path).data
    out = percentile_normalize(mr)
    assert out.min() == 0 and out.max() == 255
    low, high = np.percentile(mr, [0.5, 99.5])
    inside = (mr > low) & (mr < high)
    # Linear inside the clip range: the ranks of voxel values are preserved.
    order = np.argsort(mr[inside], kind="stable")
    assert np.all(np.diff(out[inside][order]) >= 0)


def test_data_already_in_8bit_range_is_left_as_is():
    data = np.array([[0, 10, 200]], dtype=np.uint8)
    np.testing.assert_array_equal(percentile_normalize(data), data.astype(np.float32))


def test_percentiles_ignore_nan():
    data = np.linspace(-1000, 3000, 1001)
    with_nan = data.copy()
    with_nan[::10] = np.nan
    out = percentile_normalize(with_nan)
    assert np.isfinite(out).all()
    assert out[np.isnan(with_nan)].max() == 0


def test_ct_model_input_and_display_use_the_same_window(ct_path):
    ct = read_volume(ct_path)
    assert ct.modality == "CT"
    assert contrast_limits(ct.data, "CT") == (-160, 240)
    model_input = normalize_for_model(ct.data, "CT")
    assert model_input.shape == ct.data.shape
    # Fat (about -100 HU) is dark but not black in the soft-tissue window; air is black.
    assert model_input[ct.data <= -500].max() == 0
    assert model_input[ct.data >= 240].min() == 255


def _pre_ct_mr_mr_branch(image_data: np.ndarray) -> np.ndarray:
    """``pre_CT_MR.py``'s MR branch, as written there."""
    lower_bound, upper_bound = (
        np.percentile(image_data[image_data > 0], 0.5),
        np.percentile(image_data[image_data > 0], 99.5),
    )
    image_data_pre = np.clip(image_data, lower_bound, upper_bound)
    image_data_pre = (
        (image_data_pre - np.min(image_data_pre))
        / (np.max(image_data_pre) - np.min(image_data_pre))
        * 255.0
    )
    image_data_pre[image_data == 0] = 0
    return np.uint8(image_data_pre)


def _pre_grey_rgb(image_data: np.ndarray) -> np.ndarray:
    """``pre_grey_rgb.py`` without its optional intensity cut-off, as written there."""
    if np.max(image_data) > 255.0:
        image_data = np.uint8(
            (image_data - image_data.min()) / (np.max(image_data) - np.min(image_data)) * 255.0
        )
    return image_data


def test_challenge_uint8_equals_the_litemedsam_repositorys_preprocessing(mr_path, nuclei_path):
    from napari_textseg.core.intensity import challenge_uint8
    from napari_textseg.core.io import read_volume

    mr = read_volume(mr_path).data
    np.testing.assert_array_equal(challenge_uint8(mr, "MR"), _pre_ct_mr_mr_branch(mr))
    nuclei = read_volume(nuclei_path).data
    assert nuclei.max() > 255
    np.testing.assert_array_equal(challenge_uint8(nuclei, "microscopy"), _pre_grey_rgb(nuclei))
