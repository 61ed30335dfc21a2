"""Training samples from phantoms: model-ready crops, target masks and clicks.

Volumes are normalised with the plugin's own ``normalize_for_model`` and crops are
resized by the backend's own ``model_input``, so the models learn on exactly what the
plugin feeds them. Crops are the whole slice, a random square holding the object, or a
tumour-ROI window around a lesion (what ROI mode shows the model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_textseg.core.intensity import normalize_for_model
from napari_textseg.core.phantoms import Phantom, ct_phantom, nuclei_phantom

# Seeds at or above this are training data; tests and evaluation use seeds below it.
TRAIN_SEED_BASE = 10_000


@dataclass
class Volume:
    """A normalised phantom: model input in [0, 255] and the per-object masks."""

    image: np.ndarray  # (z, y, x) float32
    masks: list[np.ndarray]  # one boolean (z, y, x) mask per object, its children included
    small: list[bool]  # lesions and nuclei: sampled more often in small crops
    labels: np.ndarray  # (z, y, x) instance values; object i has value values[i]
    values: list[int]
    roi_px: tuple[int, int] | None = None  # tumour ROI sides (pixels) a user may pick; CT only


# Tumour ROI sizes around the plugin's 40 mm default that training shows the model.
ROI_MM = (30.0, 60.0)


def load_volume(phantom: Phantom) -> Volume:
    image = normalize_for_model(phantom.data, phantom.modality)
    masks = [phantom.mask(o.value) for o in phantom.objects]
    small = [o.parent != 0 or phantom.modality != "CT" for o in phantom.objects]
    roi_px = (
        tuple(round(mm / phantom.spacing[1]) for mm in ROI_MM) if phantom.modality == "CT" else None
    )
    return Volume(image, masks, small, phantom.labels, [o.value for o in phantom.objects], roi_px)


def make_bank(n_ct: int, n_nuclei: int, seed: int = TRAIN_SEED_BASE) -> list[Volume]:
    """Training volumes from seeds ``seed, seed + 1, ...`` (never the test seeds)."""
    bank = [load_volume(ct_phantom(seed + i)) for i in range(n_ct)]
    bank += [load_volume(nuclei_phantom(seed + n_ct + i)) for i in range(n_nuclei)]
    return bank


@dataclass
class Crop:
    """A square crop of a slice stack: frames (t, s, s) and targets (t, s, s)."""

    frames: np.ndarray
    targets: np.ndarray
    own: np.ndarray | None = None  # (k, s, s) the targets' own pixels, children left out


def _crop_box(
    mask2d: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, full_share: float = 0.4
) -> tuple[int, int, int]:
    """(y0, x0, side): the whole slice, or a square that holds the object with a margin."""
    h, w = shape
    full = max(h, w)
    if rng.random() < full_share:
        return 0, 0, full
    ys, xs = np.nonzero(mask2d)
    extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    low = int(min(full, max(24, extent * 1.4)))
    side = int(rng.integers(low, full + 1)) if low < full else full
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    slack = max(0.0, (side - extent * 1.2) / 2)
    y0 = int(round(cy - side / 2 + rng.uniform(-slack, slack)))
    x0 = int(round(cx - side / 2 + rng.uniform(-slack, slack)))
    return y0, x0, side


def _roi_box(
    mask2d: np.ndarray, sides: tuple[int, int], rng: np.random.Generator
) -> tuple[int, int, int]:
    """(y0, x0, side): a tumour-ROI window around a small object, as ROI mode cuts one
    around a click on it (centred near the object, a side between ``sides``)."""
    ys, xs = np.nonzero(mask2d)
    side = int(rng.integers(sides[0], sides[1] + 1))
    jitter = rng.uniform(-0.25, 0.25, size=2) * (np.ptp(ys) + 1, np.ptp(xs) + 1)
    cy, cx = (ys.min() + ys.max()) / 2 + jitter[0], (xs.min() + xs.max()) / 2 + jitter[1]
    return int(round(cy - side / 2)), int(round(cx - side / 2)), side


def _cut(stack: np.ndarray, y0: int, x0: int, side: int) -> np.ndarray:
    """A zero-padded square cut of (t, h, w) ``stack`` (as ROI mode pads outside the volume)."""
    t, h, w = stack.shape
    out = np.zeros((t, side, side), dtype=stack.dtype)
    ys, xs = slice(max(y0, 0), min(y0 + side, h)), slice(max(x0, 0), min(x0 + side, w))
    out[:, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = stack[:, ys, xs]
    return out


def pick_object(bank: list[Volume], rng: np.random.Generator) -> tuple[Volume, int]:
    """A random volume and object; small objects (lesions, nuclei) half of the time."""
    vol = bank[int(rng.integers(len(bank)))]
    candidates = [i for i, s in enumerate(vol.small) if s] if rng.random() < 0.5 else []
    if not candidates:
        candidates = list(range(len(vol.masks)))
    return vol, int(rng.choice(candidates))


def sample_crop(bank: list[Volume], rng: np.random.Generator, length: int = 1) -> Crop:
    """``length`` consecutive slices (either direction) starting on the object.

    The sequence may run past the object's end, so a tracker learns that it is gone.
    """
    while True:
        vol, index = pick_object(bank, rng)
        mask = vol.masks[index]
        present = np.nonzero(mask.reshape(mask.shape[0], -1).any(axis=1))[0]
        areas = mask[present].sum(axis=(1, 2))
        present = present[areas >= 6]
        if len(present):
            break
    z0 = int(rng.choice(present))
    step = 1 if rng.random() < 0.5 else -1
    zs = np.clip(z0 + step * np.arange(length), 0, mask.shape[0] - 1)
    y0, x0, side = _crop_box(mask[z0], mask.shape[1:], rng)
    frames = _cut(vol.image[zs], y0, x0, side)
    targets = _cut(mask[zs], y0, x0, side)
    if not targets[0].any():  # the object lies outside a random crop: use the whole slice
        full = max(mask.shape[1:])
        frames, targets = _cut(vol.image[zs], 0, 0, full), _cut(mask[zs], 0, 0, full)
    return Crop(frames, targets)


def _in_view(vol: Volume, z: int, y0: int, x0: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Every object's cut mask on slice ``z`` (children included) and its own pixels."""
    targets = _cut(np.stack([m[z] for m in vol.masks]), y0, x0, side)
    labels = _cut(vol.labels[z][None], y0, x0, side)[0]
    return targets, labels[None] == np.asarray(vol.values)[:, None, None]


