"""The label-names sidecar: ``<name>.labels.json`` next to a labels file.

Format (the same as the shared sample data's, plus optional colours)::

    {"labels": {"1": "spleen", "5": "liver"},
     "colors": {"1": "#dc0000ff", "5": "#00ff00ff"},
     "source": "..."}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from napari_textseg.core.errors import ReadError
from napari_textseg.core.io.atomic import atomic_target, split_suffix

__all__ = ["read_sidecar", "sidecar_path", "write_sidecar"]

Rgba = tuple[float, float, float, float]


def sidecar_path(path: str | os.PathLike) -> Path:
    """``dir/name.nii.gz`` -> ``dir/name.labels.json``."""
    path = Path(path)
    stem, _ = split_suffix(path)
    return path.with_name(f"{stem}.labels.json")


def _to_hex(rgba: Rgba) -> str:
    values = np.clip(np.round(np.asarray(rgba, dtype=float) * 255), 0, 255).astype(int)
    return "#" + "".join(f"{v:02x}" for v in values)


def _from_hex(text: str) -> Rgba:
    text = text.lstrip("#")
    if len(text) == 6:
        text += "ff"
    if len(text) != 8:
        raise ValueError(f"not an #rrggbb[aa] colour: {text!r}")
    r, g, b, a = (int(text[i : i + 2], 16) / 255 for i in range(0, 8, 2))
    return (r, g, b, a)


def read_sidecar(path: str | os.PathLike) -> tuple[dict[int, str], dict[int, Rgba]]:
    """Names and colours from the sidecar of ``path``; empty dicts if there is none."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}, {}
    try:
        content = json.loads(side.read_text(encoding="utf-8"))
        names = {int(k): str(v) for k, v in content.get("labels", {}).items()}
        colors = {int(k): _from_hex(v) for k, v in content.get("colors", {}).items()}
    except (ValueError, AttributeError, TypeError) as err:
        raise ReadError(f"{side}: not a valid label-names file ({err})") from err
    return names, colors


def write_sidecar(
    path: str | os.PathLike,
    names: dict[int, str],
    colors: dict[int, Rgba] | None = None,
    source: str | None = None,
) -> Path:
    """Write the sidecar of ``path`` atomically and return its path."""
    side = sidecar_path(path)
    content: dict[str, object] = {
        "labels": {str(int(k)): str(v) for k, v in sorted(names.items())},
    }
    if colors:
        content["colors"] = {str(int(k)): _to_hex(v) for k, v in sorted(colors.items())}
    if source:
        content["source"] = source
    with atomic_target(side) as tmp:
        tmp.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return side
