"""The point-click engine: slice segmentation, caching, propagation, corrections, ROI mode."""

import numpy as np
import pytest
import torch

from napari_textseg.core.io import read_volume
from napari_textseg.engine.interactive.prompts import PromptError
from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.session import PostProcessing, SegmentationSession
from napari_textseg.engine.interactive.session_factory import make_slice_model
from threshold_backend import ThresholdBackend, spheres
from tiny_models import TINY_SAM2_ARCH, TINY_SAM_ARCH


def _session(volume, backend=None, **kwargs):
    # Non-CT data already in [0, 255] is fed to the model unchanged.
    return SegmentationSession(
        volume, (1.0, 1.0, 1.0), "MR", backend or ThresholdBackend(), **kwargs
    )


def _click(session, *points, negative=()):
    pts = np.array(list(points) + list(negative), dtype=float)
    session.set_prompts(pts, np.array([1] * len(points) + [0] * len(negative)))


def test_one_click_propagates_both_ways_and_stops_after_the_object():
    volume, [sphere] = spheres()
    session = _session(volume)
    _click(session, (15, 32, 32))
    mask = session.propagate()
    np.testing.assert_array_equal(mask, sphere)
    visited = session.visited_slices()
    assert min(visited) == 9 and max(visited) == 21  # the sphere's extent, both directions


def test_progress_ends_at_its_total_when_the_object_ends_early():
    volume, _ = spheres()  # 40 slices, the object on 13 of them
    session = _session(volume)
    _click(session, (15, 32, 32))
    steps, events = session.propagate_steps(), []
    with pytest.raises(StopIteration):
        while True:
            events.append(next(steps))
    done = [d for d, _ in events]
    assert done == sorted(done) and events[-1] == (
        40,
        40,
    )  # a bar that fills, not one left part-way


def test_empty_slice_stop_rule_with_the_sam2_pass_structure():
    volume, [sphere] = spheres()
    session = _session(volume)
    _click(session, (15, 32, 32))
    session.propagate(PropagationSettings(empty_stop=0))
    assert max(session.visited_slices()) == 21  # projection stops when the mask vanishes


@pytest.mark.parametrize("direction, lo, hi", [("forward", 15, 21), ("backward", 9, 15)])
def test_direction(direction, lo, hi):
    volume, _ = spheres()
    session = _session(volume)
    _click(session, (15, 32, 32))
    session.propagate(PropagationSettings(direction=direction))
    assert (min(session.visited_slices()), max(session.visited_slices())) == (lo, hi)


def test_slice_range_holds():
    volume, [sphere] = spheres()
    session = _session(volume)
    _click(session, (15, 32, 32))
    mask = session.propagate(PropagationSettings(slice_range=(13, 17)))
    assert session.visited_slices() == list(range(13, 18))
    np.testing.assert_array_equal(mask[13:18], sphere[13:18])
    assert not mask[:13].any() and not mask[18:].any()


def test_cancel_leaves_the_previous_result_untouched():
    volume, [sphere] = spheres()
    session = _session(volume)
    _click(session, (15, 32, 32))
    before = session.propagate()
    calls = []
    with pytest.raises(InterruptedError, match="nothing was changed"):
        session.propagate(cancelled=lambda: len(calls) > 3 or calls.append(1))
    np.testing.assert_array_equal(session.mask(), before)


def test_correction_repropagates_from_its_slice():
    volume, [first, second] = spheres(centres=((12, 20, 20), (26, 44, 44)))
    session = _session(volume)
    _click(session, (12, 20, 20))
    session.propagate()
    assert not session.mask()[26].any()
    _click(session, (12, 20, 20), (26, 44, 44))  # the user clicks the second part too
    mask = session.propagate(from_slice=26)
    np.testing.assert_array_equal(mask, first | second)
    visited = session.visited_slices()
    assert len(visited) == len(set(visited))  # each slice listed once
    assert all(session.result.source[z] == 26 for z in range(27, 33))


def test_a_negative_click_alone_corrects_a_propagated_slice():
    """A slice that holds a propagated mask takes a negative click alone (the user says
    "not here"); on a slice with nothing to correct it is refused."""
    volume, [cylinder] = spheres()
    session = _session(volume)
    _click(session, (15, 32, 32))
    session.propagate()
    assert session.mask()[20].any()
    _click(session, (15, 32, 32), negative=[(20, 32, 32)])  # slice 20: no positive click
    assert not session.segment_slice(20)[20].any()
    assert session.mask()[19].any()  # the rest is kept
    session.reset()
    with pytest.raises(PromptError, match="slice 20 has only negative points"):
        _click(session, (15, 32, 32), negative=[(20, 32, 32)])


