"""Propagation of a prompted object through the slices of a volume.

Both model families share the pass structure: from every prompted slice, one pass runs
forwards (increasing z) and one backwards, each until the next prompted slice, the end
of the allowed range, or the stop rule (the mask empty on N consecutive slices). A
slice between two prompted slices is reached from both; the result from the nearer
prompted slice is kept.

- SAM2 (:class:`Sam2Propagator`): each pass reads memory as ``SAM2VideoPredictor`` does
  on a fresh state per direction (mask memories, object pointers, temporal encodings:
  :mod:`.memory_attention`); every prompted slice is a conditioning memory; with the
  ``ranked`` policy a bank (:mod:`.memory`) picks which past slices give mask memories.
- SAM (:class:`SamProjectionPropagator`): no memory; each slice is prompted from its
  neighbour's mask (its deepest interior point and its box, or with ``projection="point"``
  the point alone, as micro-sam's ``single_point``), stopping when consecutive masks
  overlap with IoU < 0.5 (micro-sam's rule).
- Box-prompted models (:class:`BoxPropagator`, LiteMedSAM): MedSAM's 3-D box recipe. Each
  slice takes the bounding box of its neighbour's mask, widened; an empty neighbour falls
  back to the prompted slice's box. Over a slice range (a 3-D box) every slice of the
  range is segmented; without one, a pass ends where the mask vanishes or consecutive
  masks overlap with IoU < 0.5. With several boxes (key boxes), every slice belongs to
  its nearest key slice (a tie to the box drawn later): a pass stops where the slices
  start to belong to the next key, so a new key box changes only the slices nearest to it.

Image features come from a shared cache, so a second pass, a correction or a
re-propagation reuses them instead of re-encoding slices.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np
import torch
from scipy import ndimage

from napari_textseg.engine.interactive.features import Features
from napari_textseg.engine.interactive.heap import release_free_memory
from napari_textseg.engine.interactive.memory import MemoryEntry, make_bank
from napari_textseg.engine.interactive.memory_attention import MemoryView
from napari_textseg.engine.interactive.passes import owned_end, plan_passes
from napari_textseg.engine.interactive.prompts import PromptError, SlicePrompts
from napari_textseg.engine.interactive.propagation_result import (
    DIRECTIONS,
    MAX_MEMORY,
    PROJECTIONS,
    PropagationResult,
    PropagationSettings,
    drive,
)
from napari_textseg.engine.interactive.sam2_slices import Sam2SliceModel
from napari_textseg.engine.interactive.slice_model import SliceMask, SliceModel, orig_hw

__all__ = [
    "DIRECTIONS",
    "MAX_MEMORY",
    "PROJECTIONS",
    "BoxPropagator",
    "deepest_point",
    "PropagationResult",
    "PropagationSettings",
    "Sam2Propagator",
    "SamProjectionPropagator",
    "drive",
    "make_propagator",
    "owned_end",
    "plan_passes",
]


class _Propagator:
    """The pass loop shared by both families; subclasses segment one slice."""

    def __init__(
        self,
        slice_model: SliceModel,
        features: Callable[[int], Features],
        n_slices: int,
        settings: PropagationSettings,
    ):
        self.slice_model = slice_model
        self.features = features
        self.n_slices = n_slices
        self.settings = settings
        self.planned: list[tuple[int, int, int]] = []

    # Key slices own the slices nearest to them (box models): passes stop half-way.
    owns_nearest = False

    def owned(self, key: int) -> set[int]:
        """The slices the passes from ``key`` were planned to cover, ``key`` included."""
        covered = {key}
        for start, step, end in self.planned:
            if start == key:
                covered.update(range(start, end + step, step))
        return covered

    def _start_passes(self) -> None: ...

    @property
    def _stop_rule(self) -> int:
        """Consecutive empty slices that end a pass (0: none)."""
        return self.settings.empty_stop

    def _start_pass(self, start: int, step: int) -> None: ...

    def _segment(self, z: int, previous: SliceMask, start: int, step: int) -> SliceMask | None:
        raise NotImplementedError

    def _segment_prompted(
        self, z: int, prompts: SlicePrompts, logits: torch.Tensor | None
    ) -> SliceMask:
        return self.slice_model.decode(self.features(z), prompts, logits)

    def iter_run(
        self,
        prompts: dict[int, SlicePrompts],
        logits: dict[int, torch.Tensor] | None = None,
        *,
        only_from: int | None = None,
        decoded: dict[int, SliceMask] | None = None,
    ) -> Generator[tuple[int, int], None, PropagationResult]:
        """Segment the prompted slices, then propagate from them, one slice per step.

        Yields ``(done, total)`` after each slice and returns the result. Closing the
        generator (a Cancel) stops it between two slices. ``only_from`` re-propagates
        from one prompted slice (after a correction there). A prompted slice in
        ``decoded`` (segmented from these prompts already, by **S**) is not decoded
        again; any other is decoded from its prompts and its ``logits``.
        """
        if not prompts:
            raise PromptError("propagation needs a prompt: click the object on at least one slice")
        if self.n_slices < 2:
            raise PromptError("the volume has a single slice: there is nothing to propagate to")
        logits = logits or {}
        self.prompts = prompts
        order = {z: i for i, z in enumerate(prompts)} if self.owns_nearest else None
        passes = self.planned = plan_passes(
            list(prompts), self.n_slices, self.settings, only_from, order
        )
        total = sum(abs(end - start) for start, _, end in passes) + len(prompts)
        done = 0
        result = PropagationResult()
        self.anchors: dict[int, SliceMask] = {}  # the prompted slices' results
        decoded = decoded or {}
        for z in sorted(prompts):
            anchor = decoded.get(z) or self._segment_prompted(z, prompts[z], logits.get(z))
            self.anchors[z] = anchor
            result.keep(z, anchor, z)
            done += 1
            yield done, total
        self._start_passes()
        for start, step, end in passes:
            self._start_pass(start, step)
            previous = self.anchors[start]
            empty_run = 0
            pass_end = done + abs(end - start)
            for z in range(start + step, end + step, step):
                current = self._segment(z, previous, start, step)
                release_free_memory()
                done += 1
                yield done, total
                if current is None:
                    break
                result.keep(z, current, start)
                empty_run = empty_run + 1 if not current.mask.any() else 0
                if self._stop_rule and empty_run >= self._stop_rule:
                    break
                previous = current
            if done < pass_end:  # the object ended early: the rest of the pass is done too
                done = pass_end
                yield done, total
        return result

    def run(
        self,
        prompts: dict[int, SlicePrompts],
        logits: dict[int, torch.Tensor] | None = None,
        *,
        only_from: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> PropagationResult:
        """:meth:`iter_run` to the end, with a progress callback and a cancel check.

        A cancelled run returns an empty result marked ``cancelled``.
        """
        return drive(
            self.iter_run(prompts, logits, only_from=only_from),
            progress,
            cancelled,
            on_cancel=lambda: PropagationResult(cancelled=True),
        )


class Sam2Propagator(_Propagator):
    """Propagation with SAM2's memory attention, as ``SAM2VideoPredictor`` tracks.

    Each pass is a fresh tracking state: the prompted slices, and the slices this pass
    has tracked. ``fifo`` reads SAM2's own memory selection; ``ranked`` lets a bank pick
    the past slices that give mask memories.
    """

    slice_model: Sam2SliceModel

    def __init__(self, slice_model: Sam2SliceModel, *args, **kwargs):
        super().__init__(slice_model, *args, **kwargs)
        model = slice_model.model
        # SAM2 has trained temporal encodings for num_maskmem - 1 past memories.
        self.max_memory = int(model.num_maskmem) - 1
        # How far back a pass still needs a slice's mask memory, and its object pointer.
        self._mask_reach = self.max_memory * int(model.memory_temporal_stride_for_eval) + 1
        self._pointer_reach = int(model.max_obj_ptrs_in_encoder)
        self._cond: dict[int, dict] = {}

    def _start_passes(self) -> None:
        self._cond = {
            z: self.slice_model.remember(self.features(z), a) for z, a in self.anchors.items()
        }

    def _start_pass(self, start: int, step: int) -> None:
        self._past: dict[int, dict] = {}
        self._size = min(self.settings.memory_size, self.max_memory)
        self._bank = None
        if self.settings.policy != "fifo":
            self._bank = make_bank(
                self._size, self.settings.policy, self.settings.offload, self.settings.iou_gate
            )

    def _forget(self, z: int, step: int) -> None:
        # Keep what later slices of this pass can still read: mask memories for a few
        # slices, object pointers for max_obj_ptrs_in_encoder.
        self._past.pop(z - step * self._pointer_reach, None)
        old = self._past.get(z - step * self._mask_reach)
        if old is not None and "maskmem_features" in old:
            self._past[z - step * self._mask_reach] = {"obj_ptr": old["obj_ptr"]}

    def _segment(self, z: int, previous: SliceMask, start: int, step: int) -> SliceMask | None:
        bank = self._bank
        view = MemoryView(
            cond=self._cond,
            past=self._past,
            mask_memory=None if bank is None else [e.output for e in bank.entries],
            max_past=None if self._size == self.max_memory else self._size,
        )
        result = self.slice_model.track(self.features(z), z, view, self.n_slices, reverse=step < 0)
        state = result.state
        assert state is not None
        if self.settings.offload:  # long volumes: memories wait in host RAM
            state["maskmem_features"] = state["maskmem_features"].to("cpu", non_blocking=True)
        self._past[z] = state
        if bank is not None:
            signature = state["maskmem_features"].detach().flatten()
            bank.add(MemoryEntry(index=z, output=state, iou=result.score, signature=signature))
        self._forget(z, step)
        return result


# Consecutive slice masks overlapping less than this end a pass (micro-sam's stop rule).
MIN_SLICE_IOU = 0.5


def deepest_point(mask: np.ndarray) -> np.ndarray:
    """(y, x) of the pixel farthest inside ``mask`` (the border counts as outside)."""
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return np.array(np.unravel_index(int(np.argmax(distance)), mask.shape), dtype=float)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


class SamProjectionPropagator(_Propagator):
    """SAM (v1) propagation: each slice is prompted from its neighbour's mask."""

    min_iou = MIN_SLICE_IOU

    def _segment(self, z: int, previous: SliceMask, start: int, step: int) -> SliceMask | None:
        if not previous.mask.any():
            return None
        box = None
        if self.settings.projection == "box":
            ys, xs = np.nonzero(previous.mask)
            box = (float(ys.min()), float(xs.min()), float(ys.max() + 1), float(xs.max() + 1))
        prompts = SlicePrompts(
            points_yx=deepest_point(previous.mask)[None], labels=np.array([1]), box=box
        )
        current = self.slice_model.decode(self.features(z), prompts)
        if _iou(previous.mask, current.mask) < self.min_iou:
            return None
        current.prompts = prompts
        return current


