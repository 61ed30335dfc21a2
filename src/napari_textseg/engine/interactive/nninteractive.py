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

from napari_textseg.engine.interactive.prompts import PromptError

__all__ = ["NnInteractiveObject", "box_interaction", "path_mask", "polygon_mask"]


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
