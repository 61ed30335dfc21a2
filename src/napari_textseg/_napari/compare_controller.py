"""The compare section's work: score a prediction Labels layer against a reference one
(per-label Dice, IoU, HD95, NSD, or instance F1) in the background, from copies taken on
the main thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from napari_textseg._napari.layers import METADATA_KEY, label_table
from napari_textseg._napari.workspace import Workspace, workspace_for
from napari_textseg.core.errors import InputError
from napari_textseg.core.evaluation import MM_PER_UNIT, Evaluation, GridMismatch, iter_evaluate

if TYPE_CHECKING:
    import napari

__all__ = ["CompareController", "compare_controller_for", "layer_grid_mismatch", "layer_unit"]


def layer_grid_mismatch(pred: napari.layers.Labels, ref: napari.layers.Labels) -> str | None:
    """Why two Labels layers are not on one voxel grid, or ``None`` when they are."""
    if pred.data.shape != ref.data.shape:
        return f"{pred.name} is {pred.data.shape} voxels and {ref.name} {ref.data.shape}"
    if not np.allclose(pred.scale, ref.scale, rtol=1e-4):
        return (
            f"voxel sizes differ: {pred.name} {tuple(pred.scale)} vs {ref.name} {tuple(ref.scale)}"
        )
    if not np.allclose(pred.translate, ref.translate, atol=1e-3):
        return (
            f"origins differ: {pred.name} {tuple(pred.translate)} "
            f"vs {ref.name} {tuple(ref.translate)}"
        )
    return None


def layer_unit(layer: napari.layers.Labels) -> str:
    """The unit a Labels layer's voxel size is in ("mm", or "um" for microscopy)."""
    unit = (layer.metadata.get(METADATA_KEY) or {}).get("unit", "mm")
    return unit if unit in MM_PER_UNIT else "mm"


class CompareController:
    """Runs comparisons for one viewer's compare section."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    def compare(
        self,
        pred: napari.layers.Labels,
        ref: napari.layers.Labels,
        tolerance: float,
        instances: bool,
        done: Callable[[Evaluation], None],
    ) -> None:
        """Score ``pred`` against ``ref`` (``tolerance`` in the reference's unit); ``done``
        gets the report on the main thread."""
        tasks = self.workspace.tasks
        if tasks.busy("compare"):
            raise InputError("a comparison is already running")
        why = layer_grid_mismatch(pred, ref)
        if why:
            raise GridMismatch(f"{why}; nothing is resampled: compare layers on the same grid")
        pred_names = label_table(pred.data, {"features": pred.features})[0]
        ref_names = label_table(ref.data, {"features": ref.features})[0]
        unit = layer_unit(ref)
        # Copies: the user may keep painting while the worker reads.
        steps = iter_evaluate(
            np.array(pred.data),
            np.array(ref.data),
            tuple(float(s) for s in ref.scale[-3:]),
            unit,
            names={**pred_names, **ref_names},
            tolerance_mm=tolerance * MM_PER_UNIT[unit],
            instances=instances,
            prediction=pred.name,
            reference_name=ref.name,
            pred_names=pred_names,
            ref_names=ref_names,
        )

        def work():
            return (yield from steps)

        tasks.start("compare", work, done, f"comparing {pred.name} with {ref.name}")


def compare_controller_for(viewer: napari.Viewer) -> CompareController:
    """The compare controller of ``viewer``'s workspace."""
    return workspace_for(viewer).controller(CompareController)
