"""The commands that open napari: (none), view, demo."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from napari_textseg.cli._common import need_display

__all__ = ["DOCKS", "demo", "open_viewer", "view"]


# The separate docks, in the order --stacked opens them.
DOCKS = ("Point prompts", "Propagation", "Text labelling", "Compare with reference")


def open_viewer(
    paths: Sequence[str] = (),
    sample: str | None = None,
    screenshot: str | None = None,
    model: str | None = None,
    window: str = "1400x850",
    stacked: bool = False,
    section: str = "prompts",
) -> int:
    import napari

    # torch and its extensions load before the OpenGL canvas exists (see _napari/_triton.py).
    import napari_textseg._napari.prompts_controller  # noqa: F401

    viewer = napari.Viewer(title="napari-textseg")
    if stacked:  # the separate docks, as the Plugins menu stacks them
        added = [
            viewer.window.add_plugin_dock_widget("napari-textseg", name, tabify=False)
            for name in DOCKS
        ]
        panel = added[0][1]
    else:
        _, panel = viewer.window.add_plugin_dock_widget("napari-textseg", "TextSeg")
    if sample:
        from napari.layers import Labels

        viewer.open_sample("napari-textseg", sample)
        # The labels layer active: hovering then shows each organ's name in the status bar.
        viewer.layers.selection.active = next(
            (la for la in viewer.layers if isinstance(la, Labels)), viewer.layers[0]
        )
    if model:
        if (
            sample == "abdomen_ct"
        ):  # the first run shows a real mask: a box on the liver, propagated
            from napari_textseg._napari.demo import show_box_demo

            show_box_demo(viewer, panel.controller)
        panel.model.setCurrentIndex(panel.model.findData(model))
        panel.load.click()
    for path in paths:
        viewer.open(path, plugin="napari-textseg")
    if screenshot:
        from qtpy.QtWidgets import QApplication

        width, height = (int(v) for v in window.lower().split("x"))
        viewer.window._qt_window.resize(width, height)
        for _ in range(5):
            QApplication.processEvents()
        if model:  # the model loaded and its first result shown
            from napari_textseg._napari.demo import wait_until_idle

            wait_until_idle(panel.controller)
        if not stacked:
            panel.show_section(section)
            for _ in range(5):
                QApplication.processEvents()
        viewer.screenshot(screenshot, canvas_only=False, flash=False)
        viewer.close()
        return 0
    napari.run()
    return 0


def view(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume

    for path in args.files:  # a missing or unreadable file is named before the display is checked
        read_volume(path)
    need_display(args)
    return open_viewer(args.files, screenshot=args.screenshot)


def demo(args: argparse.Namespace) -> int:
    shot = {
        "screenshot": args.screenshot,
        "window": args.window,
        "stacked": args.stacked,
        "section": args.section,
    }
    if args.phantom:
        return open_viewer(sample="phantom_ct", model="phantom_sam", **shot)
    from napari_textseg.models.registry import DEFAULT_MODEL

    return open_viewer(sample="abdomen_ct", model=DEFAULT_MODEL, **shot)
