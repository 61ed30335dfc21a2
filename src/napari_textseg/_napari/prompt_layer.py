"""The prompt layers: a Points layer for clicks (a ``sign`` feature, green positive, red
negative) and a Shapes layer for boxes (rectangles drawn on the current slice), held by
reference in one :class:`PromptLayers` per viewer (renaming them breaks nothing)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_textseg._napari.layers import on_grid

if TYPE_CHECKING:
    import napari

__all__ = [
    "BOX_LAYER",
    "PROMPT_LAYER",
    "LayerRef",
    "PromptLayers",
    "STROKE_LAYER",
    "add_box_layer",
    "add_stroke_layer",
    "in_viewer",
    "unwrapped",
    "add_prompt_layer",
    "box_slices",
    "boxes_of",
    "prompts_of",
    "strokes_of",
    "toggle_sign",
]

PROMPT_LAYER = "prompts (napari-textseg)"
BOX_LAYER = "boxes (napari-textseg)"
STROKE_LAYER = "strokes (napari-textseg)"  # nnInteractive's scribbles (paths) and lasso
SIGNS = ("positive", "negative")
COLOURS = {"positive": "#00e000", "negative": "#ff2020"}


def add_prompt_layer(viewer: napari.Viewer, image: napari.layers.Image) -> napari.layers.Points:
    """A new clicks layer on ``image``'s grid."""
    layer = viewer.add_points(
        np.zeros((0, image.ndim)),
        name=PROMPT_LAYER,
        **on_grid(image),
        features={"sign": np.array([], dtype=object)},
        feature_defaults={"sign": "positive"},
        face_color="sign",
        face_color_cycle=COLOURS,
        border_color="white",
        size=max(
            float(np.min(image.scale[-2:])) * 2, 1e-6
        ),  # two voxels: a mark, not a disc over the organ
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


def prompts_of(
    layer: napari.layers.Points, image: napari.layers.Image
) -> tuple[np.ndarray, np.ndarray]:
    """Points in the image's voxel (z, y, x) coordinates, and their labels (1/0)."""
    voxels = np.array([image.world_to_data(layer.data_to_world(p)) for p in layer.data])
    voxels = voxels.reshape(-1, image.ndim)
    labels = (layer.features["sign"].to_numpy(dtype=object) == "positive").astype(int)
    return voxels, labels


def add_box_layer(viewer: napari.Viewer, image: napari.layers.Image) -> napari.layers.Shapes:
    """A new box-prompt layer on ``image``'s grid."""
    return viewer.add_shapes(
        ndim=image.ndim,
        name=BOX_LAYER,
        **on_grid(image),
        shape_type="rectangle",
        edge_color="#ffd700",
        face_color="transparent",
        edge_width=1.0,  # one voxel: the box, not the organ, should look thin
    )


def add_stroke_layer(viewer: napari.Viewer, image: napari.layers.Image) -> napari.layers.Shapes:
    """A new layer for scribbles (free-hand paths) and lasso (free-hand polygons) on
    ``image``'s grid; each carries a ``sign`` feature (positive: the object, negative: not)."""
    return viewer.add_shapes(
        ndim=image.ndim,
        name=STROKE_LAYER,
        **on_grid(image),
        features={"sign": np.array([], dtype=object)},
        feature_defaults={"sign": "positive"},
        edge_color="#00e0e0",  # one colour: the sign (T) is a feature, shown in the status
        face_color="transparent",
        edge_width=1.0,
    )


def strokes_of(layer: napari.layers.Shapes, image: napari.layers.Image) -> tuple:
    """Each path as a scribble and each polygon as a lasso, on the slice it was drawn on."""
    from napari_textseg.engine.interactive.prompts import Stroke

    strokes = []
    signs = layer.features["sign"].to_numpy(dtype=object) if len(layer.data) else []
    for vertices, kind, sign in zip(layer.data, layer.shape_type, signs, strict=True):
        voxels = np.array([image.world_to_data(layer.data_to_world(v)) for v in vertices])
        voxels = np.round(voxels, 6)  # 59.9999999 from the world round trip is the voxel 60
        z = np.rint(voxels[:, 0])
        if kind not in ("path", "polygon") or np.ptp(z) > 0:
            raise ValueError(
                "draw scribbles and lasso on one slice (the Scribble and Lasso tools, 2-D view)"
            )
        stroke = "scribble" if kind == "path" else "lasso"
        strokes.append(Stroke(stroke, int(z[0]), voxels[:, 1:], sign == "positive"))
    return tuple(strokes)


def box_slices(layer: napari.layers.Shapes, image: napari.layers.Image) -> list[int]:
    """The image slice each shape of ``layer`` lies on, in the layer's order."""
    return [
        int(np.rint(image.world_to_data(layer.data_to_world(corners[0]))[0]))
        for corners in layer.data
    ]


def boxes_of(
    layer: napari.layers.Shapes, image: napari.layers.Image
) -> dict[int, tuple[float, float, float, float]]:
    """Each rectangle as ``{slice: (y0, x0, y1, x1)}`` in the image's voxels; the latest box on a
    slice wins. A shape that is not an axial rectangle on one slice raises ``ValueError``."""
    boxes: dict[int, tuple[float, float, float, float]] = {}
    for corners, kind in zip(layer.data, layer.shape_type, strict=True):
        voxels = np.array([image.world_to_data(layer.data_to_world(c)) for c in corners]).reshape(
            -1, image.ndim
        )
        z = np.rint(voxels[:, 0])
        if kind != "rectangle" or np.ptp(z) > 0:
            raise ValueError(
                "draw boxes as rectangles on one slice (the Box tool, B, in the 2-D view)"
            )
        (y0, x0), (y1, x1) = voxels[:, 1:].min(axis=0), voxels[:, 1:].max(axis=0)
        boxes[int(z[0])] = (float(y0), float(x0), float(y1), float(x1))
    return boxes


def unwrapped(obj: Any) -> Any:
    """The object behind napari's public-only proxy (a plugin's viewer hands out proxies, a
    new one per access: only the object behind them has an identity to keep)."""
    return getattr(obj, "__wrapped__", obj)


def in_viewer(viewer: napari.Viewer, layer: Any) -> bool:
    """Whether ``layer`` (or the layer behind a proxy) is still one of ``viewer``'s layers."""
    return layer is not None and any(unwrapped(la) is unwrapped(layer) for la in viewer.layers)


class LayerRef:
    """A layer the plugin made, by reference: None once the user removed it."""

    def __init__(self, viewer: napari.Viewer):
        self._viewer, self._ref = viewer, None

    def get(self) -> Any:
        layer = self._ref() if self._ref is not None else None
        return layer if in_viewer(self._viewer, layer) else None

    def set(self, layer: Any) -> Any:
        self._ref = weakref.ref(unwrapped(layer))
        return unwrapped(layer)

    def holds(self, layer: Any) -> bool:
        """Whether ``layer`` (or a proxy of it) is this reference's layer."""
        return layer is not None and unwrapped(layer) is self.get()


class PromptLayers:
    """The clicks and boxes layers of one viewer, made on an image's grid on first use."""

    def __init__(self, viewer: napari.Viewer):
        self.viewer = viewer
        self._clicks, self._boxes = LayerRef(viewer), LayerRef(viewer)
        self._strokes = LayerRef(viewer)

    def clicks(self, image: napari.layers.Image | None = None) -> Any:
        """The clicks layer; made on ``image``'s grid when there is none (None: don't make)."""
        layer = self._clicks.get()
        if layer is None and image is not None:
            layer = self._clicks.set(add_prompt_layer(self.viewer, image))
        return layer

    def boxes(self, image: napari.layers.Image | None = None) -> Any:
        """The boxes layer; made on ``image``'s grid when there is none (None: don't make)."""
        layer = self._boxes.get()
        if layer is None and image is not None:
            layer = self._boxes.set(add_box_layer(self.viewer, image))
        return layer

    def strokes(self, image: napari.layers.Image | None = None) -> Any:
        """The scribbles and lasso layer; made on ``image``'s grid when there is none."""
        layer = self._strokes.get()
        if layer is None and image is not None:
            layer = self._strokes.set(add_stroke_layer(self.viewer, image))
            clicks = self.clicks()
            if clicks is not None:  # the sign T set for clicks applies to strokes too
                layer.feature_defaults = {"sign": clicks.feature_defaults["sign"].iloc[0]}
        return layer

    def strokes_on(self, image: napari.layers.Image) -> tuple:
        strokes = self.strokes()
        return strokes_of(strokes, image) if strokes is not None else ()

    def is_prompt_layer(self, layer: Any) -> bool:
        return any(ref.holds(layer) for ref in (self._clicks, self._boxes, self._strokes))

    def is_strokes(self, layer: Any) -> bool:
        return self._strokes.holds(layer)

    def is_boxes(self, layer: Any) -> bool:
        return self._boxes.holds(layer)

    def prompts_on(self, image: napari.layers.Image) -> tuple[np.ndarray, np.ndarray, dict]:
        """The clicks (voxels, labels) and boxes ``{slice: (y0, x0, y1, x1)}`` on ``image``."""
        points, labels = np.zeros((0, 3)), np.zeros(0, dtype=int)
        clicks, boxes = self.clicks(), self.boxes()
        if clicks is not None:
            points, labels = prompts_of(clicks, image)
        return points, labels, boxes_of(boxes, image) if boxes is not None else {}

    def clear(self) -> None:
        """No prompts left: the next object starts from nothing."""
        clicks, boxes, strokes = self.clicks(), self.boxes(), self.strokes()
        if clicks is not None:
            clicks.data = np.zeros((0, 3))
        for shapes in (boxes, strokes):
            if shapes is not None:
                shapes.data = []