class BoxPropagator(_Propagator):
    """MedSAM's 3-D box recipe (``CVPR24_LiteMedSAM_infer.py``), for box-only models.

    Every slice of a given range is segmented (the released script's downward loop once
    stopped a slice short of the box's first slice; here the whole range is done). With
    several key boxes, each slice is segmented from its nearest box only.
    """

    owns_nearest = True

    @property
    def _stop_rule(self) -> int:
        return 0 if self.settings.slice_range is not None else self.settings.empty_stop

    def _start_pass(self, start: int, step: int) -> None:
        features = self.features(start)
        self._first_box = self.slice_model.model_box(self.prompts[start].box, orig_hw(features))  # type: ignore[attr-defined]
        self._last_box = self._first_box

    def _segment(self, z: int, previous: SliceMask, start: int, step: int) -> SliceMask | None:
        box = self.slice_model.box_from_mask(previous.mask)  # type: ignore[attr-defined]
        if self.settings.slice_range is not None:
            if box is None:  # LiteMedSAM's script re-uses the prompted box, MedSAM's the last one
                previous_box = self.slice_model.box_fallback == "previous"
                box = self._last_box if previous_box else self._first_box
            self._last_box = box
            return self.slice_model.decode_model_box(self.features(z), box)  # type: ignore[attr-defined]
        # No range: the object ends where its mask vanishes or jumps (micro-sam's rule, as
        # for SAM). A box model always finds something in a box, so "vanishes" alone
        # would run to the volume's end.
        if box is None:
            return None
        current = self.slice_model.decode_model_box(self.features(z), box)  # type: ignore[attr-defined]
        return current if _iou(previous.mask, current.mask) >= MIN_SLICE_IOU else None


def make_propagator(
    slice_model: SliceModel,
    features: Callable[[int], Features],
    n_slices: int,
    settings: PropagationSettings,
    prompts: dict[int, SlicePrompts] | None = None,
) -> _Propagator:
    """SAM2 memory propagation for SAM2 models; MedSAM's box recipe for box-only models, and
    for MedSAM given boxes alone; prompt projection for SAM models."""
    boxes_alone = bool(prompts) and all(
        p.box is not None and not len(p.labels) for p in prompts.values()
    )
    if slice_model.box_only or (boxes_alone and slice_model.box_recipe):
        return BoxPropagator(slice_model, features, n_slices, settings)
    if slice_model.has_memory:
        return Sam2Propagator(slice_model, features, n_slices, settings)
    return SamProjectionPropagator(slice_model, features, n_slices, settings)
