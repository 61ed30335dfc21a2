"""One workspace per viewer: what the panel's controllers share, and nothing they own.

The workspace holds the viewer's task runner, the panel's settings, the loaded model,
one segmentation session per image (so clicks and text encode each slice once), the
label writer and the disk store of embeddings. The prompts, text and compare
controllers are peers that use it; none reaches into another. It imports no Qt.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from psygnal import Signal

from napari_textseg._napari._triton import keep_triton_out_without_cuda

keep_triton_out_without_cuda()  # before the engine imports torchvision (see _triton.py)

from napari_textseg._napari.autosave import autosaver_for  # noqa: E402
from napari_textseg._napari.label_writer import LabelWriter  # noqa: E402
from napari_textseg._napari.layers import adopt_source_geometry, layer_modality  # noqa: E402
from napari_textseg._napari.prompt_layer import PromptLayers  # noqa: E402
from napari_textseg._napari.settings import ModelChoice, PanelSettings  # noqa: E402
from napari_textseg._napari.tasks import tasks_for  # noqa: E402
from napari_textseg.engine.interactive.embedding_store import default_store  # noqa: E402
from napari_textseg.engine.interactive.roi import BOX_ROI_CONTEXT  # noqa: E402
from napari_textseg.engine.interactive.session import SegmentationSession  # noqa: E402
from napari_textseg.engine.interactive.session_factory import (  # noqa: E402
    EmbeddingOptions,
    open_session,
)

if TYPE_CHECKING:
    import napari

__all__ = ["MODEL_SECTIONS", "ModelChoice", "Workspace", "workspace_for"]

T = TypeVar("T")

# The sections whose work uses the segmentation model (one at a time: they share a session).
MODEL_SECTIONS = ("model", "prompts", "propagation", "text")


@dataclass(frozen=True)
class ImageCopy:
    """An image layer's data and what the engine needs of it, taken on the main thread
    before a worker starts (a worker never reads a layer). The data is the layer's array,
    not a copy: napari does not paint on images, and a CT copy would cost its size again."""

    data: np.ndarray
    spacing: tuple[float, ...]
    modality: str
    name: str
    metadata: dict


class Workspace:
    """The shared state of one viewer's panel (see the module docstring)."""

    busy = Signal(bool)  # whether model work runs (in any section that uses the model)
    model_ready = Signal(object)  # the loaded model's card

    def __init__(self, viewer: napari.Viewer):
        self.viewer = viewer
        self.tasks = tasks_for(viewer)
        self.settings = PanelSettings()  # what the panel's sections set; read when work starts
        self.labels = LabelWriter(viewer)
        self.prompt_layers = PromptLayers(viewer)
        # Slice embeddings kept on disk across sessions (one warning, then memory only).
        self.store = default_store()
        self.loaded: Any = None  # the LoadedModel (card, device, file) once one is loaded
        self.slice_model: Any = None
        self.model_choice: ModelChoice | None = None
        self.loading = False
        # "main": the clicks' session; "plain": text labelling's when the clicks use ROI mode
        # or a confining organ (sessions and the keys they were made for)
        self._sessions: dict[str, tuple[SegmentationSession, tuple]] = {}
        self._controllers: dict[type, Any] = {}
        self.tasks.changed.connect(self._on_tasks_changed)
        viewer.layers.events.inserted.connect(self._on_layer_inserted)

    def controller(self, kind: type[T]) -> T:
        """The one controller of ``kind`` (prompts, model, text, compare) on this workspace."""
        if kind not in self._controllers:
            self._controllers[kind] = kind(self)  # type: ignore[call-arg]
        return self._controllers[kind]

    def say(self, section: str, text: str) -> None:
        """One line in ``section``'s status."""
        self.tasks.message.emit(section, text)

    def _on_tasks_changed(self, _section: str, _what: str) -> None:
        self.busy.emit(self.working)

    def _on_layer_inserted(self, event: Any) -> None:
        from napari.layers import Image, Labels

        layer = event.value
        if isinstance(layer, Labels):
            adopt_source_geometry(layer, self.viewer.layers)
        elif (
            isinstance(layer, Image) and layer.ndim == 3 and not layer.rgb and not layer.multiscale
        ):
            from napari_textseg.core.intensity import no_contrast_reason

            # An all-NaN or constant image is one line, not a black canvas and silence.
            blank = no_contrast_reason(np.asarray(layer.data))
            if blank:
                self.say("prompts", f"{layer.name}: {blank}; there is nothing to segment in it")

    # -- the model --------------------------------------------------------------------

    @property
    def working(self) -> bool:
        """True while model work (a load, a segmentation, a propagation, text labelling)
        runs; the background precompute gives way to prompts and does not count."""
        sections = [s for s in MODEL_SECTIONS if s != "model"]
        return self.loading or any(self.tasks.busy(section) for section in sections)

    @property
    def loaded_model(self) -> Any:
        """The loaded model (a LoadedModel: its card, device, file), or None."""
        return self.loaded if self.slice_model is not None else None

    def set_model(self, loaded: Any, slice_model: Any, choice: ModelChoice) -> None:
        """A newly loaded model replaces the old one (and its session)."""
        self.drop_session()
        self.loaded, self.slice_model, self.model_choice = loaded, slice_model, choice
        self.model_ready.emit(loaded.card)

    def require_model(self) -> None:
        """Refuse (with a message) while a model loads, none is loaded, or work is running."""
        if self.loading:
            raise ValueError("the model is still loading; try again in a moment")
        if self.slice_model is None:
            raise ValueError("choose a model and press Load first")
        if self.working:
            raise ValueError("still working on the last request; wait for it or press Cancel")

    # -- images and sessions ------------------------------------------------------------

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

    @staticmethod
    def copy_of(image: napari.layers.Image) -> ImageCopy:
        """What a worker may read of ``image`` (call on the main thread)."""
        return ImageCopy(
            np.asarray(image.data),
            tuple(float(s) for s in image.scale),
            layer_modality({"metadata": image.metadata}),
            image.name,
            dict(image.metadata),
        )

    def session_for(
        self, image: napari.layers.Image, *, whole_volume: bool = False
    ) -> SegmentationSession:
        """The session of ``image`` with the loaded model and the Propagate tab's options, kept
        while they stay the same (each slice is encoded once). ``whole_volume`` (text
        labelling) asks for axial slices of the whole volume: the same session when the
        options are that, else one of its own, so the clicks' object is left alone."""
        options = self.settings.propagation
        own = whole_volume and not options.whole_volume
        key = (id(image), self.model_choice, *(() if own else options.session_key()))
        slot = "plain" if own else "main"
        session, made_for = self._sessions.get(slot, (None, None))
        if session is None or made_for != key:
            confine = None if own else self._confining_mask()
            self._drop(slot)
            choice = self.model_choice
            embedding = (
                EmbeddingOptions(choice.runtime, choice.precision, self.store) if choice else None
            )
            session = open_session(
                np.asarray(image.data),
                tuple(image.scale),
                layer_modality({"metadata": image.metadata}),
                self.slice_model,
                embedding,
                image.name,
                roi_mm=None if own else options.roi_mm or None,
                roi_context=BOX_ROI_CONTEXT if options.roi_box and not own else None,
                confine=confine,
            )
            self._sessions[slot] = (session, key)
        return session

    @property
    def session(self) -> SegmentationSession | None:
        """The clicks' session made last (None before any), without making one."""
        return self._sessions.get("main", (None, None))[0]

    def _confining_mask(self) -> np.ndarray | None:
        options = self.settings.propagation
        if not options.confine_layer:
            return None
        if options.confine_layer not in self.viewer.layers:
            raise ValueError(f"there is no layer named {options.confine_layer!r} to confine to")
        organ = np.asarray(self.viewer.layers[options.confine_layer].data)
        values = list(options.confine_label_values())
        return np.isin(organ, values) if values else organ > 0

    def drop_session(self) -> None:
        """Forget the sessions (their background work stops, their embeddings stay on disk)."""
        for slot in list(self._sessions):
            self._drop(slot)

    def _drop(self, slot: str) -> None:
        session, _ = self._sessions.pop(slot, (None, None))
        if session is not None:
            if slot == "main":
                self.tasks.cancel_background("model")  # the precompute encodes this session
            session.close()


_WORKSPACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def workspace_for(viewer: napari.Viewer) -> Workspace:
    """The one workspace of ``viewer``, shared by its controllers and dock widgets."""
    if viewer not in _WORKSPACES:
        _WORKSPACES[viewer] = Workspace(viewer)
        autosaver_for(viewer)  # from now on commits are autosaved, and reopened images offered
    return _WORKSPACES[viewer]
