"""A byte-budgeted LRU cache of slice embeddings, with background prefetch of neighbours."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch

__all__ = ["FeatureCache", "Features", "features_nbytes"]

Features = dict[str, torch.Tensor | list[torch.Tensor]]


def features_nbytes(features: Features) -> int:
    """Bytes held by a features dict (tensors and lists of tensors)."""
    total = 0
    for value in features.values():
        for tensor in value if isinstance(value, list) else [value]:
            total += tensor.numel() * tensor.element_size()
    return total


def compact(features: Features, dtype: torch.dtype | None = None) -> Features:
    """Features detached for storage; floating-point ones cast to ``dtype`` if given.

    ``None`` keeps them as the encoder made them (float32 on a CPU, bfloat16 under CUDA
    autocast), as the reference predictors use them. ``torch.float16`` halves a CPU
    cache and moves mask logits by about 1.5e-4 (the equivalence tests measure it).
    """

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(dtype) if dtype is not None and t.is_floating_point() else t.detach()

    return {
        k: [cast(t) for t in v] if isinstance(v, list) else cast(v) for k, v in features.items()
    }


class FeatureCache:
    """Slice features keyed by anything hashable, evicting least-recently-used beyond a budget.

    ``compute(key)`` produces the features of a key. :meth:`get` computes on a miss;
    :meth:`prefetch` computes missing keys on one background thread, so that the
    slices next to the one being clicked are ready when the user moves on. Entries are
    stored as computed, or cast to ``dtype`` (float16: half the memory, see :func:`compact`).
    """

    def __init__(
        self,
        compute: Callable[[Hashable], Features],
        budget_bytes: int = 1024**3,
        dtype: torch.dtype | None = None,
    ):
        if budget_bytes <= 0:
            raise ValueError(f"the cache budget must be positive, got {budget_bytes} bytes")
        self._compute = compute
        self.budget_bytes = int(budget_bytes)
        self.dtype = dtype
        self._entries: OrderedDict[Hashable, tuple[Features, int]] = OrderedDict()
        self._pending: dict[Hashable, Future] = {}
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self._foreground = 0  # get() calls in progress (the user waits on them)
        self._computing: dict[Hashable, threading.Event] = {}  # keys being encoded, by any thread
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        with self._lock:
            return sum(size for _, size in self._entries.values())

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _store(self, key: Hashable, features: Features) -> Features:
        features = compact(features, self.dtype)
        size = features_nbytes(features)
        with self._lock:
            self._entries[key] = (features, size)
            self._entries.move_to_end(key)
            total = sum(s for _, s in self._entries.values())
            while total > self.budget_bytes and len(self._entries) > 1:
                _, (_, dropped) = self._entries.popitem(last=False)
                total -= dropped
        return features

    def _cached(self, key: Hashable, count: bool = True) -> Features | None:
        """The entry of ``key``, marked recently used (call with the lock held)."""
        if key not in self._entries:
            return None
        self.hits += int(count)
        self._entries.move_to_end(key)
        return self._entries[key][0]

    def get(self, key: Hashable) -> Features:
        """The features of ``key``, computed now if not cached. A prefetch of ``key`` still
        queued is taken over (computed here, now); one being computed is waited for.
        While a call is in here, :meth:`try_background` declines: the user's prompts come first."""
        with self._lock:
            found = self._cached(key)
            if found is not None:
                return found
            pending = self._pending.get(key)
            if pending is not None and pending.cancel():  # queued behind others: do it now
                del self._pending[key]
                pending = None
        with self.serving():
            return self._get_or_compute(key, pending)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Foreground work (a prompt, a propagation) runs inside: background precompute waits."""
        with self._lock:
            self._foreground += 1
        try:
            yield
        finally:
            with self._lock:
                self._foreground -= 1

    def try_background(self, key: Hashable) -> bool:
        """Encode ``key`` for background work (precomputing a volume) unless foreground work
        runs now (:meth:`serving`); True when it is cached. The caller polls, so that what the
        user asks for is encoded first and a Cancel between two tries stops the background."""
        with self._lock:
            if self._cached(key, count=False) is not None:
                return True
            if self._foreground:
                return False
            pending = self._pending.get(key)
        self._get_or_compute(key, pending)
        return True

    def _get_or_compute(self, key: Hashable, pending: Future | None) -> Features:
        if pending is not None:
            pending.result()
        with self._lock:
            running = self._computing.get(key)
        if running is not None:  # another thread encodes this slice right now
            running.wait()
        with self._lock:
            found = self._cached(key)
            if found is not None:
                return found
            self.misses += 1
            done = self._computing.setdefault(key, threading.Event())
        try:
            return self._store(key, self._compute(key))
        finally:
            with self._lock:
                self._computing.pop(key, None)
            done.set()

    def prefetch(self, keys: Iterable[Hashable]) -> None:
        """Compute missing ``keys`` in the background, nearest first."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="textseg-prefetch"
                )
            for key in keys:
                if key in self._entries or key in self._pending:
                    continue
                future = self._executor.submit(self._prefetch_one, key)
                self._pending[key] = future

    def _prefetch_one(self, key: Hashable) -> None:
        try:
            with self._lock:
                if key in self._entries:
                    return
            self._store(key, self._compute(key))
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def wait(self) -> None:
        """Block until every prefetch has finished (tests and benchmarks)."""
        while True:
            with self._lock:
                pending = list(self._pending.values())
            if not pending:
                return
            for future in pending:
                future.result()

    def cancel_prefetch(self) -> None:
        """Drop queued prefetches (a running one finishes)."""
        with self._lock:
            for key, future in list(self._pending.items()):
                if future.cancel():  # never started: its finally-clause will not run
                    del self._pending[key]

    def clear(self) -> None:
        """Forget every entry (e.g. when the model or the intensity window changes)."""
        self.cancel_prefetch()
        with self._lock:
            self._entries.clear()

    def close(self, wait: bool = False) -> None:
        """Stop the background thread. Queued slices are dropped; one being encoded
        finishes in the background unless ``wait``, so the GUI never waits for it.
        ``wait`` also waits for an encode another thread runs (a precompute)."""
        self.cancel_prefetch()
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None
        if wait:
            with self._lock:
                running = list(self._computing.values())
            for event in running:
                event.wait()
