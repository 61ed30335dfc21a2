"""Sample volumes and phantom-model checkpoints shipped with the package.

samples/NOTICE.md gives the samples' licences; models/README.md says how the phantom
models were trained.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["SAMPLES", "bundled_model_path", "sample_path"]

SAMPLES = {
    "abdomen_ct": "abdomen_ct.nii.gz",
    "abdomen_ct_organs": "abdomen_ct_organs.nii.gz",
    "abdomen_mr": "abdomen_mr.nii.gz",
    "nuclei_3d": "nuclei_3d.tif",
    "nuclei_3d_labels": "nuclei_3d_labels.tif",
}


def sample_path(key: str) -> Path:
    """Path of a shipped sample file, e.g. ``sample_path("abdomen_ct")``."""
    try:
        name = SAMPLES[key]
    except KeyError:
        raise KeyError(f"unknown sample {key!r}; known: {', '.join(SAMPLES)}") from None
    return Path(str(files("napari_textseg.data") / "samples" / name))


def bundled_model_path(filename: str) -> Path:
    """Path of a checkpoint shipped in the package (the phantom models)."""
    return Path(str(files("napari_textseg.data") / "models" / filename))
