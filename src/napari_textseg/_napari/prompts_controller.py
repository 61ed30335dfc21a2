"""The prompts controller: clicks and boxes in, a slice or a propagated 3-D object out.

It gathers the prompts from its layers on the main thread, runs the session's work through
the task runner, and writes the preview (and, on commit, the target Labels layer through
the workspace's label writer) only in the workers' main-thread callbacks. The layers it
makes (prompts, boxes, preview) are held by reference: renaming them breaks nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_textseg._napari.layers import add_labels_on
from napari_textseg._napari.prompt_layer import LayerRef, box_slices
from napari_textseg._napari.workspace import Workspace, workspace_for

if TYPE_CHECKING:
    import napari

__all__ = ["PREVIEW_KEY", "PREVIEW_LAYER", "PromptsController", "controller_for", "time_left"]

PREVIEW_LAYER = "object (napari-textseg)"
PREVIEW_KEY = "napari_textseg_preview"  # in the preview's metadata: not a target for results


class PromptsController:
    """Segment a slice (S), propagate (Shift+S), undo, commit (C) for one viewer."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.viewer = workspace.viewer
        self.tasks = workspace.tasks
        self.settings = workspace.settings
        self.layers = workspace.prompt_layers
        self._preview = LayerRef(self.viewer)
        self._mask: np.ndarray | None = None  # the object shown in the preview
        self._warned_cpu = False  # nnInteractive on a CPU: said once

    def say(self, section: str, text: str) -> None:
        self.workspace.say(section, text)

    # -- layers -----------------------------------------------------------------------

    def prompts_layer(self) -> napari.layers.Points:
        """The clicks layer (made on the current image's grid on first use)."""
        return self.layers.clicks(self.workspace.current_image())

    def boxes_layer(self) -> napari.layers.Shapes:
        """The box-prompt layer (made on the current image's grid on first use)."""
        return self.layers.boxes(self.workspace.current_image())

    def _show(self, mask: np.ndarray, image: napari.layers.Image) -> None:
        self._mask = mask
        tool = self.viewer.layers.selection.active  # a new preview layer would take its place
        layer = self._preview.get()
        if layer is not None and layer.data.shape == mask.shape:
            layer.data = mask.astype(np.uint8)
        else:
            data = mask.astype(np.uint8)
            metadata = {PREVIEW_KEY: True}  # and no source geometry: the preview is not exported
            layer = add_labels_on(
                self.viewer, image, data, PREVIEW_LAYER, metadata=metadata, opacity=0.5
            )
            self._preview.set(layer)
        self._keep_prompting(tool)

    def _keep_prompting(self, tool: Any = None) -> None:
        """The prompt layer last used active, in its add mode, so that the next click or drag
        is a prompt (boxes for a box-only model; a scribble or lasso tool stays in hand)."""
        if self.layers.is_strokes(tool):
            self.viewer.layers.selection.active = self.layers.strokes()
            return
        layer = self.layers.boxes() if self._box_tool else self.layers.clicks()
        if layer is not None:
            self.viewer.layers.selection.active = layer
            layer.mode = "add_rectangle" if self._box_tool else "add"

    @property
    def _box_tool(self) -> bool:
        active = self.viewer.layers.selection.active
        if self.layers.is_prompt_layer(active):
            return self.layers.is_boxes(active)
        model = self.workspace.slice_model
        return bool(model is not None and model.box_only)

    def stroke_tool(self, mode: str) -> napari.layers.Shapes:
        """Scribble (``add_path``) or lasso (``add_polygon_lasso``) on the current slice."""
        layer = self.layers.strokes(self.workspace.current_image())
        self.viewer.layers.selection.active = layer
        layer.mode = mode
        return layer

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

    # -- actions ----------------------------------------------------------------------

    def _checked(self):
        """(image, session, prompts checked once, before any work)."""
        self.workspace.require_model()
        image = self.workspace.current_image()
        session = self.workspace.session_for(image)
        prompts = self.layers.prompts_on(image)
        return image, session, session.check_prompts(*prompts, self.layers.strokes_on(image))

    def segment_slice(self) -> None:
        """Segment the slice holding the most recent click or box (S)."""
        image, session, prompts = self._checked()
        z = prompts.slice_to_segment(prefer_box=self._box_tool)
        post = self.settings.propagation.post()
        note = f" ({prompts.note})" if prompts.note else ""

        def done(mask: np.ndarray) -> None:
            self._show(mask, image)
            if self.workspace.slice_model.native_3d:
                self.say("prompts", self._native_line(session, mask))
                return
            found = int(np.count_nonzero(mask))
            said = f"slice {z}: {found} voxels; C commits, Shift+S propagates"
            self.say(
                "prompts",
                (said if found else f"slice {z}: nothing found; add or move a prompt") + note,
            )

        self.say("prompts", f"segmenting slice {z} ...")
        work = lambda: session.segment_slice(z, prompts, post)  # noqa: E731
        self.tasks.start("prompts", work, done, "Segmenting slice", layer=image)

    def _native_line(self, session: Any, mask: np.ndarray) -> str:
        """nnInteractive's result in 3-D, how long it took, and once, on a CPU, that a GPU is
        the machine for it."""
        slices = len(np.unique(np.nonzero(mask)[0]))
        seconds = session.last_seconds or 0.0
        line = f"{int(mask.sum())} voxels in {slices} slices ({seconds:.1f} s)"
        line += "; C commits, Ctrl+Z takes back the latest prompt"
        model = self.workspace.slice_model
        if model.where.startswith("cpu") and not self._warned_cpu:
            self._warned_cpu = True
            line += (f". nnInteractive on this CPU: {seconds:.1f} s an interaction; a CUDA GPU "
                     "or a server (model section) takes about a second")  # fmt: skip
        return line

    def propagate(self, from_slice: int | None = None, section: str = "propagation") -> None:
        """Propagate through the volume (Shift+S) in the background, with progress and Cancel;
        ``section`` is the one that asked (its status and Cancel)."""
        image, session, prompts = self._checked()
        options = self.settings.propagation
        settings, post = options.engine_settings(), options.post()
        session.check_settings(settings)
        note = f" ({prompts.note})" if prompts.note else ""
        key: list[int | None] = [from_slice]

        def done(mask: np.ndarray) -> None:
            self._show(mask, image)
            if key[0] is not None and from_slice is None:
                said = (
                    f"key box on slice {key[0]}: the slices nearest to it were propagated again, "
                )
                said += "the others kept; Undo (Ctrl+Z) reverts it"
            else:
                said = f"propagated through {len(session.visited_slices())} slices; C commits"
            self.say(section, said + note)

        def work():
            session.set_prompts(prompts)
            if key[0] is None:  # after a propagation, one new box: a correction from it alone
                key[0] = session.new_key_slice()
            return (yield from session.propagate_steps(settings, from_slice=key[0], post=post))

        started = time.monotonic()

        def step(event: tuple[int, int], _bar: Any) -> tuple[int, int]:
            at, total = event
            left = time_left(started, at, total)
            self.say(section, f"propagating: slice {at} of {total}{left}; Cancel stops it")
            return event

        self.say(section, "propagating ...")
        self.tasks.start(section, work, done, "Propagating", layer=image, on_yield=step)

    def undo(self) -> None:
        """Ctrl+Z on the prompt layers: revert the latest propagation (the mask as it was,
        and the boxes it had not started from removed), or else the last commit."""
        self.workspace.require_model()
        session = self.workspace.session
        restored = session.undo() if session is not None else None
        if restored is None:
            self.say("prompts", self.workspace.labels.undo_commit())
            return
        image, boxes = self.workspace.current_image(), self.layers.boxes()
        if boxes is not None:
            drop = [i for i, z in enumerate(box_slices(boxes, image)) if z not in restored]
            if drop:
                boxes.selected_data = set(drop)
                boxes.remove_selected()
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
        mask = self._mask
        if mask is None or not mask.any():
            self.say("prompts", "nothing to commit: segment an object first")
            return None
        image, target = self.workspace.current_image(), self.settings.prompts
        layer = self.workspace.labels.target(target.target_layer, image, "labels")
        name = target.name.strip() or "object"
        value = self.workspace.labels.commit(
            layer, image, mask, name, target.value, target.preserve_existing
        )
        self.new_object()
        self._keep_prompting()
        self.say("prompts", f"committed {name!r} as label {value} in {layer.name!r}")
        return layer

    def new_object(self) -> None:
        """Clear the prompts and the preview to start the next object."""
        self.layers.clear()
        preview = self._preview.get()
        if preview is not None:
            preview.data = np.zeros_like(preview.data)
        if self.workspace.session is not None:
            self.workspace.session.reset()
        self._mask = None


def time_left(started: float, done: int, total: int) -> str:
    """ ", about 40 s left" from the time taken so far (nothing before the first slices)."""
    if done < 2 or done >= total:
        return ""
    seconds = (time.monotonic() - started) / done * (total - done)
    return (
        f", about {seconds:.0f} s left" if seconds < 90 else f", about {seconds / 60:.0f} min left"
    )


def controller_for(viewer: napari.Viewer) -> PromptsController:
    """The prompts controller of ``viewer``'s workspace."""
    return workspace_for(viewer).controller(PromptsController)
