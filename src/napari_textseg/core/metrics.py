"""Segmentation metrics: overlap, surface distance and instance matching.

Definitions (the same as MONAI's ``DiceMetric``, ``compute_hausdorff_distance`` and
``compute_surface_dice`` with their defaults, against which the tests check them):

- **Surface**: the voxels of a mask with at least one 6-neighbour outside it (the
  mask minus its erosion; the volume's edge counts as outside).
- **Surface distances**: from every surface voxel of one mask to the nearest surface
  voxel of the other, Euclidean, in physical units (the voxel spacing applied).
- **HD95**: the larger of the two directed 95th percentiles of those distances
  (linear interpolation between ranks).
- **NSD** (normalised surface Dice at tolerance tau): the fraction of both surfaces
  lying within tau of the other, ``(|{d_pr <= tau}| + |{d_rp <= tau}|) / (|S_p| + |S_r|)``.

Empty masks: when both masks are empty Dice, IoU and NSD are 1 and HD95 is 0 (nothing
to find, nothing found); when exactly one is empty Dice, IoU and NSD are 0 and HD95 is
infinite (written as ``null`` in JSON and ``inf`` in CSV).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

__all__ = [
    "InstanceScores",
    "LabelScores",
    "dice",
    "evaluate_labels",
    "hd95",
    "instance_f1",
    "iou",
    "label_volumes_ml",
    "nsd",
    "surface_distances",
]

Spacing = Sequence[float]


def _pair(pred: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, reference = np.asarray(pred, dtype=bool), np.asarray(reference, dtype=bool)
    if pred.shape != reference.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {reference.shape}")
    return pred, reference


def dice(pred: np.ndarray, reference: np.ndarray) -> float:
    """Dice coefficient of two boolean masks of the same shape; 1.0 when both are empty."""
    pred, reference = _pair(pred, reference)
    total = int(pred.sum()) + int(reference.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, reference).sum()) / total


def iou(pred: np.ndarray, reference: np.ndarray) -> float:
    """Intersection over union (Jaccard) of two boolean masks; 1.0 when both are empty."""
    pred, reference = _pair(pred, reference)
    union = int(np.logical_or(pred, reference).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(pred, reference).sum()) / union


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _check_spacing(spacing: Spacing, ndim: int) -> tuple[float, ...]:
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be {ndim} positive numbers, got {spacing}")
    return spacing


def surface_distances(
    pred: np.ndarray, reference: np.ndarray, spacing: Spacing
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (physical units) from each surface voxel of ``pred`` to ``reference``'s
    surface, and back. Both masks must be non-empty."""
    pred, reference = _pair(pred, reference)
    spacing = _check_spacing(spacing, pred.ndim)
    if not pred.any() or not reference.any():
        raise ValueError("surface distances need two non-empty masks")
    # Every surface voxel of both masks lies inside their joint bounding box (grown by
    # one voxel so the erosion sees the outside), so the distance maps can be cropped.
    both = np.argwhere(pred | reference)
    lo = np.maximum(both.min(axis=0) - 1, 0)
    hi = both.max(axis=0) + 2
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    pred_surface, ref_surface = _surface(pred)[box], _surface(reference)[box]
    to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    return to_ref[pred_surface], to_pred[ref_surface]


def _surface_scores(
    pred: np.ndarray, reference: np.ndarray, spacing: Spacing, tolerance: float
) -> tuple[float, float]:
    """(HD95, NSD at ``tolerance``) from one computation of the surface distances."""
    if tolerance < 0 or not np.isfinite(tolerance):
        raise ValueError(f"the NSD tolerance must be a finite distance >= 0, got {tolerance}")
    pred, reference = _pair(pred, reference)
    if not pred.any() and not reference.any():
        return 0.0, 1.0
    if not pred.any() or not reference.any():
        return float("inf"), 0.0
    forward, backward = surface_distances(pred, reference, spacing)
    within = int((forward <= tolerance).sum()) + int((backward <= tolerance).sum())
    hd = float(max(np.percentile(forward, 95), np.percentile(backward, 95)))
    return hd, within / (forward.size + backward.size)


def hd95(pred: np.ndarray, reference: np.ndarray, spacing: Spacing) -> float:
    """95th-percentile symmetric Hausdorff distance in physical units (see module docs)."""
    return _surface_scores(pred, reference, spacing, 0.0)[0]


def nsd(pred: np.ndarray, reference: np.ndarray, spacing: Spacing, tolerance: float) -> float:
    """Normalised surface Dice at ``tolerance`` (physical units; see module docs)."""
    return _surface_scores(pred, reference, spacing, tolerance)[1]


def label_volumes_ml(labels: np.ndarray, spacing_mm: Spacing) -> dict[int, float]:
    """Volume in millilitres of every non-zero label value (spacing in mm)."""
    labels = np.asarray(labels)
    spacing_mm = _check_spacing(spacing_mm, labels.ndim)
    values, counts = np.unique(labels[labels != 0], return_counts=True)
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    return {int(v): float(c) * voxel_ml for v, c in zip(values, counts, strict=True)}


@dataclass(frozen=True)
class LabelScores:
    """The metrics of one label value; ``present`` says which side holds it."""

    value: int
    name: str
    present: str  # "both", "prediction only", "reference only"
    dice: float
    iou: float
    hd95: float
    nsd: float
    pred_volume: float
    ref_volume: float

    def as_dict(self) -> dict:
        """A JSON-ready dict (infinite HD95 becomes ``None``)."""
        row = asdict(self)
        row["hd95"] = None if not np.isfinite(self.hd95) else self.hd95
        return row


