"""One object in one volume: clicks, slice masks, corrections and propagation.

The session holds the prompts and the latest result on top of the model's view of the
volume (:class:`~.model_volume.ModelVolume`: coordinates, ROI, embeddings). The command
line and the napari widgets both drive it; it imports no GUI code.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from napari_textseg.engine.interactive.postprocess import (
    PostProcessing,
    fill_holes,
    keep_clicked_components,
)
from napari_textseg.engine.interactive.prompted_volume import PromptedVolume
from napari_textseg.engine.interactive.prompts import (
    CheckedPrompts,
    PromptError,
    SlicePrompts,
)
from napari_textseg.engine.interactive.propagate import make_propagator
from napari_textseg.engine.interactive.propagation_result import (
    PropagationResult,
    PropagationSettings,
    drive,
)
from napari_textseg.engine.interactive.slice_model import SliceMask, SliceModel

__all__ = ["CheckedPrompts", "PostProcessing", "SegmentationSession"]

_PREFETCH_RADIUS = 2
_UNDO_DEPTH = 3  # each holds a whole result (masks and logits of every slice it changed)


class SegmentationSession(PromptedVolume):
    """Click-to-segment and propagation on one volume with one model.

    ``data`` is the (z, y, x) volume as read (HU for CT), ``spacing`` its voxel size,
    ``modality`` chooses the intensity window (``"CT"``) or percentiles, ``slice_model``
    is a :class:`~.slice_model.SliceModel`; ``confine`` (an organ's boolean mask)
    restricts the result. The other options set the model's view of the volume: slicing
    axis, ROI mode, embedding cache and disk store (:class:`~.model_volume.ModelVolume`).
    """

    def __init__(
        self,
        data: np.ndarray,
        spacing: tuple[float, float, float],
        modality: str,
        slice_model: SliceModel,
        *,
        confine: np.ndarray | None = None,
        **volume_options: Any,
    ):
        if confine is not None and np.shape(confine) != np.shape(data):
            raise PromptError(
                f"the confining mask has shape {np.shape(confine)}, the volume {np.shape(data)}"
            )
        super().__init__(data, spacing, modality, slice_model, **volume_options)
        self.confine = None if confine is None else np.asarray(confine, dtype=bool)
        self.result = PropagationResult()
        # The latest decode of each prompted slice and the prompts it was made from:
        # propagation reuses it, so S then Shift+S decodes a slice once, as Shift+S alone.
        self._decoded: dict[int, tuple[SlicePrompts, SliceMask]] = {}
        # What each propagation replaced (result and prompts), for undo.
        self._history: list[tuple[PropagationResult, dict[int, SlicePrompts]]] = []
        self._last_prompts: dict[int, SlicePrompts] = {}  # what the latest propagation ran from

    def _segmented_slices(self) -> set[int]:
        return set(self.result.logits)  # set(): one snapshot, a worker may be adding slices

    def _slice_prompts(self, z: int) -> SlicePrompts:
        """The user's prompts on slice ``z``, added to the prompt propagation projected onto
        it (SAM): a correction click refines what that slice was segmented from, as SAM
        refines a mask from its prompts plus a new click."""
        user, made = self.prompts[z], self.result.prompts.get(z)
        if made is None:
            return user
        return SlicePrompts(
            np.vstack([made.points_yx, user.points_yx]),
            np.concatenate([made.labels, user.labels]),
            user.box if user.box is not None else made.box,
        )

    # -- segmentation ------------------------------------------------------------------

    def segment_slice(
        self,
        at: int | None = None,
        prompts: CheckedPrompts | None = None,
        post: PostProcessing = PostProcessing(),
    ) -> np.ndarray:
        """Segment the prompted volume slice ``at`` (along the session's axis; default: the
        only prompted one), with ``prompts`` if given (S in the panel); returns the 3-D result.

        A slice already segmented feeds its low-res logits back, so a correction click
        refines the previous mask instead of starting over (SAM2 clamps them to +-32, as
        its video predictor does for clicks on a segmented frame).
        """
        with self.cache.serving():  # a background precompute waits for this decode
            if prompts is not None:
                self.set_prompts(prompts)
            if not self.prompts:
                raise PromptError("click a positive point on the object first")
            if at is None:
                if len(self.prompts) != 1:
                    raise PromptError("several slices are prompted: say which one to segment")
                z = next(iter(self.prompts))
            else:
                z = at - self._slice_offset()
            self._decode(z)
        return self.mask(post)

    def _decode(self, z: int) -> SliceMask:
        """Decode working-frame slice ``z`` from its prompts; keep the result; prefetch its
        neighbours."""
        if z not in self.prompts:
            raise PromptError(f"slice {z + self._slice_offset()} has no prompt")
        prompts = self._slice_prompts(z)
        result = self.slice_model.decode(self._features(z), prompts, self.result.logits.get(z))
        self._decoded[z] = (prompts, result)
        self.result.masks[z], self.result.scores[z], self.result.logits[z] = (
            result.mask,
            result.score,
            result.logits,
        )
        self.result.source[z] = z
        nearby = [z + d for d in range(1, _PREFETCH_RADIUS + 1)] + [
            z - d for d in range(1, _PREFETCH_RADIUS + 1)
        ]
        self.cache.prefetch(self._key(n) for n in nearby if 0 <= n < self.n_slices)
        return result

    def propagate_steps(
        self,
        settings: PropagationSettings | None = None,
        *,
        from_slice: int | None = None,
        post: PostProcessing = PostProcessing(),
    ) -> Generator[tuple[int, int], None, np.ndarray]:
        """Propagate slice by slice: yields ``(done, total)``, returns the (z, y, x) mask.

        The session's result changes only when the generator runs to its end, so
        closing it early (Cancel) leaves the previous result exactly as it was.
        ``from_slice`` re-propagates only from that prompted slice (after a correction
        there); slices it reaches are replaced, the rest are kept.
        """
        if not self.prompts:
            raise PromptError(
                "propagation needs a prompt: click the object on at least one slice first"
            )
        settings = settings or PropagationSettings()
        self.check_settings(settings)
        if settings.slice_range is not None:
            lo, hi = settings.slice_range
            outside = sorted(
                z for z in self.prompts if not lo <= z <= hi
            )  # the frame plan_passes uses
            if outside:
                raise PromptError(
                    f"the prompt on slice {outside[0]} lies outside the slice range {lo}-{hi}"
                )
        # Propagation encodes the slices it needs itself; a prefetch still queued from the
        # click would run beside it and split the same cores (one already running finishes).
        self.cache.cancel_prefetch()
        prompts = {z: self._slice_prompts(z) for z in self.prompts}
        propagator = make_propagator(
            self.slice_model, self._features, self.n_slices, settings, prompts
        )
        decoded = {
            z: r for z, (p, r) in self._decoded.items() if z in prompts and p.same_as(prompts[z])
        }
        with (
            self.cache.serving()
        ):  # a background precompute waits until the run ends (or is cancelled)
            run = yield from propagator.iter_run(
                prompts, self.result.logits, only_from=from_slice, decoded=decoded
            )
        for z in prompts:
            self._decoded[z] = (prompts[z], propagator.anchors[z])
        self._history = [
            *self._history[-(_UNDO_DEPTH - 1) :],
            (self.result.copy(), dict(self._last_prompts)),
        ]
        self._last_prompts = dict(self.prompts)
        if from_slice is None:
            for z in self.prompts:  # a corrected slice keeps the prompt its correction refines
                if z in self.result.prompts:
                    run.prompts.setdefault(z, self.result.prompts[z])
            self.result = run
        else:  # a key box owns the slices nearest to it, reached or not
            owned = propagator.owned(from_slice) if propagator.owns_nearest else set()
            self.result = self.result.merged(run, owned)
        return self.mask(post)

    def propagate(
        self,
        settings: PropagationSettings | None = None,
        *,
        from_slice: int | None = None,
        post: PostProcessing = PostProcessing(),
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """:meth:`propagate_steps` to the end; returns the (z, y, x) boolean mask.

        Raises
        ------
        InterruptedError
            When ``cancelled()`` turned true: the partial run is discarded and the
            previous result is left as it was.
        """

        def interrupted() -> np.ndarray:
            raise InterruptedError("propagation cancelled; nothing was changed")

        steps = self.propagate_steps(settings, from_slice=from_slice, post=post)
        return drive(steps, progress, cancelled, on_cancel=interrupted)

    def mask(self, post: PostProcessing = PostProcessing()) -> np.ndarray:
        """The current 3-D result in volume (z, y, x) coordinates."""
        mask = self._from_work(self.result.volume(self._work.shape))  # type: ignore[arg-type]
        if post.fill_holes:
            mask = np.moveaxis(fill_holes(np.moveaxis(mask, self.axis, 0)), 0, self.axis)
        if post.keep_clicked and len(self._positive):
            mask = keep_clicked_components(mask, self._positive)
        if self.confine is not None:
            mask &= self.confine
        return mask

    def visited_slices(self) -> list[int]:
        """Slice indices (along the slicing axis of the volume) the last run segmented."""
        return sorted(z + self._slice_offset() for z in self.result.visited)

    def slice_scores(self) -> dict[int, float]:
        """Predicted IoU per segmented slice, keyed by volume slice index."""
        return {z + self._slice_offset(): s for z, s in self.result.scores.items()}

    def new_key_slice(self) -> int | None:
        """After a propagation, the one slice (working frame) given a box since, when the
        other prompts are unchanged: propagating from it alone corrects the slices nearest
        to it (key boxes). ``None`` otherwise."""
        if not self._last_prompts or not self.slice_model.box_only:
            return None
        new = [z for z in self.prompts if z not in self._last_prompts]
        kept = all(
            z in self.prompts and self.prompts[z].same_as(p) for z, p in self._last_prompts.items()
        )
        return new[0] if len(new) == 1 and kept else None

    def undo(self) -> list[int] | None:
        """Revert the latest propagation; returns the prompted slices (volume indices) it had
        started from, or ``None`` when there is nothing to undo."""
        if not self._history:
            return None
        self.result, self._last_prompts = self._history.pop()
        self._decoded = {}
        return sorted(z + self._slice_offset() for z in self._last_prompts)

    def reset(self) -> None:
        """Forget the prompts, the ROI and the result; cached embeddings are kept."""
        self.prompts = {}
        self._positive = np.zeros((0, 3))
        self.roi = None
        self._roi_work = None
        self.result = PropagationResult()
        self._decoded = {}
        self._history = []
        self._last_prompts = {}
