"""Which slices each pass of a propagation covers: from every prompted slice forwards and
backwards, to the next prompted slice, the range limit, or (key boxes) half-way."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from napari_textseg.engine.interactive.propagate import PropagationSettings

__all__ = ["owned_end", "plan_passes"]


def owned_end(start: int, other: int, order: dict[int, int] | None) -> int:
    """The last slice from ``start`` towards key slice ``other`` that is nearer ``start``
    (the middle slice, at equal distance, goes to the key later in ``order``)."""
    gap = abs(other - start)
    reach = gap // 2
    if gap % 2 == 0 and order is not None and order.get(start, -1) < order.get(other, -1):
        reach -= 1
    return start + (1 if other > start else -1) * reach


def plan_passes(
    prompted: list[int],
    n_slices: int,
    settings: PropagationSettings,
    only_from: int | None = None,
    order: dict[int, int] | None = None,
) -> list[tuple[int, int, int]]:
    """Passes as (prompted slice, step, last slice inclusive), forwards then backwards.

    With ``order`` (the key slices' drawing order), a pass ends where the slices start to
    belong to the next key slice (:func:`owned_end`); without it, at the next key slice.
    """
    lo, hi = settings.slice_range if settings.slice_range is not None else (0, n_slices - 1)
    lo, hi = max(0, lo), min(n_slices - 1, hi)
    marks = sorted(prompted)
    passes = []
    for i, z in enumerate(marks):
        if only_from is not None and z != only_from:
            continue
        if not lo <= z <= hi:
            continue
        if settings.direction in ("both", "forward"):
            end = hi
            if i + 1 < len(marks):
                end = owned_end(z, marks[i + 1], order) if order is not None else marks[i + 1] - 1
            if end > z:
                passes.append((z, 1, min(end, hi)))
        if settings.direction in ("both", "backward"):
            end = lo
            if i > 0:
                end = owned_end(z, marks[i - 1], order) if order is not None else marks[i - 1] + 1
            if end < z:
                passes.append((z, -1, max(end, lo)))
    return passes
