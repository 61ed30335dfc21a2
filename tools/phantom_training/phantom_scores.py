"""Dice of a segmentation model on held-out phantoms, through the plugin's own pipeline.

Phantoms are written as a scanner or microscope would (NIfTI, ImageJ TIFF) and read back
with the plugin's reader; every mask comes from a :class:`SegmentationSession` (windowing,
feature cache, prompts, ROI, propagation), the path the widgets and the command line
take. The phantom training script records these numbers and the phantom-model tests
assert them. Clicks land where :meth:`Phantom.centre_click` puts them: the deepest point
of the object's own voxels on its largest slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.core.phantoms import Phantom, ct_phantom, nuclei_phantom
from napari_textseg.core.volume import Volume
from napari_textseg.engine.interactive.propagate import PropagationSettings, deepest_point
from napari_textseg.engine.interactive.session import SegmentationSession
from napari_textseg.engine.interactive.slice_model import SliceModel

__all__ = [
    "PhantomCase",
    "click_masks",
    "click_scores",
    "correction_gains",
    "held_out_cases",
    "organs",
    "propagation_scores",
    "swapped_click_scores",
]


@dataclass(frozen=True)
class PhantomCase:
    """A phantom and the volume the plugin's reader gives back for it."""

    phantom: Phantom
    volume: Volume

    def session(self, backend: SliceModel, **kwargs) -> SegmentationSession:
        return SegmentationSession(
            self.volume.data, self.volume.spacing, self.phantom.modality, backend, **kwargs
        )


def held_out_cases(folder: str | Path, seeds=(1, 2, 3)) -> list[PhantomCase]:
    """A CT and a nuclei phantom per seed, written to ``folder`` and read back.

    Training uses seeds >= 10000, so seeds below that are held out.
    """
    out = []
    for seed in seeds:
        for phantom in (ct_phantom(seed), nuclei_phantom(seed)):
            image, _ = phantom.save(folder, f"{phantom.modality}_{seed}")
            out.append(PhantomCase(phantom, read_volume(image)))
    return out


def organs(phantom: Phantom) -> list[int]:
    """The label values of a CT phantom's organs (not its spine or lesions)."""
    return [o.value for o in phantom.objects if o.name.startswith("organ")]


def _targets(phantom: Phantom, kind: str) -> list[int]:
    if kind == "organ":
        return organs(phantom) if phantom.modality == "CT" else []
    if kind == "lesion":
        return [o.value for o in phantom.objects if o.parent] if phantom.modality == "CT" else []
    if kind == "nucleus":
        return [o.value for o in phantom.objects] if phantom.modality != "CT" else []
    raise ValueError(f"kind must be 'organ', 'lesion' or 'nucleus', got {kind!r}")


def _organ_sessions(
    cases: list[PhantomCase], backend: SliceModel
) -> Iterator[tuple[Phantom, SegmentationSession, int]]:
    """(phantom, session, organ value) for every organ of the CT cases, one session per case."""
    for case in cases:
        if case.phantom.modality != "CT":
            continue
        with closing(case.session(backend)) as session:
            for value in organs(case.phantom):
                yield case.phantom, session, value


def _click_masks(
    session: SegmentationSession, phantom: Phantom, value: int, swap: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) masks on the clicked slice after one positive centre click
    (x and y swapped with ``swap``)."""
    z, y, x = phantom.centre_click(value)
    if swap:
        y, x = x, y
    session.reset()
    session.set_prompts(np.array([[z, y, x]]), np.array([1]))
    return session.segment_slice()[z], phantom.mask(value)[z]


def _click_dice(
    session: SegmentationSession, phantom: Phantom, value: int, swap: bool = False
) -> float:
    return dice(*_click_masks(session, phantom, value, swap))


def click_masks(
    cases: list[PhantomCase], backend: SliceModel, kind: str, *, roi_mm: float | None = None
) -> Iterator[tuple[Phantom, int, np.ndarray, np.ndarray]]:
    """(phantom, value, predicted, true) on the clicked slice, for one centre click on
    every ``kind`` object ("organ", "lesion", "nucleus").

    With ``roi_mm`` each object gets its own session in tumour ROI mode, as a user
    starts a new object there.
    """
    for case in cases:
        values = _targets(case.phantom, kind)
        if roi_mm is not None:
            for value in values:
                with closing(case.session(backend, roi_mm=roi_mm)) as session:
                    yield case.phantom, value, *_click_masks(session, case.phantom, value)
        elif values:
            with closing(case.session(backend)) as session:
                for value in values:
                    yield case.phantom, value, *_click_masks(session, case.phantom, value)


def click_scores(
    cases: list[PhantomCase], backend: SliceModel, kind: str, *, roi_mm: float | None = None
) -> list[float]:
    """Dice of one centre click on every ``kind`` object (see :func:`click_masks`)."""
    return [
        dice(pred, true) for _, _, pred, true in click_masks(cases, backend, kind, roi_mm=roi_mm)
    ]


def swapped_click_scores(
    cases: list[PhantomCase], backend: SliceModel
) -> tuple[list[float], list[float]]:
    """Organ click Dice, right and with x and y swapped, where the swapped click misses the
    organ."""
    right, swapped = [], []
    for phantom, session, value in _organ_sessions(cases, backend):
        z, y, x = phantom.centre_click(value)
        if phantom.mask(value)[z, x, y]:  # still on the organ: tells nothing
            continue
        right.append(_click_dice(session, phantom, value))
        swapped.append(_click_dice(session, phantom, value, swap=True))
    return right, swapped


def propagation_scores(
    cases: list[PhantomCase], backend: SliceModel, settings: PropagationSettings | None = None
) -> list[float]:
    """3-D Dice of each organ propagated from one centre click."""
    scores = []
    for phantom, session, value in _organ_sessions(cases, backend):
        session.reset()
        session.set_prompts(np.array([phantom.centre_click(value)]), np.array([1]))
        scores.append(dice(session.propagate(settings), phantom.mask(value)))
    return scores


def correction_gains(
    cases: list[PhantomCase], backend: SliceModel, good: float = 0.9
) -> list[float]:
    """Dice gained on the worst propagated slice of each organ by one correction click.

    After propagation from a centre click, a user clicks the deepest point of the larger
    error on the worst slice (positive on what was missed, negative on what leaked),
    segments that slice and propagates again from it. Organs whose worst slice already
    has Dice above ``good`` need no correction and are left out.
    """
    gains = []
    for phantom, session, value in _organ_sessions(cases, backend):
        mask = phantom.mask(value)
        first = [list(phantom.centre_click(value))]
        session.reset()
        session.set_prompts(np.array(first), np.array([1]))
        result = session.propagate()
        per_slice = {
            z: dice(result[z], mask[z])
            for z in range(mask.shape[0])
            if mask[z].any() and z != first[0][0]
        }
        worst = min(per_slice, key=per_slice.get)
        if per_slice[worst] > good:
            continue
        missed, extra = mask[worst] & ~result[worst], result[worst] & ~mask[worst]
        label = 1 if missed.sum() >= extra.sum() else 0
        y, x = deepest_point(missed if label else extra)
        session.set_prompts(np.array([*first, [worst, y, x]]), np.array([1, label]))
        session.segment_slice(worst)
        corrected = session.propagate(from_slice=worst)
        gains.append(dice(corrected[worst], mask[worst]) - per_slice[worst])
    return gains
