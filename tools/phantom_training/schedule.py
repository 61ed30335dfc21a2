"""A wall-clock training budget: warm-up, then cosine decay to zero at the deadline."""

from __future__ import annotations

import math
import time

import torch


class TimeBudget:
    """Learning rate as a function of elapsed time, so training ends on time on any machine."""

    def __init__(self, minutes: float, base_lr: float, warmup_steps: int = 100):
        self.seconds = minutes * 60
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.start = time.perf_counter()
        self.step = 0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def running(self) -> bool:
        return self.elapsed < self.seconds

    def lr(self) -> float:
        self.step += 1
        warm = min(1.0, self.step / self.warmup_steps)
        progress = min(1.0, self.elapsed / self.seconds)
        return self.base_lr * warm * 0.5 * (1 + math.cos(math.pi * progress))

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
