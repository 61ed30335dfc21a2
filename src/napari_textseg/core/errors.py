"""Exceptions that carry a message meant for the user, not a traceback."""


class NapariTextsegError(Exception):
    """Base class: the message alone tells the user what went wrong and what to do."""


class ReadError(NapariTextsegError, ValueError):
    """A file or folder cannot be read as a volume napari-textseg can work on."""


class WriteError(NapariTextsegError, OSError):
    """A labels file cannot be written; any existing file at the target is left intact."""


class InputError(NapariTextsegError, ValueError):
    """User input (text, prompts, options) that cannot be used as given."""


class InputWarning(UserWarning):
    """Something about the input the user should know while the work goes on (NaN voxels, ...).

    The command line prints it as one ``napari-textseg: warning: ...`` line; napari shows
    it as a notification.
    """
