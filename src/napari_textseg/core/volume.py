"""A volume in display order together with everything needed to write labels back.

Display convention (documented in docs/geometry.md)
---------------------------------------------------
Medical volumes (CT, MR) are reoriented on reading so that the array is indexed
``(z, y, x)`` with voxel axes pointing

- x: towards the patient's **Left**,
- y: towards **Posterior**,
- z: towards **Superior**,

i.e. DICOM's LPS patient system. In napari this shows axial slices on the slider
(inferior to superior) in the radiological convention: patient right on the screen's
left, anterior at the top, as in 3D Slicer and ITK-SNAP. napari's world coordinates are
then LPS millimetres: ``scale`` is the voxel spacing and ``translate`` the LPS position
of voxel (0, 0, 0). A residual rotation of oblique acquisitions is not displayed (napari
cannot slice a rotated volume in 2-D), but it is kept in :class:`SourceGeometry` so that
export restores the exact source affine; :meth:`SourceGeometry.obliquity` measures it
and the reader warns with the angle and the largest offset.

Microscopy stacks are shown as stored, ``(z, y, x)`` with spacing in micrometres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nibabel import orientations

__all__ = [
    "DISPLAY_AXCODES",
    "MEDICAL_MODALITIES",
    "Obliquity",
    "SourceGeometry",
    "Volume",
    "affine_from_display",
    "display_affine",
]

DISPLAY_AXCODES = ("L", "P", "S")
MEDICAL_MODALITIES = ("CT", "MR")
_DISPLAY_ORNT = orientations.axcodes2ornt(DISPLAY_AXCODES)


_DECIMALS = 9  # of a millimetre (a picometre): what display scale and translate keep

# Below this rotation (degrees) a grid counts as axis-aligned: float noise of scanner headers.
_OBLIQUE_DEGREES = 0.1


@dataclass(frozen=True)
class Obliquity:
    """How far an oblique grid is from the axis-aligned grid napari shows."""

    degrees: float  # the largest angle between a voxel axis and its nearest patient axis
    # the largest distance, in the volume's unit, of a voxel corner from where it is shown
    max_offset: float

    def describe(self) -> str:
        """One line for ``info`` and the reader's warning."""
        return (
            f"oblique: the grid is rotated {self.degrees:.1f}° from the patient axes; napari "
            "shows it "
            f"axis-aligned, up to {self.max_offset:.1f} mm from where a voxel is. Labels exported "
            f"on its grid keep the rotation"
        )


@dataclass(frozen=True, eq=False)
class SourceGeometry:
    """The source file's own grid, kept so that export restores it exactly.

    Attributes
    ----------
    format
        ``"nifti"``, ``"dicom"`` or ``"tiff"``.
    shape
        Spatial shape of the source array in its own axis order ((x, y, z) for NIfTI
        and DICOM) when the volume is reoriented for display; otherwise (microscopy)
        the display shape (z, y, x).
    affine
        Source voxel index -> RAS millimetres (NIfTI convention); ``None`` for
        microscopy, which has no patient frame.
    header
        The source NIfTI header (qform/sform codes, units), copied on export.
    unit
        Spatial unit of ``scale``/``translate``: ``"mm"`` or ``"um"``.
    path
        The file or folder the volume came from.
    extra
        Format-specific details worth keeping (DICOM UIDs, TIFF axes, ...).
    """

    format: str
    shape: tuple[int, ...]
    affine: np.ndarray | None = None
    header: Any = None
    unit: str = "mm"
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reoriented(self) -> bool:
        """True when the display array is the source reoriented to LPS (medical data)."""
        return self.affine is not None

    def to_display_ornt(self) -> np.ndarray:
        """nibabel orientation transform from source voxel axes to LPS voxel axes."""
        assert self.affine is not None
        return orientations.ornt_transform(orientations.io_orientation(self.affine), _DISPLAY_ORNT)

    def to_display(self, data: np.ndarray) -> np.ndarray:
        """Source-ordered spatial array -> display (z, y, x) array (a view where possible)."""
        if not self.reoriented:
            return data
        return np.transpose(orientations.apply_orientation(data, self.to_display_ornt()), (2, 1, 0))

    def from_display(self, data: np.ndarray) -> np.ndarray:
        """Display (z, y, x) array -> source-ordered array, the exact inverse of
        :meth:`to_display`."""
        if not self.reoriented:
            return data
        back = orientations.ornt_transform(_DISPLAY_ORNT, orientations.io_orientation(self.affine))
        return orientations.apply_orientation(np.transpose(data, (2, 1, 0)), back)

    def display_shape(self) -> tuple[int, int, int]:
        """Shape the display array has."""
        if not self.reoriented:
            return tuple(self.shape)  # type: ignore[return-value]
        ornt = self.to_display_ornt()
        xyz = [0, 0, 0]
        for src_axis, (dst_axis, _) in enumerate(ornt):
            xyz[int(dst_axis)] = self.shape[src_axis]
        return (xyz[2], xyz[1], xyz[0])

    def display_affine_ras(self) -> np.ndarray:
        """Display voxel (x, y, z index order) -> RAS mm, including any oblique rotation."""
        assert self.affine is not None
        return self.affine @ orientations.inv_ornt_aff(self.to_display_ornt(), self.shape)

    def obliquity(self) -> Obliquity | None:
        """The rotation napari's axis-aligned display leaves out, or ``None`` when there is none."""
        from nibabel.affines import obliquity

        if self.affine is None:
            return None
        degrees = float(np.degrees(np.max(np.abs(obliquity(self.affine)))))
        if degrees < _OBLIQUE_DEGREES:
            return None
        true = self.display_affine_ras()
        scale, translate = display_affine(self)
        shown = affine_from_display(scale, translate)
        xyz = self.display_shape()[::-1]
        corners = np.array(
            [
                [i, j, k, 1.0]
                for i in (0, xyz[0] - 1)
                for j in (0, xyz[1] - 1)
                for k in (0, xyz[2] - 1)
            ]
        )
        offset = float(
            np.max(np.linalg.norm((corners @ true.T - corners @ shown.T)[:, :3], axis=1))
        )
        return Obliquity(degrees=degrees, max_offset=offset)


