"""The point-segmentation controller shared by the dock widgets of one viewer.

It gathers input from layers on the main thread, runs model work through the viewer's
task runner (napari thread workers), and writes layers only in the workers' main-thread
callbacks. Widgets are views on it; they hold no segmentation state. Its messages go to
the section that asked (model, prompts, propagation).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from napari_textseg._napari._triton import keep_triton_out_without_cuda

keep_triton_out_without_cuda()  # before the engine imports torchvision (see _triton.py)

from napari_textseg._napari.autosave import autosaver_for  # noqa: E402
from napari_textseg._napari.layers import add_labels_on, adopt_source_geometry, layer_modality  # noqa: E402
from napari_textseg._napari.prompt_layer import (  # noqa: E402
    BOX_LAYER,
    PROMPT_LAYER,
    box_layer,
    box_slices,
    boxes_of,
    prompt_layer,
    prompts_of,
)
from napari_textseg._napari.settings import PanelSettings  # noqa: E402
from napari_textseg._napari.tasks import tasks_for  # noqa: E402
from napari_textseg._napari.wording import panel_wording  # noqa: E402
from napari_textseg.engine.interactive.embedding_store import default_store  # noqa: E402
from napari_textseg.engine.interactive.roi import BOX_ROI_CONTEXT  # noqa: E402
from napari_textseg.engine.interactive.session import SegmentationSession  # noqa: E402
from napari_textseg.engine.interactive.session_factory import (  # noqa: E402
    EmbeddingOptions,
    open_session,
    open_slice_model,
)

if TYPE_CHECKING:
    import napari

__all__ = ["ModelChoice", "SegmentationController", "controller_for", "name_label"]

PREVIEW_LAYER = "object (napari-textseg)"


@dataclass(frozen=True)
class ModelChoice:
    """Which model to run: a registry id, optionally with a local checkpoint file."""

    model_id: str | None
    checkpoint: str | None = None
    device: str | None = None
    runtime: str = "auto"  # where LiteMedSAM's encoder runs (models.encoder_runtime)
    precision: str = "f32"


@dataclass
class _State:
    loaded: Any = None
    slice_model: Any = None
    choice: ModelChoice | None = None
    session: SegmentationSession | None = None
    session_key: tuple | None = None
    mask: np.ndarray | None = None


# The sections whose work uses the segmentation model (one at a time: they share a session).
MODEL_SECTIONS = ("model", "prompts", "propagation", "text")


class SegmentationController:
    """Model loading, slice segmentation, propagation and commit for one viewer."""

    status = Signal(str)  # every message of the model, prompts and propagation sections
    busy = Signal(bool)  # whether model work runs (in any section that uses the model)
    model_ready = Signal(object)

    def __init__(self, viewer: napari.Viewer):
        self.viewer = viewer
        self.tasks = tasks_for(viewer)
        self.settings = PanelSettings()  # what the panel's sections set; read when work starts
        self._state = _State()
        self._loading = False
        self._precompute: Any = None  # the worker encoding the image in the background
        self._ready_line = ""  # the model section's line about the loaded model
        self._last_commit: Any = (
            None  # weak reference to the Labels layer of the last commit (Ctrl+Z)
        )
        # Slice embeddings kept on disk across sessions (one warning, then memory only, if
        # unwritable).
        self.store = default_store()
        self.tasks.changed.connect(self._on_tasks_changed)
        self.tasks.message.connect(self._relay)
        viewer.layers.events.inserted.connect(self._on_layer_inserted)

    def say(self, section: str, text: str) -> None:
        """One line in ``section``'s status."""
        self.tasks.message.emit(section, text)

    def _relay(self, section: str, text: str) -> None:
        if section in ("model", "prompts", "propagation"):
            self.status.emit(text)

    def _on_tasks_changed(self, _section: str, _what: str) -> None:
        self.busy.emit(self.working)

    def _on_layer_inserted(self, event: Any) -> None:
        from napari.layers import Image, Labels

        if isinstance(event.value, Labels):
            adopt_source_geometry(event.value, self.viewer.layers)
        elif (
            isinstance(event.value, Image)
            and event.value.ndim == 3
            and not event.value.rgb
            and not event.value.multiscale
        ):
            self._check_contrast(event.value)

    def _check_contrast(self, image: napari.layers.Image) -> None:
        """An all-NaN or constant image is one line in the prompts section, not a black canvas and
        silence."""
        from napari_textseg.core.intensity import no_contrast_reason

        blank = no_contrast_reason(np.asarray(image.data))
        if blank:
            self.say("prompts", f"{image.name}: {blank}; there is nothing to segment in it")

    # -- model ------------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        return self._loading

    def load_model(self, choice: ModelChoice) -> None:
        """Load a model in the background; switching models drops the current object."""
        if self._loading:
            self.say("model", "a model is already loading; wait for it to finish")
            return
        from napari_textseg.models.encoder_runtime import check_runtime
        from napari_textseg.models.loader import load_model

        check_runtime(choice.runtime, choice.precision)  # before the old model is dropped
        previous = self._state.session

        def work():
            if (
                previous is not None
            ):  # its last slice encode ends before a new model converts or loads
                previous.cache.close(wait=True)
            loaded = load_model(
                choice.model_id,
                choice.checkpoint,
                device=choice.device,
                wording=panel_wording("checkpoint"),
            )
            return loaded, open_slice_model(
                loaded, EmbeddingOptions(choice.runtime, choice.precision)
            )

        def done(result) -> None:
            self._loading = False
            self.busy.emit(self.working)  # the task runner said "busy" while _loading was still set
            self._drop_session()
            self._state.loaded, self._state.slice_model = result
            self._state.choice = choice
            card, slice_model = self._state.loaded.card, self._state.slice_model
            encoder = getattr(slice_model, "encoder", None)
            runs = (
                f" (encoder: {'OpenVINO' if encoder.runtime == 'openvino' else 'PyTorch'} "
                f"{encoder.precision})"
                if encoder is not None
                else ""
            )
            where = f"{self._state.loaded.device}{runs}"
            note = f"; {slice_model.runtime_note}" if slice_model.runtime_note else ""
            self._ready_line = f"{card.name} ready on {where}{note}"
            self.say("model", self._ready_line)
            self.model_ready.emit(card)
            self.precompute()

        def failed(_message: str) -> None:
            self._loading = False  # the model loaded before (if any) is still the one in use
            self.busy.emit(self.working)

        # No background embedding work may run while the new model's modules import (the
        # worker waits for a slice in flight); the loaded model stays until the new one is
        # ready, so a failed Load leaves it working.
        self._stop_precompute()
        self._loading = True
        self.say("model", "loading the model ...")
        self.tasks.start("model", work, done, "Loading model", on_error=failed)

    # -- helpers ----------------------------------------------------------------------

    @property
    def working(self) -> bool:
        """True while model work (a load, a segmentation, a propagation, text labelling) runs;
        the background precompute gives way to prompts and does not count."""
        return self._loading or any(
            self.tasks.busy(section) for section in MODEL_SECTIONS if section != "model"
        )

    @property
    def slice_model(self):
        """The loaded model's slice model (None until a model is loaded)."""
        return self._state.slice_model

    @property
    def loaded_model(self):
        """The loaded model (a LoadedModel: its card, device, file), or None."""
        return self._state.loaded if self._state.slice_model is not None else None

    @property
    def model_choice(self) -> ModelChoice | None:
        """Which model is loaded (None until one is)."""
        return self._state.choice

    def current_image(self) -> napari.layers.Image:
        """The active 3-D image layer, else the last one added."""
        from napari.layers import Image

        active = self.viewer.layers.selection.active
        if isinstance(active, Image) and active.ndim == 3:
            return active
        images = [
            la for la in self.viewer.layers if isinstance(la, Image) and la.ndim == 3 and not la.rgb
        ]
        if not images:
            raise ValueError("open a 3-D image first (File > Open)")
        return images[-1]

    def require_model(self) -> None:
        """Refuse (with a message) while a model loads, none is loaded, or work is running."""
        if self._loading:
            raise ValueError("the model is still loading; try again in a moment")
        if self._state.slice_model is None:
            raise ValueError("choose a model and press Load first")
        if self.working:
            raise ValueError("still working on the last request; wait for it or press Cancel")

    def session_for(self, image: napari.layers.Image) -> SegmentationSession:
        """The session of ``image`` with the loaded model and the current options (kept while
        they stay the same, so each slice is encoded once)."""
        return self._session(image)

    def _session(self, image: napari.layers.Image) -> SegmentationSession:
        options = self.settings.propagation
        key = (id(image), self._state.choice, *options.session_key())
        if self._state.session is None or self._state.session_key != key:
            self._drop_session()
            confine = None
            if options.confine_layer:
                if options.confine_layer not in self.viewer.layers:
                    raise ValueError(
                        f"there is no layer named {options.confine_layer!r} to confine to"
                    )
                organ = np.asarray(self.viewer.layers[options.confine_layer].data)
                values = list(options.confine_label_values())
                confine = np.isin(organ, values) if values else organ > 0
            modality = layer_modality({"metadata": image.metadata})
            choice = self._state.choice
            embedding = (
                EmbeddingOptions(choice.runtime, choice.precision, self.store) if choice else None
            )
            self._state.session = open_session(
                np.asarray(image.data),
                tuple(image.scale),
                modality,
                self._state.slice_model,
                embedding,
                image.name,
                roi_mm=options.roi_mm or None,
                roi_context=BOX_ROI_CONTEXT if options.roi_box else None,
                confine=confine,
                axis=options.axis,
            )
            self._state.session_key = key
        return self._state.session

    def precompute(self) -> None:
        """Encode the current image in the background, from the slice on screen outwards
        (progress and Cancel in the model section); prompts are served first."""
        try:
            image = self.current_image()
            session = self._session(image)
        except ValueError:
            return  # no image yet, or options that need the user first: prompts encode on demand
        if session.uses_roi:
            return
        at = int(self.viewer.dims.current_step[session.axis])

        def done(counts: tuple[int, int]) -> None:
            self._precompute = None
            encoded, read = counts
            self.say(
                "model",
                f"{self._ready_line}. {image.name}: every slice ready ({encoded} encoded, {read} "
                "from the cache); a prompt costs the decoder only",
            )

        def failed(_message: str) -> None:
            self._precompute = None

        def step(event: tuple[int, int], _bar: Any) -> tuple[int, int]:
            done_, total = event
            self.say(
                "model",
                f"{self._ready_line}. Encoding {image.name} in the background: {done_}/{total} "
                "slices (prompts first; Cancel stops it)",
            )
            return event

        self._precompute = self.tasks.start(
            "model",
            lambda: (yield from session.precompute_steps(at)),
            done,
            "Encoding slices in the background",
            layer=image,
            on_yield=step,
            on_error=failed,
            background=True,
        )

    def _stop_precompute(self) -> None:
        if self._precompute is not None:
            self._precompute.quit()
            self._precompute = None

    def _drop_session(self) -> None:
        self._stop_precompute()
        if self._state.session is not None:
            self._state.session.close()
        self._state.session = None
        self._state.session_key = None
        self._state.mask = None

    def _show(self, mask: np.ndarray, image: napari.layers.Image) -> None:
        self._state.mask = mask
        if PREVIEW_LAYER in self.viewer.layers:
            layer = self.viewer.layers[PREVIEW_LAYER]
            layer.data = mask.astype(np.uint8)
        else:
            layer = add_labels_on(
                self.viewer, image, mask.astype(np.uint8), PREVIEW_LAYER, metadata={}, opacity=0.5
            )
        self._keep_prompting()

    def _keep_prompting(self) -> None:
        """The prompt layer last used active, in its add mode, so that the next click or drag
        is a prompt (boxes for a box-only model)."""
        name = BOX_LAYER if self._box_tool else PROMPT_LAYER
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            self.viewer.layers.selection.active = layer
            layer.mode = "add_rectangle" if self._box_tool else "add"

    @property
    def _box_tool(self) -> bool:
        active = self.viewer.layers.selection.active
        if active is not None and active.name in (BOX_LAYER, PROMPT_LAYER):
            return active.name == BOX_LAYER
        return bool(getattr(self._state.slice_model, "box_only", False))

    def box_tool(self) -> napari.layers.Shapes:
        """B: the box layer active, drawing rectangles on the current slice."""
        layer = self.boxes_layer()
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"
        return layer

    def point_tool(self) -> napari.layers.Points:
        """P: the prompts layer active, adding clicks."""
        layer = self.prompts_layer()
        self.viewer.layers.selection.active = layer
        layer.mode = "add"
        return layer

    def user_prompts(self, image: napari.layers.Image) -> tuple[np.ndarray, np.ndarray, dict]:
        """The clicks (voxels, labels) and boxes ``{slice: (y0, x0, y1, x1)}`` on ``image``."""
        points, labels = np.zeros((0, 3)), np.zeros(0, dtype=int)
        if PROMPT_LAYER in self.viewer.layers:
            points, labels = prompts_of(self.viewer.layers[PROMPT_LAYER], image)
        boxes = (
            boxes_of(self.viewer.layers[BOX_LAYER], image)
            if BOX_LAYER in self.viewer.layers
            else {}
        )
        if boxes and self.settings.propagation.axis != 0:
            raise ValueError(
                "boxes are drawn on axial slices: set the slicing axis to z to use them"
            )
        return points, labels, boxes

    def start_worker(
        self,
        work,
        done,
        description: str,
        *,
        total: int = 0,
        on_yield=None,
        section: str = "prompts",
        layer: Any = None,
    ):
        """Run ``work`` for ``section`` through the viewer's task runner; ``done`` gets its
        result."""
        return self.tasks.start(
            section, work, done, description, layer=layer, total=total, on_yield=on_yield
        )

    # -- actions ----------------------------------------------------------------------

    def prompts_layer(self) -> napari.layers.Points:
        """The prompts layer for the current image (created on first use)."""
        return prompt_layer(self.viewer, self.current_image())

    def boxes_layer(self) -> napari.layers.Shapes:
        """The box-prompt layer for the current image (created on first use)."""
        return box_layer(self.viewer, self.current_image())

    def segment_slice(self) -> None:
        """Segment the slice holding the most recent click (S)."""
        self.require_model()
        image = self.current_image()
        session = self._session(image)
        prompts = session.check_prompts(*self.user_prompts(image))  # checked once, before any work
        z_volume = prompts.slice_to_segment(prefer_box=self._box_tool)

        post = self.settings.propagation.post()

        def work():
            return session.segment_slice(z_volume, prompts, post)

        def done(mask: np.ndarray) -> None:
            self._show(mask, image)
            found = int(np.count_nonzero(mask))
            note = f" ({prompts.note})" if prompts.note else ""
            self.say(
                "prompts",
                (
                    f"slice {z_volume}: {found} voxels; C commits, Shift+S propagates"
                    if found
                    else f"slice {z_volume}: nothing found; add or move a prompt"
                )
                + note,
            )

        self.say("prompts", f"segmenting slice {z_volume} ...")
        self.start_worker(work, done, "Segmenting slice", layer=image)

    def propagate(self, from_slice: int | None = None, section: str = "propagation") -> None:
        """Propagate through the volume (Shift+S) in the background, with progress and Cancel;
        ``section`` is the one that asked (its status and Cancel)."""
        self.require_model()
        image = self.current_image()
        session = self._session(image)
        prompts = session.check_prompts(*self.user_prompts(image))  # checked once, before any work
        settings, post = (
            self.settings.propagation.engine_settings(),
            self.settings.propagation.post(),
        )
        session.check_settings(settings)

        key: list[int | None] = [from_slice]

        def done(mask: np.ndarray) -> None:
            self._show(mask, image)
            note = f" ({prompts.note})" if prompts.note else ""
            if key[0] is not None and from_slice is None:
                self.say(
                    section,
                    f"key box on slice {key[0]}: the slices nearest to it were propagated again, "
                    f"the others kept; Undo (Ctrl+Z) reverts it{note}",
                )
            else:
                self.say(
                    section,
                    f"propagated through {len(session.visited_slices())} slices; C commits{note}",
                )

        def work():
            session.set_prompts(prompts)
            if key[0] is None:  # after a propagation, one new box: a correction from it alone
                key[0] = session.new_key_slice()
            return (yield from session.propagate_steps(settings, from_slice=key[0], post=post))

        started = time.monotonic()

        def step(event: tuple[int, int], _bar: Any) -> tuple[int, int]:
            at, total = event
            self.say(
                section,
                f"propagating: slice {at} of {total}{time_left(started, at, total)}; Cancel stops "
                "it",
            )
            return event

        self.say(section, "propagating ...")
        self.tasks.start(section, work, done, "Propagating", layer=image, on_yield=step)

    def _undo_commit(self) -> None:
        """Ctrl+Z on a prompt layer with no propagation to take back: the last commit, in
        the Labels layer it went to (napari's own undo of that layer)."""
        layer = self._last_commit() if self._last_commit is not None else None
        if layer is None or layer not in self.viewer.layers:
            self.say("prompts", "nothing to undo")
            return
        layer.undo()
        self._last_commit = None
        self.say("prompts", f"the last commit to {layer.name!r} was undone")

    def undo(self) -> None:
        """Ctrl+Z on the prompt layers: revert the latest propagation (the mask as it was,
        and the boxes it had not started from removed), or else the last commit."""
        self.require_model()
        session = self._state.session
        restored = session.undo() if session is not None else None
        if restored is None:
            self._undo_commit()
            return
        image = self.current_image()
        if BOX_LAYER in self.viewer.layers:
            layer = self.viewer.layers[BOX_LAYER]
            drop = [i for i, z in enumerate(box_slices(layer, image)) if z not in restored]
            if drop:
                layer.selected_data = set(drop)
                layer.remove_selected()
        self._show(session.mask(self.settings.propagation.post()), image)
        self.say("prompts", "the latest propagation was undone")

    def cancel(self, section: str | None = None) -> None:
        """Stop the work ``section`` started (None: the model, prompts and propagation
        sections'); layers stay as they were."""
        for name in (section,) if section else ("model", "prompts", "propagation"):
            if self.tasks.cancel(name):
                self.say(name, "cancelled; nothing was changed")

    def commit(self) -> napari.layers.Labels | None:
        """Write the current object into the target Labels layer (C); one Undo reverts it."""
        mask = self._state.mask
        if mask is None or not mask.any():
            self.say("prompts", "nothing to commit: segment an object first")
            return None
        image = self.current_image()
        target = self.settings.prompts
        if target.target_layer and target.target_layer in self.viewer.layers:
            layer = self.viewer.layers[target.target_layer]
            if layer.data.shape != mask.shape:
                raise ValueError(
                    f"the Labels layer {layer.name!r} has shape {layer.data.shape}, "
                    f"the image {mask.shape}"
                )
        else:
            layer = add_labels_on(
                self.viewer,
                image,
                np.zeros(mask.shape, dtype=np.uint16),
                target.target_layer or "labels",
            )
        value = target.value or int(np.max(layer.data)) + 1
        where = mask & (layer.data == 0) if target.preserve_existing else mask
        with layer.block_history():
            layer.data_setitem(np.nonzero(where), value)
        name = target.name.strip() or "object"
        name_label(layer, value, name, self.viewer.layers)
        autosaver_for(self.viewer).save(layer, image)
        self._last_commit = weakref.ref(layer)
        self.new_object()
        self._keep_prompting()
        self.say("prompts", f"committed {name!r} as label {value} in {layer.name!r}")
        return layer

    def new_object(self) -> None:
        """Clear the prompts and the preview to start the next object."""
        if PROMPT_LAYER in self.viewer.layers:
            self.viewer.layers[PROMPT_LAYER].data = np.zeros((0, 3))
        if BOX_LAYER in self.viewer.layers:
            self.viewer.layers[BOX_LAYER].data = []
        if PREVIEW_LAYER in self.viewer.layers:
            self.viewer.layers[PREVIEW_LAYER].data = np.zeros_like(
                self.viewer.layers[PREVIEW_LAYER].data
            )
        if self._state.session is not None:
            self._state.session.reset()
        self._state.mask = None


