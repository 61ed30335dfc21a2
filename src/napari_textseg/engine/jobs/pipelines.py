"""Whole-volume jobs without a GUI, shared by the command line and the batch runner.

- :func:`segment_clicks`: clicks (and boxes) -> one object's 3-D mask, optionally propagated.
- :func:`label_text`: organ names (with optional clicks) -> one named, non-overlapping label map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from napari_textseg.core.text_prompts import TextTarget
from napari_textseg.core.volume import Volume
from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.session import PostProcessing, SegmentationSession
from napari_textseg.models.loader import LoadedModel

__all__ = ["LabelMap", "label_text", "needs_clip", "segment_clicks"]


def _single_channel(volume: Volume, what: str) -> None:
    if volume.channel_axis is not None:
        raise ValueError(f"{volume.name or 'the image'} has {volume.data.shape[0]} channels; "
                         f"{what} one channel at a time")


def segment_clicks(
    volume: Volume,
    sam: LoadedModel,
    points: np.ndarray,
    labels: np.ndarray,
    boxes: dict[int, tuple[float, float, float, float]] | None = None,
    *,
    propagate: PropagationSettings | None = None,
    post: PostProcessing | None = None,
    roi_mm: float | None = None,
    confine: np.ndarray | None = None,
) -> np.ndarray:
    """The boolean (z, y, x) mask of the clicked object; ``propagate`` runs it through the volume."""
    from napari_textseg.engine.interactive.backends import make_backend

    _single_channel(volume, "segment")
    backend = make_backend(sam.model, sam.card.family, sam.device, sam.card.arch)
    session = SegmentationSession(volume.data, volume.spacing, volume.modality, backend,
                                  roi_mm=roi_mm, confine=confine)
    try:
        session.set_prompts(np.asarray(points, dtype=float).reshape(-1, 3), np.asarray(labels), boxes or None)
        if propagate is not None:
            return session.propagate(propagate, post=post or PostProcessing())
        for z in session.prompts:
            session.segment_slice(z)
        return session.mask(post or PostProcessing())
    finally:
        session.close()


@dataclass
class LabelMap:
    """A merged label map, the name of each value, and each target's confidence."""

    labels: np.ndarray
    names: dict[int, str]
    confidence: dict[int, float]
    backend: str = ""  # the title of the backend that made it


def needs_clip(targets: list[TextTarget], clicks: dict[str, tuple[list, list]]) -> bool:
    """Whether some target has no click, so CLIP must find it."""
    return any(t.name not in clicks for t in targets)


def label_text(
    volume: Volume,
    targets: list[TextTarget],
    sam: LoadedModel | None,
    clip: LoadedModel | None = None,
    clicks: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    *,
    backend: str = "clip-sam",
    device: object = None,
    weights: str | None = None,
    report: Callable[[str], None] | None = None,
) -> LabelMap:
    """Label every target with one text backend (``backend`` already chosen, not ``auto``).

    ``clip-sam``: CLIP locates and ``sam`` (SAM/SAM2) segments, or SAM3 from the text
    itself when ``sam`` is a SAM3 model; ``voxtell`` / ``medical-sam3``: the trained
    3-D models on ``device``, from ``weights`` or their cached download.
    """
    from napari_textseg.core.errors import InputError
    from napari_textseg.engine.text.backend import (
        OrganResult,
        TextVolume,
        assign_values,
        check_text_volume,
        merge_results,
    )

    _single_channel(volume, "label")
    check_text_volume(volume.data)
    clicks = clicks or {}
    values = assign_values(targets)
    text_volume = TextVolume(volume.data, volume.spacing, volume.modality, volume.geometry, volume.name)
    if backend in ("voxtell", "medical-sam3"):
        from napari_textseg.engine.text.registry import get_backend_info, open_trained_backend

        if clicks:
            raise InputError(f"{get_backend_info(backend).title} takes the text itself: drop the clicks, or use "
                             "clip-sam for text + click (and correct any organ with clicks afterwards)")
        labeller = open_trained_backend(backend, text_volume, device, weights=weights, report=report)
    elif sam is None:
        raise InputError("the clip-sam backend needs a SAM/SAM2 model (--model ID or --checkpoint FILE)")
    elif sam.card.family == "sam3":
        from napari_textseg.core.intensity import normalize_for_model
        from napari_textseg.engine.text.sam3_slices import Sam3Labeller

        if clicks:
            raise InputError("SAM3 takes the text itself: drop the clicks, or use a SAM/SAM2 model for text + click")
        frames = normalize_for_model(volume.data, volume.modality, "soft_tissue")
        labeller = Sam3Labeller(sam.model, frames, sam.device)
    else:
        from napari_textseg.engine.interactive.backends import make_backend
        from napari_textseg.engine.text.clip_dense import DenseClip
        from napari_textseg.engine.text.clip_sam import TextLabeller
        from napari_textseg.engine.text.text_encoder import TextEncoder

        dense = encoder = None
        if needs_clip(targets, clicks):
            if clip is None:
                raise InputError("targets without a click need a CLIP model")
            if clip.card.family != "clip":
                raise InputError(f"{clip.card.title} is not a CLIP model")
            dense = DenseClip(clip.model)
            encoder = TextEncoder(clip.model, str(clip.checkpoint), clip.card.arch["model_name"])
        slices = make_backend(sam.model, sam.card.family, sam.device, sam.card.arch)
        session = SegmentationSession(volume.data, volume.spacing, volume.modality, slices)
        labeller = TextLabeller(session, raw=volume.data if volume.modality == "CT" else None, clip=dense,
                                encoder=encoder, clicks=clicks)
    if report is not None:
        report(f"backend: {labeller.title}")
    results = []
    for event in labeller.run(targets, values):
        if isinstance(event, OrganResult):
            results.append(event)
            if report is not None:
                report(f"{event.target.name}: label {event.value}, {int(event.mask.sum())} voxels, "
                       f"confidence {event.confidence:.2f}")
    labels, confidence = merge_results(results, volume.spatial_shape)
    return LabelMap(labels, {r.value: r.target.name for r in results}, confidence, labeller.title)
