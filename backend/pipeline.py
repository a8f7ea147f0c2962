"""The request pipeline: cache -> single-flight -> decode + OCR pool -> batched encoders.

    request threads ──sha256──> ResultCache ──hit──> answer
          │ miss (one leader per sha256; identical requests wait on the leader's future)
          ▼ admission: at most `max_queue` images in the pipeline, else Busy (503)
    prepare threads (one per worker): decode, then OCR, each in a worker process with its own
          time budget and a memory cap (`backend.isolation.DecodePool`)
          ▼ ready queue
    encoder thread: coalesce up to `max_batch` images, waiting at most `max_wait_ms`
          after the first (`simclip.collect_batch`, shared with bulk scoring), run the
          encoders + head once per batch, fill the cache, answer.

Decoding and OCR of the untrusted bytes run in spawned worker processes (DECODE_ISOLATION, on
by default): a decode over its budget or its memory cap is a typed 422, an OCR over its budget
judges the picture on its image with `text_truncated: true` (not cached), and the server process
never holds a decoder's memory (backend/isolation.py). Without isolation, or for a classifier
that is not a `simclip.Predictor` (tests' stubs), the predictor's own `decode` and `read_text`
run in the prepare threads. Either way the preparation overlaps with the encoder thread; the
GPU (or the CPU's BLAS) sees batches, not single images.

`swap(predictor, cache)` replaces the served model without a restart (setup's new head): each
request takes the (predictor, cache) pair current when it is admitted and is answered by it, so
requests in flight during a swap finish on the old model, and its results never land under the
new model's cache identity.
"""

import hashlib
import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from simclip import BatchStats, ImageError, collect_batch

from .config import DEFAULT_CONFIG
from .isolation import DecodePool

logger = logging.getLogger(__name__)


