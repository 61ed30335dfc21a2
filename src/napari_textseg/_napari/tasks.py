"""The one task runner of a viewer: background work with progress, Cancel and errors, by section.

Every panel section (model, prompts, propagation, text, compare, download) starts its
work here. A task runs in a napari thread worker with a progress bar; its failure comes
back as one line for that section's status (never a traceback); Cancel stops only the
tasks of the section it belongs to. Callbacks run on the main thread; a task whose
image layer was removed meanwhile is dropped without writing anything.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from napari.utils import progress
from psygnal import Signal

from napari_textseg._napari.workers import panel_worker

if TYPE_CHECKING:
    import napari

__all__ = ["SECTIONS", "Task", "TaskRunner", "tasks_for"]

# The panel's sections, in the order the TextSeg panel shows them.
SECTIONS = ("model", "prompts", "propagation", "text", "compare")


@dataclass
class Task:
    """One running piece of work: which section started it and what it does."""

    section: str
    description: str
    worker: Any
    bar: Any
    layer: Any = None  # the image it reads; removing it stops the task
    background: bool = (
        False  # work the user did not ask for now (encoding ahead): only its section shows it
    )
    cancelled: bool = False  # Cancel was pressed: what it still yields is not shown


class TaskRunner:
    """Starts, tracks and cancels the background work of one viewer."""

    changed = Signal(str, str)  # (section, what runs there now, "" when nothing does)
    message = Signal(str, str)  # (section, one line for that section's status)

    def __init__(self, viewer: napari.Viewer):
        self._viewer = weakref.ref(viewer)
        self._tasks: list[Task] = []
        viewer.layers.events.removed.connect(self._on_layer_removed)

    def start(
        self,
        section: str,
        work: Callable[[], Any],
        done: Callable[[Any], None] | None,
        description: str,
        *,
        layer: Any = None,
        total: int = 0,
        on_yield: Callable[[Any, Any], tuple[int, int] | None] | None = None,
        on_error: Callable[[str], None] | None = None,
        background: bool = False,
    ):
        """Run ``work`` (a function or a generator function) for ``section``.

        ``done`` gets its result on the main thread. A generator yields ``(done, total)``
        for the progress bar, or events that ``on_yield(event, bar)`` turns into that (or
        None). A failure goes to ``on_error`` and, as ``error: ...``, to the section's
        status line. A ``background`` task's working line shows in its own section only.
        """
        if section not in SECTIONS:
            raise ValueError(f"unknown section {section!r}")

        def failed(text: str) -> None:
            if on_error is not None:
                on_error(text)
            self.message.emit(section, f"error: {text}")

        worker = panel_worker(work, failed)
        task = Task(
            section,
            description,
            worker,
            progress(total=total or 0, desc=description),
            layer,
            background,
        )
        self._tasks.append(task)
        self.changed.emit(section, description)

        def finish() -> None:
            if task in self._tasks:
                task.bar.close()
                self._tasks.remove(task)
                self.changed.emit(section, self.activity(section))

        def returned(value: Any) -> None:
            finish()  # idle before `done` runs, so it (and what it signals) may start new work
            if done is not None and (task.layer is None or self._layer_present(task.layer)):
                done(value)  # (a task whose image is gone has nothing to write to)

        def advance(step: Any) -> None:
            if (
                task.cancelled
            ):  # a step in flight when Cancel was pressed: the status says cancelled
                return
            if (
                on_yield is not None
            ):  # the caller reads its own events, and says where the bar stands
                step = on_yield(step, task.bar)
                if step is None:
                    return
            at, of = step
            task.bar.total = of
            task.bar.update(at - task.bar.n)

        if hasattr(worker, "yielded"):
            worker.yielded.connect(advance)
        worker.returned.connect(returned)
        worker.finished.connect(finish)
        worker.start()
        return worker

    def _layer_present(self, layer: Any) -> bool:
        viewer = self._viewer()
        return viewer is not None and any(existing is layer for existing in viewer.layers)

    def _on_layer_removed(self, event: Any) -> None:
        """The image a task reads was closed: stop that task; it will write nothing."""
        for task in list(self._tasks):
            if task.layer is event.value:
                task.cancelled = True
                task.worker.quit()
                self.message.emit(task.section, f"stopped: {event.value.name} was closed")

    def cancel(self, section: str) -> bool:
        """Stop the tasks ``section`` started (not the others); True when one was running."""
        mine = [t for t in self._tasks if t.section == section]
        for task in mine:
            task.cancelled = True
            task.worker.quit()
        return bool(mine)

    def cancel_background(self, section: str) -> None:
        """Stop the background work of ``section`` (encoding ahead), not what the user asked."""
        for task in self._tasks:
            if task.section == section and task.background:
                task.cancelled = True
                task.worker.quit()

    def busy(self, section: str | None = None) -> bool:
        """Whether something runs (in ``section``, or anywhere)."""
        return any(section is None or t.section == section for t in self._tasks)

    def activity(self, section: str | None = None) -> str:
        """What runs most recently started (in ``section``, or anywhere but background work);
        "" when idle."""
        running = [
            t.description
            for t in self._tasks
            if t.section == section or (section is None and not t.background)
        ]
        return running[-1] if running else ""

    def quit_all(self) -> None:
        """Stop everything (the viewer closes)."""
        for task in list(self._tasks):
            task.worker.quit()


_RUNNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tasks_for(viewer: napari.Viewer) -> TaskRunner:
    """The one task runner of ``viewer``."""
    if viewer not in _RUNNERS:
        _RUNNERS[viewer] = TaskRunner(viewer)
    return _RUNNERS[viewer]
