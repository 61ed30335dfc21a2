"""Colours for named labels that do not collide across layers: a committed "liver" takes
the colour another layer already shows for "liver", and any other new label a colour
far from every colour the other layers show (napari's cyclic colours gave label 1 the
brown of the reference spine)."""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.utils.colormaps import DirectLabelColormap, label_colormap

__all__ = ["colour_label"]

_CANDIDATES = 96
# Values painted by hand that no commit has named yet: visible, and plainly "unnamed".
_UNNAMED = np.array([0.75, 0.75, 0.75, 1.0])


def _named_colours(layer: Any) -> dict[int, tuple[str, np.ndarray]]:
    """Value -> (name, RGBA shown) for the labels ``layer``'s features name."""
    features = layer.features
    if "index" not in features or "name" not in features:
        return {}
    named = {
        int(v): str(n)
        for v, n in zip(features["index"], features["name"], strict=True)
        if int(v) != 0
    }
    if not named:
        return {}
    values = np.array(sorted(named), dtype=np.int64)
    rgba = np.asarray(layer.colormap.map(values))
    return {int(v): (named[int(v)], rgba[i]) for i, v in enumerate(values)}


def _distinct(used: list[np.ndarray]) -> np.ndarray:
    """Of napari's label colours, the one farthest (in RGB) from every colour in ``used``."""
    candidates = np.asarray(label_colormap(_CANDIDATES).colors)[1:]
    if not used:
        return candidates[0]
    taken = np.asarray(used)[:, :3]
    distance = np.linalg.norm(candidates[:, None, :3] - taken[None], axis=2).min(axis=1)
    return candidates[int(np.argmax(distance))]


def colour_label(layer: Any, value: int, name: str, layers: Any) -> np.ndarray:
    """Give label ``value`` (named ``name``) of ``layer`` its colour, and return it.

    The layer's other named labels keep the colours they show; the layer gets a direct
    colormap, in which values nobody has named yet show light grey.
    """
    from napari.layers import Labels

    shown = [
        c
        for la in layers
        if isinstance(la, Labels) and la is not layer
        for c in _named_colours(la).values()
    ]
    mine = {v: rgba for v, (_, rgba) in _named_colours(layer).items() if v != value}
    same_name = [rgba for n, rgba in shown if n == name]
    colour = (
        same_name[0] if same_name else _distinct([rgba for _, rgba in shown] + list(mine.values()))
    )
    layer.colormap = DirectLabelColormap(
        color_dict={None: _UNNAMED, 0: np.zeros(4), **mine, value: colour}
    )
    return colour
