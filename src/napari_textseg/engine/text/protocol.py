"""What every text backend takes and gives, and how their masks become one label map.

A text backend turns typed targets ("liver, spleen") into one 3-D mask per target with
a confidence. CLIP + SAM (training-free), VoxTell and Medical-SAM3 all implement
:class:`TextBackend`; merging, naming, the panel, the command line, batch and autosave
only ever see :class:`OrganResult` and :class:`Progress`.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from napari_textseg.core.errors import InputError
from napari_textseg.core.intensity import no_contrast_reason
from napari_textseg.core.text_prompts import TextTarget
from napari_textseg.core.volume import SourceGeometry
from napari_textseg.engine.text.merge import TargetMask, merge_into

__all__ = [
    "OrganResult",
    "Progress",
    "TextBackend",
    "TextVolume",
    "assign_values",
    "check_text_volume",
    "merge_results",
]


@dataclass(frozen=True, eq=False)
class TextVolume:
    """The volume a backend labels, in display order (z, y, x), with what backends need.

    ``geometry`` is the source grid (None for arrays without one): VoxTell's input is
    built from it, in its own orientation convention.
    """

    data: np.ndarray
    spacing: tuple[float, float, float]
    modality: str
    geometry: SourceGeometry | None = None
    name: str = ""


@dataclass
class OrganResult:
    """One finished target: its label value, 3-D mask (z, y, x) and confidence in [0, 1]."""

    target: TextTarget
    value: int
    mask: np.ndarray
    confidence: float
    location: object = None  # where the backend found it, when it says (CLIP + SAM: a Location)

    def as_target_mask(self) -> TargetMask:
        return TargetMask(self.value, self.target.name, self.mask, self.confidence)


@dataclass(frozen=True)
class Progress:
    """Where a labelling run stands: target ``index`` of ``count``, step ``done`` of ``total``."""

    index: int
    count: int
    name: str
    done: int
    total: int


class TextBackend(Protocol):
    """Targets in, one :class:`OrganResult` per target out.

    ``run`` is a generator so that a worker can report progress and Cancel can stop it
    between steps: closing it keeps the results already yielded, and the target in
    progress leaves nothing behind.
    """

    id: str  # "clip-sam", "voxtell", "medical-sam3"
    title: str  # shown in the panel: which backend ran

    def check_targets(self, targets: Sequence[TextTarget]) -> None:
        """Raise :class:`InputError` for a target this backend cannot take, before any work."""

    def run(
        self, targets: Sequence[TextTarget], values: Sequence[int]
    ) -> Generator[Progress | OrganResult, None, None]:
        """Yield :class:`Progress`, and an :class:`OrganResult` per target, in order."""


def check_text_volume(data: np.ndarray, what: str = "text labelling") -> None:
    """Refuse what no text backend can label: not 3-D, RGB, or too few slices."""
    if data.ndim != 3:
        raise InputError(
            f"{what} needs one 3-D volume (z, y, x); this image has {data.ndim} dimensions "
            f"{tuple(data.shape)}"
            + (" (a 2-D image?)" if data.ndim == 2 else " (channels or time? split them first)")
        )
    if min(data.shape) < 2:
        raise InputError(f"{what} needs a 3-D volume; {tuple(data.shape)} is a single slice")
    blank = no_contrast_reason(data)
    if blank:
        raise InputError(f"nothing to label: {blank} (a blank or damaged image?)")


def assign_values(
    targets: Sequence[TextTarget], existing: dict[int, str] | None = None
) -> list[int]:
    """Label values for ``targets``: a name already in ``existing`` keeps its value, others get new
    ones."""
    existing = existing or {}
    by_name = {name.casefold(): value for value, name in existing.items()}
    taken = set(existing)
    values = []
    for target in targets:
        value = by_name.get(target.name.casefold())
        if value is None:
            value = max(taken | {0}) + 1
        taken.add(value)
        values.append(value)
    return values


def merge_results(
    results: Sequence[OrganResult],
    shape: tuple[int, ...],
    labels: np.ndarray | None = None,
    confidence: dict[int, float] | None = None,
) -> tuple[np.ndarray, dict[int, float]]:
    """Write results one after another into ``labels`` (or a new uint16 map) by confidence."""
    out = np.zeros(shape, dtype=np.uint16) if labels is None else np.asarray(labels)
    confidence = dict(confidence or {})
    for result in results:
        out = merge_into(out, confidence, result.as_target_mask())
        confidence[result.value] = result.confidence
    return out, confidence
