"""The phantom models through the full pipeline, on held-out phantoms.

Phantoms are written as a scanner / microscope would (NIfTI, ImageJ TIFF) and read back
with the plugin's reader; the committed checkpoints are resolved by the model store and
loaded strictly; sessions do the windowing, caching, prompting and propagation. The
phantom seeds here (1-3) are never used in training (seeds >= 10000).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.core.phantoms import Phantom, ct_phantom, nuclei_phantom
from napari_textseg.data import bundled_model_path
from napari_textseg.engine.backends import make_backend
from napari_textseg.engine.session import SegmentationSession
from napari_textseg.models.loader import load_model
from napari_textseg.models.registry import get_card
from napari_textseg.models.store import resolve_checkpoint

SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    """Held-out phantoms on disk, and the volumes the reader gives back."""
    folder = tmp_path_factory.mktemp("phantoms")
    out = []
    for seed in SEEDS:
        for phantom in (ct_phantom(seed), nuclei_phantom(seed)):
            image, _ = phantom.save(folder, f"{phantom.modality}_{seed}")
            out.append((phantom, read_volume(image)))
    return out


@pytest.fixture(scope="module")
def backends():
    """The committed phantom checkpoints, resolved by the store with no model file given."""
    loaded = {family: load_model(f"phantom_{family}", device="cpu") for family in ("sam",)}
    return {family: make_backend(m.model, m.card.family, m.device) for family, m in loaded.items()}


def _session(volume, phantom: Phantom, backend, **kwargs) -> SegmentationSession:
    return SegmentationSession(volume.data, volume.spacing, phantom.modality, backend, **kwargs)


def _organs(phantom: Phantom) -> list[int]:
    return [o.value for o in phantom.objects if o.name.startswith("organ")]


def _click_dice(session, phantom, value, swap=False) -> float:
    mask = phantom.mask(value)
    z, y, x = phantom.centre_click(value)
    if swap:
        y, x = x, y
    session.reset()
    session.set_prompts(np.array([[z, y, x]]), np.array([1]))
    return dice(session.segment_slice()[z], mask[z])


def test_phantom_checkpoint_is_a_small_official_format_file_resolved_by_the_store():
    card = get_card("phantom_sam")
    assert "phantom" in card.tags and "not for real images" in card.title
    _, path = resolve_checkpoint(card.id)
    assert path == bundled_model_path(card.filename)
    assert path.stat().st_size <= 10 * 1024**2
    state = torch.load(path, map_location="cpu", weights_only=True)  # a plain state dict, like SAM's
    assert any(k.startswith("image_encoder.") for k in state)
    record = json.loads(bundled_model_path("training.json").read_text())
    assert record["phantom_sam"]["command"].startswith("python tools/train_phantom_models.py")


@pytest.mark.parametrize("family", ["sam"])
def test_a_click_on_the_organ_beats_the_same_click_with_x_and_y_swapped(phantom_files, backends, family):
    """A transposed click or slice costs most of the Dice: these models can tell.

    (The issue's acceptance bars, one click >= 0.85 and propagation >= 0.80, are not met
    by the current phantom checkpoints; see docs/models.md.)
    """
    right, swapped = [], []
    for phantom, volume in phantom_files:
        if phantom.modality != "CT":
            continue
        session = _session(volume, phantom, backends[family])
        for value in _organs(phantom):
            mask = phantom.mask(value)
            z, y, x = phantom.centre_click(value)
            if mask[z, x, y]:  # the swapped click still lands on the organ: not a test of anything
                continue
            right.append(_click_dice(session, phantom, value))
            swapped.append(_click_dice(session, phantom, value, swap=True))
        session.close()
    assert len(swapped) >= 4
    assert np.mean(right) - np.mean(swapped) >= 0.3, (np.mean(right), np.mean(swapped))


def test_segment_command_with_the_phantom_model_offline(phantom_files, tmp_path, capsys):
    """The command line picks the phantom model by id, offline, and writes labels on the
    phantom's grid that overlap the clicked organ."""
    from napari_textseg.cli import main

    phantom, volume = phantom_files[0]
    value = _organs(phantom)[0]
    mask = phantom.mask(value)
    z, y, x = phantom.centre_click(value)
    out = tmp_path / "organ.nii.gz"
    code = main(["segment", str(volume.geometry.path), "--point", f"{z},{y},{x}", "--propagate",
                 "--model", "phantom_sam", "--name", "organ", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    written = read_volume(out)
    assert written.data.shape == mask.shape and written.spacing == volume.spacing
    assert written.label_names == {1: "organ"}
    assert (written.data[z] > 0)[y, x]
