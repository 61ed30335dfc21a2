"""Whether napari can open a window here, checked before Qt is imported: without a
display Qt aborts the process with a message about a missing ``xcb-cursor0`` plug-in."""

from __future__ import annotations

import ctypes.util
import os
import sys

from napari_textseg.core.errors import NapariTextsegError

__all__ = ["NoDisplayError", "check_display"]

# Qt platforms that need no screen (tests and screenshots use "offscreen").
_HEADLESS_PLATFORMS = {"offscreen", "minimal", "vnc", "eglfs", "linuxfb"}


class NoDisplayError(NapariTextsegError, OSError):
    """napari cannot open a window on this machine."""


def check_display(command: str = "napari-textseg demo") -> None:
    """Raise :class:`NoDisplayError` with one line saying what to do, when a Linux machine
    has no display or lacks the one library Qt's xcb platform cannot start without."""
    if not sys.platform.startswith("linux"):
        return
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if platform in _HEADLESS_PLATFORMS:
        return
    if platform != "wayland" and not os.environ.get("DISPLAY"):
        if os.environ.get("WAYLAND_DISPLAY") and not platform:
            return
        raise NoDisplayError(
            "no display: DISPLAY is not set, so napari cannot open a window. On a machine "
            "without a "
            f"screen, run it under a virtual display: xvfb-run -a {command} (xvfb-run comes with "
            f"tools/system_packages.sh, or apt-get install xvfb xauth)"
        )
    if (
        platform in ("", "xcb")
        and os.environ.get("DISPLAY")
        and ctypes.util.find_library("xcb-cursor") is None
    ):
        raise NoDisplayError(
            "Qt cannot start on X11: the library libxcb-cursor0 is missing. Install it with "
            "bash tools/system_packages.sh (or apt-get install libxcb-cursor0)"
        )
