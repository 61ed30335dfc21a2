"""Conversions between :class:`Volume` and napari layer data, in both directions."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_textseg.core.intensity import contrast_limits
from napari_textseg.core.volume import SourceGeometry, Volume

__all__ = [
    "METADATA_KEY",
    "add_labels_on",
    "adopt_source_geometry",
    "label_table",
    "layer_geometry",
    "layer_modality",
    "on_grid",
    "volume_to_layer_data",
]

METADATA_KEY = "napari_textseg"
LayerData = tuple[Any, dict[str, Any], str]


def _metadata(volume: Volume) -> dict[str, Any]:
    return {
        METADATA_KEY: {
            "geometry": volume.geometry,
            "modality": volume.modality,
            "unit": volume.geometry.unit,
            "nan_count": volume.nan_count,
        }
    }


def volume_to_layer_data(volume: Volume) -> LayerData:
    """The ``(data, kwargs, layer_type)`` tuple napari builds a layer from."""
    kwargs: dict[str, Any] = {
        "name": volume.name,
        "scale": volume.spacing,
        "translate": volume.origin,
        "metadata": _metadata(volume),
        "units": "mm" if volume.geometry.unit == "mm" else "um",
        "axis_labels": ("z", "y", "x"),
    }
    if volume.is_labels:
        from napari.utils.colormaps import DirectLabelColormap

        names = volume.label_names or {}
        if names:
            values = sorted(names)
            kwargs["features"] = {
                "index": [0, *values],
                "name": ["background"] + [names[v] for v in values],
            }
        if volume.label_colors:
            colors: dict[int | None, Any] = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0)}
            colors.update(volume.label_colors)
            kwargs["colormap"] = DirectLabelColormap(color_dict=colors)
        return (volume.data, kwargs, "labels")
    kwargs["colormap"] = "gray"
    kwargs["contrast_limits"] = contrast_limits(volume.data, volume.modality)
    if volume.channel_axis is not None:
        kwargs["channel_axis"] = volume.channel_axis
        kwargs["name"] = [
            f"{volume.name} [ch{i}]" for i in range(volume.data.shape[volume.channel_axis])
        ]
        kwargs["colormap"] = None  # napari picks one colour per channel
        kwargs.pop("contrast_limits")
    return (volume.data, kwargs, "image")


def layer_modality(attributes: dict[str, Any]) -> str:
    """The modality ("CT", "MR", ...) a layer's metadata records, or "unknown"."""
    return ((attributes.get("metadata") or {}).get(METADATA_KEY) or {}).get("modality", "unknown")


def layer_geometry(attributes: dict[str, Any]) -> SourceGeometry | None:
    """The source geometry a layer carries in its metadata, if any."""
    meta = (attributes.get("metadata") or {}).get(METADATA_KEY) or {}
    geometry = meta.get("geometry")
    return geometry if isinstance(geometry, SourceGeometry) else None


def on_grid(image: Any) -> dict[str, Any]:
    """The keywords that put a new layer on ``image``'s grid (and its units and axes)."""
    return {
        "scale": image.scale,
        "translate": image.translate,
        "units": image.units,
        "axis_labels": image.axis_labels,
    }


def add_labels_on(viewer: Any, image: Any, data: np.ndarray, name: str, **kwargs: Any) -> Any:
    """A Labels layer on ``image``'s grid: its scale, translate, units, axis labels and
    (unless ``metadata`` is given) its metadata, so that export finds the source geometry."""
    kwargs.setdefault("metadata", dict(image.metadata))
    return viewer.add_labels(data, name=name, **on_grid(image), **kwargs)


def adopt_source_geometry(labels: Any, layers: Any) -> bool:
    """Give a Labels layer that carries no source geometry the geometry of the image it
    was made on: same shape, scale and translate (napari's New Labels copies those, not
    the metadata). Its export then restores the source grid exactly, oblique rotation
    and header included. Returns whether it adopted one."""
    from napari.layers import Image

    if layer_geometry({"metadata": labels.metadata}) is not None:
        return False
    active = layers.selection.active
    candidates = sorted(
        (la for la in layers if isinstance(la, Image)), key=lambda la: la is not active
    )
    for image in candidates:
        meta = image.metadata.get(METADATA_KEY) or {}
        if (
            isinstance(meta.get("geometry"), SourceGeometry)
            and image.data.shape[-3:] == labels.data.shape
            and np.allclose(image.scale, labels.scale)
            and np.allclose(image.translate, labels.translate)
        ):
            labels.metadata[METADATA_KEY] = {
                k: meta[k] for k in ("geometry", "modality", "unit") if k in meta
            }
            return True
    return False


def label_table(
    data: np.ndarray, attributes: dict[str, Any]
) -> tuple[dict[int, str], dict[int, tuple[float, float, float, float]]]:
    """Label value -> name (from the layer's features) and -> RGBA (from its colormap)."""
    names: dict[int, str] = {}
    features = attributes.get("features")
    if features is not None and len(features) and "name" in features:
        index = features["index"] if "index" in features else range(len(features))
        for value, name in zip(index, features["name"], strict=False):
            if int(value) != 0:
                names[int(value)] = str(name)
    values = [int(v) for v in np.unique(np.asarray(data)) if v != 0]
    colors: dict[int, tuple[float, float, float, float]] = {}
    colormap = attributes.get("colormap")
    if colormap is not None and hasattr(colormap, "map") and values:
        rgba = np.asarray(colormap.map(np.asarray(values, dtype=np.asarray(data).dtype)))
        colors = {v: tuple(float(c) for c in rgba[i]) for i, v in enumerate(values)}  # type: ignore[misc]
    return names, colors
