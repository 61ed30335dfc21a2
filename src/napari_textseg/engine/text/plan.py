"""One plan for a text run: which backend runs, what it needs loaded, and why not.

The Text tab's note, its Label button, ``napari-textseg label`` and batch all ask
:func:`plan_text_run` with what they know (the user's choice, the prompts given, the
loaded segmentation model, the image's modality, the device), so the note names the
backend that Label then runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from napari_textseg.core.errors import InputError
from napari_textseg.engine.text.backends import AUTO, get_backend_info, resolve_backend

__all__ = ["TextRunPlan", "plan_text_run"]


@dataclass(frozen=True)
class TextRunPlan:
    """What a text run will do, or why it cannot (``problem``)."""

    backend: str | None  # None when nothing can run
    needs_segmenter: bool = False  # a SAM, SAM2 or LiteMedSAM model segments (CLIP + SAM)
    needs_clip: bool = False  # some target has no click or box: CLIP finds it
    problem: str = ""  # why the run cannot start ("" when it can)

    @property
    def title(self) -> str:
        return get_backend_info(self.backend).title if self.backend else ""

    def check(self) -> str:
        """The backend to run; an :class:`InputError` saying why when there is none."""
        if self.problem or self.backend is None:
            raise InputError(self.problem or "no text backend can run here")
        return self.backend

    def note(self) -> str:
        """One line for the panel: what Label will run, and what it uses."""
        if self.problem:
            return f"cannot run: {self.problem}"
        uses = []
        if self.needs_segmenter:
            uses.append("the loaded model")
        if self.needs_clip:
            uses.append("the CLIP model below")
        elif self.backend == "clip-sam":
            uses.append("your clicks or box (no CLIP)")
        return f"Label will run: {self.title}" + (f" with {' and '.join(uses)}" if uses else "")


def plan_text_run(
    choice: str = AUTO,
    *,
    modality: str,
    device_type: str,
    prompts_given: bool = False,
    all_targets_prompted: bool | None = None,
    model_named: bool = False,
    model_family: str | None = None,
    allow_cpu: bool = False,
    weights_present: bool | None = None,
) -> TextRunPlan:
    """The plan for a text run.

    ``choice`` is a backend id or ``auto``; ``prompts_given``: clicks or boxes say where
    (some) targets are, and ``all_targets_prompted`` whether every target has one (default:
    the same as ``prompts_given``); ``model_named``: the command line named a segmentation
    model; ``model_family``: the family of the loaded (or named) segmentation model;
    ``weights_present``: a local weights file or folder was given. See
    :func:`~napari_textseg.engine.text.backends.resolve_backend` for the rules.
    """
    try:
        backend = resolve_backend(
            choice,
            modality=modality,
            device_type=device_type,
            prompts_given=prompts_given,
            model_named=model_named,
            model_family=model_family,
            allow_cpu=allow_cpu,
            weights_present=weights_present,
        )
    except InputError as err:
        return TextRunPlan(None, problem=str(err))
    if backend != "clip-sam":
        return TextRunPlan(backend)
    if model_family == "nninteractive":  # a 3-D interactive model: no slices for CLIP + SAM
        problem = "CLIP + SAM needs a LiteMedSAM, SAM or SAM2 model; nnInteractive takes clicks, "
        problem += "boxes, scribbles and lasso (Prompts tab)"
        return TextRunPlan(None, problem=problem)
    prompted = prompts_given if all_targets_prompted is None else all_targets_prompted
    return TextRunPlan(backend, needs_segmenter=True, needs_clip=not prompted)
