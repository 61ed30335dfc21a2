"""The ``napari-textseg`` command.

Subcommands
-----------
(none)                  open napari with the plugin's dock widgets
view FILE...            open files (NIfTI, TIFF, DICOM folder) in napari with the widgets
demo [--phantom]        open the sample abdominal CT (or a synthetic phantom with the
                        phantom SAM loaded) with the widgets
info FILE               shape, spacing, orientation, modality and intensity range
segment IMAGE ...       click-prompted 3D segmentation, written with the source geometry
label IMAGE --text ...  text-prompted organ labelling: one named, non-overlapping label map
models list             the model cards, and which checkpoints are downloaded
models download ID      fetch, verify and cache a checkpoint
models path [ID]        the cache folder, or where ID's checkpoint lives
models verify ID        build the architecture and load the checkpoint strictly

Every subcommand exits non-zero with a one-line ``napari-textseg: error: ...`` on bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from napari_textseg import __version__
from napari_textseg.core.errors import NapariTextsegError

__all__ = ["main"]

_WIDGETS = ("Point prompts", "Propagation", "Text labelling")


def _viewer(
    paths: Sequence[str] = (),
    sample: str | None = None,
    screenshot: str | None = None,
    model: str | None = None,
) -> int:
    import napari

    # torch and its extensions load before the OpenGL canvas exists (see _napari/_triton.py).
    import napari_textseg._napari.controller  # noqa: F401

    viewer = napari.Viewer(title="napari-textseg")
    added = [viewer.window.add_plugin_dock_widget("napari-textseg", name, tabify=True) for name in _WIDGETS]
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, added[0][0].raise_)  # once the tabs exist: show Point prompts first
    if sample:
        viewer.open_sample("napari-textseg", sample)
        viewer.layers.selection.active = viewer.layers[0]
    if model:
        points_widget = added[0][1]
        points_widget.model.setCurrentIndex(points_widget.model.findData(model))
        points_widget.load.click()
    for path in paths:
        viewer.open(path, plugin="napari-textseg")
    if screenshot:
        from qtpy.QtWidgets import QApplication

        viewer.window._qt_window.resize(1400, 850)
        for _ in range(5):
            QApplication.processEvents()
        viewer.screenshot(screenshot, canvas_only=False, flash=False)
        viewer.close()
        return 0
    napari.run()
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume

    for path in args.files:  # fail before the window opens
        read_volume(path)
    return _viewer(args.files, screenshot=args.screenshot)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.phantom:
        return _viewer(sample="phantom_ct", screenshot=args.screenshot, model="phantom_sam")
    return _viewer(sample="abdomen_ct", screenshot=args.screenshot)


def _cmd_info(args: argparse.Namespace) -> int:
    from napari_textseg.core.intensity import finite_range
    from napari_textseg.core.io import read_volume

    volume = read_volume(args.file)
    unit = "mm" if volume.geometry.unit == "mm" else "µm"
    low, high = finite_range(volume.data)
    z, y, x = volume.spatial_shape
    sz, sy, sx = volume.spacing
    spacing = f"{sz:g} x {sy:g} x {sx:g} {unit}"
    if volume.geometry.format == "tiff" and not volume.geometry.extra.get("voxel_size_stored"):
        spacing = "1 x 1 x 1 (no voxel size stored in the file)"
    rows = [
        ("file", str(args.file)),
        ("format", volume.geometry.format),
        ("shape (z, y, x)", f"{z} x {y} x {x}"),
        ("spacing (z, y, x)", spacing),
        ("origin (z, y, x)", ", ".join(f"{v:.3f}" for v in volume.origin) + f" {unit}"),
        ("source orientation", volume.orientation),
        ("display", "axial slices, LPS (radiological)" if volume.geometry.reoriented else "as stored (z, y, x)"),
        ("modality", volume.modality),
        ("dtype", str(volume.data.dtype)),
        ("intensity range", f"{low:g} .. {high:g}"),
    ]
    if volume.channel_axis is not None:
        rows.append(("channels", str(volume.data.shape[volume.channel_axis])))
    if volume.nan_count:
        rows.append(("NaN voxels", str(volume.nan_count)))
    if volume.is_labels:
        values = np.unique(volume.data)
        rows.append(("labels", f"{int((values != 0).sum())} non-zero values"))
        if volume.label_names:
            rows.append(("named labels", str(len(volume.label_names))))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _coords(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise ValueError(f"{what} {text!r} must be {n} comma-separated numbers")
    return values


def _cmd_segment(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume, write_labels
    from napari_textseg.engine.backends import make_backend
    from napari_textseg.engine.propagate import PropagationSettings
    from napari_textseg.engine.session import PostProcessing, SegmentationSession
    from napari_textseg.models.loader import load_model

    volume = read_volume(args.image)
    if volume.channel_axis is not None:
        raise ValueError(f"{args.image} has {volume.data.shape[0]} channels; segment one channel at a time")
    points = [_coords(p, 3, "--point") for p in args.point] + [_coords(p, 3, "--negative") for p in args.negative]
    labels = [1] * len(args.point) + [0] * len(args.negative)
    boxes = {}
    for text in args.box:
        z, y0, x0, y1, x1 = _coords(text, 5, "--box")
        boxes[int(round(z))] = (y0, x0, y1, x1)
    from napari_textseg.engine.prompts import group_by_slice

    # Check the clicks before the (slow) model load.
    group_by_slice(np.array(points).reshape(-1, 3), np.array(labels), volume.spatial_shape, boxes or None)
    confine = None
    if args.confine:
        organ = read_volume(args.confine)
        values = [int(v) for v in args.confine_label] or None
        confine = np.isin(organ.data, values) if values else organ.data > 0
    loaded = load_model(args.model, args.checkpoint, device=args.device)
    backend = make_backend(loaded.model, loaded.card.family, loaded.device)
    session = SegmentationSession(volume.data, volume.spacing, volume.modality, backend,
                                  roi_mm=args.roi_mm, confine=confine)
    session.set_prompts(np.array(points).reshape(-1, 3), np.array(labels), boxes or None)
    post = PostProcessing(fill_holes=args.fill_holes, keep_clicked=args.keep_clicked)
    if args.propagate:
        lo_hi = tuple(int(v) for v in _coords(args.slice_range, 2, "--slice-range")) if args.slice_range else None
        settings = PropagationSettings(direction=args.direction, memory_size=args.memory_size,
                                       policy=args.memory, empty_stop=args.stop_empty,
                                       slice_range=lo_hi, offload=args.offload)  # type: ignore[arg-type]
        mask = session.propagate(settings, post=post)
    else:
        for z in session.prompts:
            session.segment_slice(z)
        mask = session.mask(post)
    if not 1 <= args.value < 2**32:
        raise ValueError(f"--value must be a label value from 1 to {2**32 - 1}, got {args.value}")
    labels_out = mask.astype(np.uint32) * np.uint32(args.value)
    written = write_labels(args.output, labels_out, geometry=volume.geometry, scale=volume.spacing,
                           translate=volume.origin, label_names={args.value: args.name})
    print(f"{int(mask.sum())} voxels in {len(np.unique(np.nonzero(mask)[0]))} slices -> {', '.join(written)}")
    return 0


def _cmd_label(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume, write_labels
    from napari_textseg.core.text_prompts import parse_targets
    from napari_textseg.engine.backends import make_backend
    from napari_textseg.engine.clip_dense import DenseClip
    from napari_textseg.engine.prompts import group_by_slice
    from napari_textseg.engine.session import SegmentationSession
    from napari_textseg.engine.text_encoder import TextEncoder
    from napari_textseg.engine.text_labelling import (
        OrganResult,
        TextLabeller,
        assign_values,
        merge_results,
    )
    from napari_textseg.models.loader import load_model

    targets = parse_targets("\n".join(args.text))
    volume = read_volume(args.image)
    if volume.channel_axis is not None:
        raise ValueError(f"{args.image} has {volume.data.shape[0]} channels; label one channel at a time")
    names = {t.name.casefold(): t.name for t in targets}
    clicks: dict[str, tuple[list, list]] = {}
    for text in args.point:
        target, _, where = text.rpartition(":")
        name = names.get(parse_targets(target)[0].name.casefold()) if target.strip() else None
        if name is None:
            raise ValueError(f"--point {text!r} must be NAME:Z,Y,X with NAME one of the --text targets")
        clicks.setdefault(name, ([], []))[0].append(_coords(where, 3, "--point"))
        clicks[name][1].append(1)
    for points, signs in clicks.values():  # check the clicks before the (slow) model load
        group_by_slice(np.array(points), np.array(signs), volume.spatial_shape)
    need_clip = any(t.name not in clicks for t in targets)
    sam3 = args.model in ("sam3", "medical_sam3")
    if need_clip and not sam3 and not (args.clip or args.clip_checkpoint):
        raise ValueError("targets without --point need a CLIP model: --clip ID or --clip-checkpoint FILE")
    if sam3 and clicks:
        raise ValueError("SAM3 takes the text itself: drop --point, or use a SAM/SAM2 model for text + click")
    loaded = load_model(args.model, args.checkpoint, device=args.device)
    values = assign_values(targets)
    if loaded.card.family == "sam3":
        from napari_textseg.core.intensity import normalize_for_model
        from napari_textseg.engine.sam3_text import Sam3Labeller

        frames = normalize_for_model(volume.data, volume.modality, "soft_tissue")
        events = Sam3Labeller(loaded.model, frames, loaded.device).run(targets, values)
    else:
        backend = make_backend(loaded.model, loaded.card.family, loaded.device)
        dense = encoder = None
        if need_clip:
            clip = load_model(args.clip, args.clip_checkpoint, device=args.device)
            if clip.card.family != "clip":
                raise ValueError(f"{clip.card.title} is not a CLIP model")
            dense = DenseClip(clip.model)
            encoder = TextEncoder(clip.model, str(clip.checkpoint), clip.card.arch["model_name"])
        session = SegmentationSession(volume.data, volume.spacing, volume.modality, backend)
        labeller = TextLabeller(session, raw=volume.data if volume.modality == "CT" else None, clip=dense,
                                encoder=encoder)
        given = {k: (np.array(p, dtype=float), np.array(s)) for k, (p, s) in clicks.items()}
        events = labeller.run(targets, values, given)
    results = []
    for event in events:
        if isinstance(event, OrganResult):
            results.append(event)
            print(f"{event.target.name}: label {event.value}, {int(event.mask.sum())} voxels, "
                  f"confidence {event.confidence:.2f}", file=sys.stderr)
    labels, _ = merge_results(results, volume.spatial_shape)
    written = write_labels(args.output, labels, geometry=volume.geometry, scale=volume.spacing,
                           translate=volume.origin, label_names={r.value: r.target.name for r in results})
    print(f"{len(results)} targets -> {', '.join(written)}")
    return 0


def _confirm_license_interactively(card) -> bool:
    print(f"{card.id}: {card.title}")
    print(f"licence: {card.license} ({card.license_url})")
    if not sys.stdin.isatty():
        return False
    answer = input("Accept this licence and download? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _cmd_models(args: argparse.Namespace) -> int:
    from napari_textseg.models.registry import CARDS, get_card
    from napari_textseg.models.store import cache_dir, cached_path, download

    if args.models_command == "list":
        print(f"{'id':<22} {'family':<6} {'size':>8}  {'licence':<14} {'cached':<6} source")
        for card in CARDS.values():
            size = f"{card.size_mb:.0f} MB" if card.size_mb else "?"
            cached = "yes" if cached_path(card).is_file() else "no"
            print(f"{card.id:<22} {card.family:<6} {size:>8}  {card.license:<14} {cached:<6} {card.source}")
        return 0
    if args.models_command == "path":
        print(cached_path(get_card(args.model)) if args.model else cache_dir())
        return 0
    if args.models_command == "download":
        card = get_card(args.model)

        def confirm(c) -> bool:
            return True if args.accept_license else _confirm_license_interactively(c)

        path = download(card, progressbar=not args.quiet, confirm_license=confirm)
        print(path)
        return 0
    if args.models_command == "verify":
        from napari_textseg.models.loader import load_model

        loaded = load_model(args.model, args.checkpoint, device=args.device)
        n_params = sum(p.numel() for p in loaded.model.parameters())
        print(f"{loaded.card.id}: {loaded.checkpoint} loads strictly ({n_params:,} parameters) on {loaded.device}")
        return 0
    raise AssertionError(args.models_command)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-textseg",
        description="Point-click and text-prompted 3D segmentation in napari. "
        "Without a subcommand, opens napari with the plugin's widgets.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    view = sub.add_parser("view", help="open files in napari with the plugin's widgets")
    view.add_argument("files", nargs="+", help="NIfTI or TIFF files, or DICOM series folders")
    view.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    view.set_defaults(func=_cmd_view)

    demo = sub.add_parser("demo", help="open the sample abdominal CT with the plugin's widgets")
    demo.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window and exit")
    demo.add_argument("--phantom", action="store_true",
                      help="a synthetic CT phantom with the phantom SAM loaded: the whole workflow offline")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="print shape, spacing, orientation, modality, intensity range")
    info.add_argument("file", help="NIfTI or TIFF file, or DICOM series folder")
    info.set_defaults(func=_cmd_info)

    seg = sub.add_parser("segment", help="click-prompted 3D segmentation (SAM or SAM2)")
    seg.add_argument("image", help="NIfTI or TIFF file, or DICOM series folder")
    seg.add_argument("--point", action="append", default=[], metavar="Z,Y,X", help="positive click (voxels)")
    seg.add_argument("--negative", action="append", default=[], metavar="Z,Y,X", help="negative click")
    seg.add_argument("--box", action="append", default=[], metavar="Z,Y0,X0,Y1,X1", help="box on a slice")
    seg.add_argument("--propagate", action="store_true", help="propagate through the volume")
    seg.add_argument("--memory", choices=("fifo", "ranked"), default="fifo", help="memory-bank policy (SAM2)")
    seg.add_argument("--memory-size", type=int, default=6, metavar="N", help="memories kept (SAM2, at most 6)")
    seg.add_argument("--direction", choices=("both", "forward", "backward"), default="both")
    seg.add_argument("--stop-empty", type=int, default=2, metavar="N",
                     help="stop after N consecutive empty slices (0: never)")
    seg.add_argument("--slice-range", metavar="LO,HI", help="propagate only within these slices")
    seg.add_argument("--offload", action="store_true", help="keep memories in host RAM (long volumes)")
    seg.add_argument("--roi-mm", type=float, metavar="SIZE", help="tumour ROI mode: box of SIZE mm around the clicks")
    seg.add_argument("--confine", metavar="LABELS", help="a label file on the same grid to confine the result to")
    seg.add_argument("--confine-label", action="append", default=[], metavar="V", help="label value(s) in --confine")
    seg.add_argument("--fill-holes", action="store_true", help="fill enclosed holes")
    seg.add_argument("--keep-clicked", action="store_true", help="keep only components holding a positive click")
    seg.add_argument("--model", help="model id (see 'models list')")
    seg.add_argument("--checkpoint", metavar="FILE", help="a local checkpoint file")
    seg.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    seg.add_argument("--value", type=int, default=1, help="label value of the object (default 1)")
    seg.add_argument("--name", default="object", help="label name for the sidecar")
    seg.add_argument("-o", "--output", required=True, metavar="OUT", help=".nii.gz, .nii, .tif or .tiff")
    seg.set_defaults(func=_cmd_segment)

    lab = sub.add_parser("label", help="text-prompted organ labelling (CLIP finds, SAM/SAM2 segments)")
    lab.add_argument("image", help="NIfTI or TIFF file, or DICOM series folder")
    lab.add_argument("--text", action="append", required=True, metavar="NAME",
                     help="a target (repeat, or comma-separate): liver, 'left kidney', LK, ...")
    lab.add_argument("--point", action="append", default=[], metavar="NAME:Z,Y,X",
                     help="text + click: a click on target NAME (then CLIP is not needed for it)")
    lab.add_argument("--model", help="SAM/SAM2 model id (see 'models list'), or sam3 / medical_sam3")
    lab.add_argument("--checkpoint", metavar="FILE", help="a local SAM/SAM2 checkpoint file")
    lab.add_argument("--clip", help="CLIP model id (default none: every target then needs --point)")
    lab.add_argument("--clip-checkpoint", metavar="FILE", help="a local open_clip checkpoint file")
    lab.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    lab.add_argument("-o", "--output", required=True, metavar="OUT", help=".nii.gz, .nii, .tif or .tiff")
    lab.set_defaults(func=_cmd_label)

    models = sub.add_parser("models", help="list, download and locate model checkpoints")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    msub.add_parser("list", help="the known models and whether they are downloaded")
    mpath = msub.add_parser("path", help="the cache folder, or where a model's checkpoint lives")
    mpath.add_argument("model", nargs="?", help="model id")
    mdown = msub.add_parser("download", help="fetch, verify and cache a checkpoint")
    mdown.add_argument("model", help="model id (see 'models list')")
    mdown.add_argument("--accept-license", action="store_true", help="accept the model's licence")
    mdown.add_argument("--quiet", action="store_true", help="no progress bar")
    mverify = msub.add_parser("verify", help="load a checkpoint strictly into its architecture")
    mverify.add_argument("model", help="model id naming the architecture")
    mverify.add_argument("--checkpoint", metavar="FILE", help="a local file instead of the cached one")
    mverify.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-textseg`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return _viewer()
    try:
        return int(args.func(args))
    except (NapariTextsegError, ValueError, OSError) as err:
        print(f"napari-textseg: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-textseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
