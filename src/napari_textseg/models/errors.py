"""Errors of the model store and loaders, worded for the user."""

from napari_textseg.core.errors import NapariTextsegError


class ModelNotFoundError(NapariTextsegError, KeyError):
    """An unknown model id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OfflineError(NapariTextsegError, ConnectionError):
    """A checkpoint is not cached and cannot be downloaded."""


class CheckpointError(NapariTextsegError, ValueError):
    """A checkpoint file is missing, truncated, corrupt or does not match the architecture."""


class LicenseNotAcceptedError(NapariTextsegError, PermissionError):
    """A download needs the user to accept the model's licence first."""


class UnsupportedReleaseError(NapariTextsegError, ImportError):
    """An installed model package release that the plugin cannot run faithfully."""
