"""nnInteractive as a native 3-D backend: points, 2-D boxes, scribbles and lasso in napari's
(z, y, x) voxels, one nnInteractive session per image.

The session is nnInteractive's own (``nnInteractiveInferenceSession``, or the remote client
with the same API); this module only turns the panel's and the command line's prompts
into its interactions and keeps the result. The volume goes in as napari holds it,
(z, y, x), which is also the order nnU-Net's readers give (SimpleITK arrays), with raw
intensities: nnInteractive normalises them itself. Every interaction refines the one
object: the mask is nnInteractive's target buffer, and ``undo`` is its one-level undo.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from napari_textseg.engine.interactive.prompts import CheckedPrompts, PromptError, check_points

__all__ = [
    "NnInteractiveModel",
    "NnInteractiveObject",
    "NnInteractiveSession",
    "box_interaction",
    "path_mask",
    "polygon_mask",
]


def box_interaction(
    z0: int, z1: int, box_yx: tuple[float, float, float, float], shape: tuple[int, ...]
) -> list[list[int]]:
    """A box as nnInteractive's ``[[z0, z1), [y0, y1), [x0, x1)]``: the voxels whose centres
    lie in the drawn rectangle (corners in voxel coordinates, as napari gives them). v1 of
    the model takes 2-D boxes: a box over several slices is refused."""
    if z1 - z0 != 1:
        raise PromptError(
            "nnInteractive v1 takes 2-D boxes: draw the box on one slice (a 3-D box is not used)"
        )
    y0, x0, y1, x1 = box_yx
    (ya, yb), (xa, xb) = sorted((y0, y1)), sorted((x0, x1))
    lo = [int(np.ceil(ya - 1e-6)), int(np.ceil(xa - 1e-6))]
    hi = [int(np.floor(yb + 1e-6)) + 1, int(np.floor(xb + 1e-6)) + 1]
    lo = [max(v, 0) for v in lo]
    hi = [min(v, s) for v, s in zip(hi, shape[1:], strict=True)]
    if not 0 <= z0 < shape[0] or hi[0] <= lo[0] or hi[1] <= lo[1]:
        raise PromptError(f"the box {tuple(box_yx)} on slice {z0} holds no voxel of the image")
    return [[z0, z1], [lo[0], hi[0]], [lo[1], hi[1]]]


def path_mask(shape: tuple[int, ...], z: int, vertices_yx: np.ndarray) -> np.ndarray:
    """A scribble: the line through ``vertices_yx`` on slice ``z``, one voxel wide."""
    from skimage.draw import line

    mask = np.zeros(shape, dtype=np.uint8)
    points = np.rint(np.asarray(vertices_yx, dtype=float)).astype(int)
    if len(points) == 1:
        points = np.vstack([points, points])
    for (ya, xa), (yb, xb) in zip(points[:-1], points[1:], strict=True):
        rr, cc = line(ya, xa, yb, xb)
        keep = (rr >= 0) & (rr < shape[1]) & (cc >= 0) & (cc < shape[2])
        mask[z, rr[keep], cc[keep]] = 1
    return mask


def polygon_mask(shape: tuple[int, ...], z: int, vertices_yx: np.ndarray) -> np.ndarray:
    """A lasso: the polygon ``vertices_yx`` on slice ``z``, filled (voxel centres inside)."""
    from skimage.draw import polygon

    mask = np.zeros(shape, dtype=np.uint8)
    vertices = np.asarray(vertices_yx, dtype=float)
    rr, cc = polygon(vertices[:, 0], vertices[:, 1], shape=shape[1:])
    mask[z, rr, cc] = 1
    return mask


class NnInteractiveObject:
    """One object in one volume, segmented by an nnInteractive session (local or remote)."""

    def __init__(self, session: Any, data: np.ndarray, *, autozoom: bool = True):
        data = np.asarray(data)
        if data.ndim != 3:
            raise PromptError(f"nnInteractive segments a 3-D volume, got shape {data.shape}")
        self.session = session
        self.shape = tuple(int(s) for s in data.shape)
        session.set_do_autozoom(bool(autozoom))
        session.set_image(data[None])  # (1, z, y, x), raw intensities
        self.target = np.zeros(self.shape, dtype=np.uint8)
        session.set_target_buffer(self.target)
        self.seconds: list[float] = []  # how long each interaction took

    def _timed(self, call, *args, **kwargs) -> np.ndarray:
        start = time.perf_counter()
        call(*args, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        return self.mask

    @property
    def mask(self) -> np.ndarray:
        """The object as a boolean (z, y, x) array (a copy)."""
        return self.target.astype(bool)

    def add_point(self, zyx: Iterable[float], positive: bool = True) -> np.ndarray:
        point = [float(v) for v in zyx]
        voxel = [int(round(v)) for v in point]
        if len(voxel) != 3 or not all(0 <= v < s for v, s in zip(voxel, self.shape, strict=True)):
            raise PromptError(f"the point {tuple(point)} lies outside the volume {self.shape}")
        return self._timed(self.session.add_point_interaction, voxel, include_interaction=positive)

    def add_box(
        self, z: int, box_yx: tuple[float, float, float, float], positive: bool = True
    ) -> np.ndarray:
        """A box drawn on slice ``z`` (corners ``(y0, x0, y1, x1)`` in voxels)."""
        bbox = box_interaction(int(z), int(z) + 1, box_yx, self.shape)
        return self._timed(self.session.add_bbox_interaction, bbox, include_interaction=positive)

    def _check_mask(self, mask: np.ndarray, what: str) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.shape != self.shape:
            raise PromptError(f"the {what} has shape {mask.shape}, the volume {self.shape}")
        if not mask.any():
            raise PromptError(f"the {what} is empty: draw it on the image first")
        return (mask > 0).astype(np.uint8)

    def add_scribble(self, mask: np.ndarray, positive: bool = True) -> np.ndarray:
        scribble = self._check_mask(mask, "scribble")
        return self._timed(
            self.session.add_scribble_interaction, scribble, include_interaction=positive
        )

    def add_lasso(self, mask: np.ndarray, positive: bool = True) -> np.ndarray:
        lasso = self._check_mask(mask, "lasso")
        return self._timed(self.session.add_lasso_interaction, lasso, include_interaction=positive)

    def undo(self) -> bool:
        """Take back the latest interaction (nnInteractive keeps one level)."""
        return bool(self.session.undo())

    def reset(self) -> None:
        """Forget every interaction: the next object starts from nothing."""
        self.session.reset_interactions()
        self.target[:] = 0


class NnInteractiveModel:
    """A loaded nnInteractive (a local session or a server's) in the place the panel keeps a
    slice model: what it can do, and the sessions it opens on images."""

    family = "nninteractive"
    title = "nnInteractive"
    box_only = False
    takes_points = True
    has_memory = False
    native_3d = True  # one session on the whole volume, not slice by slice
    encoder = None
    runtime_note: str | None = None

    def __init__(self, session: Any, where: str, *, autozoom: bool = True):
        self.session, self.where, self.autozoom = session, where, autozoom


class NnInteractiveSession:
    """The session interface the panel drives (check, segment, propagate, undo, reset) on
    nnInteractive: every S (or Shift+S) sends the prompts not sent yet, in the order
    points, boxes, strokes, each refining the one 3-D object."""

    axis = 0
    uses_roi = False
    encodes_slices = False  # nothing to encode ahead: the volume goes in on the first S

    def __init__(self, model: NnInteractiveModel, data: np.ndarray, name: str = ""):
        if np.asarray(data).ndim != 3:
            raise PromptError(f"nnInteractive segments a 3-D volume, got shape {np.shape(data)}")
        self.model, self.name = model, name
        self._data = data
        self.shape = tuple(int(s) for s in np.shape(data))
        self.object: NnInteractiveObject | None = None  # made in a worker (set_image is slow)
        self._sent: list[tuple] = []  # the prompts sent, as keys
        self._prompts: CheckedPrompts | None = None

    def check_prompts(self, points, labels, boxes=None, strokes=()) -> CheckedPrompts:
        points, labels = check_points(points, labels, self.shape)
        for z, box in (boxes or {}).items():
            box_interaction(int(z), int(z) + 1, box, self.shape)
        if not len(points) and not boxes and not strokes:
            raise PromptError(
                "no prompt given: click the object, draw a box, a scribble or a lasso"
            )
        return CheckedPrompts(points, labels, dict(boxes or {}), {}, 0, "", tuple(strokes))

    def check_settings(self, _settings: Any) -> None:
        """The Propagate tab's settings do not apply: nnInteractive segments in 3-D."""

    def set_prompts(self, prompts: CheckedPrompts) -> None:
        self._prompts = prompts

    def new_key_slice(self) -> None:
        return None

    def _new(self, prompts: CheckedPrompts) -> list[tuple]:
        """The prompts not sent yet, as (key, interaction) pairs."""
        out = []
        for point, label in zip(prompts.points, prompts.labels, strict=True):
            out.append((("point", *point.tolist(), int(label)), ("point", point, bool(label))))
        for z, box in prompts.boxes.items():
            out.append((("box", z, *box), ("box", (z, box), True)))
        for s in prompts.strokes:
            key = (s.kind, s.z, s.positive, *np.asarray(s.vertices).ravel().tolist())
            out.append((key, (s.kind, s, s.positive)))
        return [(key, step) for key, step in out if key not in self._sent]

    def segment_slice(self, _at=None, prompts: CheckedPrompts | None = None, _post=None):
        """Send the new prompts (in a worker); returns the 3-D object."""
        if prompts is not None:
            self._prompts = prompts
        if self.object is None:
            self.object = NnInteractiveObject(
                self.model.session, self._data, autozoom=self.model.autozoom
            )
        obj, shape = self.object, self.shape
        for key, (kind, value, positive) in self._new(self._prompts):
            if kind == "point":
                obj.add_point(value, positive)
            elif kind == "box":
                obj.add_box(*value, positive=positive)
            elif kind == "scribble":
                obj.add_scribble(path_mask(shape, value.z, value.vertices), positive)
            else:
                obj.add_lasso(polygon_mask(shape, value.z, value.vertices), positive)
            self._sent.append(key)
        return self.mask()

    def propagate_steps(self, _settings=None, *, from_slice=None, post=None):
        """Shift+S: the same as S (the object is 3-D already); one step."""
        yield 0, 1
        mask = self.segment_slice()
        yield 1, 1
        return mask

    def mask(self, _post=None) -> np.ndarray:
        return self.object.mask if self.object is not None else np.zeros(self.shape, dtype=bool)

    def visited_slices(self) -> list[int]:
        return sorted(np.nonzero(self.mask().any(axis=(1, 2)))[0].tolist())

    @property
    def last_seconds(self) -> float | None:
        """How long the latest interaction took."""
        return self.object.seconds[-1] if self.object is not None and self.object.seconds else None

    def undo(self) -> list[int] | None:
        """nnInteractive's one-level undo; the boxes still in use (their slices), or None when
        there is nothing to undo. The undone prompt stays drawn, and is not sent again."""
        if self.object is None or not self.object.undo():
            return None
        boxes = [key[1] for key in self._sent if key[0] == "box"]
        return boxes[:-1] if self._sent[-1][0] == "box" else boxes  # the undone box goes

    def reset(self) -> None:
        if self.object is not None:
            self.object.reset()
        self._sent, self._prompts = [], None

    def close(self) -> None:
        """The session stays the model's (a server lease is closed with the model)."""
