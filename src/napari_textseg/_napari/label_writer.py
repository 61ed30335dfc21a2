"""The one way results reach a Labels layer: a committed object, a text-labelled organ, and
the undo of the last commit. Main thread only; each write is one undoable step of the
layer, names its label (features and a colour of its own) and is autosaved."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_textseg._napari.autosave import autosaver_for
from napari_textseg._napari.layers import add_labels_on
from napari_textseg._napari.prompt_layer import in_viewer, unwrapped

if TYPE_CHECKING:
    import napari

__all__ = ["CONFIDENCE_KEY", "LabelWriter", "name_label"]

CONFIDENCE_KEY = "napari_textseg_confidence"  # label value -> confidence, in a layer's metadata


class LabelWriter:
    """Writes into the Labels layers of one viewer."""

    def __init__(self, viewer: napari.Viewer):
        self.viewer = viewer
        self._last_commit: Any = None  # weak reference to the layer of the last commit

    def target(self, name: str, image: napari.layers.Image, new_name: str) -> napari.layers.Labels:
        """The Labels layer called ``name`` on ``image``'s grid, or a new one (``new_name``)
        when ``name`` is empty or gone."""
        if name and name in self.viewer.layers:
            layer = self.viewer.layers[name]
            if layer.data.shape != image.data.shape:
                raise ValueError(
                    f"the Labels layer {layer.name!r} has shape {layer.data.shape}, "
                    f"the image {image.data.shape}; pick a layer on the image's grid"
                )
            return layer
        empty = np.zeros(image.data.shape, dtype=np.uint16)
        return add_labels_on(self.viewer, image, empty, name or new_name)

    def commit(
        self,
        layer: napari.layers.Labels,
        image: napari.layers.Image,
        mask: np.ndarray,
        name: str,
        value: int = 0,
        preserve_existing: bool = True,
    ) -> int:
        """Write ``mask`` as label ``value`` (0: the next free one) named ``name``; returns the
        value. With ``preserve_existing`` the voxels other labels hold keep them."""
        value = value or int(np.max(layer.data)) + 1
        where = mask & (layer.data == 0) if preserve_existing else mask
        with layer.block_history():
            layer.data_setitem(np.nonzero(where), value)
        self._finish(layer, image, value, name)
        self._last_commit = weakref.ref(unwrapped(layer))
        return value

    def merge_organ(
        self,
        layer: napari.layers.Labels,
        image: napari.layers.Image,
        merged: Any,
        value: int,
        name: str,
        confidence: float,
    ) -> int:
        """Merge one organ into ``layer``: ``merged(old, confidences)`` gives the new label map
        (overlaps go to the more confident organ); returns its voxel count."""
        table = {int(k): float(v) for k, v in (layer.metadata.get(CONFIDENCE_KEY) or {}).items()}
        old = np.asarray(layer.data)
        new = merged(old, table)
        changed = np.nonzero(new != old)
        with layer.block_history():
            layer.data_setitem(changed, new[changed])
        table[value] = confidence
        layer.metadata = {**layer.metadata, CONFIDENCE_KEY: table}
        self._finish(layer, image, value, name)
        return int((new == value).sum())

    def _finish(self, layer: Any, image: Any, value: int, name: str) -> None:
        name_label(layer, value, name, self.viewer.layers)
        autosaver_for(self.viewer).save(layer, image)

    def undo_commit(self) -> str:
        """Undo the last commit in the layer it went to (napari's own undo of that layer);
        returns what happened, in words."""
        layer = self._last_commit() if self._last_commit is not None else None
        if not in_viewer(self.viewer, layer):
            return "nothing to undo"
        layer.undo()
        self._last_commit = None
        return f"the last commit to {layer.name!r} was undone"


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
