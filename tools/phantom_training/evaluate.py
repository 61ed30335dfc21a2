"""Held-out Dice of the phantom models through the plugin's own pipeline
(``tools/phantom_training/phantom_scores.py``: reader, model store, session)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from phantom_training.phantom_scores import (
    click_scores,
    correction_gains,
    held_out_cases,
    propagation_scores,
    swapped_click_scores,
)

from napari_textseg.engine.interactive.propagate import PROJECTIONS, PropagationSettings
from napari_textseg.engine.interactive.session_factory import make_slice_model
from napari_textseg.models.loader import load_model


def evaluate(model_id: str, checkpoint: Path, seeds=range(1, 6), log=print) -> dict[str, float]:
    """Mean Dice of one click, propagation (fifo and ranked), ROI vs full slice and a correction."""
    loaded = load_model(model_id, checkpoint, device="cpu")
    backend = make_slice_model(loaded.model, loaded.card.family, loaded.device)
    with tempfile.TemporaryDirectory() as tmp:
        cases = held_out_cases(Path(tmp), seeds)
        _, swapped = swapped_click_scores(cases, backend)
        scores = {
            "click_organ": click_scores(cases, backend, "organ"),
            "click_nucleus": click_scores(cases, backend, "nucleus"),
            "lesion_full": click_scores(cases, backend, "lesion"),
            "lesion_roi": click_scores(cases, backend, "lesion", roi_mm=40.0),
            "swapped_click_organ": swapped,
            "correction_gain": correction_gains(cases, backend),
        }
        if loaded.card.family == "sam":  # prompt projection: no memory bank, no policy
            for projection in PROJECTIONS:
                scores[f"propagate_{projection}_projection"] = propagation_scores(
                    cases, backend, PropagationSettings(projection=projection)
                )
        else:
            for policy in ("fifo", "ranked"):
                scores[f"propagate_{policy}"] = propagation_scores(
                    cases, backend, PropagationSettings(policy=policy)
                )
    summary = {k: float(np.mean(v)) for k, v in scores.items() if v}
    log(
        f"{model_id}: " + ", ".join(f"{k} {v:.3f} (n={len(scores[k])})" for k, v in summary.items())
    )
    return summary
