"""Synthetic 3-D phantoms with known masks, deterministic from a seed.

They exist so that small models can be trained here and the pipeline tested with
models that genuinely segment (see ``tools/train_phantom_models.py``):

- :func:`ct_phantom`: a CT-like volume in HU: air, a body with a fat rim, a spine,
  organ-sized blobs and small lesion-like blobs inside the organs.
- :func:`nuclei_phantom`: a fluorescence-like uint16 stack of many small bright nuclei.

Every object is an ellipsoid whose outline is deformed by low-order angular harmonics
that drift smoothly along z, so consecutive slices differ the way anatomy does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = ["Phantom", "PhantomObject", "ct_phantom", "nuclei_phantom"]


@dataclass(frozen=True)
class PhantomObject:
    """One object: its label value in ``Phantom.labels``, its name and its parent's value."""

    value: int
    name: str
    parent: int = 0


@dataclass
class Phantom:
    """A synthetic volume, its (z, y, x) spacing and its instance labels.

    A lesion's voxels carry the lesion's value; :meth:`mask` of its organ includes them,
    as an organ segmentation would.
    """

    data: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    modality: str
    objects: list[PhantomObject] = field(default_factory=list)

    def mask(self, value: int) -> np.ndarray:
        """The boolean mask of object ``value`` including its children."""
        values = [value] + [o.value for o in self.objects if o.parent == value]
        return np.isin(self.labels, values)

    def centre_click(self, value: int) -> tuple[int, int, int]:
        """(z, y, x) of a centre click on object ``value``: its largest slice, deepest point there.

        The click lands on the object's own voxels, as a user clicks the organ's tissue and
        not a lesion inside it (a click on the lesion asks for the lesion).
        """
        mask = self.mask(value)
        z = int(np.argmax(mask.sum(axis=(1, 2))))
        own = self.labels[z] == value
        depth = ndimage.distance_transform_edt(np.pad(own, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        return z, int(y), int(x)

    def object(self, value: int) -> PhantomObject:
        return next(o for o in self.objects if o.value == value)

    def children(self, value: int) -> list[PhantomObject]:
        return [o for o in self.objects if o.parent == value]

    def save(self, folder: str | os.PathLike, name: str) -> tuple[Path, Path]:
        """Write the image and its named labels as a scanner or microscope would.

        CT goes to NIfTI (RAS affine of the spacing), microscopy to an ImageJ TIFF in
        micrometres; the labels to the same format plus the names sidecar. Returns the
        image and label paths.
        """
        from napari_textseg.core.io import write_labels
        from napari_textseg.core.io.nifti import write_nifti
        from napari_textseg.core.io.tiff import write_tiff
        from napari_textseg.core.volume import affine_from_display

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        names = {o.value: o.name for o in self.objects}
        if self.modality == "CT":
            image = write_nifti(
                folder / f"{name}.nii.gz",
                self.data,
                None,
                affine_from_display(self.spacing, (0.0, 0.0, 0.0)),
            )
            labels = folder / f"{name}_labels.nii.gz"
            write_labels(labels, self.labels, scale=self.spacing, label_names=names)
        else:
            image = write_tiff(folder / f"{name}.tif", self.data, self.spacing, "um")
            labels = folder / f"{name}_labels.tif"
            write_labels(labels, self.labels, scale=self.spacing, label_names=names)
        return image, labels


def _blob(
    shape: tuple[int, int, int],
    centre: np.ndarray,
    radii: np.ndarray,
    rng: np.random.Generator,
    wobble: float,
) -> np.ndarray:
    """An ellipsoid with a z-drifting centre and a harmonically deformed outline."""
    # the centre drifts along z by up to a third of the in-plane radius
    drift = rng.uniform(-0.35, 0.35, size=2) * radii[1:]
    harmonics = [
        (rng.uniform(0, wobble) / order, rng.uniform(0, 2 * np.pi), rng.uniform(-1.0, 1.0))
        for order in (2, 3, 4)
    ]
    # evaluate only inside the blob's bounding box: most of the volume is far from it
    reach = np.concatenate([[radii[0]], radii[1:] * (1 + wobble) + np.abs(drift)]) + 1
    lo = np.clip(np.floor(centre - reach), 0, shape).astype(int)
    hi = np.clip(np.ceil(centre + reach) + 1, 0, shape).astype(int)
    out = np.zeros(shape, dtype=bool)
    if np.any(hi <= lo):
        return out
    zz = np.arange(lo[0], hi[0], dtype=np.float32)[:, None, None]
    yy = np.arange(lo[1], hi[1], dtype=np.float32)[None, :, None]
    xx = np.arange(lo[2], hi[2], dtype=np.float32)[None, None, :]
    t = (zz - centre[0]) / radii[0]
    dy = (yy - centre[1] - drift[0] * t) / radii[1]
    dx = (xx - centre[2] - drift[1] * t) / radii[2]
    r = np.sqrt(dy**2 + dx**2)
    angle = np.arctan2(dy, dx)
    outline = np.ones_like(r)
    for order, (amp, phase, speed) in zip((2, 3, 4), harmonics, strict=True):
        outline = outline + amp * np.cos(order * angle + phase + speed * t)
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = (r / outline) ** 2 + t**2 <= 1.0
    return out


def _place(rng: np.random.Generator, lows, highs) -> np.ndarray:
    return np.array([rng.uniform(lo, hi) for lo, hi in zip(lows, highs, strict=True)])


def ct_phantom(
    seed: int,
    shape: tuple[int, int, int] = (40, 128, 128),
    spacing: tuple[float, float, float] = (2.0, 0.8, 0.8),
    *,
    n_organs: tuple[int, int] = (2, 4),
    lesions_per_organ: tuple[int, int] = (0, 2),
    lesion_radius_mm: tuple[float, float] = (3.0, 6.5),
) -> Phantom:
    """A CT-like abdomen phantom in HU (int16), with organs and lesions as objects.

    Organs are 40-160 HU brighter or darker than the 30 HU soft tissue around them;
    lesions differ from their organ by 40-110 HU. Noise is Gaussian (8-22 HU) after a
    slight blur (partial-volume edges).
    """
    rng = np.random.default_rng(seed)
    z, h, w = shape
    sy, sx = spacing[1], spacing[2]
    hu = np.full(shape, -1000.0, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint16)
    objects: list[PhantomObject] = []

    centre = np.array([z / 2, h / 2 + rng.uniform(-3, 3), w / 2 + rng.uniform(-3, 3)])
    body_r = np.array([z * 10.0, h * rng.uniform(0.38, 0.44), w * rng.uniform(0.42, 0.47)])
    body = _blob(shape, centre, body_r, rng, 0.05)
    inner = _blob(shape, centre, body_r - np.array([0, 5, 5]), rng, 0.0) & body
    hu[body] = rng.uniform(-110, -70)
    hu[inner] = rng.uniform(20, 45)
    soft = float(hu[inner].mean()) if inner.any() else 30.0

    spine_c = np.array([z / 2, centre[1] + body_r[1] * 0.62, centre[2] + rng.uniform(-4, 4)])
    spine = (
        _blob(shape, spine_c, np.array([z * 10.0, 7 / sy * 0.8, 8 / sx * 0.8]), rng, 0.05) & inner
    )
    hu[spine] = rng.uniform(500, 900)
    objects.append(PhantomObject(1, "spine"))
    labels[spine] = 1

    value = 2
    for index in range(int(rng.integers(n_organs[0], n_organs[1] + 1))):
        # keep organs apart: a free margin around what is already placed
        taken = ndimage.binary_dilation(labels > 0, iterations=2)
        for _attempt in range(20):
            radii = np.array(
                [
                    rng.uniform(0.2, 0.45) * z,
                    rng.uniform(10, 30) / sy * 0.8,
                    rng.uniform(10, 30) / sx * 0.8,
                ]
            )
            c = _place(
                rng,
                (z * 0.3, centre[1] - body_r[1] * 0.55, centre[2] - body_r[2] * 0.6),
                (z * 0.7, centre[1] + body_r[1] * 0.35, centre[2] + body_r[2] * 0.6),
            )
            organ = _blob(shape, c, radii, rng, 0.25) & inner & (labels == 0)
            if organ.sum() > 200 and not (organ & taken).any():
                break
        else:
            continue
        contrast = rng.uniform(40, 160) * (1 if rng.random() < 0.75 else -1)
        organ_hu = soft + contrast
        hu[organ] = organ_hu
        labels[organ] = value
        objects.append(PhantomObject(value, f"organ {index + 1}"))
        organ_value = value
        value += 1
        for _lesion in range(int(rng.integers(lesions_per_organ[0], lesions_per_organ[1] + 1))):
            r_mm = rng.uniform(*lesion_radius_mm)
            radii = np.array([max(1.5, r_mm / spacing[0] * 1.6), r_mm / sy, r_mm / sx])
            inside = np.argwhere(ndimage.binary_erosion(organ, iterations=3))
            if len(inside) == 0:
                break
            c = inside[rng.integers(len(inside))].astype(float)
            lesion = _blob(shape, c, radii, rng, 0.15) & organ
            if lesion.sum() < 10:
                continue
            hu[lesion] = organ_hu + rng.uniform(40, 110) * (1 if rng.random() < 0.4 else -1)
            labels[lesion] = value
            objects.append(PhantomObject(value, f"lesion {value}", parent=organ_value))
            value += 1

    hu = ndimage.gaussian_filter(hu, sigma=(0.3, 0.6, 0.6))
    hu += rng.normal(0, rng.uniform(8, 22), size=shape).astype(np.float32)
    data = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return Phantom(data, labels, tuple(float(s) for s in spacing), "CT", objects)


def nuclei_phantom(
    seed: int,
    shape: tuple[int, int, int] = (24, 128, 128),
    spacing: tuple[float, float, float] = (1.0, 0.25, 0.25),
    *,
    n_nuclei: tuple[int, int] = (12, 30),
    radius_px: tuple[float, float] = (6.0, 13.0),
) -> Phantom:
    """A fluorescence-like uint16 stack of nuclei on a dim, uneven background.

    Nuclei do not overlap; their brightness varies 3-fold and their interiors are
    textured. Noise is Poisson-like (Gaussian with intensity-dependent spread).
    """
    rng = np.random.default_rng(seed)
    z, h, w = shape
    signal = np.zeros(shape, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint16)
    objects: list[PhantomObject] = []
    value = 1
    texture = 1 + ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 2.0)
    for _ in range(int(rng.integers(n_nuclei[0], n_nuclei[1] + 1))):
        r = rng.uniform(*radius_px)
        radii = np.array(
            [rng.uniform(0.2, 0.35) * z, r * rng.uniform(0.8, 1.2), r * rng.uniform(0.8, 1.2)]
        )
        c = _place(rng, (radii[0] * 0.6, r, r), (z - radii[0] * 0.6, h - r, w - r))
        nucleus = _blob(shape, c, radii, rng, 0.2)
        if (
            nucleus.sum() < 50
            or (nucleus & ndimage.binary_dilation(labels > 0, iterations=1)).any()
        ):
            continue
        signal[nucleus] = rng.uniform(300, 1000) * texture[nucleus]
        labels[nucleus] = value
        objects.append(PhantomObject(value, f"nucleus {value}"))
        value += 1
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    background = 90 + 40 * (yy * rng.uniform(-1, 1) + xx * rng.uniform(-1, 1))
    image = ndimage.gaussian_filter(signal, sigma=(0.7, 1.0, 1.0)) + background[None].astype(
        np.float32
    )
    image += rng.normal(size=shape).astype(np.float32) * np.sqrt(np.maximum(image, 1)) * 1.5
    data = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
    return Phantom(data, labels, tuple(float(s) for s in spacing), "microscopy", objects)