class Busy(Exception):
    """The pipeline is full; the caller should retry after `retry_after` seconds."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


class PipelineError(Exception):
    """An internal failure while classifying (our bug, not the image's)."""


def _ms(seconds):
    return round(seconds * 1000.0, 2)


class _Job:
    """One image travelling through the pipeline."""

    __slots__ = (
        "cache",
        "data",
        "future",
        "image",
        "key",
        "predictor",
        "sha256",
        "t_admit",
        "t_decode",
        "t_ocr",
        "t_ready",
        "text",
        "text_truncated",
        "view",
    )

    def __init__(self, sha256, data, predictor, cache, view=None, key=None):
        self.sha256 = sha256
        self.data = data
        self.view = view or {}  # decode's exif_formats and display_rules, where the client set them
        self.predictor, self.cache = predictor, cache
        self.key = (id(predictor), key or sha256)  # single-flight within one model only
        self.future = Future()
        self.t_admit = time.perf_counter()
        self.image = self.text = None
        self.text_truncated = False
        self.t_decode = self.t_ocr = 0.0
        self.t_ready = 0.0


class Pipeline:
    """Classifies image bytes for many concurrent callers with batching and a result cache."""

    def __init__(self, predictor, cache, max_batch=DEFAULT_CONFIG["MAX_BATCH"],
                 max_wait_ms=DEFAULT_CONFIG["MAX_WAIT_MS"], max_queue=DEFAULT_CONFIG["MAX_QUEUE"],
                 ocr_workers=DEFAULT_CONFIG["OCR_WORKERS"],
                 timeout_s=DEFAULT_CONFIG["CLASSIFY_TIMEOUT_S"],
                 retry_after_s=DEFAULT_CONFIG["RETRY_AFTER_S"], isolation=None):
        self._active = (predictor, cache)  # swapped as one pair (`swap`)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.stats = BatchStats()
        self.requests = 0  # classify calls that passed the HTTP checks
        self._lock = threading.Lock()
        self._inflight = {}  # (id(predictor), sha256) -> _Job (single-flight)
        self._depth = 0
        self._ready = queue.Queue()  # bounded by admission (max_queue)
        self._pool = ThreadPoolExecutor(ocr_workers, thread_name_prefix="simclip-ocr")
        self.isolation = isolation  # WorkerLimits, or None: decode + OCR in the threads
        self._ocr_workers = ocr_workers
        self.workers = None  # the DecodePool, started for the first simclip.Predictor
        self._start_workers(predictor)
        self._encoder = threading.Thread(target=self._encode_loop, name="simclip-encoder",
                                         daemon=True)
        self._encoder.start()

    @property
    def predictor(self):
        """The Predictor new requests are classified with."""
        return self._active[0]

    @property
    def cache(self):
        """The ResultCache of the current predictor."""
        return self._active[1]

    def swap(self, predictor, cache):
        """Serve `predictor` with its `cache` from now on; returns the old (predictor, cache).

        Requests admitted before the swap are answered by the old pair; the caller closes the
        old cache (a closed ResultCache keeps answering from memory, so that is safe at once).
        """
        self._start_workers(predictor)
        with self._lock:
            old, self._active = self._active, (predictor, cache)
        return old

    def _start_workers(self, predictor):
        """Start the decode workers once a Predictor is served with isolation on."""
        if self.isolation is None or self.workers is not None or not _is_predictor(predictor):
            return
        self.workers = DecodePool(self._ocr_workers, self.isolation, predictor.ocr)

    def _isolated(self, predictor):
        return self.workers is not None and _is_predictor(predictor)

    @property
    def queue_depth(self):
        """Images admitted and not answered yet."""
        return self._depth

    def classify(self, data, exif_formats=None, display_rules=()):
        """Image bytes -> result dict (sha256, mode, scores, warnings, text, size, cached,
        timings_ms).

        `exif_formats` are the image formats whose EXIF orientation the client's browser applies
        (`simclip.decode_image`); None applies it in every format. `display_rules` are the
        `simclip.display.DISPLAY_RULES` its browser follows. The same bytes under another rule
        are another picture: the rules are part of the cache and single-flight key.

        Raises:
            ImageError: the bytes are not an acceptable image (typed, with .status).
            Busy: the pipeline is full.
            PipelineError: an internal failure.
        """
        t0 = time.perf_counter()
        with self._lock:
            self.requests += 1
        sha256 = hashlib.sha256(data).hexdigest()
        view, key = {}, sha256
        if exif_formats is not None:
            view["exif_formats"] = frozenset(exif_formats)
            key += f"/exif={','.join(sorted(exif_formats))}"
        if display_rules:
            view["display_rules"] = frozenset(display_rules)
            key += f"/rules={','.join(sorted(display_rules))}"
        predictor, cache = self._active
        hit = cache.get(key)
        if hit is not None:
            return {"sha256": sha256, **hit, "cached": True,
                    "timings_ms": {"total": _ms(time.perf_counter() - t0)}}
        with self._lock:
            job = self._inflight.get((id(predictor), key))
            leader = job is None
            if leader:
                if self._depth >= self.max_queue:
                    raise Busy(f"{self._depth} images are queued; retry shortly",
                               self.retry_after_s)
                self._depth += 1
                job = _Job(sha256, data, predictor, cache, view, key)
                self._inflight[job.key] = job
        if leader:
            self._pool.submit(self._prepare, job)
        try:
            result, timings = job.future.result(self.timeout_s)
        except FutureTimeout as e:
            raise Busy("classification timed out; retry shortly", self.retry_after_s) from e
        timings = dict(timings, total=_ms(time.perf_counter() - t0))
        return {"sha256": sha256, **result, "cached": not leader, "timings_ms": timings}

    def _finish(self, job, result=None, error=None):
        with self._lock:
            self._inflight.pop(job.key, None)
            self._depth -= 1
        job.data = job.image = None
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    def _prepare(self, job):
        """Prepare thread: decode with the safe decoder, then OCR (in a worker process when
        isolated)."""
        predictor = job.predictor
        try:
            t0 = time.perf_counter()
            if self._isolated(predictor):
                job.image = self.workers.decode(job.data, predictor.max_pixels,
                                                predictor.max_frames, **job.view)
                t1 = time.perf_counter()
                job.text, complete = self.workers.read_text(predictor.ocr, job.image)
                job.text_truncated = not complete
            else:
                job.image = predictor.decode(job.data, **job.view)
                t1 = time.perf_counter()
                job.text = predictor.read_text(job.image)
            t2 = time.perf_counter()
        except ImageError as e:
            self._finish(job, error=e)
            return
        except Exception as e:  # an OCR engine failure is our problem, not the caller's
            logger.exception("decode/OCR failed")
            self._finish(job, error=PipelineError(f"OCR failed: {type(e).__name__}"))
            return
        job.t_decode, job.t_ocr, job.t_ready = t1 - t0, t2 - t1, t2
        self._ready.put(job)

    def _next_batch(self):
        """Block for one job, then gather more until max_batch or max_wait after the first."""
        return collect_batch(self._ready, self.max_batch, self.max_wait_s)

    def _encode_loop(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            groups = {}  # a batch taken across a swap holds jobs of two predictors
            for job in batch:
                groups.setdefault(id(job.predictor), []).append(job)
            for group in groups.values():
                self._encode(group)

    def _encode(self, batch):
        """Run one predictor's encoders + head on `batch`, fill its cache, answer its jobs."""
        predictor, cache = batch[0].predictor, batch[0].cache
        t_start = time.perf_counter()
        try:
            results = predictor.classify([j.image for j in batch], [j.text for j in batch])
        except Exception as e:
            logger.exception("encoder batch of %d failed", len(batch))
            for job in batch:
                self._finish(job, error=PipelineError(f"encoder failed: {type(e).__name__}"))
            return
        self.stats.record(len(batch))
        cached = []
        for job, r in zip(batch, results):
            result = {"mode": r["mode"], "scores": r["scores"], "warnings": r["warnings"],
                      "text": r["text"], "text_truncated": job.text_truncated,
                      "calibrated": r["calibrated"], "frames": r["frames"],
                      "size": _size(job.image)}
            cached.append((job.key[1], result))
        # a text cut by the OCR budget may be read whole on a less busy machine: not cached
        cache.put_many([(sha, result) for sha, result in cached if not result["text_truncated"]])
        for job, (_, result), r in zip(batch, cached, results):
            timings = {"queue": _ms(job.t_ready - job.t_admit - job.t_decode - job.t_ocr
                                    + t_start - job.t_ready),
                       "decode": _ms(job.t_decode), "ocr": _ms(job.t_ocr),
                       "encode": r["timings_ms"].get("encode", 0.0),
                       "head": r["timings_ms"].get("head", 0.0)}
            self._finish(job, result=(result, timings))

    def close(self):
        """Stop the encoder thread, the prepare threads (pending jobs are finished first) and
        the decode workers."""
        self._pool.shutdown(wait=True)
        if self.workers is not None:
            self.workers.close()
        self._ready.put(None)
        self._encoder.join(timeout=10)


def _size(image):
    """{"width", "height"} of a decoded picture (its first frame) as judged, in pixels."""
    first = image[0] if isinstance(image, list) else image
    return {"width": first.width, "height": first.height}


def _is_predictor(predictor):
    """True for a simclip.Predictor (whose decode limits and OCR engine the workers use)."""
    from simclip import Predictor  # loaded already when one is served

    return isinstance(predictor, Predictor)
