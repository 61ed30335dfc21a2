"""Text labelling for one viewer: gathers input on the main thread, labels in a worker.

The segmentation model is the one loaded in the Point prompts panel (the shared
:class:`~napari_textseg._napari.controller.SegmentationController`); the CLIP model is
loaded here on first use. Each finished organ is written into the target Labels layer
on the main thread as soon as it arrives, as one undoable step, so Cancel keeps the
organs already done and the one in progress leaves no trace.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_textseg._napari.autosave import autosaver_for
from napari_textseg._napari.controller import ModelChoice, controller_for, name_label
from napari_textseg._napari.layers import add_labels_on, label_table, layer_modality
from napari_textseg._napari.prompt_layer import PROMPT_LAYER, prompts_of
from napari_textseg.core.errors import InputError
from napari_textseg.core.text_prompts import parse_targets
from napari_textseg.engine.merge import merge_into
from napari_textseg.engine.prompts import group_by_slice
from napari_textseg.engine.session import SegmentationSession
from napari_textseg.engine.text_labelling import OrganResult, Progress, TextLabeller, assign_values

if TYPE_CHECKING:
    import napari

__all__ = ["CONFIDENCE_KEY", "TextController", "text_controller_for"]

CONFIDENCE_KEY = "napari_textseg_confidence"  # label value -> confidence, in a Labels layer's metadata


def _modality(image: napari.layers.Image) -> str:
    return layer_modality({"metadata": image.metadata})


@dataclass
class _Run:
    image: Any
    layer_name: str | None  # None: a new layer, made when the first organ arrives
    finished: list[str]


class TextController:
    """Runs :class:`~napari_textseg.engine.text_labelling.TextLabeller` for one viewer."""

    def __init__(self, viewer: napari.Viewer):
        self.viewer = viewer
        self.points = controller_for(viewer)
        self.status = self.points.status
        self._clip: Any = None  # (choice, DenseClip, TextEncoder)
        self._session: SegmentationSession | None = None
        self._session_key: tuple | None = None

    def _text_session(self, image: napari.layers.Image) -> SegmentationSession:
        key = (id(image), self.points.model_choice)
        if self._session is None or self._session_key != key:
            if self._session is not None:
                self._session.close()
            self._session = SegmentationSession(np.asarray(image.data), tuple(image.scale), _modality(image),
                                                self.points.backend)
            self._session_key = key
        return self._session

    def _load_clip(self, choice: ModelChoice):
        if self._clip is not None and self._clip[0] == choice:
            return self._clip[1:]
        from napari_textseg._napari.wording import panel_wording
        from napari_textseg.engine.clip_dense import DenseClip
        from napari_textseg.engine.text_encoder import TextEncoder
        from napari_textseg.models.loader import load_model

        loaded = load_model(choice.model_id, choice.checkpoint, device=choice.device,
                            wording=panel_wording("CLIP file"))
        if loaded.card.family != "clip":
            raise InputError(f"{loaded.card.title} is not a CLIP model; text search needs an open_clip checkpoint")
        encoder = TextEncoder(loaded.model, str(choice.checkpoint or choice.model_id), loaded.card.arch["model_name"])
        self._clip = (choice, DenseClip(loaded.model), encoder)
        return self._clip[1:]

    def label(self, text: str, layer: str | None, clip: ModelChoice | None, use_clicks: bool = False) -> None:
        """Label the targets named in ``text`` into ``layer`` (None: a new one), in the background.

        With ``use_clicks`` the clicks of the prompts layer say where the (single)
        target is and CLIP is not needed.
        """
        targets = parse_targets(text)
        self.points.require_model()
        image = self.points.current_image()
        existing: dict[int, str] = {}
        if layer is not None:
            if layer not in self.viewer.layers:
                raise InputError(f"there is no layer named {layer!r}")
            target_layer = self.viewer.layers[layer]
            if target_layer.data.shape != image.data.shape:
                raise InputError(f"the Labels layer {layer!r} has shape {target_layer.data.shape}, "
                                 f"the image {image.data.shape}; pick a layer on the image's grid")
            names, _ = label_table(target_layer.data, {"features": target_layer.features})
            present = {int(v): "" for v in np.unique(np.asarray(target_layer.data)) if v != 0}
            existing = {**present, **names}  # unnamed values are taken too
        clicks = None
        if use_clicks:
            if len(targets) != 1:
                raise InputError("text + click labels one target at a time: type one name")
            if PROMPT_LAYER not in self.viewer.layers or not len(self.viewer.layers[PROMPT_LAYER].data):
                raise InputError("text + click: click the organ first (Point prompts panel)")
            points, signs = prompts_of(self.viewer.layers[PROMPT_LAYER], image)
            group_by_slice(points, signs, image.data.shape)
            clicks = {targets[0].name: (points, signs)}
        elif clip is None or (clip.model_id is None and clip.checkpoint is None):
            raise InputError("choose a CLIP model (or tick 'use my clicks' and click the organ)")
        values = assign_values(targets, existing)
        session = self._text_session(image)
        raw = np.asarray(image.data) if _modality(image) == "CT" else None  # the HU priors are CT-only
        run = _Run(image, layer, [])

        def work():
            dense = encoder = None
            if clicks is None:
                assert clip is not None
                dense, encoder = self._load_clip(clip)
            labeller = TextLabeller(session, raw=raw, clip=dense, encoder=encoder)
            yield from labeller.run(targets, values, clicks)
            return run.finished

        def on_event(event: Progress | OrganResult, bar) -> tuple[int, int] | None:
            if isinstance(event, OrganResult):
                self._write(event, run)
                return None
            name = event.name or "preparing"
            bar.set_description(f"{name} ({event.index + 1}/{event.count})")
            return event.done, event.total

        def done(finished: list[str]) -> None:
            self.status.emit(f"labelled {', '.join(finished)}" if finished else "nothing labelled")

        self.status.emit(f"labelling {', '.join(t.name for t in targets)} ...")
        self.points.start_worker(work, done, "Text labelling", generator=True, on_yield=on_event)

    def _write(self, result: OrganResult, run: _Run) -> None:
        """Merge one organ into the target layer: one undoable step."""
        image = run.image
        if run.layer_name is None or run.layer_name not in self.viewer.layers:
            layer = add_labels_on(self.viewer, image, np.zeros(image.data.shape, dtype=np.uint16), "organs")
            run.layer_name = layer.name
        layer = self.viewer.layers[run.layer_name]
        confidence = {int(k): float(v) for k, v in (layer.metadata.get(CONFIDENCE_KEY) or {}).items()}
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
        self.status.emit(f"{result.target.name}: label {result.value}, {voxels} voxels, "
                         f"confidence {result.confidence:.2f}")

    def cancel(self) -> None:
        """Stop now: the organ in progress is dropped, finished organs stay."""
        self.points.cancel()
        self.status.emit("cancelled; the organs already labelled are kept, the one in progress is not")


_CONTROLLERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def text_controller_for(viewer: napari.Viewer) -> TextController:
    """The one text controller of ``viewer``."""
    if viewer not in _CONTROLLERS:
        _CONTROLLERS[viewer] = TextController(viewer)
    return _CONTROLLERS[viewer]