def test_clicks_on_a_cached_slice_do_not_re_encode_and_neighbours_are_prefetched():
    volume, _ = spheres()
    backend = ThresholdBackend()
    session = _session(volume, backend)
    _click(session, (15, 32, 32))
    session.segment_slice()
    session.cache.wait()
    encoded = len(backend.encoded)
    assert encoded == 5  # the slice and two neighbours on each side
    _click(session, (15, 32, 32), negative=[(15, 2, 2)])
    session.segment_slice()
    assert len(backend.encoded) == encoded
    assert session.cache.hits >= 1


def test_cache_budget_evicts_least_recently_used():
    volume, _ = spheres()
    session = _session(volume, cache_bytes=3 * 64 * 64 * 4 + 100)  # three float32 slices
    for z in range(6):
        session.cache.get((None, None, z))
    assert (
        len(session.cache) == 3
        and (None, None, 5) in session.cache
        and (None, None, 0) not in session.cache
    )


def test_roi_mode_pastes_back_exactly():
    volume, [sphere] = spheres(shape=(40, 128, 128), centres=((15, 100, 30),), radius=5)
    full = _session(volume)
    _click(full, (15, 100, 30))
    roi = _session(volume, roi_mm=24)
    _click(roi, (15, 100, 30))
    np.testing.assert_array_equal(roi.propagate(), full.propagate())
    np.testing.assert_array_equal(roi.mask(), sphere)
    assert roi.n_slices == 24


def test_roi_mode_on_strongly_anisotropic_spacing():
    volume, [sphere] = spheres(shape=(12, 128, 128), centres=((6, 64, 64),), radius=4)
    session = SegmentationSession(volume, (5.0, 0.7, 0.7), "MR", ThresholdBackend(), roi_mm=40)
    _click(session, (6, 64, 64))
    assert session.n_slices == 8 and session._work.shape[1:] == (57, 57)  # 40 mm at 5 and 0.7 mm
    inside_roi = np.zeros_like(sphere)
    inside_roi[2:10] = True
    np.testing.assert_array_equal(session.propagate(), sphere & inside_roi)


def test_confine_and_post_processing():
    volume, [a, b] = spheres(centres=((15, 20, 20), (15, 40, 40)), radius=5)
    volume[a & (np.indices(a.shape)[2] == 20)] = 0  # a slit inside sphere a
    session = _session(volume)
    _click(session, (15, 20, 22), (15, 40, 40))
    raw = session.propagate()
    kept = session.mask(PostProcessing(keep_clicked=True))
    np.testing.assert_array_equal(kept, raw)
    session.set_prompts(np.array([[15, 20, 22]]), np.array([1]))
    confined = SegmentationSession(volume, (1, 1, 1), "MR", ThresholdBackend(), confine=b)
    _click(confined, (15, 40, 40))
    assert not (confined.propagate() & ~b).any()


def test_any_axis():
    cuboid = np.zeros((40, 48, 56), dtype=bool)
    cuboid[10:30, 20:30, 15:45] = True
    session = _session(cuboid.astype(np.float32) * 255, axis=2)
    _click(session, (20, 24, 28))
    np.testing.assert_array_equal(session.propagate(), cuboid)
    assert session.visited_slices() == list(range(15, 45))  # slices along x


def test_the_panel_s_checks_once_and_maps_the_slice_into_the_roi(monkeypatch):
    """What S in the panel does: the prompts are checked once (before the worker), the
    session maps the volume slice into its ROI, and the 3-D result comes back; a box
    drawn in ROI mode lands on the object (it used to stay in volume coordinates)."""
    import napari_textseg.engine.interactive.prompted_volume as session_module

    volume, [sphere] = spheres(shape=(40, 128, 128), centres=((15, 100, 30),), radius=5)
    session = _session(volume, roi_mm=24)
    grouped = []
    real = session_module.group_by_slice
    monkeypatch.setattr(
        session_module, "group_by_slice", lambda *a, **k: grouped.append(1) or real(*a, **k)
    )
    prompts = session.check_prompts(
        np.array([[15.0, 100, 30]]), np.array([1]), {15: (94, 24, 106, 36)}
    )
    assert prompts.slice_to_segment(prefer_box=True) == 15 == prompts.slice_to_segment()
    mask = session.segment_slice(15, prompts)
    assert len(grouped) == 1  # grouped (and checked) once
    z0, y0, x0 = session.roi.start
    assert session.prompts[15 - z0].box == (94 - y0, 24 - x0, 106 - y0, 36 - x0)
    np.testing.assert_array_equal(mask[15], sphere[15])
    assert not mask[:15].any() and not mask[16:].any()


