"""Small helpers shared by the dock widgets."""

from __future__ import annotations

from collections.abc import Callable

from napari.utils.notifications import show_error

from napari_textseg.core.errors import NapariTextsegError


def safely(action: Callable[[], object]) -> Callable[..., None]:
    """Run ``action``; a user error becomes a notification, not a traceback."""

    def run(*_args: object) -> None:
        try:
            action()
        except (NapariTextsegError, ValueError, OSError) as err:
            show_error(str(err))

    return run
