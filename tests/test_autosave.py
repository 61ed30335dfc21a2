"""Autosave: committed labels survive a crash, are offered back, and the folder stays bounded."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import data_file
from napari_textseg._napari.autosave import Autosaver
from napari_textseg.core.recovery import RecoveryStore, image_key


def test_store_keeps_one_copy_per_layer_and_prunes_old_images(tmp_path):
    store = RecoveryStore(tmp_path, max_images=2)
    labels = np.zeros((4, 8, 8), np.uint8)
    for step in range(3):  # three commits on one layer: one file, the latest
        labels[step, 1:3, 1:3] = step + 1
        store.save("scan_a", "organs", labels, {1: "liver"})
    (entry,) = store.entries("scan_a")
    assert np.array_equal(entry.load(), labels) and entry.names == {1: "liver"}
    for key in ("scan_b", "scan_c"):
        store.save(key, "labels", labels)
    assert store.entries("scan_a") == []  # the oldest image was dropped
    assert len(list(tmp_path.iterdir())) == 2
    tiny = RecoveryStore(tmp_path, max_bytes=1)
    tiny.save("scan_d", "labels", labels)
    assert [p.name for p in tmp_path.iterdir()] == [
        "scan_d"
    ]  # the budget never evicts the one being saved


def test_a_save_that_fails_at_the_names_keeps_the_previous_save_whole(tmp_path, monkeypatch):
    """All or nothing (issue 27): new labels beside old names would restore the wrong organ
    names."""
    import napari_textseg.core.recovery as recovery

    store = RecoveryStore(tmp_path)
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[1, 2:4, 2:4] = 1
    saved = store.save("scan", "organs", labels, {1: "liver"})
    before = {p.name: p.read_bytes() for p in saved.parent.iterdir()}

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recovery.json, "dumps", full)
    with pytest.raises(OSError, match="the disk is full"):
        store.save("scan", "organs", labels * 2, {2: "spleen"})
    assert {p.name: p.read_bytes() for p in saved.parent.iterdir()} == before


def test_key_tells_scans_apart():
    a = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)
    assert image_key("x.nii.gz", a) == image_key("x.nii.gz", a.copy())
    assert image_key("x.nii.gz", a) != image_key("x.nii.gz", a + 1)
    assert image_key("x.nii.gz", a) != image_key("y.nii.gz", a)


@pytest.mark.viewer
def test_reopening_the_image_offers_and_restores_its_labels(make_napari_viewer_proxy, monkeypatch):
    shown = []
    monkeypatch.setattr(
        "napari_textseg._napari.autosave.notification_manager.dispatch", shown.append
    )

    def offered():
        return [n for n in shown if "autosaved labels" in n.message]

    first = make_napari_viewer_proxy()
    (image,) = first.open(str(data_file("abdomen_ct.nii.gz")), plugin="napari-textseg")
    labels = first.add_labels(
        np.zeros(image.data.shape, np.uint16),
        name="tumours",
        scale=image.scale,
        units=image.units,
        features={"index": [0, 4], "name": ["background", "tumour"]},
    )
    labels.data[10:12, 40:50, 40:50] = 4
    saver = Autosaver(first)
    saver.save(labels, image).result()
    assert offered() == []  # nothing was saved when the image was first opened

    # "After a crash": a new viewer opens the same file.
    second = make_napari_viewer_proxy()
    Autosaver(second)  # listening before the image opens, as when a panel is already docked
    (again,) = second.open(str(data_file("abdomen_ct.nii.gz")), plugin="napari-textseg")
    (offer,) = offered()
    assert "tumours" in offer.message
    # The "Source:" line napari's popup reads while the manager emits it (issue 27).
    from napari.utils.events import EventEmitter

    sources = []
    emitter = EventEmitter(source=second, event_class=type(offer))
    emitter.connect(lambda event: sources.append(event.source))
    emitter(offer)
    assert sources == ["napari-textseg"]
    name, action = offer.actions[0]
    assert name == "Restore"
    action(offer)
    restored = second.layers["tumours"]
    assert np.array_equal(restored.data, labels.data)
    assert list(restored.features["name"]) == ["background", "tumour"]
    np.testing.assert_allclose(restored.scale, again.scale)


@pytest.mark.viewer
def test_a_failed_autosave_is_reported_and_the_layer_kept(make_napari_viewer_proxy, monkeypatch):
    from napari_textseg.core.errors import WriteError

    warnings = []
    monkeypatch.setattr("napari_textseg._napari.autosave.show_warning", warnings.append)
    viewer = make_napari_viewer_proxy()
    (image,) = viewer.open(str(data_file("abdomen_ct.nii.gz")), plugin="napari-textseg")
    labels = viewer.add_labels(
        np.ones(image.data.shape, np.uint8), name="organs", scale=image.scale, units=image.units
    )
    saver = Autosaver(viewer)

    def disk_full(*_args, **_kwargs):
        raise WriteError("cannot write organs.npz: the disk is full; no file was written")

    monkeypatch.setattr(saver.store, "save", disk_full)
    with pytest.raises(WriteError):
        saver.save(labels, image).result()
    saver.save(labels, image)
    assert "disk is full" in warnings[0] and labels.data.all()
