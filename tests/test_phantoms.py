"""The phantom generator: deterministic, lesions inside their organs, exact on-disk round trip."""

import numpy as np

from napari_textseg.core.io import read_volume
from napari_textseg.core.phantoms import ct_phantom, nuclei_phantom


def test_same_seed_same_phantom_other_seed_other_phantom():
    a, b, c = ct_phantom(7), ct_phantom(7), ct_phantom(8)
    assert np.array_equal(a.data, b.data) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.data, c.data)


def test_ct_objects_are_distinct_and_lesions_lie_in_their_organ():
    phantom = ct_phantom(3)
    assert phantom.data.dtype == np.int16 and phantom.modality == "CT"
    organs = [o for o in phantom.objects if o.name.startswith("organ")]
    assert len(organs) >= 2
    for obj in phantom.objects:
        assert (phantom.labels == obj.value).any()
        if obj.parent:
            lesion = phantom.labels == obj.value
            assert phantom.mask(obj.parent)[lesion].all()
            # a lesion differs in HU from the rest of its organ
            rest = phantom.labels == obj.parent
            assert abs(phantom.data[lesion].mean() - phantom.data[rest].mean()) > 25


def test_nuclei_do_not_touch_and_are_brighter_than_the_background():
    phantom = nuclei_phantom(3)
    assert phantom.data.dtype == np.uint16 and len(phantom.objects) >= 5
    assert phantom.data[phantom.labels > 0].mean() > 2 * phantom.data[phantom.labels == 0].mean()


def test_saved_phantom_reads_back_exactly_with_names(tmp_path):
    for phantom in (ct_phantom(2), nuclei_phantom(2)):
        image, labels = phantom.save(tmp_path, phantom.modality)
        volume, label_volume = read_volume(image), read_volume(labels)
        assert np.array_equal(volume.data, phantom.data)
        assert np.allclose(volume.spacing, phantom.spacing)
        assert volume.modality == phantom.modality
        assert np.array_equal(label_volume.data, phantom.labels)
        assert label_volume.label_names == {o.value: o.name for o in phantom.objects}
