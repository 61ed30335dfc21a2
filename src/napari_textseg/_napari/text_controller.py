"""Text labelling for one viewer: gathers input on the main thread, labels in a worker.

The backend is chosen in the panel (``auto``: the best installed one with its weights).
For CLIP + SAM the segmentation model is the one loaded in the model section (the shared
:class:`~napari_textseg._napari.controller.SegmentationController`), and so is its
session: text and clicks on one image encode each slice once. The CLIP model is loaded
here on first use; VoxTell and Medical-SAM3 load their own weights.
Each finished organ is written into the target Labels layer on the main thread as soon
as it arrives, as one undoable step, so Cancel keeps the organs already done and the one
in progress leaves no trace.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from napari_textseg._napari.autosave import autosaver_for
from napari_textseg._napari.controller import ModelChoice, controller_for, name_label
from napari_textseg._napari.layers import add_labels_on, label_table, layer_geometry, layer_modality
from napari_textseg.core.errors import InputError
from napari_textseg.core.text_prompts import check_known, parse_targets
from napari_textseg.engine.interactive.session import SegmentationSession
from napari_textseg.engine.text.backends import get_backend_info, open_text_backend, resolve_backend
from napari_textseg.engine.text.merge import merge_into
from napari_textseg.engine.text.protocol import (
    OrganResult,
    Progress,
    TextVolume,
    assign_values,
    check_text_volume,
)

if TYPE_CHECKING:
    import napari

__all__ = ["CONFIDENCE_KEY", "TextController", "text_controller_for"]

CONFIDENCE_KEY = (
    "napari_textseg_confidence"  # label value -> confidence, in a Labels layer's metadata
)


def _modality(image: napari.layers.Image) -> str:
    return layer_modality({"metadata": image.metadata})


@dataclass
class _Run:
    image: Any
    layer_name: str | None  # None: a new layer, made when the first organ arrives
    finished: list[str]


class TextController:
    """Runs a text backend for one viewer and writes each finished organ on the main thread."""

    status = Signal(str)  # the text section's messages

    def __init__(self, viewer: napari.Viewer):
        self.viewer = viewer
        self.points = controller_for(viewer)
        self.settings = self.points.settings.text  # what the Text section sets
        self.tasks = self.points.tasks
        self._clip: Any = None  # (choice, its LoadedModel): CLIP loads once
        self._session: SegmentationSession | None = None
        self._session_key: tuple | None = None
        self._trained: dict[str, Any] = {}  # backend id -> (image id, backend): weights load once
        self.tasks.message.connect(self._relay)

    def _relay(self, section: str, text: str) -> None:
        if section == "text":
            self.status.emit(text)

    def _say(self, text: str) -> None:
        self.tasks.message.emit("text", text)

    def _text_session(self, image: napari.layers.Image) -> SegmentationSession:
        """The clicks' session when it works on the whole volume along z (one embedding cache
        for text and clicks); a session of its own when ROI mode, a confining organ or
        another slicing axis is set for the clicks."""
        if self.points.settings.propagation.whole_volume:
            return self.points.session_for(image)
        key = (id(image), self.points.model_choice)
        if self._session is None or self._session_key != key:
            if self._session is not None:
                self._session.close()
            self._session = SegmentationSession(
                np.asarray(image.data),
                tuple(image.scale),
                _modality(image),
                self.points.slice_model,
            )
            self._session_key = key
        return self._session

    def _load_clip(self, choice: ModelChoice):
        """The CLIP model of ``choice``, loaded once (in a worker)."""
        if self._clip is not None and self._clip[0] == choice:
            return self._clip[1]
        from napari_textseg._napari.wording import panel_wording
        from napari_textseg.models.loader import load_model

        loaded = load_model(
            choice.model_id,
            choice.checkpoint,
            device=choice.device,
            wording=panel_wording("CLIP file"),
        )
        if loaded.card.family != "clip":
            raise InputError(
                f"{loaded.card.title} is not a CLIP model; text search needs an open_clip "
                "checkpoint"
            )
        self._clip = (choice, loaded)
        return loaded

    def _volume(self, image: napari.layers.Image) -> TextVolume:
        return TextVolume(
            np.asarray(image.data),
            tuple(image.scale),
            _modality(image),
            layer_geometry({"metadata": image.metadata}),
            image.name,
        )

    def _trained_backend(self, backend: str, image: napari.layers.Image, device: Any):
        """A backend with weights of its own, opened once per image (its weights load once)."""
        cached = self._trained.get(backend)
        if cached is not None and cached[0] == id(image):
            return cached[1]
        loaded = self.points.loaded_model
        made = open_text_backend(
            backend,
            self._volume(image),
            device=device,
            report=self._say,
            sam=loaded if loaded is not None and loaded.card.family == "sam3" else None,
        )
        self._trained[backend] = (id(image), made)
        return made

    def run(self) -> None:
        """Label what the Text settings say (the section's Label button)."""
        s = self.settings
        clip = ModelChoice(s.clip_model or None, s.clip_file.strip() or None)
        self.label(
            s.text,
            s.target_layer or None,
            clip,
            use_clicks=s.use_clicks,
            backend=s.backend,
            allow_cpu=s.allow_cpu,
            allow_any_name=s.allow_any_name,
        )

    def label(
        self,
        text: str,
        layer: str | None,
        clip: ModelChoice | None,
        use_clicks: bool = False,
        backend: str = "clip-sam",
        allow_cpu: bool = False,
        allow_any_name: bool = True,
    ) -> None:
        """Label the targets named in ``text`` into ``layer`` (None: a new one), in the background.

        With ``use_clicks`` the clicks of the prompts layer, or the boxes of the box layer,
        say where the (single) target is and CLIP is not needed (CLIP + SAM only); with a
        box model (LiteMedSAM) a box is how an organ gets its name without CLIP. Without
        ``allow_any_name`` a name outside the organ vocabulary is refused with what it may mean.
        """
        from napari_textseg.models.device import pick_device

        targets = parse_targets(text)
        if not allow_any_name:
            check_known(targets, flag="tick 'any name'")
        image = self.points.current_image()
        check_text_volume(image.data)
        device = pick_device(None)
        loaded = self.points.loaded_model
        chosen = resolve_backend(
            backend,
            modality=_modality(image),
            device_type=device.type,
            prompts_given=use_clicks,
            allow_cpu=allow_cpu,
            model_family=loaded.card.family if loaded is not None else None,
        )
        if chosen != "clip-sam":
            self._label_with(chosen, targets, image, layer, device)
            return
        self.points.require_model()
        existing = self._existing_names(layer, image)
        clicks = None
        if use_clicks:
            if len(targets) != 1:
                raise InputError("text + click labels one target at a time: type one name")
            points, signs, boxes = self.points.user_prompts(image)
            if not len(points) and not boxes:
                raise InputError(
                    "text + click: click the organ, or draw a box round it, first (Prompts)"
                )
            self._text_session(image).check_prompts(
                points, signs, boxes
            )  # a box model refuses points here
            clicks = {targets[0].name: (points, signs, boxes)}
        elif clip is None or (clip.model_id is None and clip.checkpoint is None):
            raise InputError(
                "choose a CLIP model (or tick 'use my clicks or box' and click the organ or draw "
                "a box)"
            )
        values = assign_values(targets, existing)
        session = self._text_session(image)
        volume = self._volume(image)
        run = _Run(image, layer, [])

        def work():
            loaded_clip = self._load_clip(clip) if clicks is None else None  # type: ignore[arg-type]
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

        self._start(work, run, targets, get_backend_info("clip-sam").title)

    def _existing_names(self, layer: str | None, image) -> dict[int, str]:
        if layer is None:
            return {}
        if layer not in self.viewer.layers:
            raise InputError(f"there is no layer named {layer!r}")
        target_layer = self.viewer.layers[layer]
        if target_layer.data.shape != image.data.shape:
            raise InputError(
                f"the Labels layer {layer!r} has shape {target_layer.data.shape}, "
                f"the image {image.data.shape}; pick a layer on the image's grid"
            )
        names, _ = label_table(target_layer.data, {"features": target_layer.features})
        present = {int(v): "" for v in np.unique(np.asarray(target_layer.data)) if v != 0}
        return {**present, **names}  # unnamed values are taken too

    def _progress(self, run: _Run):
        """The worker's per-event callback: each finished organ is written as it arrives."""

        def on_event(event: Progress | OrganResult, bar) -> tuple[int, int] | None:
            if isinstance(event, OrganResult):
                self._write(event, run)
                return None
            name = event.name or "preparing"
            bar.set_description(f"{name} ({event.index + 1}/{event.count})")
            return event.done, event.total

        return on_event

    def _label_with(self, backend: str, targets, image, layer: str | None, device) -> None:
        """A backend that reads the text itself (VoxTell, Medical-SAM3, SAM3 per slice):
        its weights load in the worker, once per image."""
        values = assign_values(targets, self._existing_names(layer, image))
        run = _Run(image, layer, [])

        def work():
            yield from self._trained_backend(backend, image, device).run(targets, values)
            return run.finished

        self._start(work, run, targets, get_backend_info(backend).title)

    def _start(self, work, run: _Run, targets, title: str) -> None:
        """Run ``work`` in a worker; the status line names the backend before and after."""

        def done(finished: list[str]) -> None:
            self._say(
                f"labelled {', '.join(finished)} with {title}" if finished else "nothing labelled"
            )

        self._say(f"labelling {', '.join(t.name for t in targets)} with {title} ...")
        self.points.start_worker(
            work,
            done,
            f"Text labelling ({title})",
            on_yield=self._progress(run),
            section="text",
            layer=run.image,
        )

    def _write(self, result: OrganResult, run: _Run) -> None:
        """Merge one organ into the target layer: one undoable step."""
        image = run.image
        if run.layer_name is None or run.layer_name not in self.viewer.layers:
            layer = add_labels_on(
                self.viewer, image, np.zeros(image.data.shape, dtype=np.uint16), "organs"
            )
            run.layer_name = layer.name
        layer = self.viewer.layers[run.layer_name]
        confidence = {
            int(k): float(v) for k, v in (layer.metadata.get(CONFIDENCE_KEY) or {}).items()
        }
        old = np.asarray(layer.data)
        new = merge_into(old, confidence, result.as_target_mask())
        changed = np.nonzero(new != old)
        with layer.block_history():
            layer.data_setitem(changed, new[changed])
        confidence[result.value] = result.confidence
        layer.metadata = {**layer.metadata, CONFIDENCE_KEY: confidence}
        name_label(layer, result.value, result.target.name, self.viewer.layers)
        autosaver_for(self.viewer).save(layer, image)
        run.finished.append(result.target.name)
        voxels = int((new == result.value).sum())
        self._say(
            f"{result.target.name}: label {result.value}, {voxels} voxels, confidence "
            f"{result.confidence:.2f}"
        )

    def cancel(self) -> None:
        """Stop the text labelling now (not the other sections' work): the organ in progress
        is dropped, finished organs stay."""
        if self.tasks.cancel("text"):
            self._say("cancelled; the organs already labelled are kept, the one in progress is not")


_CONTROLLERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def text_controller_for(viewer: napari.Viewer) -> TextController:
    """The one text controller of ``viewer``."""
    if viewer not in _CONTROLLERS:
        _CONTROLLERS[viewer] = TextController(viewer)
    return _CONTROLLERS[viewer]
