"""What every command shares: counts, typed coordinates, the display check, one-line warnings."""

from __future__ import annotations

import argparse
import sys
import warnings

from napari_textseg.core.errors import InputWarning

__all__ = ["count", "coords", "need_display", "print_warning"]


_python_showwarning = warnings.showwarning


def count(n: int, noun: str) -> str:
    """``1 case``, ``2 cases``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def coords(text: str, n: int, what: str) -> tuple[int, ...]:
    from napari_textseg.engine.interactive.prompts import voxel_indices

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise ValueError(f"{what} {text!r} must be {n} comma-separated numbers")
    return voxel_indices(values, f"{what} {text}")


def need_display(args: argparse.Namespace) -> None:
    from napari_textseg.display import check_display

    check_display(args.command_line)


def print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings as one line, without the source path and code line Python adds."""
    if issubclass(category, InputWarning):
        print(f"napari-textseg: warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)
