"""Text targets typed by the user, and the CLIP prompt ensembles built from them.

The ensembles follow TAGS (methods.md section 1): 34 templates x 6 foreground states
= 204 sentences and 34 x 8 background states = 272 sentences per name. Vocabulary
descriptions (CRISP-SAM2) are added to the foreground set.

TAGS' dual ensemble tells a diseased organ from a healthy one, which is what a lesion
search inside an organ needs. Finding the organ itself is a different contrast: the
organ against everything else in the body. :func:`object_ensemble` puts the same 34
templates around the bare name (plus the descriptions), and :data:`BACKGROUND_CONCEPTS`
names what the rest of a slice shows.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from napari_textseg.core.errors import InputError
from napari_textseg.core.vocabulary import Organ, lookup

__all__ = [
    "BACKGROUND_STATES",
    "FOREGROUND_STATES",
    "MAX_TARGET_CHARS",
    "TEMPLATES",
    "BACKGROUND_CONCEPTS",
    "TextTarget",
    "background_ensemble",
    "ensemble",
    "object_ensemble",
    "parse_targets",
]

MAX_TARGET_CHARS = 100

TEMPLATES: tuple[str, ...] = (
    *(f"This is {a} {{}} in the scene." for a in ("one", "a", "the")),
    *(f"There is {a} {{}} in the scene." for a in ("a", "the")),
    *(f"A 3D photo of {a} {{}}." for a in ("one", "a", "the")),
    *(
        f"A 3D photo of {a} {adj} {{}}."
        for adj in ("large", "small", "rotated")
        for a in ("a", "the")
    ),
    *(
        f"A {adj} 3D photo of {a} {{}}."
        for adj in (
            "flipped",
            "bright",
            "dark",
            "good",
            "bad",
            "corrupted",
            "blurry",
            "low-resolution",
            "close-up",
            "cropped",
        )
        for a in ("a", "the")
    ),
)
FOREGROUND_STATES: tuple[str, ...] = (
    "diseased {}",
    "anomalous {}",
    "{} with flaw",
    "{} with illness",
    "{} with lesion",
    "{} with tumor",
)
BACKGROUND_STATES: tuple[str, ...] = (
    "{}",
    "healthy {}",
    "flawless {}",
    "perfect {}",
    "{} without flaw",
    "{} without illness",
    "{} without lesion",
    "{} without tumor",
)

BACKGROUND_CONCEPTS: tuple[str, ...] = (
    "background",
    "air",
    "bone",
    "fat",
    "muscle",
    "soft tissue",
    "table",
    "noise",
)


@dataclass(frozen=True)
class TextTarget:
    """One target: what was typed, the name used for the label, and its vocabulary entry."""

    typed: str
    name: str
    organ: Organ | None

    @property
    def known(self) -> bool:
        return self.organ is not None


def parse_targets(text: str) -> list[TextTarget]:
    """Split "liver, spleen; L kidney" (commas, semicolons or lines) into targets.

    Raises
    ------
    InputError
        No target (empty, or only separators); a target over ``MAX_TARGET_CHARS``
        characters (CLIP reads 77 tokens: a name or short phrase is wanted); the same
        organ named twice (under any synonym).
    """
    parts = [unicodedata.normalize("NFKC", p).strip() for p in re.split(r"[,;\n]+", text or "")]
    parts = [p for p in parts if p]
    if not parts:
        raise InputError("type at least one target, e.g. 'liver, spleen, left kidney'")
    targets: list[TextTarget] = []
    seen: dict[str, str] = {}
    for part in parts:
        if len(part) > MAX_TARGET_CHARS:
            raise InputError(
                f"target {part[:30]!r}... is {len(part)} characters; name an organ or a short "
                f"phrase of at most {MAX_TARGET_CHARS} characters (CLIP reads only 77 tokens)"
            )
        organ = lookup(part)
        name = organ.name if organ else " ".join(part.split())
        key = name.casefold()
        if key in seen:
            raise InputError(
                f"{part!r} names the same target as {seen[key]!r}; give each target once"
            )
        seen[key] = part
        targets.append(TextTarget(part, name, organ))
    return targets


def check_known(targets: list[TextTarget], flag: str = "--allow-any-name") -> None:
    """Refuse a target the organ vocabulary does not know, with the organs it may mean:
    "kidney" names two ("left kidney, right kidney"), "livr" is a typo of "liver". ``flag``
    is how the caller lets free text through (CLIP reads any words)."""
    from napari_textseg.core.vocabulary import ORGANS, normalise

    for target in targets:
        if target.known:
            continue
        typed = normalise(target.typed)
        sided = [
            o.name
            for o in ORGANS
            if o.name.split()[0] in ("left", "right")
            and normalise(o.name).split(maxsplit=1)[1] == typed
        ]
        if sided:
            raise InputError(
                f"{target.typed!r} names {len(sided)} organs: {', '.join(sided)}; type the one you "
                f"mean (or both), or {flag} to label {target.typed!r} as typed"
            )
        spelled = {
            normalise(s): o.name
            for o in ORGANS
            for s in (o.name, o.totalseg, *o.synonyms)
            if len(s) > 3
        }
        close = list(
            dict.fromkeys(
                spelled[k]
                for k in difflib.get_close_matches(typed, list(spelled), n=5, cutoff=0.75)
            )
        )[:3]
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise InputError(
            f"unknown organ {target.typed!r}: {hint}Give an organ of the vocabulary "
            f"(docs/text.md), or {flag} to label free text as typed"
        )


def ensemble(target: TextTarget, *, descriptions: bool = True) -> tuple[list[str], list[str]]:
    """Foreground and background sentences for one target.

    Foreground: 34 templates x 6 states (204), plus the vocabulary's descriptions;
    background: 34 x 8 (272).
    """
    foreground = [t.format(s.format(target.name)) for s in FOREGROUND_STATES for t in TEMPLATES]
    background = [t.format(s.format(target.name)) for s in BACKGROUND_STATES for t in TEMPLATES]
    if descriptions and target.organ is not None:
        foreground += list(target.organ.descriptions)
    return foreground, background


def object_ensemble(target: TextTarget, *, descriptions: bool = True) -> list[str]:
    """The object itself: 34 templates around its name, plus the vocabulary's descriptions."""
    sentences = [t.format(target.name) for t in TEMPLATES]
    if descriptions and target.organ is not None:
        sentences += list(target.organ.descriptions)
    return sentences


def background_ensemble() -> list[str]:
    """What is not a target: 34 templates x the :data:`BACKGROUND_CONCEPTS`."""
    return [t.format(c) for c in BACKGROUND_CONCEPTS for t in TEMPLATES]
