"""The evaluate command: per-label metrics against a reference."""

from __future__ import annotations

import argparse
import sys

__all__ = ["evaluate"]


def _named_object(pred, ref, name: str):
    """The prediction's one object named ``name``, so that it pairs with the reference's label of
    that name."""
    import dataclasses

    import numpy as np

    from napari_textseg.core.errors import InputError
    from napari_textseg.core.evaluation import named_value

    values = [int(v) for v in np.unique(np.asarray(pred.data)) if v > 0]
    if len(values) != 1:
        raise InputError(
            f"--name scores one object, and {pred.name} holds {len(values)} labels; "
            "use --labels to choose among them"
        )
    if not ref.label_names:
        raise InputError(
            f"--name {name!r}: the reference {ref.name} names no labels (no .labels.json beside "
            "it); "
            "use --labels VALUE"
        )
    named_value(name, ref.label_names)  # synonyms pair; an unknown name is refused
    return dataclasses.replace(pred, label_names={values[0]: name})


def evaluate(args: argparse.Namespace) -> int:
    from napari_textseg.core.evaluation import evaluate_volumes, resolve_labels
    from napari_textseg.core.io import read_volume

    pred, ref = read_volume(args.prediction), read_volume(args.reference)
    if args.name:
        pred = _named_object(pred, ref, args.name)
    labels = None
    if args.labels:
        labels = resolve_labels(
            args.labels, {**(pred.label_names or {}), **(ref.label_names or {})}
        )
    report = evaluate_volumes(
        pred,
        ref,
        labels=labels,
        tolerance_mm=args.tolerance_mm,
        instances=args.instances,
        iou_threshold=args.iou,
    )
    print(report.table())
    if args.json or args.csv:
        print(f"-> {report.write(args.json or args.csv)}", file=sys.stderr)
    return 0
