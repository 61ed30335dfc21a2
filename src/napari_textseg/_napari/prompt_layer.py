"""The Points layer that holds click prompts: a ``sign`` feature, green positive, red negative."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import napari

__all__ = ["PROMPT_LAYER", "prompt_layer", "prompts_of", "toggle_sign"]

PROMPT_LAYER = "prompts (napari-textseg)"
SIGNS = ("positive", "negative")
COLOURS = {"positive": "#00e000", "negative": "#ff2020"}


def prompt_layer(viewer: napari.Viewer, image: napari.layers.Image) -> napari.layers.Points:
    """The prompts layer for ``image``, created on the image's grid if needed."""
    if PROMPT_LAYER in viewer.layers:
        return viewer.layers[PROMPT_LAYER]
    layer = viewer.add_points(
        np.zeros((0, image.ndim)),
        name=PROMPT_LAYER,
        scale=image.scale,
        translate=image.translate,
        units=image.units,
        axis_labels=image.axis_labels,
        features={"sign": np.array([], dtype=object)},
        feature_defaults={"sign": "positive"},
        face_color="sign",
        face_color_cycle=COLOURS,
        border_color="white",
        size=max(float(np.min(image.scale[-2:])) * 4, 1e-6),
        out_of_slice_display=False,
    )
    layer.face_color_mode = "cycle"
    layer.mode = "add"
    return layer


def toggle_sign(layer: napari.layers.Points) -> str:
    """T: in select mode, flip the selected points; otherwise flip the sign of the next clicks.

    Returns the sign new clicks will get.
    """
    selected = sorted(layer.selected_data)
    if layer.mode == "select" and selected:
        signs = layer.features["sign"].to_numpy(dtype=object, copy=True)
        signs[selected] = np.where(signs[selected] == "positive", "negative", "positive")
        layer.features = {"sign": signs}
        layer.refresh_colors()
        return str(layer.feature_defaults["sign"].iloc[0])
    new = "negative" if layer.feature_defaults["sign"].iloc[0] == "positive" else "positive"
    layer.feature_defaults = {"sign": new}
    return new


def prompts_of(layer: napari.layers.Points, image: napari.layers.Image) -> tuple[np.ndarray, np.ndarray]:
    """Points in the image's voxel (z, y, x) coordinates, and their labels (1/0)."""
    voxels = np.array([image.world_to_data(layer.data_to_world(p)) for p in layer.data])
    voxels = voxels.reshape(-1, image.ndim)
    labels = (layer.features["sign"].to_numpy(dtype=object) == "positive").astype(int)
    return voxels, labels