def _bounding_box(mask_a: np.ndarray, mask_b: np.ndarray) -> tuple[slice, ...]:
    found = np.argwhere(mask_a | mask_b)
    return tuple(slice(a, b + 1) for a, b in zip(found.min(axis=0), found.max(axis=0), strict=True))


def evaluate_labels(
    pred: np.ndarray,
    reference: np.ndarray,
    spacing: Spacing,
    *,
    labels: Iterable[int] | None = None,
    tolerance: float = 2.0,
    names: Mapping[int, str] | None = None,
    volume_per_unit3: float = 1e-3,
) -> list[LabelScores]:
    """Per-label metrics of two label maps on the same grid.

    ``labels`` defaults to every non-zero value found on either side; a value missing
    from one side is scored as an empty mask there (Dice 0). Volumes are voxel counts x
    voxel volume x ``volume_per_unit3`` (default: mm3 -> mL).
    """
    pred, reference = np.asarray(pred), np.asarray(reference)
    if pred.shape != reference.shape:
        raise ValueError(
            f"label maps differ in shape: prediction {pred.shape} vs reference {reference.shape}"
        )
    spacing = _check_spacing(spacing, pred.ndim)
    if labels is None:
        labels = sorted((set(np.unique(pred).tolist()) | set(np.unique(reference).tolist())) - {0})
    names = dict(names or {})
    voxel = float(np.prod(spacing)) * volume_per_unit3
    rows = []
    for value in labels:
        p, r = pred == value, reference == value
        in_pred, in_ref = bool(p.any()), bool(r.any())
        present = (
            "both" if in_pred and in_ref else "prediction only" if in_pred else "reference only"
        )
        if not in_pred and not in_ref:
            present = "neither"
        else:
            # The metrics only need the region both masks occupy (plus the surface margin).
            box = _bounding_box(p, r)
            grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
            p, r = p[grown], r[grown]
        hd, surface_dice = _surface_scores(p, r, spacing, tolerance)
        rows.append(
            LabelScores(
                value=int(value),
                name=names.get(int(value), ""),
                present=present,
                dice=dice(p, r),
                iou=iou(p, r),
                hd95=hd,
                nsd=surface_dice,
                pred_volume=float(p.sum()) * voxel,
                ref_volume=float(r.sum()) * voxel,
            )
        )
    return rows


@dataclass(frozen=True)
class InstanceScores:
    """Instance matching at an IoU threshold (one-to-one, maximal total IoU)."""

    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    f1: float
    mean_true_positive_dice: float  # NaN when nothing matched

    def as_dict(self) -> dict:
        """A JSON-ready dict (NaN becomes ``None``)."""
        row = asdict(self)
        if not np.isfinite(self.mean_true_positive_dice):
            row["mean_true_positive_dice"] = None
        return row


def instance_f1(pred: np.ndarray, reference: np.ndarray, threshold: float = 0.5) -> InstanceScores:
    """Match predicted to reference instances (label values; 0 is background).

    Pairs are assigned one-to-one maximising total IoU (Hungarian); a pair is a true
    positive when its IoU >= ``threshold``. Also returns the mean Dice of the true
    positives, so that F1 (detection) and Dice (delineation) are seen apart.
    """
    pred, reference = np.asarray(pred), np.asarray(reference)
    if pred.shape != reference.shape:
        raise ValueError(
            f"instance maps differ in shape: prediction {pred.shape} vs reference {reference.shape}"
        )
    if not 0 < threshold <= 1:
        raise ValueError(f"the IoU threshold must be in (0, 1], got {threshold}")
    pred_ids, pred_inv = np.unique(pred, return_inverse=True)
    ref_ids, ref_inv = np.unique(reference, return_inverse=True)
    # Overlap counts of every (pred, ref) value pair from one pass over the voxels.
    overlap = np.bincount(
        pred_inv.ravel() * len(ref_ids) + ref_inv.ravel(), minlength=len(pred_ids) * len(ref_ids)
    ).reshape(len(pred_ids), len(ref_ids))
    pred_sizes, ref_sizes = overlap.sum(axis=1), overlap.sum(axis=0)
    keep_p, keep_r = pred_ids != 0, ref_ids != 0
    overlap, pred_sizes, ref_sizes = (
        overlap[keep_p][:, keep_r],
        pred_sizes[keep_p],
        ref_sizes[keep_r],
    )
    n_pred, n_ref = len(pred_sizes), len(ref_sizes)
    tp_dice: list[float] = []
    if n_pred and n_ref:
        union = pred_sizes[:, None] + ref_sizes[None, :] - overlap
        ious = overlap / np.maximum(union, 1)
        rows, cols = linear_sum_assignment(ious, maximize=True)
        matched = ious[rows, cols] >= threshold
        rows, cols = rows[matched], cols[matched]
        tp_dice = (2 * overlap[rows, cols] / (pred_sizes[rows] + ref_sizes[cols])).tolist()
    tp = len(tp_dice)
    fp, fn = n_pred - tp, n_ref - tp
    precision = tp / n_pred if n_pred else float(n_ref == 0)
    recall = tp / n_ref if n_ref else float(n_pred == 0)
    f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0
    return InstanceScores(
        threshold=float(threshold),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        precision=precision,
        recall=recall,
        f1=f1,
        mean_true_positive_dice=float(np.mean(tp_dice)) if tp_dice else float("nan"),
    )
