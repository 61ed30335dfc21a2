"""Text targets and prompt ensembles: vocabulary lookup, the TAGS counts, clear errors."""

from __future__ import annotations

import json

import pytest

from napari_textseg.core.errors import InputError
from napari_textseg.core.text_prompts import (
    BACKGROUND_STATES,
    FOREGROUND_STATES,
    TEMPLATES,
    ensemble,
    parse_targets,
)
from napari_textseg.core.vocabulary import ORGANS, lookup
from napari_textseg.data import sample_path


@pytest.mark.parametrize(
    "typed", ["left kidney", "L kidney", "kidney_left", "LK", "Kidney-Left", "lt kidney"]
)
def test_synonyms_and_abbreviations_find_the_same_organ(typed):
    assert lookup(typed).name == "left kidney"


def test_every_totalsegmentator_name_in_the_sample_labels_is_understood():
    """The shipped CT's label names (TotalSegmentator classes) map onto vocabulary entries."""
    names = json.loads(
        sample_path("abdomen_ct_organs").with_name("abdomen_ct_organs.labels.json").read_text()
    )
    for name in (
        "spleen",
        "kidney_right",
        "kidney_left",
        "gallbladder",
        "liver",
        "stomach",
        "pancreas",
        "aorta",
        "esophagus",
        "duodenum",
        "urinary_bladder",
    ):
        assert name in names["labels"].values()
        assert lookup(name) is not None, name


def test_vocabulary_has_descriptions_for_the_common_abdominal_organs():
    for organ in ORGANS:
        assert organ.descriptions, organ.name
        assert lookup(organ.totalseg) is organ


def test_ensemble_counts_follow_tags():
    assert len(TEMPLATES) == 34 and len(set(TEMPLATES)) == 34
    assert len(FOREGROUND_STATES) == 6 and len(BACKGROUND_STATES) == 8
    free = parse_targets("hepatic cyst")[0]
    foreground, background = ensemble(free)
    assert len(foreground) == 204 and len(background) == 272
    assert "A blurry 3D photo of a hepatic cyst with tumor." in foreground
    assert "There is the healthy hepatic cyst in the scene." in background
    liver = parse_targets("liver")[0]
    with_text, _ = ensemble(liver)
    assert len(with_text) == 204 + len(liver.organ.descriptions)


def test_targets_are_split_on_commas_semicolons_and_lines_and_named_canonically():
    targets = parse_targets(" liver, spleen;\nL kidney,, Leber ")
    assert [t.name for t in targets] == ["liver", "spleen", "left kidney", "Leber"]
    assert [t.known for t in targets] == [True, True, True, False]  # free text still works


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "at least one target"),
        (" , ;\n ", "at least one target"),
        ("x" * 500, "500 characters"),
        ("LK, left kidney", "same target"),
        ("liver, Liver", "same target"),
    ],
)
def test_bad_text_gets_a_clear_error(text, message):
    with pytest.raises(InputError, match=message):
        parse_targets(text)


def test_non_ascii_names_are_kept_as_free_text():
    [target] = parse_targets("rein gauche \u00e9largi")
    assert target.name == "rein gauche \u00e9largi" and not target.known
