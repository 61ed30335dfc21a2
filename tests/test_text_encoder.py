"""CLIP text ensembles through a small real open_clip model loaded by the store."""

from __future__ import annotations

import pytest
import torch

from napari_textseg.core.text_prompts import ensemble, parse_targets
from napari_textseg.engine.text.text_encoder import TextEncoder
from napari_textseg.models.loader import load_model
from tiny_models import TINY_CLIP_ARCH, save_tiny_clip, tiny_card


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    tiny_card("clip", TINY_CLIP_ARCH, "test_text_clip", "tiny_clip.bin")
    path = tmp_path_factory.mktemp("clip") / "tiny_clip.bin"
    save_tiny_clip(path)
    loaded = load_model("test_text_clip", path, device="cpu")
    return TextEncoder(loaded.model, "test_text_clip", TINY_CLIP_ARCH["model_name"])


def test_ensemble_embedding_is_the_normalised_mean_of_normalised_sentences(encoder):
    sentences = ["a liver", "the liver", "a photo of a liver"]
    rows = encoder.encode(sentences)
    assert torch.allclose(rows.norm(dim=1), torch.ones(3), atol=1e-5)
    expected = torch.nn.functional.normalize(rows.mean(dim=0), dim=0)
    assert torch.allclose(encoder.ensemble(sentences), expected, atol=1e-6)


def test_each_sentence_is_encoded_once_per_model(encoder):
    liver = parse_targets("liver")[0]
    before = encoder.encoded
    fg, bg = encoder.target(liver)
    first = encoder.encoded - before
    foreground, background = ensemble(liver)
    assert first == len(set(foreground + background)) == 204 + len(liver.organ.descriptions) + 272
    again_fg, again_bg = encoder.target(liver)
    assert encoder.encoded - before == first  # the second request came from the cache
    assert torch.equal(fg, again_fg) and torch.equal(bg, again_bg)
    assert not torch.allclose(fg, bg)  # foreground and background ensembles differ
