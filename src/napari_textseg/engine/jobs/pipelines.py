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
from napari_textseg.engine.interactive.session import PostProcessing
from napari_textseg.engine.interactive.session_factory import (
    EmbeddingOptions,
    open_session,
    open_slice_model,
)
from napari_textseg.models.loader import LoadedModel

__all__ = ["LabelMap", "label_text", "needs_clip", "segment_clicks"]


def _single_channel(volume: Volume, what: str) -> None:
    if volume.channel_axis is not None:
        raise ValueError(
            f"{volume.name or 'the image'} has {volume.data.shape[0]} channels; "
            f"{what} one channel at a time"
        )


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
    roi_context: float | None = None,
    confine: np.ndarray | None = None,
    embedding: EmbeddingOptions | None = None,
    report: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The boolean (z, y, x) mask of the clicked object; ``propagate`` runs it through the volume.

    ``embedding`` chooses the encoder's runtime and the disk store; ``report`` gets one
    line for anything not used as asked (a runtime fallback, points a box model ignores);
    ``progress`` gets ``(done, total)`` slices while propagating.
    """
    _single_channel(volume, "segment")
    backend = open_slice_model(sam, embedding)
    if report is not None and backend.runtime_note:
        report(backend.runtime_note)
    session = open_session(
        volume.data,
        volume.spacing,
        volume.modality,
        backend,
        embedding,
        volume.name,
        roi_mm=roi_mm,
        roi_context=roi_context,
        confine=confine,
    )
    try:
        checked = session.check_prompts(
            np.asarray(points, dtype=float).reshape(-1, 3), np.asarray(labels), boxes or None
        )
        if report is not None and checked.note:
            report(checked.note)
        session.set_prompts(checked)
        if propagate is not None:
            return session.propagate(propagate, post=post or PostProcessing(), progress=progress)
        for (
            z
        ) in checked.by_slice:  # volume slices along the axis (the session maps them into its ROI)
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
    embedding: EmbeddingOptions | None = None,
) -> LabelMap:
    """Label every target with one text backend, resolved already (see
    :func:`~napari_textseg.engine.text.plan.plan_text_run`) and opened here with
    :func:`~napari_textseg.engine.text.backends.open_text_backend`."""
    from napari_textseg.engine.text.backends import open_text_backend
    from napari_textseg.engine.text.protocol import (
        OrganResult,
        TextVolume,
        assign_values,
        check_text_volume,
        merge_results,
    )

    _single_channel(volume, "label")
    check_text_volume(volume.data)
    values = assign_values(targets)
    text_volume = TextVolume(
        volume.data, volume.spacing, volume.modality, volume.geometry, volume.name
    )
    labeller = open_text_backend(
        backend,
        text_volume,
        targets=targets,
        device=device,
        sam=sam,
        clip=clip,
        clicks=clicks,
        weights=weights,
        report=report,
        embedding=embedding,
    )
    if report is not None:
        report(f"backend: {labeller.title}")
    results = []
    for event in labeller.run(targets, values):
        if isinstance(event, OrganResult):
            results.append(event)
            if report is not None:
                report(
                    f"{event.target.name}: label {event.value}, {int(event.mask.sum())} voxels, "
                    f"confidence {event.confidence:.2f}"
                )
    labels, confidence = merge_results(results, volume.spatial_shape)
    return LabelMap(labels, {r.value: r.target.name for r in results}, confidence, labeller.title)
