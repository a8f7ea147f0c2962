"""The local engine: this machine's cores decode and OCR, the encoders run in batches.

    inputs ──> worker pool (threads, one per core): read bytes, sha256
                 │ seen sha256: the row reuses that result (computed once, never twice)
                 │ in the result cache (--cache-dir): the row is the cached result
                 ▼ decode with the Predictor's safe decoder, OCR
               ready queue
                 ▼
               encoder thread: `simclip.collect_batch` (the server's batching rule: up to
                 batch_size pictures, waiting at most max_wait_ms after the first), encoders +
                 head once per batch, rows out
    at most `inflight` inputs are between the reader and the writer, and the inputs are pulled
    from their sources only when a slot is free (back-pressure), so memory holds `inflight`
    pictures (bytes and decoded pixels), never the corpus.

Like the server, the pool is threads: onnxruntime (rapidocr) and tesseract release the GIL.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from simclip import BatchStats, Predictor, collect_batch

from .dedup import DEDUP_MEMORY  # sha256 -> result kept for duplicates (~1 KB each)
from .sources import Item, SourceError
from .work import (
    ScoreConfig,
    StageError,
    classify_batch,
    decode_and_read,
    deferred_signals,
    get_model_id,
    internal_error,
    make_row,
    read_and_hash,
    source_error,
)

logger = logging.getLogger(__name__)

class _Job:
    """A decoded, OCR-read picture waiting for the encoders."""

    __slots__ = ("id", "image", "sha256", "text")

    def __init__(self, item_id: str, sha256: str, image: Any, text: str) -> None:
        self.id, self.sha256, self.image, self.text = item_id, sha256, image, text


class LocalEngine:
    """Scores a stream of inputs with one Predictor; rows go to `emit(rows)` as they are done.

    Args:
        predictor: the loaded Predictor (its decode, read_text and classify stages).
        config: batch size, wait, workers.
        emit: called with a list of rows (from several threads, one call at a time).
        cache: the server's `ResultCache` for this predictor's identity, or None.
        inflight: inputs read but not yet written, at most (default: 8 per worker + 2 batches).
    """

    def __init__(self, predictor: Predictor, config: ScoreConfig,
                 emit: Callable[[list[dict[str, Any]]], None], cache: Any = None,
                 inflight: int | None = None) -> None:
        self.predictor = predictor
        self.config = config
        self.cache = cache
        self.model = get_model_id(predictor)
        self.identity = predictor.identity
        self.stats = BatchStats()
        self.duplicates = 0  # rows that reused a result computed in this run
        self.cache_hits = 0
        self._emit = emit
        self._workers = config.get_workers()
        self._slots = threading.BoundedSemaphore(
            inflight or 8 * self._workers + 2 * config.batch_size)
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()
        self._pending: dict[str, list[str]] = {}  # sha256 being computed -> ids waiting for it
        self._known: OrderedDict[str, Any] = OrderedDict()  # sha256 -> result or StageError
        self._ready: queue.Queue[Any] = queue.Queue()
        self._failure: BaseException | None = None
        self._stopping = False  # interrupted: what is not written yet is dropped

    def run(self, items: Iterable[Item]) -> None:
        """Score every item; returns when every row has been emitted.

        Interrupted (Ctrl-C, SIGTERM, or any exception while reading the inputs), it stops at
        once: the rows written stay, and what is queued, being read or waiting for the encoder
        is dropped for the rerun; it waits only for the reads and the encoder batch under way
        (a further Ctrl-C meanwhile is delivered when they are done)."""
        encoder = threading.Thread(target=self._encode_loop, name="simclip-score-encoder",
                                   daemon=True)
        encoder.start()
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix="simclip-score")
        running: set[Future[None]] = set()
        try:
            for item in items:
                self._slots.acquire()
                if self._failure is not None:
                    break
                future = pool.submit(self._prepare, item)
                running.add(future)
                future.add_done_callback(running.discard)
            # Wait on the futures, not in Thread.join (pool.shutdown): a Ctrl-C that cuts a
            # join can leave CPython thinking the thread is done, so the drain below would
            # return with an OCR thread still running.
            wait(running.copy())
            pool.shutdown(wait=True)
        except BaseException:
            # Drop the queue rather than score it: draining takes as long as a rerun of a small
            # corpus, and the interpreter must not exit under the OCR threads.
            with deferred_signals():
                self._stopping = True
                pool.shutdown(wait=True, cancel_futures=True)
                self._stop_encoder(encoder)
            raise
        self._stop_encoder(encoder)
        if self._failure is not None:
            raise self._failure

    def _stop_encoder(self, encoder: threading.Thread) -> None:
        self._ready.put(None)  # collect_batch's stop mark: ends the encoder loop
        encoder.join()

    def _write(self, ids: list[str], sha256: str | None, outcome: Any) -> None:
        rows = [make_row(i, sha256, outcome, self.model, self.identity) for i in ids]
        with self._emit_lock:
            try:
                if self._failure is None:
                    self._emit(rows)
            except BaseException as e:  # the writer failed (disk full...): stop reading
                self._failure = e
            finally:
                for _ in ids:
                    self._slots.release()

    def _resolve(self, ids: list[str], sha256: str, outcome: Any) -> None:
        """Rows for `ids` and every input waiting on the same bytes; remember the outcome."""
        with self._lock:
            waiting = self._pending.pop(sha256, [])
            self._known[sha256] = outcome
            if len(self._known) > DEDUP_MEMORY:
                self._known.popitem(last=False)
            self.duplicates += len(waiting)
        self._write(ids + waiting, sha256, outcome)

    def _prepare(self, item: Item) -> None:
        """Pool worker: read, hash, deduplicate, look up the cache, decode, OCR."""
        sha256 = None
        try:
            try:
                data, sha256 = read_and_hash(item)
            except SourceError as e:
                self._write([item.id], None, source_error(e))
                return
            with self._lock:
                known = self._known.get(sha256)
                if known is None:
                    if sha256 in self._pending:
                        self._pending[sha256].append(item.id)
                        return
                    self._pending[sha256] = []
                else:
                    self.duplicates += 1
            if known is not None:
                self._write([item.id], sha256, known)
                return
            hit = self.cache.get(sha256) if self.cache is not None else None
            if hit is not None:
                with self._lock:
                    self.cache_hits += 1
                self._resolve([item.id], sha256, hit)
                return
            try:
                image, text = decode_and_read(self.predictor, data)
            except StageError as e:
                self._resolve([item.id], sha256, e)
                return
            self._ready.put(_Job(item.id, sha256, image, text))
        except Exception as e:  # our bug: one error row, never a hang or a crash
            logger.exception("preparing %s failed", item.id)
            error = internal_error(e)
            if sha256 is None:
                self._write([item.id], None, error)
            else:
                self._resolve([item.id], sha256, error)

    def _encode_loop(self) -> None:
        wait_s = self.config.max_wait_ms / 1000.0
        while True:
            batch = collect_batch(self._ready, self.config.batch_size, wait_s)
            if batch is None:
                return
            if self._stopping:
                continue  # interrupted: the rerun scores these
            outcomes = classify_batch(self.predictor, [j.image for j in batch],
                                      [j.text for j in batch])
            if isinstance(outcomes, StageError):
                logger.error("encoder batch of %d failed: %s", len(batch), outcomes)
                outcomes = [outcomes] * len(batch)
            else:
                self.stats.record(len(batch))
                if self.cache is not None:
                    self.cache.put_many([(j.sha256, r) for j, r in zip(batch, outcomes)])
            for job, outcome in zip(batch, outcomes):
                self._resolve([job.id], job.sha256, outcome)
