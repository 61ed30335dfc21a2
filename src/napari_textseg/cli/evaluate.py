"""The evaluate command: per-label metrics against a reference."""

from __future__ import annotations

import argparse
import sys

__all__ = ["evaluate"]


def evaluate(args: argparse.Namespace) -> int:
    from napari_textseg.core.evaluation import evaluate_volumes, resolve_labels
    from napari_textseg.core.io import read_volume

    pred, ref = read_volume(args.prediction), read_volume(args.reference)
    labels = None
    if args.labels:
        labels = resolve_labels(args.labels, {**(pred.label_names or {}), **(ref.label_names or {})})
    report = evaluate_volumes(pred, ref, labels=labels, tolerance_mm=args.tolerance_mm,
                              instances=args.instances, iou_threshold=args.iou)
    print(report.table())
    if args.json or args.csv:
        print(f"-> {report.write(args.json or args.csv)}", file=sys.stderr)
    return 0
