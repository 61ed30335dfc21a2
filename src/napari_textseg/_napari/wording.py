"""How the panels' messages name what the user can do: a panel's file field and its
Download button, never a command-line flag."""

from __future__ import annotations

from napari_textseg.models.store import Wording

__all__ = ["panel_wording"]


def panel_wording(file_field: str) -> Wording:
    """Messages for a panel whose local-file field is called ``file_field``."""
    return Wording(
        local_file=f"choose a local file in the {file_field} field",
        download="press Download (it shows the licence first)",
        accept="press Download, which shows the licence to accept",
    )
