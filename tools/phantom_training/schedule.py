"""Training budgets: warm-up, then cosine decay to zero at the end of the budget.

A wall-clock budget ends on time on any machine but trains a different number of steps
on a busy or a faster one; a step budget reproduces a run exactly (same seed, same
steps) at whatever speed the machine has.
"""

from __future__ import annotations

import math
import time

import torch


class TimeBudget:
    """Learning rate as a function of progress through ``minutes`` or, if given, ``steps``."""

    def __init__(
        self, minutes: float, base_lr: float, warmup_steps: int = 100, steps: int | None = None
    ):
        if steps is not None and steps < 1:
            raise ValueError(f"a step budget needs at least one step, got {steps}")
        self.seconds = minutes * 60
        self.steps = steps
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.start = time.perf_counter()
        self.step = 0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def progress(self) -> float:
        """How much of the budget is spent, 0 to 1."""
        if self.steps is not None:
            return min(1.0, self.step / self.steps)
        return min(1.0, self.elapsed / self.seconds)

    def running(self) -> bool:
        return self.progress < 1.0

    def lr(self) -> float:
        warm = min(1.0, (self.step + 1) / self.warmup_steps)
        rate = self.base_lr * warm * 0.5 * (1 + math.cos(math.pi * self.progress))
        self.step += 1
        return rate

    def apply(self, optimizer) -> float:
        lr = self.lr()
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def optimise(self, optimizer, model, loss) -> float:
        """One step at the scheduled rate, gradients clipped to norm 1; returns the rate."""
        lr = self.apply(optimizer)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return lr
