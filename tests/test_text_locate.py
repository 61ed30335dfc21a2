"""From CLIP probability maps to the key slice and SAM points, with the CT priors."""

from __future__ import annotations

import numpy as np

from napari_textseg.engine.text.locate import (
    LocateSettings,
    body_mask,
    hu_prior,
    locate,
    scored_slices,
)


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_scored_slices_are_evenly_spread_and_capped():
    assert list(scored_slices(5, 24)) == [0, 1, 2, 3, 4]
    picked = scored_slices(300, 24)
    assert len(picked) == 24 and picked[0] == 0 and picked[-1] == 299
    assert np.ptp(np.diff(picked)) <= 1


def test_positive_points_land_in_the_strongest_region_of_the_strongest_slice():
    maps = np.full((3, 64, 64), 0.1, dtype=np.float32)
    maps[0][_disk((64, 64), (20, 20), 6)] = 0.6  # weaker object on another slice
    maps[2][_disk((64, 64), (40, 44), 9)] = 0.9
    where = locate(maps, np.array([0, 10, 20]), None, None, LocateSettings(positive=3, negative=2))
    assert where.slice == 20
    positive = where.points_zyx[where.labels == 1]
    negative = where.points_zyx[where.labels == 0]
    assert len(positive) >= 1 and len(negative) == 2
    assert all(_disk((64, 64), (40, 44), 9)[int(y), int(x)] for _, y, x in positive)
    assert not any(_disk((64, 64), (40, 44), 12)[int(y), int(x)] for _, y, x in negative)
    assert where.confidence > 0.8


def test_the_ct_priors_move_the_location_from_air_to_the_organs_hu_range():
    hu = np.full((1, 64, 64), -1000.0, dtype=np.float32)  # air
    body = _disk((64, 64), (32, 32), 24)
    hu[0][body] = 30.0  # soft tissue
    liver = _disk((64, 64), (30, 22), 7)
    hu[0][liver] = 100.0
    maps = np.full((1, 64, 64), 0.2, dtype=np.float32)
    maps[0][_disk((64, 64), (4, 4), 4)] = 0.9  # CLIP fires on the air in a corner
    maps[0][liver] = 0.5
    blind = locate(maps, np.array([0]), None, None)
    assert not body[tuple(blind.points_zyx[blind.labels == 1][0, 1:].astype(int))]
    guided = locate(maps, np.array([0]), hu, (40, 160))
    for _, y, x in guided.points_zyx[guided.labels == 1]:
        assert liver[int(y), int(x)]
    for _, y, x in guided.points_zyx[guided.labels == 0]:
        assert body[int(y), int(x)]  # negatives inside the patient, not in the air


def test_body_mask_fills_the_lungs_and_the_hu_prior_is_soft():
    hu = np.full((32, 32), -1000.0)
    hu[4:28, 4:28] = 40.0
    hu[10:20, 10:20] = -850.0  # lung inside the body
    assert body_mask(hu)[15, 15] and not body_mask(hu)[0, 0]
    prior = hu_prior(np.array([100.0, 160.0, 220.0, 400.0]), (40, 160))
    assert prior[0] == prior[1] == 1.0 and 0.5 < prior[2] < 1.0 and prior[3] < 0.01
