"""The shipped phantom SAM through the full pipeline, on held-out phantoms.

Phantoms are written as a scanner / microscope would (NIfTI, ImageJ TIFF) and read back
with the plugin's reader; the committed checkpoint is resolved by the model store and
loaded strictly; sessions do the windowing, caching, prompting and propagation
(``tools/phantom_training/phantom_scores.py``). The phantom seeds here (1-3) are never used
in training (seeds >= 10000).

The thresholds are the issue's bars (one click >= 0.85, propagation from one slice
>= 0.80, tumour ROI mode better by 0.10, a correction gaining more than 0.05 and never
costing more than 0.02), which the shipped checkpoint passes on these seeds with a
margin (docs/models.md), so a pipeline bug a user would hit (a swapped axis, a
transposed slice, a wrong window, an off-by-one paste-back, a propagation that drops its
prompt) fails them. The phantom SAM 2 bars (memory propagation) wait in
``tools/phantom_training/acceptance_tests.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from phantom_training.phantom_scores import (
    click_scores,
    correction_gains,
    held_out_cases,
    organs,
    propagation_scores,
    swapped_click_scores,
)

from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.data import bundled_model_path
from napari_textseg.engine.interactive.propagate import PROJECTIONS, PropagationSettings
from napari_textseg.engine.interactive.session_factory import make_slice_model
from napari_textseg.models.loader import load_model
from napari_textseg.models.registry import get_card
from napari_textseg.models.store import resolve_checkpoint

# The bars. The shipped checkpoint on seeds 1-3 (docs/models.md): organ click 0.92,
# nucleus click 0.96, propagation 0.86 (point and box projection, the default) / 0.80 (point alone).
CLICK, PROPAGATION = 0.85, 0.80


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Held-out phantoms on disk (seeds 1-3), and the volumes the reader gives back."""
    return held_out_cases(tmp_path_factory.mktemp("phantoms"))


@pytest.fixture(scope="module")
def backend():
    """The committed phantom SAM, resolved by the store with no model file given."""
    loaded = load_model("phantom_sam", device="cpu")
    return make_slice_model(loaded.model, loaded.card.family, loaded.device)


def test_phantom_checkpoint_is_a_small_official_format_file_resolved_by_the_store():
    card = get_card("phantom_sam")
    assert "phantom" in card.tags and "not for real images" in card.title
    _, path = resolve_checkpoint(card.id)
    assert path == bundled_model_path(card.filename)
    assert path.stat().st_size <= 10 * 1024**2
    state = torch.load(
        path, map_location="cpu", weights_only=True
    )  # a plain state dict, like SAM's
    assert any(k.startswith("image_encoder.") for k in state)
    record = json.loads(bundled_model_path("training.json").read_text())
    assert record["phantom_sam"]["command"].startswith("python tools/train_phantom_models.py")


@pytest.mark.parametrize("kind", ["organ", "nucleus"])
def test_one_click_segments_the_clicked_object(cases, backend, kind):
    scores = click_scores(cases, backend, kind)
    assert len(scores) >= 6
    assert np.mean(scores) >= CLICK, scores


def test_the_same_click_with_x_and_y_swapped_does_not_segment_the_organ(cases, backend):
    """What a transposed click or slice would give: the test above can fail."""
    right, swapped = swapped_click_scores(cases, backend)
    assert len(swapped) >= 4
    assert np.mean(right) >= CLICK, right
    assert max(swapped) < CLICK, swapped
    assert np.mean(right) - np.mean(swapped) >= 0.5, (right, swapped)


def test_prompt_projection_from_one_slice_recovers_the_3d_organ(cases, backend):
    """SAM propagation: each next slice prompted with the deepest point and the box of
    its neighbour's mask."""
    scores = propagation_scores(cases, backend)
    assert np.mean(scores) >= PROPAGATION, scores


def test_the_default_projection_is_the_better_one(cases, backend):
    """Issue 16: the default prompt projection is the one that propagates better on held-out
    phantoms. With a model trained on unsquashed slices that is point + box (0.90 against
    0.77 for the point alone on seeds 1-5; docs/models.md)."""
    default = PropagationSettings().projection
    other = next(p for p in PROJECTIONS if p != default)
    ours = propagation_scores(cases, backend)
    alternative = propagation_scores(cases, backend, PropagationSettings(projection=other))
    assert np.mean(ours) >= np.mean(alternative), (
        default,
        np.mean(ours),
        other,
        np.mean(alternative),
    )


@pytest.mark.parametrize("projection", ["box", "point"])
def test_projection_prompts_each_slice_from_its_neighbour(cases, backend, projection):
    """Every slice propagation reached was prompted with its neighbour's deepest point, and
    with its box only under box projection."""
    phantom = cases[0].phantom
    session = cases[0].session(backend)
    session.set_prompts(np.array([phantom.centre_click(organs(phantom)[0])]), np.array([1]))
    session.propagate(PropagationSettings(projection=projection))
    made = session.result.prompts
    assert len(made) >= 10, sorted(made)
    assert all(
        len(p.labels) == 1 and (p.box is not None) == (projection == "box") for p in made.values()
    )
    session.close()


def test_tumour_roi_mode_beats_the_full_slice_on_small_lesions(cases, backend):
    """The issue's bar: a lesion click in tumour ROI mode (40 mm) beats the same click on the
    whole slice by at least 0.10 Dice (the lesion fills the model's input there)."""
    full = click_scores(cases, backend, "lesion")
    roi = click_scores(cases, backend, "lesion", roi_mm=40.0)
    assert len(roi) >= 4
    assert np.mean(roi) - np.mean(full) >= 0.10, (np.mean(roi), np.mean(full))


def test_a_correction_click_on_a_propagated_slice_refines_it(cases, backend):
    """A click on the worst propagated slice adds to the prompt propagation made there, so
    even a negative click alone trims the mask instead of erasing it (it used to cost
    0.24 Dice on average). The issue's bar: a gain of more than 0.05 on average, and no
    slice more than 0.02 worse."""
    gains = correction_gains(cases, backend)
    assert len(gains) >= 3, "too few slices needed a correction to tell"
    assert np.mean(gains) > 0.05 and min(gains) > -0.02, gains


def test_segment_command_with_the_phantom_model_offline(cases, backend, tmp_path, capsys):
    """The command line picks the phantom model by id, offline, and writes labels on the
    phantom's grid that recover the clicked organ: exactly what the panels give for the
    same click with their default settings, S then Shift+S (issue 16: 0.92 in the GUI,
    0.65 from the command line before)."""
    from napari_textseg.cli import main
    from napari_textseg.engine.interactive.session import SegmentationSession

    phantom, volume = cases[0].phantom, cases[0].volume
    value = organs(phantom)[0]
    mask = phantom.mask(value)
    z, y, x = phantom.centre_click(value)
    out = tmp_path / "organ.nii.gz"
    code = main(
        [
            "segment",
            str(volume.geometry.path),
            "--point",
            f"{z},{y},{x}",
            "--propagate",
            "--model",
            "phantom_sam",
            "--name",
            "organ",
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    written = read_volume(out)
    assert written.data.shape == mask.shape and written.spacing == volume.spacing
    assert written.label_names == {1: "organ"}
    assert dice(written.data > 0, mask) >= PROPAGATION

    gui = SegmentationSession(volume.data, volume.spacing, volume.modality, backend)
    gui.set_prompts(np.array([[z, y, x]]), np.array([1]))
    gui.segment_slice(int(z))  # S
    assert np.array_equal(gui.propagate(PropagationSettings()), written.data > 0)  # Shift+S
