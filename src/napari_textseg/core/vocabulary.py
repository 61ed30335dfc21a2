"""Organ vocabulary: canonical names, synonyms and abbreviations, and short descriptions.

Canonical names are plain English ("left kidney"); each entry also knows its
TotalSegmentator class name ("kidney_left"), so label maps from that tool and from
this plugin use the same words. The descriptions (position, shape, size) enrich text
prompts, after CRISP-SAM2 (methods.md section 2). A word that is not in the vocabulary
still works: it is used as free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ORGANS", "Organ", "lookup", "normalise"]


@dataclass(frozen=True)
class Organ:
    """One vocabulary entry."""

    name: str
    totalseg: str
    synonyms: tuple[str, ...] = ()
    descriptions: tuple[str, ...] = field(default_factory=tuple)
    hu_range: tuple[float, float] | None = None  # typical contrast-enhanced CT, a soft prior


ORGANS: tuple[Organ, ...] = (
    Organ(
        "liver",
        "liver",
        ("hepar", "liv"),
        (
            "The liver is the largest solid organ, in the right upper abdomen under the diaphragm.",
            "It is a large wedge-shaped organ with a smooth convex surface.",
            "It spans most of the right upper quadrant and reaches across the midline.",
        ),
        (40, 160),
    ),
    Organ(
        "spleen",
        "spleen",
        ("spl", "lien"),
        (
            "The spleen lies in the left upper abdomen, behind the stomach and under the ribs.",
            "It is a crescent-shaped solid organ about the size of a fist.",
        ),
        (40, 160),
    ),
    Organ(
        "left kidney",
        "kidney_left",
        ("lk", "l kidney", "lt kidney", "sinistral kidney"),
        (
            "The left kidney is a bean-shaped organ in the left retroperitoneum beside the spine.",
            "It lies slightly higher than the right kidney, behind the spleen and pancreatic tail.",
        ),
        (30, 250),
    ),
    Organ(
        "right kidney",
        "kidney_right",
        ("rk", "r kidney", "rt kidney", "dextral kidney"),
        (
            "The right kidney is a bean-shaped organ in the right retroperitoneum beside the "
            "spine.",
            "It lies slightly lower than the left kidney, below the liver.",
        ),
        (30, 250),
    ),
    Organ(
        "pancreas",
        "pancreas",
        ("panc",),
        (
            "The pancreas is a thin elongated gland lying across the upper abdomen behind the "
            "stomach.",
            "Its head sits in the curve of the duodenum and its tail reaches the spleen.",
        ),
        (20, 150),
    ),
    Organ(
        "stomach",
        "stomach",
        ("gaster", "sto"),
        (
            "The stomach is a J-shaped hollow organ in the left upper abdomen below the diaphragm.",
            "It may contain air, fluid or food and its wall is a few millimetres thick.",
        ),
        None,
    ),
    Organ(
        "gallbladder",
        "gallbladder",
        ("gb", "gall bladder", "cholecyst"),
        (
            "The gallbladder is a small pear-shaped sac under the liver's right lobe.",
            "It is filled with fluid and appears darker than the liver.",
        ),
        (-10, 40),
    ),
    Organ(
        "esophagus",
        "esophagus",
        ("oesophagus", "eso", "gullet"),
        (
            "The esophagus is a muscular tube running down the chest behind the trachea and heart.",
            "It is a small round structure in front of the spine on axial slices.",
        ),
        None,
    ),
    Organ(
        "aorta",
        "aorta",
        ("ao",),
        (
            "The aorta is the largest artery, a round tube running down in front of the spine.",
            "On contrast CT it is bright and circular on axial slices.",
        ),
        (100, 400),
    ),
    Organ(
        "inferior vena cava",
        "inferior_vena_cava",
        ("ivc", "vena cava"),
        (
            "The inferior vena cava is a large vein to the right of the aorta in front of the "
            "spine.",
            "It is an oval tube on axial slices, running up to the right atrium.",
        ),
        (60, 250),
    ),
    Organ(
        "portal vein and splenic vein",
        "portal_vein_and_splenic_vein",
        ("pv", "portal vein", "splenic vein"),
        (
            "The portal vein carries blood into the liver; the splenic vein joins it behind the "
            "pancreas.",
        ),
        (80, 250),
    ),
    Organ(
        "left adrenal gland",
        "adrenal_gland_left",
        ("lag", "l adrenal", "left adrenal"),
        ("The left adrenal gland is a small thin gland above and in front of the left kidney.",),
        None,
    ),
    Organ(
        "right adrenal gland",
        "adrenal_gland_right",
        ("rag", "r adrenal", "right adrenal"),
        (
            "The right adrenal gland is a small thin gland above the right kidney, behind the "
            "vena cava.",
        ),
        None,
    ),
    Organ(
        "duodenum",
        "duodenum",
        ("duo",),
        (
            "The duodenum is the first C-shaped part of the small bowel, curving around the "
            "pancreatic head.",
        ),
        None,
    ),
    Organ(
        "small bowel",
        "small_bowel",
        ("small intestine", "jejunum", "ileum", "sb"),
        ("The small bowel is a long folded tube filling the central and lower abdomen.",),
        None,
    ),
    Organ(
        "colon",
        "colon",
        ("large bowel", "large intestine"),
        (
            "The colon frames the abdomen: up the right side, across the top and down the left "
            "side.",
            "It often contains air and stool.",
        ),
        None,
    ),
    Organ(
        "urinary bladder",
        "urinary_bladder",
        ("bladder", "ub"),
        ("The urinary bladder is a round fluid-filled sac in the pelvis behind the pubic bone.",),
        (-10, 30),
    ),
    Organ(
        "prostate",
        "prostate",
        (),
        ("The prostate is a walnut-sized gland below the bladder in the male pelvis.",),
        None,
    ),
    Organ(
        "heart",
        "heart",
        ("cor",),
        (
            "The heart is a large muscular organ in the middle of the chest above the diaphragm.",
            "It lies between the lungs, slightly to the left.",
        ),
        None,
    ),
    Organ(
        "left lung",
        "lung_left",
        ("l lung", "lt lung"),
        ("The left lung is a large air-filled organ in the left chest; it appears black on CT.",),
        (-1000, -500),
    ),
    Organ(
        "right lung",
        "lung_right",
        ("r lung", "rt lung"),
        ("The right lung is a large air-filled organ in the right chest; it appears black on CT.",),
        (-1000, -500),
    ),
    Organ(
        "trachea",
        "trachea",
        ("windpipe",),
        (
            "The trachea is an air-filled tube in the neck and upper chest in front of the "
            "esophagus.",
        ),
        None,
    ),
    Organ(
        "thyroid gland",
        "thyroid_gland",
        ("thyroid",),
        (
            "The thyroid gland is a butterfly-shaped gland in the lower neck in front of the "
            "trachea.",
        ),
        None,
    ),
    Organ(
        "spinal cord",
        "spinal_cord",
        ("cord",),
        ("The spinal cord runs inside the spinal canal at the centre of the vertebrae.",),
        None,
    ),
)

_SIDES = {"l": "left", "lt": "left", "left": "left", "r": "right", "rt": "right", "right": "right"}


def normalise(text: str) -> str:
    """Lower case, underscores and hyphens as spaces, single spaces, sides spelled out,
    and a trailing side moved to the front ("kidney_left" -> "left kidney")."""
    words = re.sub(r"[_\-]+", " ", text.strip().lower()).split()
    if words and words[0] in _SIDES and len(words) > 1:
        words[0] = _SIDES[words[0]]
    if len(words) > 1 and words[-1] in ("left", "right"):
        words = [words[-1], *words[:-1]]
    return " ".join(words)


def _index() -> dict[str, Organ]:
    table: dict[str, Organ] = {}
    for organ in ORGANS:
        for key in (organ.name, organ.totalseg, *organ.synonyms):
            table[normalise(key)] = organ
            table[key.lower()] = organ
    return table


_INDEX = _index()


def lookup(text: str) -> Organ | None:
    """The vocabulary entry for ``text`` (any synonym, abbreviation or spelling), or None."""
    return _INDEX.get(text.strip().lower()) or _INDEX.get(normalise(text))
