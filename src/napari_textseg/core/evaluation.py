"""Compare a predicted label map with a reference: grid checks, per-label table, reports."""

from __future__ import annotations

import csv
import difflib
import json
import os
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_textseg.core.errors import InputError
from napari_textseg.core.io.atomic import atomic_target
from napari_textseg.core.metrics import (
    InstanceScores,
    LabelScores,
    evaluate_labels,
    instance_f1,
)
from napari_textseg.core.vocabulary import lookup, normalise
from napari_textseg.core.volume import Volume

__all__ = [
    "MM_PER_UNIT",
    "Evaluation",
    "GridMismatch",
    "check_same_grid",
    "evaluate_volumes",
    "iter_evaluate",
    "label_map",
    "label_volumes",
    "match_by_name",
    "resolve_labels",
    "write_csv",
]

MM_PER_UNIT = {"mm": 1.0, "um": 1e-3}  # the units volumes come in
_VOLUME_UNIT = {"mm": "mL", "um": "um3"}
_VOLUME_FACTOR = {"mm": 1e-3, "um": 1.0}  # unit3 -> the volume unit above


class GridMismatch(InputError):
    """Two label maps are not on the same voxel grid; nothing is resampled silently."""


def label_map(volume: Volume, role: str) -> np.ndarray:
    """The integer (z, y, x) array of a label volume, or a clear error."""
    data = np.asarray(volume.data)
    if volume.channel_axis is not None or data.ndim != 3:
        raise InputError(
            f"the {role} ({volume.name or 'volume'}) must be one 3-D label map, got shape "
            f"{data.shape}"
        )
    if not np.issubdtype(data.dtype, np.integer):
        if (
            not np.issubdtype(data.dtype, np.floating)
            or not np.all(np.isfinite(data))
            or np.any(data % 1)
        ):
            raise InputError(
                f"the {role} ({volume.name or 'volume'}) is not a label map: "
                f"its values are {data.dtype}, not whole numbers"
            )
        data = data.astype(np.int64)
    if data.size and data.min() < 0:
        raise InputError(
            f"the {role} ({volume.name or 'volume'}) is not a label map: it has negative values "
            f"(down to {int(data.min())}); is it the image?"
        )
    return data


def check_semantic_labels(values: np.ndarray, role: str, name: str = "", most: int = 1000) -> None:
    """Refuse a label map whose sorted distinct ``values`` are more than an organ map has
    (an image given as labels); instance maps (nuclei) are not checked."""
    if len(values) > most:
        raise InputError(
            f"the {role} ({name or 'volume'}) is not a label map: it holds {len(values)} distinct "
            f"values ({int(values[0])} to {int(values[-1])}); is it the image? (--instances for "
            "instance labels)"
        )


def check_same_grid(pred: Volume, reference: Volume, atol_mm: float = 1e-3) -> None:
    """Raise :class:`GridMismatch` unless both volumes share shape, spacing, origin and axes."""
    if pred.spatial_shape != reference.spatial_shape:
        raise GridMismatch(
            f"the prediction is {pred.spatial_shape} voxels and the reference "
            f"{reference.spatial_shape}; "
            "evaluation never resamples: put both on the same grid first"
        )
    units = (pred.geometry.unit, reference.geometry.unit)
    if units[0] != units[1]:
        raise GridMismatch(f"the prediction is in {units[0]} and the reference in {units[1]}")
    pa, ra = pred.geometry.affine, reference.geometry.affine
    if pa is not None and ra is not None:
        diff = np.abs(
            pred.geometry.display_affine_ras() - reference.geometry.display_affine_ras()
        ).max()
        if diff > atol_mm:
            raise GridMismatch(
                "the prediction and the reference lie differently in space (affines differ by up "
                "to "
                f"{diff:.3g} mm: spacing {tuple(round(s, 4) for s in pred.spacing)} vs "
                f"{tuple(round(s, 4) for s in reference.spacing)}, origin "
                f"{tuple(round(o, 2) for o in pred.origin)} "
                f"vs {tuple(round(o, 2) for o in reference.origin)}); evaluation never resamples"
            )
    elif not np.allclose(pred.spacing, reference.spacing, rtol=1e-4, atol=0):
        raise GridMismatch(
            f"voxel sizes differ: prediction {pred.spacing} vs reference {reference.spacing} "
            f"{units[0]}; evaluation never resamples"
        )


