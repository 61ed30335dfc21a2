"""Metrics: analytic cases, and agreement with MONAI's implementations on the real CT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import (
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
    compute_surface_dice,
)
from scipy import ndimage

from conftest import data_file
from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import (
    dice,
    evaluate_labels,
    hd95,
    instance_f1,
    iou,
    label_volumes_ml,
    nsd,
)


def _ball(shape, centre, radius, spacing=(1.0, 1.0, 1.0)):
    grid = np.indices(shape).astype(float)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing, strict=True))
    return d2 <= radius**2


def test_shifted_ball_distances_are_bounded_by_the_shift():
    spacing = (2.0, 0.8, 0.8)
    a = _ball((40, 80, 80), (20, 40, 40), 12.0, spacing)
    b = np.roll(a, 3, axis=0)  # 6 mm along z
    assert hd95(a, b, spacing) <= 6.0 + 1e-9
    assert hd95(a, b, spacing) > 2.0
    assert nsd(a, b, spacing, tolerance=6.0) == 1.0
    assert nsd(a, b, spacing, tolerance=1.0) < 0.8
    assert hd95(a, a, spacing) == 0.0 and nsd(a, a, spacing, 0.0) == 1.0


def test_concentric_balls_match_the_analytic_values():
    small, big = _ball((64,) * 3, (32,) * 3, 10), _ball((64,) * 3, (32,) * 3, 15)
    assert dice(small, big) == pytest.approx(2 * 10**3 / (10**3 + 15**3), abs=0.02)
    assert iou(small, big) == pytest.approx(10**3 / 15**3, abs=0.02)
    assert hd95(small, big, (1, 1, 1)) == pytest.approx(5.0, abs=1.0)
    assert nsd(small, big, (1, 1, 1), tolerance=3.0) == 0.0


def test_empty_masks_follow_the_documented_definitions():
    empty, full = np.zeros((5, 5, 5), bool), _ball((5, 5, 5), (2, 2, 2), 1.5)
    assert (
        dice(empty, empty),
        iou(empty, empty),
        nsd(empty, empty, (1, 1, 1), 1),
        hd95(empty, empty, (1, 1, 1)),
    ) == (1.0, 1.0, 1.0, 0.0)
    assert (dice(full, empty), iou(empty, full), nsd(full, empty, (1, 1, 1), 1)) == (0.0, 0.0, 0.0)
    assert hd95(empty, full, (1, 1, 1)) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        dice(full, full[:4])
    with pytest.raises(ValueError, match="positive"):
        hd95(full, full, (1, 0, 1))


def _monai(pred, ref, spacing, tolerance):
    p, r = torch.from_numpy(pred[None, None]), torch.from_numpy(ref[None, None])
    kwargs = {"include_background": True}
    return (
        float(compute_dice(p, r, **kwargs)),
        float(compute_iou(p, r, **kwargs)),
        float(compute_hausdorff_distance(p, r, percentile=95, spacing=spacing, **kwargs)),
        float(compute_surface_dice(p, r, [tolerance], spacing=spacing, **kwargs)),
    )


def test_agrees_with_monai_to_1e_6_on_the_real_ct_organs(organs_path):
    labels = read_volume(organs_path)
    spacing = labels.spacing
    ref = labels.data
    # A plausible imperfect prediction: every organ shifted by a voxel, some eroded.
    pred = np.roll(ref, (1, -1), axis=(1, 2))
    pred = np.where(ndimage.binary_erosion(pred > 0, iterations=1), pred, 0)
    tolerance = 2.0
    rows = evaluate_labels(pred, ref, spacing, tolerance=tolerance, names=labels.label_names)
    checked = 0
    for row in rows:
        if row.present != "both":
            continue
        expected = _monai(pred == row.value, ref == row.value, spacing, tolerance)
        got = (row.dice, row.iou, row.hd95, row.nsd)
        # MONAI returns float32: distances in mm agree to its 7 significant digits.
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=row.name)
        checked += 1
    assert checked >= 20
    assert {r.name for r in rows} >= {"liver", "spleen"}


def test_missing_labels_are_reported_not_dropped():
    ref = np.zeros((6, 10, 10), np.uint8)
    ref[1:4, 2:5, 2:5] = 1
    ref[1:4, 6:9, 6:9] = 2
    pred = np.where(ref == 2, 3, ref)
    rows = {r.value: r for r in evaluate_labels(pred, ref, (1, 1, 1), names={1: "a", 2: "b"})}
    assert rows[1].dice == 1.0 and rows[1].present == "both"
    assert (
        rows[2].present == "reference only"
        and rows[2].dice == 0.0
        and rows[2].as_dict()["hd95"] is None
    )
    assert rows[3].present == "prediction only" and rows[3].ref_volume == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate_labels(pred[:5], ref, (1, 1, 1))


def test_label_volumes_are_in_millilitres():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[:5, :4, :5] = 7  # 100 voxels of 2 x 1 x 0.5 mm = 100 mm3 = 0.1 mL
    assert label_volumes_ml(labels, (2.0, 1.0, 0.5)) == {7: pytest.approx(0.1)}


def test_instance_f1_on_the_real_nuclei():
    ref = read_volume(data_file("nuclei_3d_labels.tif")).data
    ids = [v for v in np.unique(ref) if v]
    perfect = instance_f1(ref, ref)
    assert (perfect.f1, perfect.mean_true_positive_dice, perfect.true_positives) == (
        1.0,
        1.0,
        len(ids),
    )
    # Drop a quarter of the nuclei and relabel the rest: F1 counts the misses, not the ids.
    dropped = ids[::4]
    pred = np.where(np.isin(ref, dropped), 0, ref)
    pred = np.where(pred > 0, pred + 1000, 0)
    scores = instance_f1(pred, ref)
    assert scores.false_negatives == len(dropped) and scores.false_positives == 0
    assert scores.f1 == pytest.approx(2 * (len(ids) - len(dropped)) / (2 * len(ids) - len(dropped)))
    empty = instance_f1(np.zeros_like(ref), ref)
    assert empty.f1 == 0.0 and np.isnan(empty.mean_true_positive_dice)


def test_instance_matching_threshold():
    ref = np.zeros((1, 10, 20), np.uint8)
    ref[0, 2:8, 2:8] = 1
    pred = np.zeros_like(ref)
    pred[0, 2:8, 4:10] = 5  # IoU = 24 / 48 = 0.5: matched at 0.5, not above
    assert instance_f1(pred, ref, 0.5).true_positives == 1
    assert instance_f1(pred, ref, 0.51).true_positives == 0
    assert instance_f1(pred, ref).mean_true_positive_dice == pytest.approx(2 * 24 / 72)
