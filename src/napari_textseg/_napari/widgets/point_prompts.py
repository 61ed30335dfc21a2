"""The prompts section (points and boxes, segment, commit) and the Point prompts dock."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QCheckBox, QComboBox, QLineEdit, QPushButton, QSpinBox, QWidget

from napari_textseg._napari.prompt_layer import toggle_sign
from napari_textseg._napari.prompts_controller import controller_for
from napari_textseg._napari.widgets._common import fill_labels_combo, hbox, safely, scroll_panel
from napari_textseg._napari.widgets._section import PANEL_WIDTH, Section
from napari_textseg._napari.widgets.model_section import ModelSection

if TYPE_CHECKING:
    import napari

__all__ = ["PointPromptsWidget", "PromptsSection"]

_NEW_LAYER = "<new Labels layer>"


class PromptsSection(Section):
    """Click positive/negative points or draw a box, segment the slice (S), commit (C)."""

    section = "prompts"
    hint = "Load a model, then click the object (or draw a box, B) and press S."

    def __init__(self, napari_viewer: napari.Viewer, *, scroll: bool = True):
        super().__init__(napari_viewer, scroll=scroll)
        self.controller = controller_for(napari_viewer)
        self.box = QPushButton("Box [B]")
        self.box.setToolTip(
            "draw a box on the current slice (a rectangle), then S; box models need one"
        )
        self.points = QPushButton("Points [P]")
        self.points.setToolTip("click points on the object (T toggles positive/negative), then S")
        self.toggle = QPushButton("+/- [T]")
        self.toggle.setToolTip("toggle whether new clicks (and strokes) are positive or negative")
        self.scribble = QPushButton("Scribble")
        self.scribble.setToolTip("nnInteractive: draw free-hand over the object, then S")
        self.lasso = QPushButton("Lasso")
        self.lasso.setToolTip("nnInteractive: draw round the object (a closed outline), then S")
        self.segment = QPushButton("Segment slice [S]")
        self.propagate = QPushButton("Propagate [Shift+S]")
        self.propagate.setToolTip("through the volume, with the Propagate section's settings")
        self.target = QComboBox()
        self.value = QSpinBox()
        self.value.setRange(0, 65535)
        self.value.setSpecialValueText("next free")
        self.name = QLineEdit("object")
        self.preserve = QCheckBox("keep existing labels")
        self.preserve.setChecked(True)
        self.commit = QPushButton("Commit [C]")
        self.new = QPushButton("New object")
        self.cancel_button = QPushButton("Cancel")

        self.form.addRow(hbox(self.box, self.points, self.toggle))
        self.form.addRow(hbox(self.scribble, self.lasso))
        self.scribble.setEnabled(False)  # until nnInteractive is loaded
        self.lasso.setEnabled(False)
        self.form.addRow(hbox(self.segment, self.propagate))
        self.form.addRow("commit to", self.target)
        self.form.addRow("label value", self.value)
        self.form.addRow("label name", self.name)
        self.form.addRow(self.preserve)
        self.form.addRow(hbox(self.commit, self.new, self.cancel_button))
        self.finish_layout()

        self.action(self.segment, self.controller.segment_slice)
        self.action(self.propagate, self._propagate)
        self.action(self.commit, self._commit)
        self.action(self.new, self.controller.new_object)
        self.action(self.toggle, self._toggle)
        self.action(self.box, self._box_tool)
        self.action(self.points, self._point_tool)
        self.action(self.scribble, lambda: self._stroke_tool("add_path"))
        self.action(self.lasso, lambda: self._stroke_tool("add_polygon_lasso"))
        self.cancel_button.clicked.connect(self.cancel)
        self._refresh_targets()
        target = self.controller.settings.prompts  # the controls are views of this model
        self.bind(
            self.target,
            target,
            "target_layer",
            to_model=lambda t: "" if t == _NEW_LAYER else t,
            to_widget=lambda v: v or _NEW_LAYER,
        )
        self.bind(self.value, target, "value")
        self.bind(self.name, target, "name")
        self.bind(self.preserve, target, "preserve_existing")
        self.clear_on_change(self.target, self.value, self.name)
        self.listen(self.controller.workspace.model_ready, self._ready)
        self.listen(self.controller.workspace.busy, self._busy)
        self.listen(self.viewer.layers.events.inserted, self._refresh_targets)
        self.listen(self.viewer.layers.events.removed, self._refresh_targets)
        self._refresh_targets()
        self._bind_keys()

    def _busy(self, busy: bool) -> None:
        self.segment.setEnabled(not busy)
        self.propagate.setEnabled(not busy)

    def _key_actions(self) -> dict:
        # micro-sam's keys: S segments the slice, Shift+S the volume, C commits, T toggles;
        # B draws a box, P goes back to clicking.
        return {
            "s": self.controller.segment_slice,
            "Shift-s": self._propagate,
            "c": self._commit,
            "t": self._toggle,
            "b": self._box_tool,
            "p": self._point_tool,
        }

    def _bind_keys(self) -> None:
        """The keys on the viewer, and on the layers where napari's own layer keys would win
        (the images: C is napari's auto-contrast there); given back when the panel closes."""
        viewer, ours, before = self.viewer, {}, {}
        for key, action in self._key_actions().items():
            ours[key] = lambda _viewer, act=action: safely(act, self.status)()
            before[key] = viewer.bind_key(key, ours[key], overwrite=True)
        bound = self._bound_layers = weakref.WeakSet()
        keys = [*self._key_actions(), "Control-z"]

        def give_back(*_args: object) -> None:  # no reference to self: Qt calls it while deleting
            for layer in list(bound):
                for key in keys:
                    layer.bind_key(key, None)  # napari's own binding for the key applies again
            bound.clear()
            for key, mine in ours.items():
                now = viewer.bind_key(key, None)
                if now is not mine:  # another panel bound the key since: it keeps it
                    viewer.bind_key(key, now, overwrite=True)
                elif before[key] is not None:
                    viewer.bind_key(key, before[key], overwrite=True)
            ours.clear()

        self.destroyed.connect(give_back)
        for layer in self.viewer.layers:
            self._bind_image_keys(layer)
        self.listen(
            self.viewer.layers.events.inserted, lambda event: self._bind_image_keys(event.value)
        )

    def _bind_image_keys(self, layer: napari.layers.Layer) -> None:
        from napari.layers import Image

        if isinstance(layer, Image) and layer.ndim == 3 and not layer.rgb:
            self.bind_prompt_layer_keys(layer)

    def bind_prompt_layer_keys(self, layer: napari.layers.Layer) -> None:
        """The same keys on the prompt layers, whose own S would switch to select mode, and on
        the images; Ctrl+Z there undoes the latest propagation or the last commit."""
        actions = {**self._key_actions(), "Control-z": self.controller.undo}
        for key, action in actions.items():
            layer.bind_key(
                key, lambda _layer, act=action: safely(act, self.status)(), overwrite=True
            )
        self._bound_layers.add(layer)

    def _ready(self, card) -> None:
        """A model is ready: the prompt layers exist now (not before: a failed Load makes
        none), and the tool the model needs is active; scribbles and lasso for nnInteractive."""
        native = bool(self.controller.workspace.slice_model.native_3d)
        self.scribble.setEnabled(native)
        self.lasso.setEnabled(native)
        if not self._has_image():
            return
        self.bind_prompt_layer_keys(self.controller.boxes_layer())
        self.bind_prompt_layer_keys(self.controller.prompts_layer())
        self._box_tool() if card.box_only else self._point_tool()
        self.status.setText(
            "Draw a box (B), then S; Shift+S for 3-D"
            if card.box_only
            else "Click the object, then S; Shift+S for 3-D"
        )

    def _propagate(self) -> None:
        """Propagate from this tab: its status and its Cancel follow the work."""
        self.controller.propagate(section=self.section)

    def _box_tool(self) -> None:
        self.bind_prompt_layer_keys(self.controller.box_tool())

    def _point_tool(self) -> None:
        self.bind_prompt_layer_keys(self.controller.point_tool())

    def _stroke_tool(self, mode: str) -> None:
        model = self.controller.workspace.slice_model
        if model is None or not model.native_3d:
            raise ValueError("scribbles and lasso are nnInteractive's: load nninteractive first")
        self.bind_prompt_layer_keys(self.controller.stroke_tool(mode))

    def _has_image(self) -> bool:
        from napari.layers import Image

        return any(isinstance(la, Image) and la.ndim == 3 for la in self.viewer.layers)

    def _toggle(self) -> None:
        sign = toggle_sign(self.controller.prompts_layer())
        strokes = self.controller.layers.strokes()
        if strokes is not None:
            strokes.feature_defaults = {"sign": sign}
        self.status.setText(f"new clicks are {sign}")

    def _commit(self) -> None:
        layer = self.controller.commit()
        if layer is not None:
            self._refresh_targets()
            self.controller.settings.prompts.target_layer = (
                layer.name
            )  # the next object goes there too

    def cancelled_note(self) -> str:
        return "the labels are as they were"

    def _refresh_targets(self, *_args: object) -> None:
        fill_labels_combo(self.target, self.viewer, _NEW_LAYER)


class PointPromptsWidget(QWidget):
    """The model and prompts sections as one dock, for users who prefer separate docks."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.controller = controller_for(napari_viewer)
        self.setMaximumWidth(PANEL_WIDTH)
        self.model_section = ModelSection(napari_viewer)
        self.prompts = PromptsSection(napari_viewer, scroll=False)
        layout = scroll_panel(self)
        layout.addWidget(self.model_section)
        layout.addWidget(self.prompts)

        # The sections' controls read as the dock's own (scripts and tests use them).
        for name in ("model", "checkpoint", "device", "load", "download", "licence"):
            setattr(self, name, getattr(self.model_section, name))
        for name in (
            "box",
            "points",
            "toggle",
            "segment",
            "target",
            "value",
            "name",
            "preserve",
            "commit",
            "new",
            "status",
            "working",
            "bind_prompt_layer_keys",
            "_commit",
        ):
            setattr(self, name, getattr(self.prompts, name))
        self.cancel = self.prompts.cancel_button
