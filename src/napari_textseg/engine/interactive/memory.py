"""Memory-bank policies for SAM2 propagation (methods.md section 2).

- ``fifo``: SAM2's own: the most recent memories, oldest dropped first.
- ``ranked``: CRISP-SAM2's self-updating memory (appendix C.1), which their public code
  does not implement:
  1. a new memory whose predicted IoU is below the gate (0.6) is discarded;
  2. otherwise every memory in the bank plus the new one is scored by centrality,
     ``score_i = sum over j != i of cos(m_i, m_j)``;
  3. the lowest-scoring memory is evicted;
  4. if that is the new one, it is not stored.

The policies only decide *which* past slices give the mask memories; the propagator
hands them to SAM2's memory attention, the newest in the nearest slot, and object
pointers are read as SAM2 reads them whatever the policy (:mod:`.memory_attention`).
A ``fifo`` pass reads SAM2's own selection by distance and needs no bank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["MemoryBank", "MemoryEntry", "centrality_order", "centrality_scores", "make_bank"]

POLICIES = ("fifo", "ranked")


@dataclass
class MemoryEntry:
    """One slice's memory: SAM2's frame output, its predicted IoU and a signature vector."""

    index: int
    output: dict[str, Any]
    iou: float
    signature: torch.Tensor = field(repr=False)


def centrality_scores(signatures: torch.Tensor) -> torch.Tensor:
    """``score_i = sum over j != i of cos(s_i, s_j)`` for an (N, D) stack of signatures."""
    unit = torch.nn.functional.normalize(signatures.float().flatten(1), dim=1)
    sims = unit @ unit.T
    return sims.sum(dim=1) - sims.diagonal()


def centrality_order(signatures: torch.Tensor) -> list[int]:
    """Indices in descending centrality: the most typical slice first, never an empty end."""
    return torch.argsort(centrality_scores(signatures), descending=True, stable=True).tolist()


class MemoryBank:
    """A bounded set of memories under a policy (``"fifo"`` or ``"ranked"``)."""

    def __init__(
        self, size: int, policy: str = "fifo", iou_gate: float = 0.6, offload: bool = False
    ):
        if size < 1:
            raise ValueError(f"the memory bank needs at least 1 slot, got {size}")
        if policy not in POLICIES:
            raise ValueError(f"unknown memory policy {policy!r}; use one of {', '.join(POLICIES)}")
        self.size = size
        self.policy = policy
        self.iou_gate = iou_gate
        self.offload = offload
        self._entries: list[MemoryEntry] = []

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> list[MemoryEntry]:
        """Memories in insertion order (the last is the most recent)."""
        return list(self._entries)

    def _stored(self, entry: MemoryEntry) -> MemoryEntry:
        if not self.offload:
            return entry
        # Long volumes: keep memories in host RAM; SAM2 moves them back when attending.
        output = {
            k: (
                v.to("cpu", non_blocking=True)
                if isinstance(v, torch.Tensor) and k == "maskmem_features"
                else v
            )
            for k, v in entry.output.items()
        }
        return MemoryEntry(entry.index, output, entry.iou, entry.signature.cpu())

    def add(self, entry: MemoryEntry) -> bool:
        """Offer a new memory; returns whether it was stored."""
        if self.policy == "fifo":
            self._entries.append(self._stored(entry))
            del self._entries[: max(0, len(self._entries) - self.size)]
            return True
        if entry.iou < self.iou_gate:
            return False
        if len(self._entries) < self.size:
            self._entries.append(self._stored(entry))
            return True
        candidates = [*self._entries, entry]
        scores = centrality_scores(
            torch.stack([c.signature.float().cpu().flatten() for c in candidates])
        )
        weakest = int(torch.argmin(scores))
        if weakest == len(candidates) - 1:
            return False
        del self._entries[weakest]
        self._entries.append(self._stored(entry))
        return True


def make_bank(size: int, policy: str, offload: bool = False, iou_gate: float = 0.6) -> MemoryBank:
    """A fresh bank for one propagation pass."""
    return MemoryBank(size=size, policy=policy, iou_gate=iou_gate, offload=offload)
