"""Background work for the panels: napari thread workers whose failures reach the panel
as one message instead of a "View Traceback" notification (and, in a script that never
calls ``napari.run()``, a re-raise in a Qt slot that aborts the process)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from napari.qt.threading import create_worker
from superqt.utils import FunctionWorker, GeneratorWorker

from napari_textseg.core.errors import NapariTextsegError

__all__ = ["error_message", "panel_worker"]

log = logging.getLogger("napari_textseg")

# What the user can act on from the message alone: bad input, a missing model, a full disk.
_EXPECTED = (NapariTextsegError, ValueError, OSError)


def error_message(err: BaseException) -> str:
    """One line for the panel; the traceback goes to the log (debug level when expected)."""
    expected = isinstance(err, _EXPECTED)
    log.log(logging.DEBUG if expected else logging.ERROR, "background work failed", exc_info=err)
    if expected:
        return str(err)
    return f"unexpected {type(err).__name__}: {err} (the traceback is in the log; please report it)"


class ClosingGeneratorWorker(GeneratorWorker):
    """A generator worker that closes its generator when it stops, on its own thread.

    superqt's worker only stops sending to an aborted generator: it stays suspended, and
    the ``with``/``finally`` blocks it is inside (e.g. a propagation holding the encoder for
    the user) would run at some later garbage collection, or never. A precompute waiting
    for that encoder would then wait forever, and so would the interpreter's exit."""

    def work(self) -> Any:
        try:
            return super().work()
        finally:
            self._gen.close()  # GeneratorExit inside it: its cleanup runs now, here


def panel_worker(work: Callable[[], Any], on_error: Callable[[str], None]):
    """An unstarted napari worker for ``work`` (a function or a generator function) that
    hands a failure to ``on_error`` as :func:`error_message` and nowhere else."""
    worker_class = ClosingGeneratorWorker if inspect.isgeneratorfunction(work) else FunctionWorker
    worker = create_worker(
        work, _start_thread=False, _ignore_errors=True, _worker_class=worker_class
    )
    worker.errored.connect(lambda err: on_error(error_message(err)))
    return worker
