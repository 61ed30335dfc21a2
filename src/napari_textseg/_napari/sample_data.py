"""npe2 sample data: the shipped CT (with named organ labels), MRI and nuclei stack, and
a synthetic phantom CT for trying the phantom models offline."""

from __future__ import annotations

import numpy as np

from napari_textseg._napari.layers import LayerData, volume_to_layer_data
from napari_textseg.core.io import read_volume
from napari_textseg.data import sample_path

__all__ = ["abdomen_ct", "abdomen_mr", "nuclei_3d", "phantom_ct"]


def _load(*keys: str) -> list[LayerData]:
    return [volume_to_layer_data(read_volume(sample_path(key))) for key in keys]


def abdomen_ct() -> list[LayerData]:
    """Abdominal CT (soft-tissue window) and its named multi-organ label map."""
    return _load("abdomen_ct", "abdomen_ct_organs")


def abdomen_mr() -> list[LayerData]:
    """Abdominal MRI stored in LPS orientation."""
    return _load("abdomen_mr")


def nuclei_3d() -> list[LayerData]:
    """Fluorescence nuclei stack and its instance labels."""
    return _load("nuclei_3d", "nuclei_3d_labels")


def phantom_ct() -> list[LayerData]:
    """A synthetic CT phantom (organs and lesions, named labels), written to NIfTI and read
    back, as a scanner's file would be; the files are removed once read (``napari-textseg
    phantom`` writes them where you want them). Pair it with the phantom models."""
    import tempfile

    from napari_textseg.core.phantoms import ct_phantom

    with tempfile.TemporaryDirectory(prefix="napari-textseg-phantom-") as folder:
        image, labels = ct_phantom(seed=1).save(folder, "phantom_ct")
        volumes = [read_volume(image), read_volume(labels)]
        for volume in volumes:
            volume.data = np.ascontiguousarray(volume.data)  # in memory before the files go
    return [volume_to_layer_data(volume) for volume in volumes]