@dataclass
class Evaluation:
    """Per-label (or instance) scores of one prediction against one reference."""

    prediction: str
    reference: str
    spacing: tuple[float, float, float]
    unit: str
    tolerance: float  # in ``unit``
    rows: list[LabelScores] = field(default_factory=list)
    instances: InstanceScores | None = None
    matched_by: str = "value"  # "name" when both sides named their labels

    @property
    def volume_unit(self) -> str:
        return _VOLUME_UNIT.get(self.unit, f"{self.unit}3")

    def mean(self, over: str = "predicted") -> dict[str, float]:
        """Mean Dice, IoU and NSD over the labels the prediction holds (``over="all"``: every
        evaluated label, a missing one scoring 0). One good organ scored against a 40-organ
        reference is that organ's score, not a fortieth of it."""
        rows = (
            self.rows if over == "all" else [r for r in self.rows if r.present != "reference only"]
        )
        if not rows:
            return {}
        return {k: float(np.mean([getattr(r, k) for r in rows])) for k in ("dice", "iou", "nsd")}

    def table(self) -> str:
        """The report as an aligned text table."""
        head = (
            f"{self.prediction} vs {self.reference} (spacing {self.spacing} {self.unit}; "
            f"labels matched by {self.matched_by})"
        )
        if self.instances is not None:
            s = self.instances
            dice_tp = (
                "n/a"
                if not np.isfinite(s.mean_true_positive_dice)
                else f"{s.mean_true_positive_dice:.4f}"
            )
            return (
                f"{head}\ninstances at IoU >= {s.threshold:g}: TP {s.true_positives}, FP "
                f"{s.false_positives}, "
                f"FN {s.false_negatives}; precision {s.precision:.4f}, recall {s.recall:.4f}, "
                f"F1 {s.f1:.4f}; mean Dice of true positives {dice_tp}"
            )
        tol = f"NSD@{self.tolerance:g}{self.unit}"
        vu = self.volume_unit
        lines = [
            head,
            f"{'value':>5}  {'name':<24} {'Dice':>7} {'IoU':>7} {'HD95':>8} {tol:>10} "
            f"{'pred ' + vu:>11} {'ref ' + vu:>11}  note",
        ]
        for r in self.rows:
            hd = f"{r.hd95:8.2f}" if np.isfinite(r.hd95) else f"{'inf':>8}"
            note = "" if r.present == "both" else r.present
            lines.append(
                f"{r.value:>5}  {r.name[:24]:<24} {r.dice:7.4f} {r.iou:7.4f} {hd} {r.nsd:10.4f} "
                f"{r.pred_volume:11.3f} {r.ref_volume:11.3f}  {note}"
            )
        predicted = sum(r.present != "reference only" for r in self.rows)
        for over, title in (
            ("predicted", f"mean, {predicted} predicted"),
            ("all", f"mean, all {len(self.rows)}"),
        ):
            m = self.mean(over)
            if m and (over == "predicted" or predicted < len(self.rows)):
                lines.append(
                    f"{'':>5}  {title:<24} {m['dice']:7.4f} {m['iou']:7.4f} {'':>8} "
                    f"{m['nsd']:10.4f}"
                )
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-ready: infinite or undefined values become ``null``."""
        out = {
            "prediction": self.prediction,
            "reference": self.reference,
            "spacing": list(self.spacing),
            "unit": self.unit,
            "tolerance": self.tolerance,
            "volume_unit": self.volume_unit,
            "matched_by": self.matched_by,
        }
        if self.instances is not None:
            out["instances"] = self.instances.as_dict()
        else:
            out["labels"] = [r.as_dict() for r in self.rows]
            out["mean"] = self.mean()  # over the labels the prediction holds
            out["mean_all"] = self.mean("all")
        return out

    def write(self, path: str | os.PathLike) -> Path:
        """Write the report as ``.json`` or ``.csv`` (chosen by the suffix); atomic."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".csv"):
            raise InputError(f"{path.name}: write the report as .json or .csv")
        if suffix == ".csv":
            rows = (
                [self.instances.as_dict()]
                if self.instances is not None
                else [r.as_dict() | {"hd95": r.hd95} for r in self.rows]
            )
            return write_csv(path, rows)
        with atomic_target(path) as tmp:
            tmp.write_text(json.dumps(self.as_dict(), indent=1))
        return path


