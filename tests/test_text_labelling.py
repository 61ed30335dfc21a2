"""Text labelling end to end: vocabulary -> CLIP -> SAM -> propagation -> one named label map.

The SAM is the committed phantom model (it segments phantoms); the CLIP is a small
open_clip ViT with random weights, so where CLIP points is arbitrary: these tests check
the plumbing a user relies on (names, values, non-overlap, cancel, caching, files), and
"text + click", where the click says where.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_textseg.cli import main
from napari_textseg.core.errors import InputError
from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.core.phantoms import ct_phantom
from napari_textseg.core.text_prompts import parse_targets
from napari_textseg.engine.interactive.session import SegmentationSession
from napari_textseg.engine.interactive.session_factory import make_slice_model
from napari_textseg.engine.text.clip_dense import DenseClip
from napari_textseg.engine.text.clip_sam import TextLabeller
from napari_textseg.engine.text.protocol import OrganResult, Progress, assign_values, merge_results
from napari_textseg.engine.text.text_encoder import TextEncoder
from napari_textseg.models.loader import load_model
from tiny_models import TINY_DENSE_CLIP_ARCH, save_tiny_clip, tiny_card

ORGAN = 2  # "organ 1" of phantom seed 2: the largest organ


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory):
    phantom = ct_phantom(2)
    image, labels = phantom.save(tmp_path_factory.mktemp("phantom"), "ct")
    return phantom, image


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    tiny_card("clip", TINY_DENSE_CLIP_ARCH, "test_dense_clip", "dense_clip.bin")
    path = tmp_path_factory.mktemp("clip") / "dense_clip.bin"
    save_tiny_clip(path, TINY_DENSE_CLIP_ARCH)
    return path


@pytest.fixture(scope="module")
def labeller(phantom_file, clip_file):
    phantom, image = phantom_file
    volume = read_volume(image)
    sam = load_model("phantom_sam", device="cpu")
    clip = load_model("test_dense_clip", clip_file, device="cpu")
    session = SegmentationSession(
        volume.data, volume.spacing, volume.modality, make_slice_model(sam.model, "sam", sam.device)
    )
    dense = DenseClip(clip.model)
    encoder = TextEncoder(clip.model, "test_dense_clip", TINY_DENSE_CLIP_ARCH["model_name"])
    return TextLabeller(session, raw=volume.data, clip=dense, encoder=encoder)


def _click(phantom, value):
    return np.array([phantom.centre_click(value)], dtype=float), np.array([1])


def _results(events):
    return [e for e in events if isinstance(e, OrganResult)]


def test_values_keep_the_names_already_in_a_layer():
    targets = parse_targets("liver, spleen, LK")
    assert assign_values(targets) == [1, 2, 3]
    assert assign_values(targets, {1: "background blob", 4: "Spleen"}) == [5, 4, 6]


def test_text_and_click_segments_the_clicked_organ_under_its_canonical_name(labeller, phantom_file):
    phantom, _ = phantom_file
    [target] = parse_targets("L kidney")
    events = list(labeller.run([target], [3], {target.name: _click(phantom, ORGAN)}))
    [result] = _results(events)
    assert result.target.name == "left kidney" and result.value == 3
    clicked = dice(result.mask, phantom.mask(ORGAN))
    others = [
        dice(result.mask, phantom.mask(o.value))
        for o in phantom.objects
        if o.parent == 0 and o.value != ORGAN
    ]
    assert clicked > max(others) + 0.2  # it is the clicked organ that was segmented
    assert 0 < result.confidence <= 1
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1].done == progress[-1].total


def test_overlapping_organs_are_resolved_by_confidence_into_one_map(labeller, phantom_file):
    phantom, _ = phantom_file
    targets = parse_targets("liver, spleen")
    clicks = {"liver": _click(phantom, ORGAN), "spleen": _click(phantom, ORGAN)}  # same place
    results = _results(labeller.run(targets, [1, 2], clicks))
    assert [r.target.name for r in results] == ["liver", "spleen"]
    overlap = results[0].mask & results[1].mask
    assert overlap.any()
    labels, confidence = merge_results(results, phantom.data.shape)
    winner = max(results, key=lambda r: r.confidence)
    assert (labels[overlap] == winner.value).all()
    assert set(np.unique(labels)) <= {0, 1, 2} and confidence == {
        r.value: r.confidence for r in results
    }


def test_text_alone_runs_clip_once_per_volume_and_each_sentence_once(labeller):
    targets = parse_targets("liver, spleen")
    calls = []
    embed = labeller.clip.embed
    labeller.clip.embed = lambda frames: calls.append(len(frames)) or embed(frames)
    try:
        first = labeller.locate(targets)
        encoded = labeller.encoder.encoded
        second = labeller.locate(targets)
    finally:
        labeller.clip.embed = embed
    assert len(calls) <= 1 and labeller.encoder.encoded == encoded  # all from the caches
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.points_zyx, b.points_zyx)
        assert a.slice in range(40) and (a.labels == 1).any()


def test_slice_embeddings_are_shared_between_organs(labeller, phantom_file):
    phantom, _ = phantom_file
    targets = parse_targets("liver, spleen")
    clicks = {t.name: _click(phantom, ORGAN) for t in targets}
    cache = labeller.session.cache
    cache.clear()
    _results(labeller.run(targets[:1], [1], {"liver": clicks["liver"]}))
    cache.wait()
    misses = cache.misses
    _results(labeller.run(targets[1:], [2], {"spleen": clicks["spleen"]}))
    cache.wait()
    assert cache.misses == misses  # the second organ encoded no slice again


def test_closing_the_run_keeps_finished_organs_and_drops_the_one_in_progress(
    labeller, phantom_file
):
    phantom, _ = phantom_file
    targets = parse_targets("liver, spleen")
    clicks = {t.name: _click(phantom, ORGAN) for t in targets}
    run = labeller.run(targets, [1, 2], clicks)
    finished = []
    for event in run:
        if isinstance(event, OrganResult):
            finished.append(event)
        elif finished and event.done >= 1:
            run.close()  # Cancel, part-way through the spleen
            break
    assert [r.target.name for r in finished] == ["liver"]


def test_clicks_for_a_name_that_is_not_a_target_are_refused(labeller, phantom_file):
    phantom, _ = phantom_file
    with pytest.raises(InputError, match="not a target"):
        list(labeller.run(parse_targets("liver"), [1], {"spleen": _click(phantom, ORGAN)}))


def test_dense_clip_maps_have_one_probability_per_patch(labeller):
    embeddings = labeller.clip.embed(labeller.session.frames[:2])
    classes = labeller.class_embeddings(parse_targets("liver, spleen"))
    probabilities = labeller.clip.probabilities(embeddings, classes)
    grid = labeller.clip.grid
    assert probabilities.shape == (2, 3, grid, grid)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(2, grid, grid))
    assert probabilities.std() > 0  # patches differ: the map is spatial, not one pooled vector


def test_label_command_writes_named_labels_on_the_source_grid(
    phantom_file, clip_file, tmp_path, capsys
):
    phantom, image = phantom_file
    (z, y, x), _ = _click(phantom, ORGAN)[0][0], None
    out = tmp_path / "organs.nii.gz"
    code = main(
        [
            "label",
            str(image),
            "--text",
            "liver, L kidney",
            "--point",
            f"liver:{z:g},{y:g},{x:g}",
            "--model",
            "phantom_sam",
            "--clip",
            "test_dense_clip",
            "--clip-checkpoint",
            str(clip_file),
            "--device",
            "cpu",
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    labels, source = read_volume(out), read_volume(image)
    assert labels.label_names == {1: "liver", 2: "left kidney"}
    assert labels.spatial_shape == source.spatial_shape
    np.testing.assert_allclose(labels.origin, source.origin, atol=1e-4)
    np.testing.assert_allclose(labels.spacing, source.spacing)
    assert dice(labels.data == 1, phantom.mask(ORGAN)) > 0.25


@pytest.mark.parametrize(
    "args, message",
    [
        (["--text", " , ;"], "at least one target"),
        (["--text", "x" * 500], "500 characters"),
        (["--text", "left kidney, LK"], "same target"),
        (["--text", "liver", "--point", "spleen:1,2,3"], "one of the --text targets"),
        (["--text", "liver", "--point", "liver:1,2,999"], "outside"),
        (["--text", "liver"], "need a CLIP model"),
    ],
)
def test_label_command_bad_input_is_one_line(phantom_file, tmp_path, capsys, args, message):
    _, image = phantom_file
    code = main(
        ["label", str(image), *args, "--model", "phantom_sam", "-o", str(tmp_path / "x.nii.gz")]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.nii.gz").exists()
