"""The ``napari-textseg`` command: one module per command group.

Subcommands
-----------
(none)                  open napari with the TextSeg panel
view FILE...            open files (NIfTI, TIFF, DICOM folder) in napari with the panel
demo [--phantom]        open the sample abdominal CT (or a synthetic phantom with the
                        phantom SAM loaded) with the panel
phantom -o DIR          write a synthetic CT (or nuclei) phantom and its reference labels
info FILE               shape, spacing, orientation, modality and intensity range
segment IMAGE ...       box- or click-prompted 3D segmentation, written with the source geometry
label IMAGE --text ...  text-prompted organ labelling: one named, non-overlapping label map
batch SOURCE ... -o DIR  label a cohort (manifest CSV or glob) on Dask: resumable, per-case errors
evaluate PRED REF       Dice, IoU, HD95 and NSD per label (or instance F1) against a reference
volumes LABELS          volume of every label (mL), optionally as CSV
export-seg LABELS --source DICOM_DIR -o OUT.dcm
                        a DICOM-SEG referencing the series the labels were drawn on
export-nnunet --case IMAGE LABELS ... -o ROOT --id N --name NAME
                        an nnU-Net v2 raw dataset (imagesTr, labelsTr, dataset.json)
models list             the model cards, and which checkpoints are downloaded
models download ID      fetch, verify and cache a checkpoint
models path [ID]        the cache folder, or where ID's checkpoint lives
models verify ID        build the architecture and load the checkpoint strictly

Every subcommand exits non-zero with a one-line ``napari-textseg: error: ...``: 2 for bad
input (the message names the file and the cause), 1 for anything unexpected; ``--debug``
shows the traceback. Without a display, the viewer commands say so and name ``xvfb-run``.

``parser`` builds the arguments, ``checks`` refuses what is cheap to refuse, and each
command's module is imported only when that command runs.
"""

from __future__ import annotations

import importlib
import shlex
import sys
import warnings
from collections.abc import Sequence

from napari_textseg.cli._common import count as _count  # noqa: F401  (the tests check the wording)
from napari_textseg.cli._common import need_display, print_warning
from napari_textseg.cli.checks import check_early
from napari_textseg.cli.parser import build_parser as _parser
from napari_textseg.core.errors import NapariTextsegError

__all__ = ["main"]


def _run(args) -> int:
    if args.command in (None, "demo"):
        need_display(args)
    if args.command is None:
        from napari_textseg.cli.viewer import open_viewer

        return open_viewer()
    check_early(args)
    module, function = args.handler.split(":")
    return int(getattr(importlib.import_module(f"napari_textseg.cli.{module}"), function)(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-textseg`` console script.

    Every failure ends as one ``napari-textseg: error: ...`` line naming the cause (exit
    2 for bad input, 1 for anything unexpected); ``--debug`` shows the traceback instead.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["napari-textseg", *(sys.argv[1:] if argv is None else argv)])
    try:
        with warnings.catch_warnings():
            warnings.showwarning = print_warning
            return _run(args)
    except KeyboardInterrupt:
        print("napari-textseg: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the promise: one line, never a traceback, unless --debug
        if args.debug:
            raise
        expected = isinstance(err, (NapariTextsegError, ValueError, OSError))
        message = str(err) if expected else f"unexpected {type(err).__name__}: {err}"
        hint = (
            "" if expected else " (run again with --debug for the traceback, and please report it)"
        )
        print(f"napari-textseg: error: {message}{hint}", file=sys.stderr)
        return 2 if expected else 1
