"""Text labelling for one viewer: gathers input on the main thread, labels in a worker.

What runs is :func:`~napari_textseg.engine.text.plan.plan_text_run`'s answer for the Text
settings, the loaded model and the image; the Text tab's note shows the same plan. For
CLIP + SAM the segmentation model and its session are the workspace's: text and clicks
on one image encode each slice once. Each finished organ is written through the
workspace's label writer as soon as it arrives, as one undoable step, so Cancel keeps
the organs already done and the one in progress leaves no trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_textseg._napari.layers import label_table, layer_geometry, layer_modality
from napari_textseg._napari.prompt_layer import in_viewer
from napari_textseg._napari.workspace import ModelChoice, Workspace, workspace_for
from napari_textseg.core.errors import InputError
from napari_textseg.core.text_prompts import check_known, parse_targets
from napari_textseg.engine.text.backends import open_text_backend
from napari_textseg.engine.text.merge import merge_into
from napari_textseg.engine.text.plan import TextRunPlan, plan_text_run
from napari_textseg.engine.text.protocol import (
    OrganResult,
    Progress,
    TextVolume,
    assign_values,
    check_text_volume,
)
from napari_textseg.models.device import pick_device

if TYPE_CHECKING:
    import napari

__all__ = ["TextController", "text_controller_for"]


@dataclass
class _Run:
    image: Any
    layer: Any  # the target Labels layer; None: a new one, made when the first organ arrives
    finished: list[str]


class TextController:
    """Runs a text backend for one viewer and writes each finished organ on the main thread."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.viewer = workspace.viewer
        self.settings = workspace.settings.text  # what the Text tab sets
        self._clip: Any = None  # (choice, its LoadedModel): CLIP loads once
        self._trained: dict[str, Any] = {}  # backend id -> (image id, backend): weights load once

    def _say(self, text: str) -> None:
        self.workspace.say("text", text)

    def plan(self, image: napari.layers.Image | None = None) -> TextRunPlan:
        """What Label would run now, for the Text settings, the loaded model and ``image``
        (default: the current one)."""
        if image is None:
            try:
                image = self.workspace.current_image()
            except ValueError:
                image = None
        meta = {"metadata": image.metadata} if image is not None else {}
        loaded = self.workspace.loaded_model
        return plan_text_run(
            self.settings.backend,
            modality=layer_modality(meta) if image is not None else "CT",
            device_type=pick_device(None).type,
            prompts_given=self.settings.use_clicks,
            model_family=loaded.card.family if loaded is not None else None,
            allow_cpu=self.settings.allow_cpu,
        )

    def run(self) -> None:
        """Label what the Text settings say (the Label button), with the backend :meth:`plan`
        names, in the background."""
        s = self.settings
        targets = parse_targets(s.text)
        if not s.allow_any_name:
            check_known(targets, flag="tick 'any name'")
        image = self.workspace.current_image()
        check_text_volume(image.data)
        plan = self.plan(image)
        backend = plan.check()
        layer = self._target_layer(s.target_layer, image)
        values = assign_values(targets, self._existing_names(layer))
        copy = self.workspace.copy_of(image)  # the worker reads this, never the layer
        volume = TextVolume(
            copy.data,
            copy.spacing,
            copy.modality,
            layer_geometry({"metadata": copy.metadata}),
            copy.name,
        )
        run = _Run(image, layer, [])
        if plan.needs_segmenter:
            work = self._clip_sam_work(plan, targets, values, image, volume, run)
        else:
            device, image_id = pick_device(None), id(image)
            loaded = self.workspace.loaded_model
            sam = loaded if loaded is not None and loaded.card.family == "sam3" else None

            def work():
                labeller = self._trained_backend(backend, image_id, volume, device, sam)
                yield from labeller.run(targets, values)
                return run.finished

        title = plan.title
        self._say(f"labelling {', '.join(t.name for t in targets)} with {title} ...")

        def done(finished: list[str]) -> None:
            self._say(
                f"labelled {', '.join(finished)} with {title}" if finished else "nothing labelled"
            )

        self.workspace.tasks.start(
            "text",
            work,
            done,
            f"Text labelling ({title})",
            layer=image,
            on_yield=self._progress(run),
        )

    def _clip_sam_work(self, plan, targets, values, image, volume, run):
        """CLIP + SAM on the workspace's session; with 'use my clicks or box' the prompts say
        where the (one) target is and CLIP is not needed."""
        self.workspace.require_model()
        session = self.workspace.session_for(image, whole_volume=True)
        clicks, clip = None, None
        if plan.needs_clip:
            s = self.settings
            clip = ModelChoice(s.clip_model or None, s.clip_file.strip() or None)
            if clip.model_id is None and clip.checkpoint is None:
                raise InputError(
                    "choose a CLIP model (or tick 'use my clicks or box' and click the organ or "
                    "draw a box)"
                )
        else:
            if len(targets) != 1:
                raise InputError("text + click labels one target at a time: type one name")
            prompts = self.workspace.prompt_layers.prompts_on(image)
            points, _, boxes = prompts
            if not len(points) and not boxes:
                raise InputError(
                    "text + click: click the organ, or draw a box round it, first (Prompts)"
                )
            session.check_prompts(*prompts)  # a box model refuses points here
            clicks = {targets[0].name: prompts}

        def work():
            loaded_clip = self._load_clip(clip) if clip is not None else None
            labeller = open_text_backend(
                "clip-sam",
                volume,
                targets=targets,
                session=session,
                clip=loaded_clip,
                clicks=clicks,
            )
            yield from labeller.run(targets, values)
            return run.finished

        return work

    def _load_clip(self, choice: ModelChoice):
        """The CLIP model of ``choice``, loaded once (in a worker)."""
        if self._clip is not None and self._clip[0] == choice:
            return self._clip[1]
        from napari_textseg._napari.wording import panel_wording
        from napari_textseg.models.loader import load_model

        wording = panel_wording("CLIP file")
        loaded = load_model(
            choice.model_id, choice.checkpoint, device=choice.device, wording=wording
        )
        if loaded.card.family != "clip":
            raise InputError(
                f"{loaded.card.title} is not a CLIP model; "
                "text search needs an open_clip checkpoint"
            )
        self._clip = (choice, loaded)
        return loaded

    def _trained_backend(self, backend: str, image_id: int, volume: TextVolume, device, sam):
        """A backend with weights of its own (``sam``: a loaded SAM3), opened once per image
        (in a worker)."""
        cached = self._trained.get(backend)
        if cached is not None and cached[0] == image_id:
            return cached[1]
        made = open_text_backend(backend, volume, device=device, report=self._say, sam=sam)
        self._trained[backend] = (image_id, made)
        return made

    def _target_layer(self, name: str, image: napari.layers.Image) -> Any:
        if not name:
            return None
        if name not in self.viewer.layers:
            raise InputError(f"there is no layer named {name!r}")
        return self.workspace.labels.target(name, image, "organs")

    @staticmethod
    def _existing_names(layer: Any) -> dict[int, str]:
        if layer is None:
            return {}
        names, _ = label_table(layer.data, {"features": layer.features})
        present = {int(v): "" for v in np.unique(np.asarray(layer.data)) if v != 0}
        return {**present, **names}  # unnamed values are taken too

    def _progress(self, run: _Run):
        """The worker's per-event callback: each finished organ is written as it arrives."""

        def on_event(event: Progress | OrganResult, bar) -> tuple[int, int] | None:
            if isinstance(event, OrganResult):
                self._write(event, run)
                return None
            bar.set_description(f"{event.name or 'preparing'} ({event.index + 1}/{event.count})")
            return event.done, event.total

        return on_event

    def _write(self, result: OrganResult, run: _Run) -> None:
        """Merge one organ into the target layer: one undoable step."""
        labels = self.workspace.labels
        if not in_viewer(self.viewer, run.layer):
            run.layer = labels.target("", run.image, "organs")
        target = result.as_target_mask()
        voxels = labels.merge_organ(
            run.layer,
            run.image,
            lambda old, confidence: merge_into(old, confidence, target),
            result.value,
            result.target.name,
            result.confidence,
        )
        run.finished.append(result.target.name)
        self._say(
            f"{result.target.name}: label {result.value}, {voxels} voxels, "
            f"confidence {result.confidence:.2f}"
        )

    def cancel(self) -> None:
        """Stop the text labelling now (not the other sections' work): the organ in progress
        is dropped, finished organs stay."""
        if self.workspace.tasks.cancel("text"):
            self._say("cancelled; the organs already labelled are kept, the one in progress is not")


def text_controller_for(viewer: napari.Viewer) -> TextController:
    """The text controller of ``viewer``'s workspace."""
    return workspace_for(viewer).controller(TextController)
