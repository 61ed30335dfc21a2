"""What a propagation is asked for and what it gives back: its settings, its result
(masks, scores and where each came from), and the loop that drives it step by step."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from napari_textseg.engine.interactive.memory import POLICIES
from napari_textseg.engine.interactive.prompts import SlicePrompts
from napari_textseg.engine.interactive.slice_model import SliceMask

__all__ = [
    "DIRECTIONS",
    "MAX_MEMORY",
    "PROJECTIONS",
    "PropagationResult",
    "PropagationSettings",
    "drive",
]

DIRECTIONS = ("both", "forward", "backward")
PROJECTIONS = ("box", "point")  # what SAM prompt projection takes from the neighbour's mask
MAX_MEMORY = 6  # SAM2's num_maskmem - 1: past slices with trained temporal encodings
T = TypeVar("T")


def drive(
    steps: Generator[tuple[int, int], None, T],
    progress: Callable[[int, int], None] | None,
    cancelled: Callable[[], bool] | None,
    on_cancel: Callable[[], T],
) -> T:
    """Run a step generator to its return value, reporting progress and honouring cancel."""
    while True:
        if cancelled is not None and cancelled():
            steps.close()
            return on_cancel()
        try:
            done, total = next(steps)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(done, total)


@dataclass(frozen=True)
class PropagationSettings:
    """How far and with which memory a propagation runs.

    ``slice_range`` is inclusive; ``empty_stop`` = 0 disables the stop rule.
    ``memory_size`` is how many past slices give mask memories (SAM2's own: 6);
    ``iou_gate`` is the predicted IoU below which the ``ranked`` bank refuses a memory.
    ``projection`` (SAM only) prompts each slice with its neighbour's deepest point and
    box ("box"), or the point alone ("point"): a box drawn on the neighbour can take in
    an adjacent organ where the two come close.
    """

    direction: str = "both"
    memory_size: int = 6
    policy: str = "fifo"
    empty_stop: int = 2
    slice_range: tuple[int, int] | None = None
    offload: bool = False
    projection: str = "box"
    iou_gate: float = 0.6

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"unknown direction {self.direction!r}; use one of {', '.join(DIRECTIONS)}"
            )
        if self.projection not in PROJECTIONS:
            raise ValueError(
                f"unknown projection {self.projection!r}; use one of {', '.join(PROJECTIONS)}"
            )
        if self.empty_stop < 0:
            raise ValueError("the empty-slice stop rule needs a count >= 0")
        if not 1 <= self.memory_size <= MAX_MEMORY:
            raise ValueError(
                f"memory size must be 1 to {MAX_MEMORY} (SAM2 has trained temporal encodings for "
                f"{MAX_MEMORY} past slices), got {self.memory_size}"
            )
        if self.policy not in POLICIES:
            raise ValueError(
                f"unknown memory policy {self.policy!r}; use one of {', '.join(POLICIES)}"
            )


@dataclass
class PropagationResult:
    """Masks and scores per visited slice, and where each came from."""

    masks: dict[int, np.ndarray] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)
    source: dict[int, int] = field(default_factory=dict)
    logits: dict[int, torch.Tensor] = field(default_factory=dict)
    prompts: dict[int, SlicePrompts] = field(default_factory=dict)  # made by prompt projection
    visited: list[int] = field(default_factory=list)
    cancelled: bool = False

    def drop(self, z: int) -> None:
        """Forget slice ``z``."""
        for table in (self.masks, self.scores, self.source, self.logits, self.prompts):
            table.pop(z, None)
        if z in self.visited:
            self.visited.remove(z)

    def copy(self) -> PropagationResult:
        """A copy whose tables can change without changing this one (masks are shared)."""
        return PropagationResult(
            dict(self.masks),
            dict(self.scores),
            dict(self.source),
            dict(self.logits),
            dict(self.prompts),
            list(self.visited),
            self.cancelled,
        )

    def volume(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The 3D boolean mask (slices not visited are empty)."""
        out = np.zeros(shape, dtype=bool)
        for z, mask in self.masks.items():
            out[z] = mask
        return out

    def keep(self, z: int, result: SliceMask, source: int) -> None:
        """Store ``result`` for slice ``z`` unless a nearer prompted slice already gave one."""
        if z not in self.source:
            self.visited.append(z)
        elif abs(self.source[z] - z) < abs(source - z):
            return
        self.masks[z], self.scores[z], self.source[z], self.logits[z] = (
            result.mask,
            result.score,
            source,
            result.logits,
        )
        if result.prompts is not None:
            self.prompts[z] = result.prompts

    def merged(self, run: PropagationResult, owned: set[int]) -> PropagationResult:
        """This result with a re-propagation from one slice laid over it: ``run``'s masks win
        on the slices it reached; ``owned`` slices (a key box's) it did not reach are dropped."""
        out = self.copy()
        for z in owned - set(run.visited):
            out.drop(z)
        for z in run.visited:
            if z not in out.source:
                out.visited.append(z)
            out.masks[z], out.scores[z] = run.masks[z], run.scores[z]
            out.logits[z], out.source[z] = run.logits[z], run.source[z]
            if z in run.prompts:
                out.prompts[z] = run.prompts[z]
        return out
