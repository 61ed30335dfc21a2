"""Cheap refusals, before any heavy import: files that must exist, output suffixes, model
names, installed extras. A wrong argument then costs a fraction of a second, not the
seconds torch and napari take to import."""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

from napari_textseg.core.errors import InputError, ReadError

__all__ = ["check_early"]

# Arguments that name a file or folder that must exist, by command.
_INPUTS = (
    "file",
    "image",
    "prediction",
    "reference",
    "labels",
    "source",
    "checkpoint",
    "clip_checkpoint",
    "confine",
    "weights",
    "prompts",
    "scribble",
    "lasso",
)
_LABEL_OUTPUTS = ("segment", "label")


def _not_an_input(output: str, inputs: list[str]) -> None:
    """Refuse an output that would overwrite one of the command's own input files."""
    target = Path(output).expanduser().resolve()
    for path in inputs:
        if Path(path).expanduser().resolve() == target:
            raise InputError(
                f"-o {output} is an input of this command ({path}): writing there would replace "
                "it; choose another output file"
            )


def _check_prompt_syntax(args: argparse.Namespace) -> None:
    """--box, --point and --negative are numbers of the right count (label's NAME:numbers)."""
    from napari_textseg.cli._common import coords

    for flag, n in (("box", 5), ("point", 3), ("negative", 3)):
        for text in getattr(args, flag, None) or []:
            where = text.rpartition(":")[2] if args.command == "label" else text
            coords(where, n, f"--{flag}")


def check_early(args: argparse.Namespace) -> None:
    """Raise the error a later step would raise, for what can be checked without work."""
    paths: list = list(getattr(args, "files", None) or [])
    for name in _INPUTS:
        value = getattr(args, name, None)
        several = name in ("scribble", "lasso") and isinstance(value, list)  # (evaluate's
        paths += value if several else [value]  # --labels is a list of names, not files)
    for path in paths:
        if isinstance(path, str) and not Path(path).expanduser().exists():
            if args.command == "batch" and path == args.source and glob.has_magic(path):
                continue  # a glob of images: batch expands it (and says when it matches nothing)
            raise ReadError(f"{path}: no such file or folder")
    if args.command in _LABEL_OUTPUTS:
        from napari_textseg.core.io.export import check_label_target
        from napari_textseg.models.encoder_runtime import check_runtime

        check_label_target(args.output)
        _not_an_input(args.output, [p for p in paths if isinstance(p, str)])
        _check_prompt_syntax(args)
        check_runtime(args.runtime, args.precision)  # bf16 with --runtime torch: before any work
    if args.command in (*_LABEL_OUTPUTS, "batch") or getattr(args, "models_command", None) in (
        "download",
        "verify",
    ):
        from napari_textseg.models.registry import get_card

        for name in (getattr(args, "model", None), getattr(args, "clip", None)):
            if name:
                get_card(name)  # an unknown id lists the known ones
    backend = getattr(args, "backend", None)
    if backend:
        from napari_textseg.engine.text.backends import AUTO, not_installed

        missing = not_installed(backend) if backend != AUTO else None
        if missing:
            raise InputError(missing)
