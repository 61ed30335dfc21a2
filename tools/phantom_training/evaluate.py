"""Held-out Dice of the phantom models through the plugin's own pipeline.

Phantoms are written to NIfTI / TIFF and read back with the plugin's reader, models
are loaded through the model store, and segmentation runs in a ``SegmentationSession``:
the same path the widgets and the command line take.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.core.phantoms import Phantom, ct_phantom, nuclei_phantom
from napari_textseg.engine.backends import make_backend
from napari_textseg.engine.propagate import PropagationSettings
from napari_textseg.engine.session import SegmentationSession
from napari_textseg.models.loader import load_model


def _roundtrip(phantom: Phantom, folder: Path, name: str):
    return read_volume(phantom.save(folder, name)[0])


def evaluate(model_id: str, checkpoint: Path, seeds=range(1, 6), log=print) -> dict[str, float]:
    """Mean Dice of one click (slice), propagation (3-D, fifo and ranked) and ROI vs full slice."""
    loaded = load_model(model_id, checkpoint, device="cpu")
    backend = make_backend(loaded.model, loaded.card.family, loaded.device)
    scores: dict[str, list[float]] = {"click_organ": [], "click_lesion": [], "click_nucleus": [],
                                      "propagate_fifo": [], "propagate_ranked": [],
                                      "lesion_full": [], "lesion_roi": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for phantom in (ct_phantom(seed), nuclei_phantom(seed)):
                volume = _roundtrip(phantom, Path(tmp), f"p{seed}{phantom.modality}")
                session = SegmentationSession(volume.data, volume.spacing, phantom.modality, backend)
                for obj in phantom.objects:
                    mask = phantom.mask(obj.value)
                    z, y, x = phantom.centre_click(obj.value)
                    click = np.array([[z, y, x]], dtype=float)
                    session.reset()
                    session.set_prompts(click, np.array([1]))
                    pred = session.segment_slice()
                    key = ("click_nucleus" if phantom.modality != "CT"
                           else "click_lesion" if obj.parent else "click_organ")
                    scores[key].append(dice(pred[z], mask[z]))
                    if phantom.modality == "CT" and obj.parent == 0 and obj.name.startswith("organ"):
                        for policy in ("fifo", "ranked"):
                            pred3 = session.propagate(PropagationSettings(policy=policy))
                            scores[f"propagate_{policy}"].append(dice(pred3, mask))
                    if obj.parent:
                        scores["lesion_full"].append(dice(pred[z], mask[z]))
                        roi = SegmentationSession(volume.data, volume.spacing, "CT", backend, roi_mm=40.0)
                        roi.set_prompts(click, np.array([1]))
                        scores["lesion_roi"].append(dice(roi.segment_slice()[z], mask[z]))
                        roi.close()
                session.close()
    summary = {k: float(np.mean(v)) for k, v in scores.items() if v}
    log(f"{model_id}: " + ", ".join(f"{k} {v:.3f} (n={len(scores[k])})" for k, v in summary.items()))
    return summary