def sample_targets(
    bank: list[Volume],
    rng: np.random.Generator,
    k: int,
    *,
    full_share: float = 0.4,
    roi_share: float = 0.0,
) -> Crop:
    """One crop of one slice and ``k`` objects in it: frames (1, s, s), targets (k, s, s).

    Several targets share one encoded image, as SAM trains (many masks per image); the
    first is the object the crop was drawn for, the rest are other objects in view
    (drawn again when fewer are in view). ``own`` holds where a click on each may land.
    The crop is the whole slice (``full_share``), a tumour-ROI window when the object is
    a CT lesion (``roi_share`` of those), or else a random square holding the object.
    """
    while True:
        vol, index = pick_object(bank, rng)
        mask = vol.masks[index]
        present = np.nonzero(mask.reshape(mask.shape[0], -1).sum(axis=1) >= 6)[0]
        if len(present):
            break
    z = int(rng.choice(present))
    if vol.roi_px is not None and vol.small[index] and rng.random() < roi_share:
        box = _roi_box(mask[z], vol.roi_px, rng)
    else:
        box = _crop_box(mask[z], mask.shape[1:], rng, full_share)
    targets, own = _in_view(vol, z, *box)
    if own[index].sum() < 6:  # the object lies outside a random crop: use the whole slice
        box = (0, 0, max(mask.shape[1:]))
        targets, own = _in_view(vol, z, *box)
    others = [i for i in range(len(vol.masks)) if i != index and own[i].sum() >= 6] or [index]
    chosen = [index, *(int(i) for i in rng.choice(others, size=k - 1))]
    return Crop(_cut(vol.image[z][None], *box), targets[chosen], own[chosen])


def interior_point(region: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A (y, x) pixel well inside ``region``: drawn among its most interior pixels."""
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    top = dist >= max(1.0, 0.4 * dist.max())
    ys, xs = np.nonzero(top if top.any() else region)
    i = int(rng.integers(len(ys)))
    return int(ys[i]), int(xs[i])


PROMPT_MODES = ("click", "points", "box", "box+click")


def choose_mode(rng: np.random.Generator) -> str:
    """The prompt kind for a batch: mostly one click; clicks with a negative; a box;
    a box with a click (what SAM prompt projection feeds the next slice)."""
    return str(rng.choice(PROMPT_MODES, p=(0.55, 0.2, 0.1, 0.15)))


def first_prompt(
    target: np.ndarray, rng: np.random.Generator, mode: str = "click", own: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Clicks (n, 2) as (y, x), labels (n,) and an optional box (y0, x0, y1, x1).

    Positive clicks land on ``own`` (the object's pixels without its children) when given.
    """
    region = target if own is None or not own.any() else own
    points = [interior_point(region, rng)]
    labels = [1]
    box = None
    if mode in ("box", "box+click"):
        ys, xs = np.nonzero(target)
        extent = max(np.ptp(ys), np.ptp(xs)) + 1
        jitter = rng.normal(0, 0.06 * extent, size=4)
        box = np.array([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1], dtype=float) + jitter
        if mode == "box":
            points, labels = [], []
    elif mode == "points":
        if rng.random() < 0.5:
            points.append(interior_point(region, rng))
            labels.append(1)
        ring = ndimage.binary_dilation(target, iterations=6) & ~ndimage.binary_dilation(
            target, iterations=1
        )
        if ring.any():
            points.append(interior_point(ring, rng))
            labels.append(0)
    return np.array(points, dtype=float).reshape(-1, 2), np.array(labels, dtype=int), box


def correction_click(
    pred: np.ndarray, target: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[int, int], int] | None:
    """The click a user would add: inside the larger error (missed -> positive, extra ->
    negative)."""
    missed, extra = target & ~pred, pred & ~target
    if not missed.any() and not extra.any():
        return None
    label = 1 if missed.sum() >= extra.sum() else 0
    region = missed if label == 1 else extra
    components, n = ndimage.label(region)
    sizes = ndimage.sum(region, components, range(1, n + 1))
    largest = components == (int(np.argmax(sizes)) + 1)
    return interior_point(largest, rng), label
