"""Slice embeddings computed once and kept on disk: a second session on the same image reads
them instead of encoding; a new window or other weights miss; a truncated entry is encoded
again; an unwritable or full cache folder costs one warning and nothing else; the least
recently used images go beyond the cap; ``cache list`` and ``cache clear``."""

import warnings

import numpy as np
import pytest
import torch

from napari_textseg.cli import main
from napari_textseg.core.errors import InputWarning
from napari_textseg.core.io import read_volume
from napari_textseg.engine.interactive.embedding_store import EmbeddingStore
from napari_textseg.engine.interactive.session_factory import (
    EmbeddingOptions,
    make_slice_model,
    open_session,
)
from napari_textseg.models.sam import build_sam
from tiny_models import TINY_SAM_ARCH


def _tiny_sam(seed: int = 0):
    torch.manual_seed(seed)
    return make_slice_model(build_sam(TINY_SAM_ARCH), "sam", torch.device("cpu"), {})


class Counting:
    """A slice model that counts its encoder calls."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, frame):
        self.calls += 1
        return self.model.encode(frame)


@pytest.fixture(scope="module")
def ct():
    from conftest import data_file

    return read_volume(data_file("abdomen_ct.nii.gz"))


_OPEN = []


@pytest.fixture(autouse=True)
def close_sessions():
    """No neighbour prefetch may outlive its test (it would run beside the next test's work)."""
    yield
    while _OPEN:
        _OPEN.pop().cache.close(wait=True)


def _open(ct, model, store, window="soft_tissue"):
    session = open_session(
        ct.data, ct.spacing, ct.modality, model, EmbeddingOptions(store=store), "ct", window=window
    )
    _OPEN.append(session)
    return session


def _encode_all(session):
    for _ in session.precompute_steps(session.n_slices // 2):
        pass


def _decode(session, z=15):
    checked = session.check_prompts(np.array([[z, 50.0, 60.0]]), np.array([1]), None)
    return session.segment_slice(z, checked)


def test_a_second_session_reads_every_slice_from_the_disk_and_masks_are_unchanged(ct, tmp_path):
    store = EmbeddingStore(tmp_path / "cache")
    first = Counting(_tiny_sam())
    session = _open(ct, first, store)
    _encode_all(session)
    assert first.calls == 30 and len(list((tmp_path / "cache").glob("*/z*.npz"))) == 30
    expected = _decode(session)

    again = Counting(_tiny_sam())  # a new process would build the model again: same weights
    later = _open(ct, again, store)
    _encode_all(later)
    assert again.calls == 0 and store.hits == 30
    np.testing.assert_array_equal(_decode(later), expected)
    memory_only = _open(ct, _tiny_sam(), None)
    np.testing.assert_array_equal(_decode(memory_only), expected)  # float32 on disk: the same masks


def test_background_encoding_waits_for_the_user_without_blocking_and_stops_when_closed(
    ct, tmp_path
):
    """A precompute yields while a prompt or propagation holds the encoder, so a Cancel (or the
    viewer closing) stops it then; a propagation stopped half-way gives the encoder back."""
    session = _open(ct, Counting(_tiny_sam()), EmbeddingStore(tmp_path))
    session.set_prompts(session.check_prompts(np.array([[15, 50.0, 60.0]]), np.array([1]), None))
    propagation = session.propagate_steps()
    next(propagation)  # suspended half-way, as a worker the user cancelled leaves it
    background = session.precompute_steps(15)
    cached = len(session.cache)
    waiting = [next(background) for _ in range(3)]  # yields instead of blocking on the encoder
    assert [done for done, _ in waiting] == [0, 0, 0] and len(session.cache) == cached
    background.close()  # Cancel between two tries
    propagation.close()  # what our worker does when it stops: the encoder is free again
    _encode_all(session)
    assert len(session.cache) == 30


def test_another_window_or_other_weights_are_not_served_from_the_cache(ct, tmp_path):
    store = EmbeddingStore(tmp_path)
    _encode_all(_open(ct, _tiny_sam(), store))
    for model, window in (
        (Counting(_tiny_sam()), "bone"),
        (Counting(_tiny_sam(seed=1)), "soft_tissue"),
    ):
        _encode_all(_open(ct, model, store, window))
        assert model.calls == 30, window
    assert len(store.images()) == 3


def test_a_truncated_entry_is_encoded_again(ct, tmp_path):
    store = EmbeddingStore(tmp_path)
    session = _open(ct, _tiny_sam(), store)
    _encode_all(session)
    expected = _decode(session)
    entry = next(tmp_path.glob("*/z00015.npz"))
    entry.write_bytes(
        entry.read_bytes()[: entry.stat().st_size // 2]
    )  # a crash mid-write, a full disk
    model = Counting(_tiny_sam())
    later = _open(ct, model, store)
    np.testing.assert_array_equal(_decode(later), expected)
    assert model.calls == 1  # that slice alone, encoded again
    with np.load(entry) as data:  # and rewritten whole
        assert data.files


@pytest.mark.parametrize("how", ["a file where the folder should be", "disk full"])
def test_an_unwritable_cache_warns_once_and_the_work_goes_on(ct, tmp_path, monkeypatch, how):
    if how == "disk full":
        root = tmp_path / "cache"

        def full(*_args, **_kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(np, "savez", full)
    else:
        (tmp_path / "blocked").write_text("not a folder")
        root = tmp_path / "blocked" / "cache"
    session = _open(ct, _tiny_sam(), EmbeddingStore(root))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _encode_all(session)
        mask = _decode(session)
    lines = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    assert len(lines) == 1 and "going on without it" in lines[0], lines
    np.testing.assert_array_equal(mask, _decode(_open(ct, _tiny_sam(), None)))
    assert not [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and (".partial" in p.name or p.name.startswith(".tmp"))
    ]
    assert not list(tmp_path.rglob("*.npz"))


def test_the_least_recently_used_images_go_beyond_the_cap(ct, tmp_path):
    store = EmbeddingStore(
        tmp_path, cap_bytes=1
    )  # every image is over the cap: only the newest stays
    _encode_all(_open(ct, _tiny_sam(), store, "soft_tissue"))
    _encode_all(_open(ct, _tiny_sam(), store, "bone"))
    images = store.images()
    assert len(images) == 1 and images[0].meta["window"] == "bone"


def test_cache_list_and_clear_on_the_command_line(ct, tmp_path, capsys):
    store = EmbeddingStore(tmp_path)
    _encode_all(_open(ct, _tiny_sam(), store))
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 image" in out and "ct  30x101x122" in out and "30 slices" in out and "sam-sam-" in out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "MB freed" in capsys.readouterr().out and store.images() == []