def write_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write dict rows as CSV (columns from the first row), atomically."""
    path = Path(path)
    with atomic_target(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["value"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def resolve_labels(items: list[str], names: dict[int, str]) -> list[int]:
    """Label values from ``--labels`` items: numbers, or names from the sidecars (any case)."""
    by_name = {name.casefold(): value for value, name in names.items()}
    values = []
    for item in (part.strip() for text in items for part in text.split(",")):
        if not item:
            continue
        if item.lstrip("-").isdigit():
            values.append(int(item))
        elif item.casefold() in by_name:
            values.append(by_name[item.casefold()])
        else:
            known = ", ".join(sorted(names.values())) or "none (no names sidecar)"
            raise InputError(f"unknown label {item!r}: give a value or one of the names: {known}")
    return values


def label_volumes(volume: Volume) -> list[dict]:
    """One row per label value: name, voxel count and volume (mL for mm grids)."""
    data = label_map(volume, "label map")
    unit = volume.geometry.unit
    voxel = float(np.prod(volume.spacing)) * _VOLUME_FACTOR.get(unit, 1.0)
    values, counts = np.unique(data[data != 0], return_counts=True)
    names = volume.label_names or {}
    column = f"volume_{_VOLUME_UNIT.get(unit, unit + '3')}"
    return [
        {"value": int(v), "name": names.get(int(v), ""), "voxels": int(c), column: int(c) * voxel}
        for v, c in zip(values, counts, strict=True)
    ]


def _name_key(name: str) -> str:
    organ = lookup(name)  # "kidney_left", "left kidney" and "L kidney" are one organ
    return organ.name if organ is not None else normalise(name)


def named_value(name: str, names: dict[int, str]) -> int:
    """The value of label ``name`` in ``names``, synonyms included ("left kidney" is
    kidney_left)."""
    key = _name_key(name)
    for value, other in names.items():
        if _name_key(other) == key:
            return value
    close = difflib.get_close_matches(name, list(names.values()), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise InputError(f"no label named {name!r} in the reference{hint}")


def match_by_name(
    pred: np.ndarray,
    pred_names: dict[int, str],
    ref_names: dict[int, str],
    present: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[int, tuple[str, int]]]:
    """The prediction with each label renumbered to the reference's value of the same
    name; its labels without a namesake get fresh values above both maps' (so they
    score as prediction-only). Returns the renumbered map and, for each fresh value,
    the name and the value it has in the prediction. ``present``: the prediction's distinct
    values, when the caller has them already."""
    by_name = {_name_key(n): v for v, n in ref_names.items()}
    values = [int(v) for v in (np.unique(pred) if present is None else present) if v != 0]
    fresh = max([0, *values, *ref_names]) + 1
    lut = np.zeros(max([0, *values]) + 1, dtype=np.int64)
    extra: dict[int, tuple[str, int]] = {}
    for value in values:
        name = pred_names.get(value)
        target = by_name.get(_name_key(name)) if name else None
        if target is None:
            target, fresh = fresh, fresh + 1
            extra[target] = (name or f"prediction label {value}", value)
        lut[value] = target
    return lut[pred], extra


def iter_evaluate(
    pred: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, float, float],
    unit: str = "mm",
    *,
    names: dict[int, str] | None = None,
    labels: list[int] | None = None,
    tolerance_mm: float = 2.0,
    instances: bool = False,
    iou_threshold: float = 0.5,
    prediction: str = "prediction",
    reference_name: str = "reference",
    pred_names: dict[int, str] | None = None,
    ref_names: dict[int, str] | None = None,
) -> Generator[tuple[int, int], None, Evaluation]:
    """Score two label arrays on one grid, yielding ``(done, total)`` after each label.

    ``tolerance_mm`` is converted to ``unit`` (micrometres for microscopy). With
    ``instances``, label values are instance ids and the result is instance F1. When
    both sides name their labels (``pred_names`` and ``ref_names``), labels are matched
    by name (:func:`match_by_name`), else by value; the report says which.
    """
    if pred.shape != reference.shape:
        raise GridMismatch(
            f"the prediction is {pred.shape} voxels and the reference {reference.shape}; "
            "evaluation never resamples: put both on the same grid first"
        )
    tolerance = tolerance_mm / MM_PER_UNIT.get(unit, 1.0)
    report = Evaluation(
        prediction=prediction,
        reference=reference_name,
        spacing=tuple(spacing),  # type: ignore[arg-type]
        unit=unit,
        tolerance=tolerance,
    )
    if instances:
        report.instances = instance_f1(pred, reference, iou_threshold)
        yield 1, 1
        return report
    pred_values = np.unique(pred)
    check_semantic_labels(pred_values, "prediction", prediction)
    shown: dict[int, int] = {}  # a prediction-only label is reported under its own value
    if pred_names and ref_names:
        pred, extra = match_by_name(pred, pred_names, ref_names, pred_values)
        pred_values = np.unique(pred)
        names = {**{v: name for v, (name, _) in extra.items()}, **ref_names}
        shown = {v: own for v, (_, own) in extra.items()}
        report.matched_by = "name"
    present = set(pred_values.tolist()) | set(np.unique(reference).tolist())
    if labels is None:
        labels = sorted(present - {0})
    elif not present & set(labels):
        raise InputError(
            f"label value(s) {labels} occur in neither the prediction nor the reference"
        )
    for done, value in enumerate(labels, start=1):
        rows = evaluate_labels(
            pred,
            reference,
            spacing,
            labels=[value],
            tolerance=tolerance,
            names=names,
            volume_per_unit3=_VOLUME_FACTOR.get(unit, 1.0),
        )
        report.rows += [replace(r, value=shown.get(r.value, r.value)) for r in rows]
        yield done, len(labels)
    return report


def evaluate_volumes(pred: Volume, reference: Volume, **options) -> Evaluation:
    """Check that two label volumes share a grid, then score them (options of
    :func:`iter_evaluate`)."""
    p, r = label_map(pred, "prediction"), label_map(reference, "reference")
    check_same_grid(pred, reference)
    names = {**(pred.label_names or {}), **(reference.label_names or {})}
    steps = iter_evaluate(
        p,
        r,
        reference.spacing,
        reference.geometry.unit,
        names=names,
        prediction=pred.name,
        reference_name=reference.name,
        pred_names=pred.label_names,
        ref_names=reference.label_names,
        **options,
    )
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value
