"""Coalescing encoder batches: the batching rule the server and bulk scoring share.

Decoded, OCR-read pictures arrive one by one on a queue from a pool of workers; the encoder
takes the first that is ready, then gathers more until `max_batch` or until `max_wait_s` has
passed since the first, and encodes them together. A full pool fills batches at once; a slow
one never makes a picture wait longer than `max_wait_s` for company.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

STOP = None  # put on the queue to end `collect_batch` callers (after the batch in hand)


def collect_batch(ready: queue.Queue[Any], max_batch: int, max_wait_s: float) -> list[Any] | None:
    """Block for one item of `ready`, then gather more until `max_batch` items or `max_wait_s`
    seconds after the first.

    Args:
        ready: the queue the workers put prepared items on; `STOP` (None) ends the stream.
        max_batch: the most items in one batch (>= 1).
        max_wait_s: how long to wait for more after the first item, in seconds.

    Returns:
        The batch (1 to max_batch items, in queue order), or None when `STOP` came first. A
        `STOP` met after the first item ends the batch early and is put back for the next call.
    """
    first = ready.get()
    if first is STOP:
        return None
    batch = [first]
    deadline = time.perf_counter() + max_wait_s
    while len(batch) < max_batch:
        remaining = deadline - time.perf_counter()
        try:
            item = ready.get(timeout=remaining) if remaining > 0 else ready.get_nowait()
        except queue.Empty:
            break
        if item is STOP:
            ready.put(STOP)  # stop after this batch
            break
        batch.append(item)
    return batch


class BatchStats:
    """Counts of encoder batches by size (bounded: one counter per size up to max_batch)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches = 0
        self.images = 0
        self.max_size = 0
        self.sizes: dict[int, int] = {}

    def record(self, size: int) -> None:
        """Count one batch of `size` pictures."""
        with self._lock:
            self.batches += 1
            self.images += size
            self.max_size = max(self.max_size, size)
            self.sizes[size] = self.sizes.get(size, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """batches, images, max_size, mean_size and {size: count} (JSON-ready)."""
        with self._lock:
            mean = self.images / self.batches if self.batches else 0.0
            return {"batches": self.batches, "images": self.images, "max_size": self.max_size,
                    "mean_size": round(mean, 3),
                    "sizes": {str(k): v for k, v in sorted(self.sizes.items())}}
