"""Point and box prompts in volume (z, y, x) voxel coordinates, validated against a volume."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_textseg.core.errors import NapariTextsegError

__all__ = [
    "CheckedPrompts",
    "PromptError",
    "SlicePrompts",
    "Stroke",
    "check_points",
    "group_by_slice",
    "voxel_indices",
]


class PromptError(NapariTextsegError, ValueError):
    """Prompts that cannot be used: outside the volume, only negative, empty, ..."""


@dataclass
class SlicePrompts:
    """The prompts on one slice, in the slice's pixel coordinates.

    Attributes
    ----------
    points_yx
        (N, 2) row, column coordinates.
    labels
        (N,) 1 for positive, 0 for negative points.
    box
        Optional (y0, x0, y1, x1) box in pixels.
    """

    points_yx: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    box: tuple[float, float, float, float] | None = None

    @property
    def has_positive(self) -> bool:
        """True when a positive point or a box says where the object is."""
        return bool((self.labels == 1).any()) or self.box is not None

    def same_as(self, other: SlicePrompts) -> bool:
        """True when ``other`` holds the same points, labels and box."""
        return (
            np.array_equal(self.points_yx, other.points_yx)
            and np.array_equal(self.labels, other.labels)
            and self.box == other.box
        )

    def shifted(self, dy: float, dx: float) -> SlicePrompts:
        """The same prompts in a frame whose origin moved by (dy, dx)."""
        box = None
        if self.box is not None:
            y0, x0, y1, x1 = self.box
            box = (y0 - dy, x0 - dx, y1 - dy, x1 - dx)
        return SlicePrompts(self.points_yx - np.array([dy, dx]), self.labels.copy(), box)


def voxel_indices(values: Sequence[float], what: str) -> tuple[int, ...]:
    """Typed coordinates (command line, prompts files) as whole voxel indices.

    ``10.5`` lies between two voxels, and rounding it silently could put a click on
    another slice than the user meant; so it is refused, naming both neighbours.
    """
    out = []
    for value in values:
        if not np.isfinite(value):
            raise PromptError(f"{what}: {value} is not a voxel index")
        if value != int(value):
            raise PromptError(
                f"{what}: {value:g} is not a whole voxel index; give "
                f"{int(np.floor(value))} or {int(np.ceil(value))}"
            )
        out.append(int(value))
    return tuple(out)


def check_points(
    points_zyx: np.ndarray, labels: np.ndarray, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 3) and labels (N,) as arrays, checked: as many labels as points, labels
    1 or 0, every point inside a volume of ``shape``."""
    points = np.asarray(points_zyx, dtype=float).reshape(-1, 3)
    labels = np.asarray(labels, dtype=int).reshape(-1)
    if len(points) != len(labels):
        raise PromptError(f"{len(points)} points but {len(labels)} labels")
    if not set(np.unique(labels)) <= {0, 1}:
        raise PromptError("point labels must be 1 (positive) or 0 (negative)")
    upper = np.array(shape, dtype=float) - 0.5
    for point in points:
        if np.isfinite(point[0]) and abs(point[0] - np.rint(point[0])) > 1e-3:  # a 3-D view's click
            raise PromptError(
                f"the point (z, y, x) = ({point[0]:g}, {point[1]:g}, {point[2]:g}) lies between "
                "two slices; place points on a slice (2-D view)"
            )
        if np.any(point < -0.5) or np.any(point > upper):
            raise PromptError(
                f"the point (z, y, x) = ({point[0]:g}, {point[1]:g}, {point[2]:g}) lies outside "
                f"the volume of shape {tuple(shape)}"
            )
    return points, labels


def group_by_slice(
    points_zyx: np.ndarray,
    labels: np.ndarray,
    shape: tuple[int, int, int],
    boxes: dict[int, tuple[float, float, float, float]] | None = None,
    corrected: Collection[int] = (),
) -> dict[int, SlicePrompts]:
    """Split volume points (z, y, x) into per-slice prompts, checking each against ``shape``.

    Points are rounded to the nearest slice. A point outside the volume and no prompt at
    all are errors; so is a slice whose only prompts are negative, unless it is one of
    the ``corrected`` slices, which already hold a mask that a negative click trims.
    """
    points, labels = check_points(points_zyx, labels, shape)
    grouped: dict[int, SlicePrompts] = {}
    for z in np.unique(np.rint(points[:, 0]).astype(int)) if len(points) else []:
        on_slice = np.rint(points[:, 0]).astype(int) == z
        grouped[int(z)] = SlicePrompts(points[on_slice, 1:], labels[on_slice])
    for z, box in (boxes or {}).items():
        if not 0 <= z < shape[0]:
            raise PromptError(f"the box on slice {z} lies outside the volume ({shape[0]} slices)")
        y0, x0, y1, x1 = box
        shown = (
            "(" + ", ".join(str(round(float(v))) for v in box) + ")"
        )  # whole voxels, as the user gave them
        if y0 == y1 or x0 == x1:
            raise PromptError(f"the box {shown} on slice {z} has zero area: drag its corners apart")
        # A box dragged past the image's edge is clipped to it, as napari's own tools clip.
        clipped = (
            max(min(y0, y1), 0.0),
            max(min(x0, x1), 0.0),
            min(max(y0, y1), float(shape[1])),
            min(max(x0, x1), float(shape[2])),
        )
        if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
            raise PromptError(
                f"the box {shown} on slice {z} lies outside the slice ({shape[1]} x {shape[2]} "
                "voxels)"
            )
        grouped.setdefault(int(z), SlicePrompts()).box = clipped
    if not grouped:
        raise PromptError("no prompt given: draw a box (B) or click a positive point on the object")
    for z, prompts in grouped.items():
        if not prompts.has_positive and z not in corrected:
            raise PromptError(
                f"slice {z} has only negative points; add a positive point on the object first"
            )
    return grouped


@dataclass(frozen=True)
class Stroke:
    """A scribble (a path) or a lasso (a closed polygon) drawn on slice ``z``: its vertices
    in (y, x) voxels, and whether it marks the object or the background."""

    kind: str  # "scribble" or "lasso"
    z: int
    vertices: np.ndarray
    positive: bool = True


@dataclass(frozen=True)
class CheckedPrompts:
    """Prompts checked once against a session (:meth:`SegmentationSession.check_prompts`):
    the volume (z, y, x) points and labels, the boxes, and the prompts of each slice
    along the session's axis, in the whole volume's frame."""

    points: np.ndarray
    labels: np.ndarray
    boxes: dict[int, tuple[float, float, float, float]]
    by_slice: dict[int, SlicePrompts]
    axis: int = 0
    note: str = ""  # one line about prompts that were not used (points given to a box model)
    strokes: tuple[Stroke, ...] = ()  # scribbles and lasso (nnInteractive)

    def slice_to_segment(self, prefer_box: bool = False) -> int:
        """The slice S segments: the last box's after drawing a box (or with no click),
        else the last click's (or the last stroke's)."""
        if self.boxes and (prefer_box or not len(self.points)):
            return list(self.boxes)[-1]
        if self.strokes and not len(self.points):
            return self.strokes[-1].z
        if not len(self.points):
            raise PromptError("no prompt given: draw a box (B) or click the object")
        return int(np.rint(self.points[-1][self.axis]))
