"""The demo's first result: once LiteMedSAM is loaded, a box around the liver, propagated.

A new user then sees a real mask from a real model without doing anything, and the box
tool is ready for their own boxes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from napari_textseg._napari.prompts_controller import PromptsController

if TYPE_CHECKING:
    import napari

__all__ = ["show_box_demo", "wait_until_idle"]


def _organ_box(
    organs: napari.layers.Labels, name: str
) -> tuple[int, tuple[float, float, float, float]] | None:
    """The middle slice of organ ``name`` in a named Labels layer, and its (y0, x0, y1, x1) box."""
    features = organs.features
    if "name" not in features or name not in list(features["name"]):
        return None
    value = int(list(features["index"])[list(features["name"]).index(name)])
    mask = np.asarray(organs.data) == value
    zs = np.nonzero(mask.any(axis=(1, 2)))[0]
    if not len(zs):
        return None
    z = int((zs.max() - zs.min()) / 2 + zs.min())
    ys, xs = np.nonzero(mask[z])
    return z, (float(ys.min()), float(xs.min()), float(ys.max()), float(xs.max()))


def show_box_demo(
    viewer: napari.Viewer, controller: PromptsController, organ: str = "liver"
) -> None:
    """When a box model is ready: draw a box around ``organ`` (from the sample's organ map)
    on its middle slice, go to that slice, and propagate (Shift+S)."""
    from napari.layers import Labels

    def ready(card) -> None:
        controller.workspace.model_ready.disconnect(ready)
        organs = next(
            (la for la in viewer.layers if isinstance(la, Labels) and "name" in la.features), None
        )
        found = _organ_box(organs, organ) if card.box_only and organs is not None else None
        if found is None:
            return
        z, (y0, x0, y1, x1) = found
        organs.visible = (
            False  # the model's mask is what the demo shows; the reference stays a click away
        )
        layer = controller.box_tool()
        corners = np.array([[z, y0, x0], [z, y0, x1], [z, y1, x1], [z, y1, x0]], dtype=float)
        layer.add_rectangles(corners)
        viewer.dims.set_current_step(0, z)
        controller.say("prompts", f"demo: {card.name} segments the {organ} from the yellow box ...")
        controller.propagate(section="prompts")

    controller.workspace.model_ready.connect(ready)


def wait_until_idle(controller: PromptsController, timeout_s: float = 600.0) -> None:
    """Process Qt events until the controller's model load and work have finished (screenshots)."""
    from qtpy.QtWidgets import QApplication

    # A model ready starts the demo's propagation in the same callback: no gap to miss.
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and (controller.workspace.loading or controller.workspace.working):
        QApplication.processEvents()
        time.sleep(0.05)
    for _ in range(10):
        QApplication.processEvents()
