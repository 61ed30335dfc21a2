"""Prompts on the model's view of a volume: checked once, grouped by slice along the
slicing axis, moved into the ROI (placed around them in ROI mode), and refused in one
line where this model or this volume cannot use them."""

from __future__ import annotations

import numpy as np

from napari_textseg.engine.interactive.model_volume import ModelVolume
from napari_textseg.engine.interactive.prompts import (
    CheckedPrompts,
    PromptError,
    SlicePrompts,
    check_points,
    group_by_slice,
)
from napari_textseg.engine.interactive.propagation_result import PropagationSettings
from napari_textseg.engine.interactive.roi import roi_around, roi_around_boxes
from napari_textseg.engine.interactive.slice_model import BOX_ONLY_MESSAGE

__all__ = ["PromptedVolume"]


class PromptedVolume(ModelVolume):
    """A :class:`~.model_volume.ModelVolume` with the user's prompts, slice by slice."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prompts: dict[int, SlicePrompts] = {}  # working frame: slicing axis, ROI
        self._positive: np.ndarray = np.zeros((0, 3))  # positive clicks, volume (z, y, x)

    def _segmented_slices(self) -> set[int]:
        """Working-frame slices holding a result (a negative click alone corrects them)."""
        return set()

    def set_prompts(
        self,
        points_zyx: np.ndarray | CheckedPrompts,
        labels: np.ndarray | None = None,
        boxes: dict[int, tuple[float, float, float, float]] | None = None,
    ) -> None:
        """Replace the prompts: points in volume (z, y, x) voxels, labels 1/0, boxes by slice;
        or prompts :meth:`check_prompts` checked already (they are not checked again).
        In ROI mode the ROI is placed around them the first time (see ``_place_roi``)."""
        if isinstance(points_zyx, CheckedPrompts):
            checked = points_zyx
        else:
            checked = self.check_prompts(points_zyx, labels, boxes)  # type: ignore[arg-type]
        if self.uses_roi:
            self._place_roi(checked)
        self.prompts = self._in_work_frame(checked.by_slice)
        self._positive = checked.points[checked.labels == 1]

    def check_prompts(
        self,
        points_zyx: np.ndarray,
        labels: np.ndarray,
        boxes: dict[int, tuple[float, float, float, float]] | None = None,
        strokes: tuple = (),
    ) -> CheckedPrompts:
        """Check prompts once, before any work; raise :class:`PromptError` for prompts this
        session cannot use.

        Points must lie in the volume and each slice (along the session's axis) needs a
        positive click or a box, except a slice that already holds a result: there a
        negative click alone is a correction. A box-only model takes no points, and no
        slice model takes scribbles or lasso (nnInteractive does).
        """
        if strokes:
            raise PromptError(
                f"{self.slice_model.title} takes clicks and boxes: scribbles and lasso are "
                "nnInteractive's (load nninteractive), or clear them with New object"
            )
        points, labels = check_points(points_zyx, labels, self.shape)
        note = ""
        if self.slice_model.box_only and len(points):
            title = self.slice_model.title
            if not boxes:
                raise PromptError(BOX_ONLY_MESSAGE.format(model=title))
            note = (
                f"{title} takes boxes only: the {len(points)} "
                f"point{'s' if len(points) > 1 else ''} "
                f"{'were' if len(points) > 1 else 'was'} ignored and the boxes used"
            )
            points, labels = np.zeros((0, 3)), np.zeros(0, dtype=int)
        corrected = {z + self._slice_offset() for z in self._segmented_slices()}
        shape = tuple(self.shape[a] for a in self._order)
        by_slice = group_by_slice(points[:, self._order], labels, shape, boxes, corrected=corrected)  # type: ignore[arg-type]
        return CheckedPrompts(points, labels, dict(boxes or {}), by_slice, self.axis, note)

    def check_settings(self, settings: PropagationSettings) -> None:
        """Refuse settings this model cannot use, before any work: a memory policy other than
        SAM2's own on a model without memory (the command line and the panel both ask here)."""
        if settings.policy != "fifo" and not self.slice_model.has_memory:
            raise PromptError(
                f"the {settings.policy} memory bank is SAM2's: choose a SAM2 model, or the fifo "
                "policy (this model has no memory)"
            )

    def _place_roi(self, checked: CheckedPrompts) -> None:
        """ROI mode: the ROI around the positive clicks (or the boxes) the first time, kept
        for corrections; a later prompt outside it is an error."""
        in_work = checked.points[:, self._order]
        if self.roi is None:
            shape = tuple(self.shape[a] for a in self._order)
            if self.roi_mm is not None:
                spacing = tuple(self.spacing[a] for a in self._order)
                positive = in_work[checked.labels == 1]
                self.roi = roi_around(positive, spacing, self.roi_mm, shape)  # type: ignore[arg-type]
            else:
                boxes = [p.box for p in checked.by_slice.values() if p.box is not None]
                self.roi = roi_around_boxes(boxes, shape, float(self.roi_context))  # type: ignore[arg-type]
            self._roi_work = self.roi.crop(self._model_input, fill=0.0)
        elif not self.roi.contains(in_work):
            raise PromptError("a click lies outside the ROI; start a new object to move the ROI")

    def _in_work_frame(self, by_slice: dict[int, SlicePrompts]) -> dict[int, SlicePrompts]:
        """Per-slice prompts of the whole volume, moved into the ROI (the same without one)."""
        if self.roi is None:
            return dict(by_slice)
        z0, y0, x0 = self.roi.start
        moved = {z - z0: prompts.shifted(y0, x0) for z, prompts in by_slice.items()}
        depth, height, width = self.roi.shape
        for z, prompts in moved.items():
            box = prompts.box
            if not 0 <= z < depth or (
                box is not None
                and not (
                    0 <= min(box[0], box[2])
                    and max(box[0], box[2]) <= height
                    and 0 <= min(box[1], box[3])
                    and max(box[1], box[3]) <= width
                )
            ):
                raise PromptError(
                    "a prompt lies outside the ROI; start a new object to move the ROI"
                )
        return moved
