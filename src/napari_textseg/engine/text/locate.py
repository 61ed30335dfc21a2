"""From a CLIP similarity map to a key slice and SAM points (training-free, methods.md §5).

The map says, per patch, how much more the text describes that patch than the other
targets and the background. Two anatomical priors for CT, both soft and documented in
docs/text.md, weigh it before points are chosen:

- **body:** voxels above -500 HU, holes filled (the table and the air around the
  patient are never an organ);
- **HU range:** the vocabulary's typical range of the organ; inside it the weight is
  1, outside it falls off as a Gaussian of the distance (sigma 60 HU).

Points follow CLIP Surgery: after min-max scaling inside the body, the cells at or
above ``top`` (0.8) are candidates; positives are the best cells of the strongest
connected region, negatives the weakest cells, each at least ``spread`` apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["LocateSettings", "Location", "body_mask", "hu_prior", "locate", "scored_slices"]

_BODY_HU = -500.0
_HU_SIGMA = 60.0


@dataclass(frozen=True)
class LocateSettings:
    """How CLIP maps become prompts."""

    max_slices: int = 24
    positive: int = 3
    negative: int = 2
    top: float = 0.8
    spread: float = 0.08  # minimum distance between points, as a fraction of the slice side
    priors: bool = True


@dataclass
class Location:
    """Where a target was found: the key slice, SAM points (z, y, x), a confidence 0-1, and
    the user's boxes ``{slice: (y0, x0, y1, x1)}`` when a box says where it is (text + box)."""

    slice: int
    points_zyx: np.ndarray
    labels: np.ndarray
    confidence: float
    boxes: dict[int, tuple[float, float, float, float]] | None = None


def scored_slices(n_slices: int, max_slices: int) -> np.ndarray:
    """Evenly spaced slice indices (at most ``max_slices``) that CLIP looks at."""
    if n_slices < 1:
        raise ValueError("the volume has no slices")
    count = min(n_slices, max(1, max_slices))
    return np.unique(np.round(np.linspace(0, n_slices - 1, count)).astype(int))


def body_mask(hu: np.ndarray) -> np.ndarray:
    """Inside the patient on one CT slice: above -500 HU, holes filled."""
    return ndimage.binary_fill_holes(np.asarray(hu) > _BODY_HU)


def hu_prior(hu: np.ndarray, hu_range: tuple[float, float]) -> np.ndarray:
    """1 inside the organ's HU range, a Gaussian fall-off (sigma 60 HU) outside."""
    low, high = hu_range
    hu = np.asarray(hu, dtype=np.float32)
    distance = np.maximum(low - hu, 0) + np.maximum(hu - high, 0)
    return np.exp(-0.5 * (distance / _HU_SIGMA) ** 2)


def _spaced_extremes(
    score: np.ndarray, allowed: np.ndarray, count: int, spread: float, largest: bool
) -> list:
    """Up to ``count`` (y, x) cells of ``allowed`` with the highest (or lowest) score, kept
    apart."""
    ys, xs = np.nonzero(allowed)
    if not len(ys) or count <= 0:
        return []
    order = np.argsort(score[ys, xs], kind="stable")
    if largest:
        order = order[::-1]
    radius = spread * max(score.shape)
    chosen: list[tuple[int, int]] = []
    for i in order:
        y, x = int(ys[i]), int(xs[i])
        if all((y - cy) ** 2 + (x - cx) ** 2 >= radius**2 for cy, cx in chosen):
            chosen.append((y, x))
            if len(chosen) == count:
                break
    return chosen


def locate(
    probability: np.ndarray,
    slices: np.ndarray,
    raw: np.ndarray | None,
    hu_range: tuple[float, float] | None,
    settings: LocateSettings = LocateSettings(),
) -> Location:
    """Choose the key slice and the SAM points of one target.

    Parameters
    ----------
    probability
        (S, H, W) probability of the target on the scored slices, already at slice size.
    slices
        (S,) the slice index of each map.
    raw
        (S, H, W) the same slices in HU (CT) for the priors, or None (no priors).
    hu_range
        The organ's typical HU range, or None.
    """
    probability = np.asarray(probability, dtype=np.float32)
    weight = np.ones_like(probability)
    body = np.ones(probability.shape, dtype=bool)
    if settings.priors and raw is not None:
        body = np.stack([body_mask(s) for s in raw])
        weight = body.astype(np.float32)
        if hu_range is not None:
            weight *= hu_prior(raw, hu_range)
    sigma = max(1.0, 0.01 * max(probability.shape[1:]))
    score = np.stack(
        [ndimage.gaussian_filter(p * w, sigma) for p, w in zip(probability, weight, strict=True)]
    )
    k = max(16, int(0.005 * score[0].size))
    strength = np.sort(score.reshape(len(score), -1), axis=1)[:, -k:].mean(axis=1)
    best = int(np.argmax(strength))
    key, inside = score[best], body[best] if body[best].any() else np.ones_like(body[best])
    low, high = float(key[inside].min()), float(key[inside].max())
    scaled = (key - low) / (high - low) if high > low else np.zeros_like(key)
    candidates = inside & (scaled >= settings.top)
    regions, _ = ndimage.label(candidates)
    peak = np.unravel_index(np.argmax(np.where(inside, scaled, -1.0)), scaled.shape)
    region = regions == regions[peak] if regions[peak] else candidates
    positive = _spaced_extremes(scaled, region, settings.positive, settings.spread, largest=True)
    negative = _spaced_extremes(
        scaled,
        inside & (scaled <= 1 - settings.top),
        settings.negative,
        settings.spread,
        largest=False,
    )
    z = int(slices[best])
    points = np.array([(z, y, x) for y, x in positive + negative], dtype=float).reshape(-1, 3)
    labels = np.array([1] * len(positive) + [0] * len(negative), dtype=int)
    confidence = float(probability[best][region].mean()) if region.any() else 0.0
    return Location(z, points, labels, confidence)
