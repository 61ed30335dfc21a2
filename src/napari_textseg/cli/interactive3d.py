"""``segment --model nninteractive``: points, boxes, scribbles and lasso in 3-D, locally or
on an nnInteractive server (``--server URL``)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from napari_textseg.cli._common import coords

__all__ = ["segment_nninteractive"]


def _interaction_masks(path: str, shape: tuple[int, ...], flag: str):
    """(mask, positive) pairs from a label file on the image's grid: 1 positive, 2 negative."""
    from napari_textseg.core.io import read_volume
    from napari_textseg.engine.interactive.prompts import PromptError

    labels = np.asarray(read_volume(path).data)
    if labels.shape != shape:
        raise PromptError(f"{flag} {path} has shape {labels.shape}, the image {shape}")
    unknown = sorted(set(np.unique(labels).tolist()) - {0, 1, 2})
    if unknown:
        raise PromptError(f"{flag} {path}: label values are 1 (positive) and 2 (negative), "
                          f"not {unknown[0]}")  # fmt: skip
    return [(labels == value, value == 1) for value in (1, 2) if (labels == value).any()]


def segment_nninteractive(args: argparse.Namespace, volume) -> int:
    """Every prompt given, in the order points, boxes, scribbles, lasso; one object out."""
    from napari_textseg.core.io import write_labels
    from napari_textseg.engine.interactive.nninteractive import NnInteractiveObject
    from napari_textseg.engine.interactive.prompts import PromptError
    from napari_textseg.models.nninteractive import (
        NNINTERACTIVE_LICENCE,
        connect_nninteractive,
        network_runtime,
        nninteractive_folder,
        open_nninteractive,
    )

    shape = volume.spatial_shape
    prompts = [("point", coords(p, 3, "--point"), True) for p in args.point]
    prompts += [("point", coords(p, 3, "--negative"), False) for p in args.negative]
    for text in args.box:
        z, *box = coords(text, 5, "--box")
        prompts.append(("box", (int(round(z)), tuple(box)), True))
    for kind, paths in (("scribble", args.scribble), ("lasso", args.lasso)):
        for path in paths:
            prompts += [(kind, m, pos) for m, pos in _interaction_masks(path, shape, f"--{kind}")]
    if not prompts:
        raise PromptError("nnInteractive needs a prompt: --point, --box, --scribble or --lasso")
    autozoom = not args.no_autozoom
    if args.server:
        session, where = connect_nninteractive(args.server, autozoom=autozoom), args.server
    else:
        from napari_textseg.models.device import pick_device

        device = pick_device(args.device)
        folder = nninteractive_folder(args.checkpoint)  # before the (slow) import of the model
        session = open_nninteractive(
            folder, device, autozoom=autozoom, runtime=args.runtime, precision=args.precision
        )
        where = f"{device}, {network_runtime(session)}"
    print(f"model: nnInteractive on {where}; {NNINTERACTIVE_LICENCE}", file=sys.stderr)
    obj = NnInteractiveObject(session, volume.data, autozoom=autozoom)
    for kind, value, positive in prompts:
        if kind == "point":
            obj.add_point(value, positive)
        elif kind == "box":
            obj.add_box(*value, positive=positive)
        elif kind == "scribble":
            obj.add_scribble(value, positive)
        else:
            obj.add_lasso(value, positive)
    mask = obj.mask
    seconds = ", ".join(f"{s:.1f}" for s in obj.seconds)
    print(f"interactions took {seconds} s", file=sys.stderr)
    written = write_labels(
        args.output,
        mask.astype(np.uint32) * np.uint32(args.value),
        geometry=volume.geometry,
        scale=volume.spacing,
        translate=volume.origin,
        label_names={args.value: args.name},
    )
    print(f"{int(mask.sum())} voxels in {len(np.unique(np.nonzero(mask)[0]))} slices -> "
          f"{', '.join(written)}")  # fmt: skip
    return 0
