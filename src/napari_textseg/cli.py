"""The ``napari-textseg`` command.

Subcommands
-----------
(none)                  open napari with the plugin's dock widgets
view FILE...            open files (NIfTI, TIFF, DICOM folder) in napari with the widgets
demo [--phantom]        open the sample abdominal CT (or a synthetic phantom with the
                        phantom SAM loaded) with the widgets
phantom -o DIR          write a synthetic CT (or nuclei) phantom and its reference labels
info FILE               shape, spacing, orientation, modality and intensity range
segment IMAGE ...       click-prompted 3D segmentation, written with the source geometry
label IMAGE --text ...  text-prompted organ labelling: one named, non-overlapping label map
batch SOURCE ... -o DIR  label a cohort (manifest CSV or glob) on Dask: resumable, per-case errors
evaluate PRED REF       Dice, IoU, HD95 and NSD per label (or instance F1) against a reference
volumes LABELS          volume of every label (mL), optionally as CSV
export-seg LABELS --source DICOM_DIR -o OUT.dcm
                        a DICOM-SEG referencing the series the labels were drawn on
export-nnunet --case IMAGE LABELS ... -o ROOT --id N --name NAME
                        an nnU-Net v2 raw dataset (imagesTr, labelsTr, dataset.json)
models list             the model cards, and which checkpoints are downloaded
models download ID      fetch, verify and cache a checkpoint
models path [ID]        the cache folder, or where ID's checkpoint lives
models verify ID        build the architecture and load the checkpoint strictly

Every subcommand exits non-zero with a one-line ``napari-textseg: error: ...``: 2 for bad
input (the message names the file and the cause), 1 for anything unexpected; ``--debug``
shows the traceback. Without a display, the viewer commands say so and name ``xvfb-run``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from collections.abc import Sequence

import numpy as np

from napari_textseg import __version__
from napari_textseg.core.errors import InputWarning, NapariTextsegError

__all__ = ["main"]

_WIDGETS = ("Point prompts", "Propagation", "Text labelling", "Compare with reference")


def _viewer(
    paths: Sequence[str] = (),
    sample: str | None = None,
    screenshot: str | None = None,
    model: str | None = None,
    window: str = "1400x850",
    stacked: bool = False,
) -> int:
    import napari

    # torch and its extensions load before the OpenGL canvas exists (see _napari/_triton.py).
    import napari_textseg._napari.controller  # noqa: F401

    viewer = napari.Viewer(title="napari-textseg")
    added = [viewer.window.add_plugin_dock_widget("napari-textseg", name, tabify=not stacked) for name in _WIDGETS]
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, added[0][0].raise_)  # once the tabs exist: show Point prompts first
    if sample:
        from napari.layers import Labels

        viewer.open_sample("napari-textseg", sample)
        # The labels layer active: hovering then shows each organ's name in the status bar.
        viewer.layers.selection.active = next((la for la in viewer.layers if isinstance(la, Labels)),
                                              viewer.layers[0])
    if model:
        points_widget = added[0][1]
        if sample == "abdomen_ct":  # the first run shows a real mask: a box on the liver, propagated
            from napari_textseg._napari.demo import show_box_demo

            show_box_demo(viewer, points_widget.controller)
        points_widget.model.setCurrentIndex(points_widget.model.findData(model))
        points_widget.load.click()
    for path in paths:
        viewer.open(path, plugin="napari-textseg")
    if screenshot:
        from qtpy.QtWidgets import QApplication

        width, height = (int(v) for v in window.lower().split("x"))
        viewer.window._qt_window.resize(width, height)
        for _ in range(5):
            QApplication.processEvents()
        if model:  # the model loaded and its first result shown
            from napari_textseg._napari.demo import wait_until_idle

            wait_until_idle(added[0][1].controller)
        viewer.screenshot(screenshot, canvas_only=False, flash=False)
        viewer.close()
        return 0
    napari.run()
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume

    for path in args.files:  # a missing or unreadable file is named before the display is checked
        read_volume(path)
    _need_display(args)
    return _viewer(args.files, screenshot=args.screenshot)


def _need_display(args: argparse.Namespace) -> None:
    from napari_textseg.display import check_display

    check_display(args.command_line)


def _cmd_demo(args: argparse.Namespace) -> int:
    shot = {"screenshot": args.screenshot, "window": args.window, "stacked": args.stacked}
    if args.phantom:
        return _viewer(sample="phantom_ct", model="phantom_sam", **shot)
    from napari_textseg.models.registry import DEFAULT_MODEL

    return _viewer(sample="abdomen_ct", model=DEFAULT_MODEL, **shot)


def _cmd_phantom(args: argparse.Namespace) -> int:
    from napari_textseg.core.phantoms import ct_phantom, nuclei_phantom

    phantom = (ct_phantom if args.kind == "ct" else nuclei_phantom)(seed=args.seed)
    name = f"phantom_{args.kind}_{args.seed}"
    image, labels = phantom.save(args.output, name)
    print(f"image  {image}\nlabels {labels} ({len(phantom.objects)} named objects)")
    first = phantom.objects[0]
    z, y, x = phantom.centre_click(first.value)
    out = shlex.quote(f"{first.name}.nii.gz")
    print(f"try: napari-textseg segment {shlex.quote(str(image))} --point {z},{y},{x} --propagate "
          f"--model phantom_sam --name {shlex.quote(first.name)} -o {out}\n"
          f"then: napari-textseg evaluate {out} {shlex.quote(str(labels))} --labels {shlex.quote(first.name)}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from napari_textseg.core.intensity import finite_range, no_contrast_reason
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
    oblique = volume.geometry.obliquity()
    if oblique is not None:
        rows.append(("oblique", f"{oblique.degrees:.1f}° from the patient axes; shown axis-aligned, up to "
                                f"{oblique.max_offset:.1f} {unit} off; exports keep the rotation"))
    if volume.channel_axis is not None:
        rows.append(("channels", str(volume.data.shape[volume.channel_axis])))
    if volume.nan_count:
        rows.append(("NaN voxels", str(volume.nan_count)))
    blank = no_contrast_reason(volume.data)
    if blank and not volume.is_labels:
        rows.append(("warning", f"{blank}: nothing to segment or label"))
    if volume.is_labels:
        values = np.unique(volume.data)
        rows.append(("labels", f"{int((values != 0).sum())} non-zero values"))
        if volume.label_names:
            rows.append(("named labels", str(len(volume.label_names))))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _count(n: int, noun: str) -> str:
    """``1 case``, ``2 cases``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _coords(text: str, n: int, what: str) -> tuple[int, ...]:
    from napari_textseg.engine.interactive.prompts import voxel_indices

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise ValueError(f"{what} {text!r} must be {n} comma-separated numbers")
    return voxel_indices(values, f"{what} {text}")