def time_left(started: float, done: int, total: int) -> str:
    """ ", about 40 s left" from the time taken so far (nothing before the first slices)."""
    if done < 2 or done >= total:
        return ""
    seconds = (time.monotonic() - started) / done * (total - done)
    return (
        f", about {seconds:.0f} s left" if seconds < 90 else f", about {seconds / 60:.0f} min left"
    )


def name_label(layer: napari.layers.Labels, value: int, name: str, layers: Any = ()) -> None:
    """Give label ``value`` of ``layer`` the name ``name`` (the layer's ``index``/``name``
    features) and a colour that no other of ``layers`` shows for another label."""
    from napari_textseg._napari.label_colours import colour_label

    features = layer.features
    index = list(features["index"]) if "index" in features else [0]
    names = list(features["name"]) if "name" in features else ["background"]
    if value in index:
        names[index.index(value)] = name
    else:
        index.append(value)
        names.append(name)
    # The colour first: it keeps the colours the layer shows for its other named labels.
    colour_label(layer, value, name, layers)
    layer.features = {"index": index, "name": names}


_CONTROLLERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def controller_for(viewer: napari.Viewer) -> SegmentationController:
    """The one controller of ``viewer``, shared by its dock widgets."""
    if viewer not in _CONTROLLERS:
        _CONTROLLERS[viewer] = SegmentationController(viewer)
        autosaver_for(viewer)  # from now on commits are autosaved, and reopened images offered back
    return _CONTROLLERS[viewer]
