"""The segmentation commands: segment (boxes and clicks) and label (text)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from napari_textseg.cli._common import coords, count

__all__ = ["label", "segment"]


def _embedding(args: argparse.Namespace):
    """The encoder runtime and the slice-embedding cache the flags ask for."""
    from napari_textseg.engine.interactive.embedding_store import default_store
    from napari_textseg.engine.interactive.session_factory import EmbeddingOptions

    return EmbeddingOptions(
        args.runtime, args.precision, default_store(args.cache_dir, not args.no_cache)
    )


def _warn(line: str) -> None:
    print(f"napari-textseg: warning: {line}", file=sys.stderr)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class _SliceProgress:
    """A progress bar on stderr for a propagation (slices done of the total, time left);
    quiet when stderr is not a terminal (a log, a pipe, a batch job)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not _stderr_is_terminal():
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc="propagating", unit="slice", file=sys.stderr, leave=False
            )
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def segment(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume, write_labels
    from napari_textseg.engine.interactive.prompts import PromptError, group_by_slice
    from napari_textseg.engine.interactive.propagate import PropagationSettings
    from napari_textseg.engine.interactive.roi import BOX_ROI_CONTEXT
    from napari_textseg.engine.interactive.session import PostProcessing
    from napari_textseg.engine.interactive.slice_model import BOX_ONLY_MESSAGE
    from napari_textseg.engine.jobs.pipelines import segment_clicks
    from napari_textseg.models.loader import load_model
    from napari_textseg.models.registry import DEFAULT_MODEL, get_card, real_image_warning

    volume = read_volume(args.image)
    if volume.channel_axis is not None:
        raise ValueError(
            f"{args.image} has {volume.data.shape[0]} channels; segment one channel at a time"
        )
    if args.model == "nninteractive" or args.server:
        from napari_textseg.cli.interactive3d import segment_nninteractive

        return segment_nninteractive(args, volume)
    if args.scribble or args.lasso or args.no_autozoom:  # (--server chose nnInteractive above)
        raise PromptError("--scribble, --lasso and --no-autozoom are nnInteractive's: "
                          "add --model nninteractive")  # fmt: skip
    if not 1 <= args.value < 2**32:
        raise ValueError(f"--value must be a label value from 1 to {2**32 - 1}, got {args.value}")
    points = [coords(p, 3, "--point") for p in args.point] + [
        coords(p, 3, "--negative") for p in args.negative
    ]
    labels = [1] * len(args.point) + [0] * len(args.negative)
    boxes = {}
    for text in args.box:
        z, y0, x0, y1, x1 = coords(text, 5, "--box")
        boxes[int(round(z))] = (y0, x0, y1, x1)
    if args.roi and (args.roi_mm or not boxes):
        raise PromptError(
            "--roi crops around a box: give --box"
            if not args.roi_mm
            else "--roi (around a box) and --roi-mm (around clicks) are two ROI modes: choose one"
        )
    # Check the clicks before the (slow) model load.
    group_by_slice(
        np.array(points).reshape(-1, 3), np.array(labels), volume.spatial_shape, boxes or None
    )
    confine = None
    if args.confine:
        organ = read_volume(args.confine)
        values = [int(v) for v in args.confine_label] or None
        confine = np.isin(organ.data, values) if values else organ.data > 0
    lo_hi = (
        tuple(int(v) for v in coords(args.slice_range, 2, "--slice-range"))
        if args.slice_range
        else None
    )
    if lo_hi and not 0 <= lo_hi[0] <= lo_hi[1] < volume.spatial_shape[0]:
        raise PromptError(
            f"--slice-range {args.slice_range}: give FIRST,LAST with 0 <= FIRST <= LAST <= "
            f"{volume.spatial_shape[0] - 1} (the volume has {volume.spatial_shape[0]} slices)"
        )
    # built (and so checked: memory size 1-6, ...) even without --propagate: a bad value is a typo
    # to report
    settings = PropagationSettings(
        direction=args.direction,
        memory_size=args.memory_size,
        policy=args.memory,
        empty_stop=args.stop_empty,
        slice_range=lo_hi,
        offload=args.offload,  # type: ignore[arg-type]
        projection=args.projection,
    )
    model_id = args.model or (None if args.checkpoint else DEFAULT_MODEL)
    if points and not boxes and model_id and get_card(model_id).box_only:  # before the model loads
        raise PromptError(BOX_ONLY_MESSAGE.format(model=get_card(model_id).name))
    loaded = load_model(model_id, args.checkpoint, device=args.device)
    progress = _SliceProgress()
    try:
        mask = segment_clicks(
            volume,
            loaded,
            np.array(points),
            np.array(labels),
            boxes,
            propagate=settings if args.propagate else None,
            post=PostProcessing(fill_holes=args.fill_holes, keep_clicked=args.keep_clicked),
            roi_mm=args.roi_mm,
            roi_context=BOX_ROI_CONTEXT if args.roi else None,
            confine=confine,
            embedding=_embedding(args),
            report=_warn,
            progress=progress,
        )
    finally:
        progress.close()
    labels_out = mask.astype(np.uint32) * np.uint32(args.value)
    written = write_labels(
        args.output,
        labels_out,
        geometry=volume.geometry,
        scale=volume.spacing,
        translate=volume.origin,
        label_names={args.value: args.name},
    )
    print(f"model: {loaded.card.title}", file=sys.stderr)
    warning = real_image_warning(
        loaded.card, volume.name
    )  # with the result it is about: a refusal comes alone
    if warning:
        _warn(warning)
    print(
        f"{int(mask.sum())} voxels in {len(np.unique(np.nonzero(mask)[0]))} slices -> "
        f"{', '.join(written)}"
    )
    return 0


def label(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume, write_labels
    from napari_textseg.core.text_prompts import check_known, parse_targets
    from napari_textseg.engine.interactive.prompts import group_by_slice
    from napari_textseg.engine.jobs.pipelines import label_text, needs_clip
    from napari_textseg.models.loader import load_model
    from napari_textseg.models.registry import DEFAULT_MODEL
    from napari_textseg.models.store import CLI_CLIP_WORDING

    targets = parse_targets("\n".join(args.text))
    if not args.allow_any_name:
        check_known(targets)
    volume = read_volume(args.image)
    if volume.channel_axis is not None:
        raise ValueError(
            f"{args.image} has {volume.data.shape[0]} channels; label one channel at a time"
        )
    names = {t.name.casefold(): t.name for t in targets}
    clicks: dict[str, tuple[list, list, dict]] = {}

    def target_of(text: str, flag: str, form: str) -> tuple[str, str]:
        target, _, where = text.rpartition(":")
        name = names.get(parse_targets(target)[0].name.casefold()) if target.strip() else None
        if name is None:
            raise ValueError(
                f"{flag} {text!r} must be NAME:{form} with NAME one of the --text targets"
            )
        return name, where

    for text in args.point:
        name, where = target_of(text, "--point", "Z,Y,X")
        clicks.setdefault(name, ([], [], {}))[0].append(coords(where, 3, "--point"))
        clicks[name][1].append(1)
    for text in args.box:
        name, where = target_of(text, "--box", "Z,Y0,X0,Y1,X1")
        z, *box = coords(where, 5, "--box")
        clicks.setdefault(name, ([], [], {}))[2][int(round(z))] = tuple(box)
    for points, signs, boxes in clicks.values():  # check the prompts before the (slow) model load
        group_by_slice(
            np.array(points).reshape(-1, 3), np.array(signs), volume.spatial_shape, boxes
        )
    from napari_textseg.engine.text.plan import plan_text_run
    from napari_textseg.models.device import pick_device
    from napari_textseg.models.store import resolve_checkpoint

    device = pick_device(args.device)
    named = bool(args.model or args.checkpoint)
    # The named model's family before it loads (a SAM3 checkpoint reads the text itself).
    family = resolve_checkpoint(args.model, args.checkpoint)[0].family if named else None
    plan = plan_text_run(
        args.backend,
        modality=volume.modality,
        device_type=device.type,
        prompts_given=bool(clicks),
        all_targets_prompted=not needs_clip(targets, clicks),
        model_named=named,
        model_family=family,
        allow_cpu=args.allow_cpu,
        weights_present=True if args.weights else None,
    )
    backend = plan.check()
    loaded = clip = None
    if plan.needs_clip and not (args.clip or args.clip_checkpoint):
        raise ValueError(
            "targets without --point need a CLIP model: --clip ID or --clip-checkpoint FILE"
        )
    if plan.needs_segmenter and not (named or clicks):
        raise ValueError(
            "the clip-sam backend needs a SAM/SAM2 model: --model ID or --checkpoint FILE "
            "(or install a trained backend: --backend voxtell)"
        )
    if plan.needs_segmenter or (backend == "sam3-slices" and named):
        # text + prompt without a model named: the installed box model
        model_id = args.model or (None if args.checkpoint else DEFAULT_MODEL)
        loaded = load_model(model_id, args.checkpoint, device=args.device)
    if plan.needs_clip:
        clip = load_model(
            args.clip, args.clip_checkpoint, device=args.device, wording=CLI_CLIP_WORDING
        )
    given = {
        k: (np.array(p, dtype=float).reshape(-1, 3), np.array(s, dtype=int), b)
        for k, (p, s, b) in clicks.items()
    }
    result = label_text(
        volume,
        targets,
        loaded,
        clip,
        given,
        backend=backend,
        device=device,
        weights=args.weights,
        report=lambda line: print(line, file=sys.stderr),
        embedding=_embedding(args),
    )
    written = write_labels(
        args.output,
        result.labels,
        geometry=volume.geometry,
        scale=volume.spacing,
        translate=volume.origin,
        label_names=result.names,
    )
    print(f"{count(len(result.names), 'target')} -> {', '.join(written)}")
    return 0