def display_affine(geometry: SourceGeometry) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(scale, translate)`` in napari (z, y, x) order for a reoriented medical volume."""
    aff = geometry.display_affine_ras()
    spacing_xyz = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
    origin_ras = aff[:3, 3]
    origin_lps = origin_ras * np.array([-1.0, -1.0, 1.0])
    # Headers carry float noise (3D Slicer writes 6.4999999999999982 for 6.5): napari counts
    # slices from these numbers and would lose the last one. A picometre is below any scanner's.
    return (
        tuple(round(float(v), _DECIMALS) for v in spacing_xyz[::-1]),
        tuple(round(float(v), _DECIMALS) for v in origin_lps[::-1]),
    )


def affine_from_display(scale: tuple[float, ...], translate: tuple[float, ...]) -> np.ndarray:
    """RAS affine of an LPS-ordered (x, y, z) array from napari's (z, y, x) scale and translate.

    This is the inverse of :func:`display_affine` for axis-aligned grids, used when a
    Labels layer carries no source geometry (for example one made with napari's "new
    labels" button).
    """
    sz, sy, sx = (float(v) for v in scale[-3:])
    tz, ty, tx = (float(v) for v in translate[-3:])
    return np.array(
        [
            [-sx, 0.0, 0.0, -tx],
            [0.0, -sy, 0.0, -ty],
            [0.0, 0.0, sz, tz],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


@dataclass(eq=False)
class Volume:
    """An image or label volume in display order, with its physical geometry.

    Attributes
    ----------
    data
        ``(z, y, x)``, or ``(c, z, y, x)`` when ``channel_axis == 0``.
    spacing, origin
        napari ``scale`` and ``translate`` in (z, y, x) order, in ``geometry.unit``.
    modality
        ``"CT"``, ``"MR"``, ``"microscopy"`` or ``"unknown"``.
    geometry
        What export needs to restore the source grid.
    label_names
        Label value -> name, for label maps.
    label_colors
        Label value -> RGBA in [0, 1], for label maps that carry colours.
    """

    data: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    modality: str
    geometry: SourceGeometry
    name: str = ""
    channel_axis: int | None = None
    channel_names: list[str] | None = None
    is_labels: bool = False
    label_names: dict[int, str] | None = None
    label_colors: dict[int, tuple[float, float, float, float]] | None = None
    nan_count: int = 0

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """(z, y, x) shape without the channel axis."""
        shape = list(self.data.shape)
        if self.channel_axis is not None:
            del shape[self.channel_axis]
        return tuple(shape)  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        """Axis codes of the source voxel axes, e.g. ``"RAS"``; ``"ZYX"`` for microscopy."""
        if self.geometry.affine is None:
            return "ZYX"
        return "".join(orientations.aff2axcodes(self.geometry.affine))
