"""One object in one volume: clicks, slice masks, corrections and propagation.

The session owns the model-ready volume (windowed once), the slice-feature cache, the
prompts and the latest result. The command line and the napari widgets both drive it;
it imports no GUI code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path

import numpy as np
import torch

from napari_textseg.core.intensity import Window, no_contrast_reason, normalize_for_model
from napari_textseg.engine.interactive.embedding_store import EmbeddingStore
from napari_textseg.engine.interactive.features import FeatureCache
from napari_textseg.engine.interactive.litemedsam_slices import BOX_ONLY_MESSAGE
from napari_textseg.engine.interactive.postprocess import (
    PostProcessing,
    fill_holes,
    keep_clicked_components,
)
from napari_textseg.engine.interactive.prompts import (
    CheckedPrompts,
    PromptError,
    SlicePrompts,
    check_points,
    group_by_slice,
)
from napari_textseg.engine.interactive.propagate import (
    PropagationResult,
    PropagationSettings,
    drive,
    make_propagator,
)
from napari_textseg.engine.interactive.roi import Roi, roi_around, roi_around_boxes
from napari_textseg.engine.interactive.slice_models import Sam2SliceModel, SliceMask, SliceModel

__all__ = ["CheckedPrompts", "PostProcessing", "SegmentationSession"]

_PREFETCH_RADIUS = 2
_BACKGROUND_PAUSE_S = 0.1  # how often a waiting precompute looks again, and can be cancelled
_UNDO_DEPTH = 3  # each holds a whole result (masks and logits of every slice it changed)


class SegmentationSession:
    """Click-to-segment and propagation on one volume with one model.

    Parameters
    ----------
    data
        The (z, y, x) volume as read (e.g. HU for CT).
    spacing
        (z, y, x) voxel size, used by ROI mode.
    modality
        ``"CT"`` windows the data, anything else is percentile-normalised.
    slice_model
        A SAM or SAM2 :class:`~napari_textseg.engine.interactive.slice_models.SliceModel`.
    axis
        The axis slices are taken along (0: axial for the display convention).
    roi_mm
        Tumour ROI mode for clicks: segment inside a box of this size (mm) around them.
    roi_context
        Tumour ROI mode for a box model: every slice cropped to a square of this many times
        the first box's longer side (at least 64 pixels, :mod:`.roi`) around it.
    confine
        Optional boolean (z, y, x) mask (an organ) the result is restricted to.
    cache_bytes
        Memory budget of the slice-embedding cache (default 1 GiB: about 60 slices of
        SAM2 at 1024 px in float32 on a CPU, 120 in bfloat16 on CUDA; least recently used
        slices are dropped).
    cache_dtype
        ``None`` (default) stores slice embeddings as the encoder made them, which keeps
        masks identical to the reference predictors'; ``torch.float16`` halves a CPU
        cache at a cost of about 1.5e-4 in mask logits.
    """

    def __init__(
        self,
        data: np.ndarray,
        spacing: tuple[float, float, float],
        modality: str,
        slice_model: SliceModel,
        *,
        axis: int = 0,
        window: str | Window = "soft_tissue",
        roi_mm: float | None = None,
        roi_context: float | None = None,
        confine: np.ndarray | None = None,
        cache_bytes: int = 1024**3,
        cache_dtype: torch.dtype | None = None,
        store: EmbeddingStore | None = None,
        name: str = "",
    ):
        if np.asarray(data).ndim != 3:
            raise PromptError(f"point segmentation needs a 3-D volume, got shape {np.shape(data)}")
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
        blank = no_contrast_reason(data)
        if blank:
            raise PromptError(f"nothing to segment: {blank} (a blank or damaged image?)")
        if confine is not None and np.shape(confine) != np.shape(data):
            raise PromptError(
                f"the confining mask has shape {np.shape(confine)}, the volume {np.shape(data)}"
            )
        self.shape = tuple(int(s) for s in np.shape(data))
        self.axis = axis
        self._order = [axis] + [a for a in range(3) if a != axis]  # volume axes in working order
        self.spacing = tuple(float(s) for s in spacing)
        self.slice_model = slice_model
        self.roi_mm = roi_mm
        self.roi_context = roi_context
        self.confine = None if confine is None else np.asarray(confine, dtype=bool)
        self._data, self._modality, self._window = data, modality, window
        self.name = name  # the image's name, for the disk store's listing
        self._normalised: np.ndarray | None = None
        self._roi_work: np.ndarray | None = None
        self.roi: Roi | None = None
        self.cache = FeatureCache(self._encode, cache_bytes, cache_dtype)
        self.store = store
        self._store_folder: Path | None = None
        self._store_lock = threading.Lock()
        self.prompts: dict[int, SlicePrompts] = {}
        self._positive: np.ndarray = np.zeros((0, 3))
        self.result = PropagationResult()
        # The latest decode of each prompted slice and the prompts it was made from:
        # propagation reuses it, so S then Shift+S decodes a slice once, as Shift+S alone.
        self._decoded: dict[int, tuple[SlicePrompts, SliceMask]] = {}
        # What each propagation replaced (result and prompts), for undo.
        self._history: list[tuple[PropagationResult, dict[int, SlicePrompts]]] = []
        self._last_prompts: dict[int, SlicePrompts] = {}  # what the latest propagation ran from

    # -- geometry helpers ------------------------------------------------------------

    @property
    def _model_input(self) -> np.ndarray:
        """The windowed volume, slicing axis first; computed on first use (in a worker)."""
        if self._normalised is None:
            # A model may read volumes prepared its own way (LiteMedSAM: the challenge's uint8).
            prepare = getattr(self.slice_model, "prepare_volume", normalize_for_model)
            self._normalised = np.moveaxis(
                prepare(self._data, self._modality, self._window), self.axis, 0
            )
        return self._normalised

    @property
    def frames(self) -> np.ndarray:
        """The model-ready volume (0-255, the window applied), slicing axis first."""
        return self._model_input

    @property
    def _work(self) -> np.ndarray:
        """What the model sees: the ROI crop in ROI mode, else the whole volume."""
        return self._roi_work if self._roi_work is not None else self._model_input

    def _to_work(self, points_zyx: np.ndarray) -> np.ndarray:
        """Volume (z, y, x) -> working frame: slicing axis first, then the ROI origin."""
        points = np.asarray(points_zyx, dtype=float).reshape(-1, 3)[:, self._order]
        return self.roi.to_roi(points) if self.roi is not None else points

    def _from_work(self, mask: np.ndarray) -> np.ndarray:
        """A working-frame mask -> a (z, y, x) volume mask."""
        full = self.roi.paste(mask) if self.roi is not None else mask
        return np.moveaxis(full, 0, self.axis)

    def _key(self, z: int) -> tuple:
        """Cache key of working-frame slice ``z``: the ROI it belongs to, and the slice."""
        return (self.roi.start, self.roi.shape, z) if self.roi is not None else (None, None, z)

    def _stored(self) -> Path | None:
        """This image's folder in the disk store (found once: it hashes the frames)."""
        if self.store is None:
            return None
        with self._store_lock:
            if self._store_folder is None:
                frames = self._model_input
                key = self.store.image_key(frames, self.axis, self.slice_model.cache_tag)
                meta = {
                    "shape": list(self.shape),
                    "axis": self.axis,
                    "model": self.slice_model.cache_tag,
                    "modality": self._modality,
                    "window": str(self._window),
                    "name": self.name,
                }
                self._store_folder = self.store.open(key, meta)
            return self._store_folder

    def _encode(self, key: tuple):
        start, shape, z = key
        if start is None:
            folder = self._stored()
            features = self.store.load(folder, z) if folder is not None else None  # type: ignore[union-attr]
            if features is None:
                features = self.slice_model.encode(self._model_input[z])
                if folder is not None:
                    self.store.save(folder, z, features)  # type: ignore[union-attr]
            return features
        # Crop the one plane from the key itself: a prefetch may outlive the ROI it was for.
        plane = Roi(tuple(start[1:]), tuple(shape[1:]), self._model_input.shape[1:])  # type: ignore[arg-type]
        index = start[0] + z
        if 0 <= index < self._model_input.shape[0]:
            frame = plane.crop(self._model_input[index], fill=0.0)
        else:
            frame = np.zeros(shape[1:], dtype=self._model_input.dtype)
        return self.slice_model.encode(frame)

    def _features(self, z: int):
        return self.cache.get(self._key(z))

    @property
    def n_slices(self) -> int:
        """Slices along the working axis (inside the ROI in ROI mode)."""
        return int(self.roi.shape[0]) if self.roi is not None else int(self.shape[self.axis])

    # -- prompts -----------------------------------------------------------------------

    def set_prompts(
        self,
        points_zyx: np.ndarray | CheckedPrompts,
        labels: np.ndarray | None = None,
        boxes: dict[int, tuple[float, float, float, float]] | None = None,
    ) -> None:
        """Replace the prompts: points in volume (z, y, x) voxels, labels 1/0, boxes by slice;
        or prompts :meth:`check_prompts` checked already (they are not checked again).

        In ROI mode the ROI is placed around the positive clicks the first time and
        kept for corrections; a later prompt outside it is an error.
        """
        checked = (
            points_zyx
            if isinstance(points_zyx, CheckedPrompts)
            else self.check_prompts(points_zyx, labels, boxes)
        )  # type: ignore[arg-type]
        points, labels = checked.points, checked.labels
        if self.uses_roi:
            in_work = points[:, self._order]
            if self.roi is None:
                shape = tuple(self.shape[a] for a in self._order)
                if self.roi_mm is not None:
                    spacing = tuple(self.spacing[a] for a in self._order)
                    self.roi = roi_around(in_work[labels == 1], spacing, self.roi_mm, shape)  # type: ignore[arg-type]
                else:
                    boxes = [p.box for p in checked.by_slice.values() if p.box is not None]
                    self.roi = roi_around_boxes(boxes, shape, float(self.roi_context))  # type: ignore[arg-type]
                self._roi_work = self.roi.crop(self._model_input, fill=0.0)
            elif not self.roi.contains(in_work):
                raise PromptError(
                    "a click lies outside the ROI; start a new object to move the ROI"
                )
        self.prompts = self._in_work_frame(checked.by_slice)
        self._positive = points[labels == 1]

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

    def check_prompts(
        self,
        points_zyx: np.ndarray,
        labels: np.ndarray,
        boxes: dict[int, tuple[float, float, float, float]] | None = None,
    ) -> CheckedPrompts:
        """Check prompts once, before any work; raise :class:`PromptError` for prompts this
        session cannot use.

        Points must lie in the volume and each slice (along the session's axis) needs a
        positive click or a box, except a slice that already holds a result: there a
        negative click alone is a correction. A box-only model takes no points.
        """
        points, labels = check_points(points_zyx, labels, self.shape)
        note = ""
        if getattr(self.slice_model, "box_only", False) and len(points):
            title = getattr(self.slice_model, "title", "this model")
            if not boxes:
                raise PromptError(BOX_ONLY_MESSAGE.format(model=title))
            note = (
                f"{title} takes boxes only: the {len(points)} "
                f"point{'s' if len(points) > 1 else ''} "
                f"{'were' if len(points) > 1 else 'was'} ignored and the boxes used"
            )
            points, labels = np.zeros((0, 3)), np.zeros(0, dtype=int)
        # set(): one snapshot of the keys, a worker may be adding slices
        corrected = {z + self._slice_offset() for z in set(self.result.logits)}
        shape = tuple(self.shape[a] for a in self._order)
        by_slice = group_by_slice(points[:, self._order], labels, shape, boxes, corrected=corrected)  # type: ignore[arg-type]
        return CheckedPrompts(points, labels, dict(boxes or {}), by_slice, self.axis, note)

    def check_settings(self, settings: PropagationSettings) -> None:
        """Refuse settings this model cannot use, before any work: a memory policy other than
        SAM2's own on a model without memory (the command line and the panel both ask here)."""
        if settings.policy != "fifo" and not isinstance(self.slice_model, Sam2SliceModel):
            raise PromptError(
                f"the {settings.policy} memory bank is SAM2's: choose a SAM2 model, or the fifo "
                "policy (this model has no memory)"
            )

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

    def segment_slice(self, z: int | None = None) -> np.ndarray:
        """Segment the prompted slice ``z`` (working frame; default: the only one).

        A slice already segmented feeds its low-res logits back, so a correction click
        refines the previous mask instead of starting over (SAM2 clamps them to +-32, as
        its video predictor does for clicks on a segmented frame). Returns the (z, y, x)
        volume mask holding just that slice.
        """
        if not self.prompts:
            raise PromptError("click a positive point on the object first")
        if z is None:
            if len(self.prompts) != 1:
                raise PromptError("several slices are prompted: say which one to segment")
            z = next(iter(self.prompts))
        single = np.zeros(self._work.shape, dtype=bool)
        single[z] = self._decode(z).mask
        return self._from_work(single)

    def segment_prompted_slice(
        self, prompts: CheckedPrompts, at: int, post: PostProcessing = PostProcessing()
    ) -> np.ndarray:
        """S in the panel: use ``prompts``, segment the volume's slice ``at`` (along the
        session's axis; the session maps it into its ROI) and return the 3-D result to show."""
        with self.cache.serving():
            self.set_prompts(prompts)
            self._decode(at - self._slice_offset())
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
        else:
            self.result = self.result.copy()
            if (
                propagator.owns_nearest
            ):  # a key box: the slices nearest to it are its own, reached or not
                for z in propagator.owned(from_slice) - set(run.visited):
                    self.result.drop(z)
            for z in run.visited:  # the new run's masks win on the slices it reached
                if z not in self.result.source:
                    self.result.visited.append(z)
                self.result.masks[z], self.result.scores[z] = run.masks[z], run.scores[z]
                self.result.logits[z], self.result.source[z] = run.logits[z], run.source[z]
                if z in run.prompts:
                    self.result.prompts[z] = run.prompts[z]
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

    @property
    def uses_roi(self) -> bool:
        """Whether the model sees a crop around the prompts (tumour ROI mode)."""
        return self.roi_mm is not None or self.roi_context is not None

    def _slice_offset(self) -> int:
        return self.roi.start[0] if self.roi is not None else 0

    def visited_slices(self) -> list[int]:
        """Slice indices (along the slicing axis of the volume) the last run segmented."""
        return sorted(z + self._slice_offset() for z in self.result.visited)

    def slice_scores(self) -> dict[int, float]:
        """Predicted IoU per segmented slice, keyed by volume slice index."""
        return {z + self._slice_offset(): s for z, s in self.result.scores.items()}

    def precompute_steps(self, start: int = 0) -> Generator[tuple[int, int], None, tuple[int, int]]:
        """Encode every slice not yet cached, from volume slice ``start`` outwards, each when
        no prompt is waiting for the encoder; yields ``(done, total)``, returns how many
        slices were encoded and how many read from the disk store. Closing the generator
        (Cancel) stops between two slices."""
        if self.uses_roi:  # ROI mode encodes crops around the prompt, not whole slices
            return 0, 0
        n = self.n_slices
        start = min(max(int(start), 0), n - 1)
        order = [start] + [z for d in range(1, n) for z in (start + d, start - d) if 0 <= z < n]
        todo = [(None, None, z) for z in order if (None, None, z) not in self.cache]  # whole slices
        hits = self.store.hits if self.store is not None else 0
        # slices this loop brought in (a prompt or a propagation may have done others meanwhile)
        fetched = 0
        for done, key in enumerate(todo, 1):
            if key not in self.cache:
                while not self.cache.try_background(
                    key
                ):  # a prompt or a propagation runs: it goes first
                    time.sleep(_BACKGROUND_PAUSE_S)
                    yield done - 1, len(todo)  # (a Cancel meanwhile stops here, between two tries)
                fetched += 1
            yield done, len(todo)
        read = (self.store.hits - hits) if self.store is not None else 0
        return max(fetched - read, 0), read

    def new_key_slice(self) -> int | None:
        """After a propagation, the one slice (working frame) given a box since, when the
        other prompts are unchanged: propagating from it alone corrects the slices nearest
        to it (key boxes). ``None`` otherwise."""
        if not self._last_prompts or not getattr(self.slice_model, "box_only", False):
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

    def close(self) -> None:
        """Stop background prefetching and free the cache."""
        self.cache.close()
        self.cache.clear()