# --- bad input -------------------------------------------------------------------------


def test_bad_prompts_get_clear_errors():
    volume, _ = spheres()
    session = _session(volume)
    with pytest.raises(PromptError, match=r"outside the volume of shape \(40, 64, 64\)"):
        _click(session, (15, 70, 32))
    with pytest.raises(PromptError, match="only negative points"):
        _click(session, negative=[(15, 32, 32)])
    with pytest.raises(PromptError, match="click the object"):
        session.propagate()
    with pytest.raises(PromptError, match="click a positive point"):
        session.segment_slice()


def test_single_slice_volume_cannot_propagate():
    session = _session(np.random.default_rng(0).random((1, 32, 32), dtype=np.float32) * 100)
    _click(session, (0, 5, 5))
    session.segment_slice()
    with pytest.raises(PromptError, match="single slice"):
        session.propagate()


def test_click_outside_the_roi():
    volume, _ = spheres(shape=(40, 128, 128))
    session = _session(volume, roi_mm=16)
    _click(session, (15, 32, 32))
    with pytest.raises(PromptError, match="outside the ROI"):
        _click(session, (15, 32, 32), (15, 100, 100))


# --- the real architectures, on the real CT ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_backends():
    from napari_textseg.models.sam import build_sam
    from napari_textseg.models.sam2 import build_sam2_model

    torch.manual_seed(0)
    cpu = torch.device("cpu")
    return {
        "sam": make_slice_model(build_sam(TINY_SAM_ARCH), "sam", cpu),
        "sam2": make_slice_model(build_sam2_model(TINY_SAM2_ARCH), "sam2", cpu),
    }


@pytest.mark.parametrize("policy", ["fifo", "ranked"])
def test_sam2_memory_propagation_on_the_ct(tiny_backends, ct_path, policy):
    ct = read_volume(ct_path)
    session = SegmentationSession(ct.data, ct.spacing, ct.modality, tiny_backends["sam2"])
    session.set_prompts(np.array([[15, 50, 40]]), np.array([1]))
    mask = session.propagate(PropagationSettings(policy=policy, empty_stop=0, memory_size=3))
    assert mask.shape == ct.data.shape and mask.dtype == bool
    assert session.visited_slices() == list(range(30))  # every slice, both directions
    assert set(session.slice_scores()) == set(range(30))
    assert session.cache.misses == 30  # each slice encoded once across both passes


def test_sam2_correction_reuses_features(tiny_backends, ct_path):
    ct = read_volume(ct_path)
    session = SegmentationSession(ct.data, ct.spacing, ct.modality, tiny_backends["sam2"])
    session.set_prompts(np.array([[15, 50, 40]]), np.array([1]))
    session.propagate(PropagationSettings(empty_stop=0))
    session.set_prompts(np.array([[15, 50, 40], [22, 60, 70]]), np.array([1, 1]))
    session.segment_slice(22)
    session.propagate(PropagationSettings(empty_stop=0), from_slice=22)
    assert session.cache.misses == 30
    assert session.result.source[29] == 22 and session.result.source[0] == 15


def test_sam_projection_runs_on_the_ct(tiny_backends, ct_path):
    ct = read_volume(ct_path)
    session = SegmentationSession(
        ct.data, ct.spacing, ct.modality, tiny_backends["sam"], roi_mm=120
    )
    session.set_prompts(np.array([[15, 50, 40]]), np.array([1]))
    mask = session.propagate()
    assert mask.shape == ct.data.shape
    assert 15 in session.visited_slices()


def test_an_unknown_projection_is_refused():
    with pytest.raises(ValueError, match="unknown projection 'mask'"):
        PropagationSettings(projection="mask")
