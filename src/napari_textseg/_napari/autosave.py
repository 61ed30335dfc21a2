"""Autosave of committed labels, and the offer to restore them when the image is reopened.

Each commit (a clicked object, or an organ from text labelling) copies the Labels layer
on the main thread and writes it on a background thread, so the GUI does not wait for
the compression. Opening an image with saved labels shows a notification with a
Restore action.
"""

from __future__ import annotations

import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import (
    Notification,
    NotificationSeverity,
    notification_manager,
    show_warning,
)

from napari_textseg._napari.layers import add_labels_on, label_table, layer_geometry
from napari_textseg.core.recovery import RecoveryStore, image_key

if TYPE_CHECKING:
    import napari

__all__ = ["Autosaver", "autosaver_for"]


class _PluginNotification(Notification):
    """A notification whose "Source:" line names the plugin (napari would show its own
    notification manager, the event's emitter)."""

    @property
    def source(self) -> str:
        return "napari-textseg"


def _source(image: Image) -> str | None:
    geometry = layer_geometry({"metadata": image.metadata})
    return (geometry.path if geometry is not None else None) or image.source.path


class Autosaver:
    """Writes committed Labels layers to a :class:`RecoveryStore` and offers them back."""

    def __init__(self, viewer: napari.Viewer, store: RecoveryStore | None = None):
        self.viewer = viewer
        self.store = store or RecoveryStore()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textseg-autosave")
        self._offered: set[str] = set()
        self.last_error: str | None = None
        viewer.layers.events.inserted.connect(lambda event: self.offer(event.value))
        for layer in list(viewer.layers):
            self.offer(layer)

    def key(self, image: Image) -> str:
        return image_key(_source(image), np.asarray(image.data))

    def save(self, labels: Labels, image: Image) -> Future:
        """Autosave ``labels`` (drawn on ``image``) in the background; returns the write's
        future."""
        if (
            self.last_error
        ):  # the previous write failed on its thread: say so here, on the main thread
            show_warning(self.last_error)
            self.last_error = None
        data = np.array(labels.data)  # a copy: painting may go on while it is written
        names, _ = label_table(data, {"features": labels.features})
        key, name, source = self.key(image), labels.name, _source(image) or image.name

        def write():
            try:
                return self.store.save(key, name, data, names, image=source)
            except (
                OSError
            ) as err:  # a full disk must not break the session; warned at the next commit
                self.last_error = (
                    f"autosave of {name!r} failed: {err}; your layers in napari are unaffected"
                )
                raise

        return self._writer.submit(write)

    def offer(self, layer: object) -> None:
        """If ``layer`` is an image with autosaved labels, notify with a Restore action."""
        if not isinstance(layer, Image):
            return
        key = self.key(layer)
        entries = self.store.entries(key)
        if not entries or key in self._offered:
            return
        self._offered.add(key)
        names = ", ".join(e.layer for e in entries)
        notification_manager.dispatch(
            _PluginNotification(
                f"napari-textseg autosaved labels for {layer.name}: {names}. Restore them?",
                severity=NotificationSeverity.INFO,
                actions=[("Restore", lambda *_: self.restore(layer))],
            )
        )

    def restore(self, image: Image) -> list[Labels]:
        """Add the autosaved Labels layers of ``image`` (named as they were), newest first."""
        added = []
        for entry in self.store.entries(self.key(image)):
            data = entry.load()
            if data.shape != image.data.shape:
                continue
            kwargs = {}
            if entry.names:
                values = sorted(entry.names)
                kwargs["features"] = {
                    "index": [0, *values],
                    "name": ["background"] + [entry.names[v] for v in values],
                }
            name = (
                entry.layer
                if entry.layer not in self.viewer.layers
                else f"{entry.layer} (restored)"
            )
            added.append(add_labels_on(self.viewer, image, data, name, **kwargs))
        return added

    def wait(self) -> None:
        """Block until queued writes are done (tests, and closing the viewer)."""
        self._writer.submit(lambda: None).result()


_AUTOSAVERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def autosaver_for(viewer: napari.Viewer) -> Autosaver:
    """The one autosaver of ``viewer``."""
    if viewer not in _AUTOSAVERS:
        _AUTOSAVERS[viewer] = Autosaver(viewer)
    return _AUTOSAVERS[viewer]