def _cmd_segment(args: argparse.Namespace) -> int:
    from napari_textseg.core.io.export import check_label_target

    check_label_target(args.output)  # a wrong suffix or folder, before the model loads
    from napari_textseg.core.io import read_volume, write_labels
    from napari_textseg.engine.interactive.litemedsam_backend import BOX_ONLY_MESSAGE
    from napari_textseg.engine.interactive.prompts import PromptError, group_by_slice
    from napari_textseg.engine.interactive.propagate import PropagationSettings
    from napari_textseg.engine.interactive.session import PostProcessing
    from napari_textseg.engine.jobs.pipelines import segment_clicks
    from napari_textseg.models.loader import load_model
    from napari_textseg.models.registry import DEFAULT_MODEL, get_card, real_image_warning

    volume = read_volume(args.image)
    if volume.channel_axis is not None:
        raise ValueError(f"{args.image} has {volume.data.shape[0]} channels; segment one channel at a time")
    if not 1 <= args.value < 2**32:
        raise ValueError(f"--value must be a label value from 1 to {2**32 - 1}, got {args.value}")
    points = [_coords(p, 3, "--point") for p in args.point] + [_coords(p, 3, "--negative") for p in args.negative]
    labels = [1] * len(args.point) + [0] * len(args.negative)
    boxes = {}
    for text in args.box:
        z, y0, x0, y1, x1 = _coords(text, 5, "--box")
        boxes[int(round(z))] = (y0, x0, y1, x1)
    # Check the clicks before the (slow) model load.
    group_by_slice(np.array(points).reshape(-1, 3), np.array(labels), volume.spatial_shape, boxes or None)
    confine = None
    if args.confine:
        organ = read_volume(args.confine)
        values = [int(v) for v in args.confine_label] or None
        confine = np.isin(organ.data, values) if values else organ.data > 0
    lo_hi = tuple(int(v) for v in _coords(args.slice_range, 2, "--slice-range")) if args.slice_range else None
    if lo_hi and not 0 <= lo_hi[0] <= lo_hi[1] < volume.spatial_shape[0]:
        raise PromptError(f"--slice-range {args.slice_range}: give FIRST,LAST with 0 <= FIRST <= LAST <= "
                          f"{volume.spatial_shape[0] - 1} (the volume has {volume.spatial_shape[0]} slices)")
    # built (and so checked: memory size 1-6, ...) even without --propagate: a bad value is a typo to report
    settings = PropagationSettings(direction=args.direction, memory_size=args.memory_size,
                                   policy=args.memory, empty_stop=args.stop_empty,
                                   slice_range=lo_hi, offload=args.offload,  # type: ignore[arg-type]
                                   projection=args.projection)
    model_id = args.model or (None if args.checkpoint else DEFAULT_MODEL)
    if points and model_id and get_card(model_id).box_only:  # before the model loads
        raise PromptError(BOX_ONLY_MESSAGE.format(model=get_card(model_id).name))
    loaded = load_model(model_id, args.checkpoint, device=args.device)
    warning = real_image_warning(loaded.card, volume.name)
    if warning:
        print(f"napari-textseg: warning: {warning}", file=sys.stderr)
    mask = segment_clicks(volume, loaded, np.array(points), np.array(labels), boxes,
                          propagate=settings if args.propagate else None,
                          post=PostProcessing(fill_holes=args.fill_holes, keep_clicked=args.keep_clicked),
                          roi_mm=args.roi_mm, confine=confine)
    labels_out = mask.astype(np.uint32) * np.uint32(args.value)
    written = write_labels(args.output, labels_out, geometry=volume.geometry, scale=volume.spacing,
                           translate=volume.origin, label_names={args.value: args.name})
    print(f"model: {loaded.card.title}", file=sys.stderr)
    print(f"{int(mask.sum())} voxels in {len(np.unique(np.nonzero(mask)[0]))} slices -> {', '.join(written)}")
    return 0


def _cmd_label(args: argparse.Namespace) -> int:
    from napari_textseg.core.io.export import check_label_target

    check_label_target(args.output)  # a wrong suffix or folder, before the model loads
    from napari_textseg.core.io import read_volume, write_labels
    from napari_textseg.core.text_prompts import parse_targets
    from napari_textseg.engine.interactive.prompts import group_by_slice
    from napari_textseg.engine.jobs.pipelines import label_text, needs_clip
    from napari_textseg.models.loader import load_model
    from napari_textseg.models.registry import DEFAULT_MODEL
    from napari_textseg.models.store import CLI_CLIP_WORDING

    targets = parse_targets("\n".join(args.text))
    volume = read_volume(args.image)
    if volume.channel_axis is not None:
        raise ValueError(f"{args.image} has {volume.data.shape[0]} channels; label one channel at a time")
    names = {t.name.casefold(): t.name for t in targets}
    clicks: dict[str, tuple[list, list, dict]] = {}

    def target_of(text: str, flag: str, form: str) -> tuple[str, str]:
        target, _, where = text.rpartition(":")
        name = names.get(parse_targets(target)[0].name.casefold()) if target.strip() else None
        if name is None:
            raise ValueError(f"{flag} {text!r} must be NAME:{form} with NAME one of the --text targets")
        return name, where

    for text in args.point:
        name, where = target_of(text, "--point", "Z,Y,X")
        clicks.setdefault(name, ([], [], {}))[0].append(_coords(where, 3, "--point"))
        clicks[name][1].append(1)
    for text in args.box:
        name, where = target_of(text, "--box", "Z,Y0,X0,Y1,X1")
        z, *box = _coords(where, 5, "--box")
        clicks.setdefault(name, ([], [], {}))[2][int(round(z))] = tuple(box)
    for points, signs, boxes in clicks.values():  # check the prompts before the (slow) model load
        group_by_slice(np.array(points).reshape(-1, 3), np.array(signs), volume.spatial_shape, boxes)
    from napari_textseg.engine.text.registry import choose_backend
    from napari_textseg.models.device import pick_device

    device = pick_device(args.device)
    backend = args.backend
    if backend == "auto" and (args.model or args.checkpoint or clicks):
        backend = "clip-sam"  # a SAM model or clicks were given: the user asked for clip-sam
    backend = choose_backend(backend, volume.modality, device.type, allow_cpu=args.allow_cpu,
                             weights_present=True if args.weights else None)
    loaded = clip = None
    if backend == "clip-sam":
        sam3 = args.model in ("sam3", "medical_sam3")
        need_clip = needs_clip(targets, clicks) and not sam3
        if need_clip and not (args.clip or args.clip_checkpoint):
            raise ValueError("targets without --point need a CLIP model: --clip ID or --clip-checkpoint FILE")
        if sam3 and clicks:
            raise ValueError("SAM3 takes the text itself: drop --point, or use a SAM/SAM2 model for text + click")
        if not (args.model or args.checkpoint or clicks):
            raise ValueError("the clip-sam backend needs a SAM/SAM2 model: --model ID or --checkpoint FILE "
                             "(or install a trained backend: --backend voxtell)")
        # text + prompt without a model named: the installed box model
        loaded = load_model(args.model or (None if args.checkpoint else DEFAULT_MODEL), args.checkpoint,
                            device=args.device)
        if need_clip:
            clip = load_model(args.clip, args.clip_checkpoint, device=args.device, wording=CLI_CLIP_WORDING)
    given = {k: (np.array(p, dtype=float).reshape(-1, 3), np.array(s, dtype=int), b)
             for k, (p, s, b) in clicks.items()}
    result = label_text(volume, targets, loaded, clip, given, backend=backend, device=device,
                        weights=args.weights, report=lambda line: print(line, file=sys.stderr))
    written = write_labels(args.output, result.labels, geometry=volume.geometry, scale=volume.spacing,
                           translate=volume.origin, label_names=result.names)
    print(f"{_count(len(result.names), 'target')} -> {', '.join(written)}")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from tqdm import tqdm

    from napari_textseg.engine.jobs.batch import (
        BatchJob,
        check_job,
        close,
        connect,
        find_cases,
        run_batch,
    )

    prompts = {}
    if args.prompts:
        try:
            prompts = json.loads(Path(args.prompts).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read the prompts file {args.prompts}: {err}") from err
        if not isinstance(prompts, dict):
            raise ValueError(f"{args.prompts}: expected {{case id: [{{name, points, negative}}, ...]}}")
    job = BatchJob(text=tuple(args.text), prompts=prompts, model=args.model, checkpoint=args.checkpoint,
                   clip=args.clip, clip_checkpoint=args.clip_checkpoint, device=args.device,
                   tolerance_mm=args.tolerance_mm)
    cases = find_cases(args.source, args.output)
    check_job(job)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    earlier = sum(Path(c.output).exists() for c in cases)
    client = connect(args.scheduler, args.workers)
    try:
        with tqdm(total=len(cases), desc="cases", unit="case", file=sys.stderr) as bar:
            def progress(result, done, total) -> None:
                bar.n = done
                bar.set_postfix_str(f"{result.case_id}: {result.status}")
                if result.status == "error":
                    tqdm.write(f"{result.case_id}: error: {result.message}", file=sys.stderr)

            results = run_batch(cases, job, client, progress=progress, out_dir=args.output)
    finally:
        close(client)
    table = Path(args.output) / "results.csv"
    for r in results:
        scores = ", ".join(f"{n} Dice {m['dice']:.3f}" for n, m in r.metrics.items())
        print(f"{r.case_id:<24} {r.status:<8} {r.seconds:7.1f} s  {scores or r.message}")
    failed = sum(r.status == "error" for r in results)
    kept = f" ({earlier} from an earlier run)" if earlier else ""
    print(f"{len(results) - failed} of {_count(len(results), 'case')} ok{kept} -> {table}")
    return 1 if failed else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
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


def _cmd_volumes(args: argparse.Namespace) -> int:
    from napari_textseg.core.evaluation import label_volumes, write_csv
    from napari_textseg.core.io import read_volume

    rows = label_volumes(read_volume(args.labels))
    unit = next((k for k in (rows[0] if rows else {}) if k.startswith("volume_")), "volume_mL")
    print(f"{'value':>5}  {'name':<24} {'voxels':>10} {unit.removeprefix('volume_'):>12}")
    for row in rows:
        print(f"{row['value']:>5}  {row['name'][:24]:<24} {row['voxels']:>10} {row[unit]:12.3f}")
    if args.csv:
        print(f"-> {write_csv(args.csv, rows)}", file=sys.stderr)
    return 0


def _cmd_export_seg(args: argparse.Namespace) -> int:
    from napari_textseg.core.evaluation import check_same_grid, label_map
    from napari_textseg.core.io import read_volume
    from napari_textseg.core.io.dicom_seg import write_dicom_seg

    labels, source = read_volume(args.labels), read_volume(args.source)
    check_same_grid(labels, source)
    path = write_dicom_seg(args.output, label_map(labels, "label map"), source.geometry, labels.label_names)
    print(f"{_count(len([v for v in np.unique(labels.data) if v]), 'segment')} -> {path}")
    return 0


def _cmd_export_nnunet(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume
    from napari_textseg.core.io.atomic import safe_stem
    from napari_textseg.core.io.nnunet import NnunetCase, export_nnunet

    cases, seen = [], set()
    for image_path, labels_path in args.case:
        stem = safe_stem(image_path)
        case_id, n = stem, 1
        while case_id in seen:
            n += 1
            case_id = f"{stem}_{n}"
        seen.add(case_id)
        cases.append(NnunetCase(read_volume(image_path), read_volume(labels_path), case_id))
    folder = export_nnunet(cases, args.output, args.id, args.name, overwrite=args.overwrite)
    print(f"{_count(len(cases), 'case')} -> {folder}")
    return 0


def _confirm_license_interactively(card) -> bool:
    print(f"{card.id}: {card.title}")
    print(f"licence: {card.license} ({card.license_url})")
    if not sys.stdin.isatty():
        return False
    answer = input("Accept this licence and download? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _cmd_models(args: argparse.Namespace) -> int:
    from napari_textseg.models.errors import CheckpointError
    from napari_textseg.models.registry import CARDS, get_card
    from napari_textseg.models.store import cache_dir, cached_path, download

    if args.models_command == "list":
        print(f"{'id':<22} {'family':<10} {'size':>8}  {'licence':<18} {'cached':<9} source")
        for card in CARDS.values():
            size = f"{card.size_mb:.0f} MB" if card.size_mb else "?"
            try:
                present = cached_path(card).is_file()
            except CheckpointError:  # the package that ships it is missing
                present = False
            cached = ("installed" if present else "missing") if card.bundled else ("yes" if present else "no")
            print(f"{card.id:<22} {card.family:<10} {size:>8}  {card.license:<18} {cached:<9} {card.source}")
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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    view = sub.add_parser("view", help="open files in napari with the plugin's widgets")
    view.add_argument("files", nargs="+", help="NIfTI or TIFF files, or DICOM series folders")
    view.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    view.set_defaults(func=_cmd_view)

    demo = sub.add_parser("demo", help="open the sample abdominal CT with the plugin's widgets")
    demo.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window and exit")
    demo.add_argument("--window", default="1400x850", metavar="WxH", help=argparse.SUPPRESS)  # screenshot size
    demo.add_argument("--stacked", action="store_true", help=argparse.SUPPRESS)  # panels as the Plugins menu docks them
    demo.add_argument("--phantom", action="store_true",
                      help="a synthetic CT phantom with the phantom SAM loaded: the whole workflow offline")
    demo.set_defaults(func=_cmd_demo)

    ph = sub.add_parser("phantom", help="write a synthetic phantom and its reference labels, for the phantom models")
    ph.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the image and its labels")
    ph.add_argument("--kind", choices=("ct", "nuclei"), default="ct", help="CT abdomen (NIfTI) or nuclei (TIFF)")
    ph.add_argument("--seed", type=int, default=1, help="which phantom (default 1, the demo's)")
    ph.set_defaults(func=_cmd_phantom)

    info = sub.add_parser("info", help="print shape, spacing, orientation, modality, intensity range")
    info.add_argument("file", help="NIfTI or TIFF file, or DICOM series folder")
    info.set_defaults(func=_cmd_info)

    seg = sub.add_parser("segment", help="box- or click-prompted 3D segmentation (LiteMedSAM, SAM, SAM2)")
    seg.add_argument("image", help="NIfTI or TIFF file, or DICOM series folder")
    seg.add_argument("--point", action="append", default=[], metavar="Z,Y,X", help="positive click (voxels)")
    seg.add_argument("--negative", action="append", default=[], metavar="Z,Y,X", help="negative click")
    seg.add_argument("--box", action="append", default=[], metavar="Z,Y0,X0,Y1,X1", help="box on a slice")
    seg.add_argument("--propagate", action="store_true", help="propagate through the volume")
    seg.add_argument("--memory", choices=("fifo", "ranked"), default="fifo", help="memory-bank policy (SAM2)")
    seg.add_argument("--projection", choices=("box", "point"), default="box",  # = PropagationSettings()
                     help="SAM propagation: prompt each slice with its neighbour's deepest point and box (default), "
                          "or the point alone (no box to take in an adjacent organ)")
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
    seg.add_argument("--model", help="model id (see 'models list'; default litemedsam, installed with the "
                     "plugin: a box model, give --box)")
    seg.add_argument("--checkpoint", metavar="FILE", help="a local checkpoint file")
    seg.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    seg.add_argument("--value", type=int, default=1, help="label value of the object (default 1)")
    seg.add_argument("--name", default="object", help="label name for the sidecar")
    seg.add_argument("-o", "--output", required=True, metavar="OUT", help=".nii.gz, .nii, .tif or .tiff")
    seg.set_defaults(func=_cmd_segment)

    lab = sub.add_parser("label", help="text-prompted organ labelling (VoxTell, Medical-SAM3, or CLIP + SAM)")
    lab.add_argument("image", help="NIfTI or TIFF file, or DICOM series folder")
    lab.add_argument("--text", action="append", required=True, metavar="NAME",
                     help="a target (repeat, or comma-separate): liver, 'left kidney', LK, ...")
    lab.add_argument("--point", action="append", default=[], metavar="NAME:Z,Y,X",
                     help="text + click: a click on target NAME (then CLIP is not needed for it)")
    lab.add_argument("--box", action="append", default=[], metavar="NAME:Z,Y0,X0,Y1,X1",
                     help="text + box: a box round target NAME on slice Z (how a box model, the default "
                     "litemedsam, names organs without CLIP)")
    lab.add_argument("--backend", default="auto", choices=["auto", "clip-sam", "voxtell", "medical-sam3"],
                     help="auto (default): the most accurate installed backend with its weights "
                     "(VoxTell, then Medical-SAM3 on a GPU), else clip-sam (training-free)")
    lab.add_argument("--weights", metavar="PATH",
                     help="a local VoxTell model folder or Medical-SAM3 3-D checkpoint (instead of the download)")
    lab.add_argument("--allow-cpu", action="store_true",
                     help="run Medical-SAM3 on a CPU anyway (minutes per four-slice clip)")
    lab.add_argument("--model", help="clip-sam: SAM/SAM2 model id (see 'models list'), or sam3 / medical_sam3")
    lab.add_argument("--checkpoint", metavar="FILE", help="a local SAM/SAM2 checkpoint file")
    lab.add_argument("--clip", help="CLIP model id (default none: every target then needs --point)")
    lab.add_argument("--clip-checkpoint", metavar="FILE", help="a local open_clip checkpoint file")
    lab.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    lab.add_argument("-o", "--output", required=True, metavar="OUT", help=".nii.gz, .nii, .tif or .tiff")
    lab.set_defaults(func=_cmd_label)

    bat = sub.add_parser("batch", help="label a cohort on Dask distributed (resumable)")
    bat.add_argument("source", help="manifest .csv (columns image[, reference, case]) or a glob such as 'scans/*.nii.gz'")
    what = bat.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", action="append", default=[], metavar="NAME", help="targets (repeat or comma-separate)")
    what.add_argument("--prompts", metavar="FILE",
                      help='JSON: {"case": [{"name": "tumour", "points": [[z,y,x]], "negative": [], "propagate": true}]}')
    bat.add_argument("-o", "--output", required=True, metavar="DIR", help="one <case>.nii.gz each, results.csv")
    bat.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (default: a LocalCluster)")
    bat.add_argument("--workers", type=int, metavar="N", help="LocalCluster worker processes")
    bat.add_argument("--model", help="SAM/SAM2 model id (see 'models list')")
    bat.add_argument("--checkpoint", metavar="FILE", help="a local SAM/SAM2 checkpoint file")
    bat.add_argument("--clip", help="CLIP model id, for --text")
    bat.add_argument("--clip-checkpoint", metavar="FILE", help="a local open_clip checkpoint file")
    bat.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    bat.add_argument("--tolerance-mm", type=float, default=2.0, metavar="T", help="NSD tolerance with references")
    bat.set_defaults(func=_cmd_batch)

    ev = sub.add_parser("evaluate", help="Dice, IoU, HD95, NSD per label (or instance F1) vs a reference")
    ev.add_argument("prediction", help="predicted label map (NIfTI, TIFF)")
    ev.add_argument("reference", help="reference label map on the same grid")
    ev.add_argument("--labels", action="append", default=[], metavar="V|NAME",
                    help="labels to score (repeat or comma-separate; values or names); default: all")
    ev.add_argument("--tolerance-mm", type=float, default=2.0, metavar="T", help="NSD tolerance (default 2 mm)")
    ev.add_argument("--instances", action="store_true",
                    help="label values are instances (microscopy): report F1 at --iou and true-positive Dice")
    ev.add_argument("--iou", type=float, default=0.5, help="instance match threshold (default 0.5)")
    out = ev.add_mutually_exclusive_group()
    out.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    out.add_argument("--csv", metavar="OUT", help="also write the report as CSV")
    ev.set_defaults(func=_cmd_evaluate)

    vol = sub.add_parser("volumes", help="volume of every label (mL for mm grids)")
    vol.add_argument("labels", help="label map (NIfTI, TIFF)")
    vol.add_argument("--csv", metavar="OUT", help="also write the table as CSV")
    vol.set_defaults(func=_cmd_volumes)

    dseg = sub.add_parser("export-seg", help="write a label map as DICOM-SEG for its DICOM source series")
    dseg.add_argument("labels", help="label map on the series' grid (NIfTI, TIFF)")
    dseg.add_argument("--source", required=True, metavar="DICOM_DIR", help="the DICOM series folder")
    dseg.add_argument("-o", "--output", required=True, metavar="OUT.dcm")
    dseg.set_defaults(func=_cmd_export_seg)

    nn = sub.add_parser("export-nnunet", help="write annotated volumes as an nnU-Net v2 raw dataset")
    nn.add_argument("--case", nargs=2, action="append", required=True, metavar=("IMAGE", "LABELS"),
                    help="an image and its label map (repeat for more cases)")
    nn.add_argument("-o", "--output", required=True, metavar="ROOT", help="nnUNet_raw folder")
    nn.add_argument("--id", type=int, required=True, help="dataset id, 1..999")
    nn.add_argument("--name", required=True, help="dataset name (letters, digits, _ and -)")
    nn.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    nn.set_defaults(func=_cmd_export_nnunet)

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


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings as one line, without the source path and code line Python adds."""
    if issubclass(category, InputWarning):
        print(f"napari-textseg: warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-textseg`` console script.

    Every failure ends as one ``napari-textseg: error: ...`` line naming the cause (exit
    2 for bad input, 1 for anything unexpected); ``--debug`` shows the traceback instead.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["napari-textseg", *(sys.argv[1:] if argv is None else argv)])
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _print_warning
            if args.command in (None, "demo"):
                _need_display(args)
            if args.command is None:
                return _viewer()
            return int(args.func(args))
    except KeyboardInterrupt:
        print("napari-textseg: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the promise: one line, never a traceback, unless --debug
        if args.debug:
            raise
        expected = isinstance(err, (NapariTextsegError, ValueError, OSError))
        message = str(err) if expected else f"unexpected {type(err).__name__}: {err}"
        hint = "" if expected else " (run again with --debug for the traceback, and please report it)"
        print(f"napari-textseg: error: {message}{hint}", file=sys.stderr)
        return 2 if expected else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
