"""Decoding and OCR of untrusted bytes in worker processes with hard limits.

Every picture the server receives comes from an arbitrary web page, and image and video
decoders (Pillow's C plugins, libavif, FFmpeg) and OCR (onnxruntime, tesseract) are large,
native attack and cost surfaces. As browsers isolate media decoding, the server runs them in
`DecodePool`'s worker processes (THREATS.md, docs/security.md "Untrusted bytes"):

- workers are spawned (not forked: no copy of the server's model or threads) and import
  simclip's torch-free decoding and OCR modules only;
- each worker's address space is capped (RLIMIT_AS) at what it holds once started (its imports
  and OCR engines, which differ with the install) plus `WorkerLimits.memory_mb`: a decoder that
  needs more gets MemoryError inside the worker, never in the server. Native pools that
  grow with the cores stay small (glibc's malloc arenas here; OpenCV's thread pool in
  `simclip.ocr.RapidOCR`): each reserves address space, and a warm rapidocr worker went from
  0.8 to 1.8 GB with OpenCV on 16 threads, so OCR failed with std::bad_alloc on a 16-core
  machine under an absolute 2 GiB cap. macOS and Windows have
  no working RLIMIT_AS (setrlimit is refused or not enforced); there the cap is skipped with a
  warning at start and the time budgets and the decoders' own pixel bounds are what holds;
- each picture has a wall-clock budget for its decode and another for its OCR, measured from
  the moment a worker takes the task; a task over its budget has its worker killed, and the pool
  (pebble's ProcessPool) starts a replacement;
- what comes back is small: frames scaled down to at most `WorkerLimits.output_pixels`.

Outcomes (docs/api.md):

- decode over its time budget: 422 `decode_timeout`; over its memory cap, or the worker died
  while decoding: 422 `decode_out_of_memory`; any other decoder exception that escaped the
  library's typed errors: 422 `corrupt_image` (logged as a decoder gap);
- OCR over its budget, out of memory or failed: the picture is still judged, on its image with
  the text read within the budget (often none), and the result says `text_truncated: true`
  (such results are not cached: a less busy machine may read the whole text).
"""

import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass

from pebble import ProcessExpired, ProcessPool

from simclip import (
    CorruptImageError,
    DecodeMemoryError,
    DecodeTimeoutError,
    ImageError,
    decode_picture,
    limit_malloc_arenas,
    read_picture_text_within,
)

from .config import DEFAULT_CONFIG

logger = logging.getLogger(__name__)

OCR_GRACE_S = 0.5  # the hard kill of an OCR task comes this long after its soft budget


@dataclass(frozen=True)
class WorkerLimits:
    """The hard limits of one picture in a decode worker."""

    decode_s: float = DEFAULT_CONFIG["DECODE_BUDGET_S"]  # wall-clock seconds to decode
    ocr_s: float = DEFAULT_CONFIG["OCR_BUDGET_S"]  # wall-clock seconds of OCR
    memory_mb: int = DEFAULT_CONFIG["WORKER_MEMORY_MB"]  # address space a worker may add; 0: none
    output_pixels: int = DEFAULT_CONFIG["WORKER_OUTPUT_PIXELS"]  # pixels per frame sent back

    @classmethod
    def from_config(cls, config):
        """The limits of an app config, or None when DECODE_ISOLATION is off."""
        if not config.get("DECODE_ISOLATION", True):
            return None
        return cls(decode_s=config["DECODE_BUDGET_S"], ocr_s=config["OCR_BUDGET_S"],
                   memory_mb=config["WORKER_MEMORY_MB"],
                   output_pixels=config["WORKER_OUTPUT_PIXELS"])


# ---------------------------------------------------------------------------- worker side

_engines = {}  # in a worker: OCR engine identity -> engine, built once


_start = {}  # in a worker: its address space once started (the cap counts from it)


def _init_worker(memory_mb, engines):
    """Runs once in each new worker: one thread per native pool, build the OCR engines, then
    cap the address space at what the worker holds plus `memory_mb`."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    limit_malloc_arenas()
    for identity, blob in engines:
        try:
            _engines[identity] = pickle.loads(blob)
        except Exception:  # the OCR tasks will say so; the worker still decodes
            logging.getLogger(__name__).exception("building the OCR engine in a worker failed")
    _start["address_space"] = get_address_space()
    if memory_mb:
        set_memory_cap((_start["address_space"] or 0) + memory_mb * 1024 * 1024)


def get_address_space():
    """This process's address space in bytes (VmSize), or None where /proc has no status."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def set_memory_cap(limit_bytes):
    """Cap this process's address space at `limit_bytes` (RLIMIT_AS); False where the
    platform has no such limit (Windows) or refuses it (macOS)."""
    try:
        import resource
    except ImportError:  # Windows
        return False
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit_bytes = min(limit_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    except (ValueError, OSError):  # macOS: setrlimit(RLIMIT_AS) is refused
        return False
    return True


def _decode_task(data, max_pixels, max_frames, output_pixels, exif_formats=None, display_rules=()):
    """Worker: bytes -> the decoded picture, frames shrunk to `output_pixels`."""
    try:
        return decode_picture(data, max_pixels=max_pixels, max_frames=max_frames,
                              max_output_pixels=output_pixels, exif_formats=exif_formats,
                              display_rules=display_rules)
    except ImageError:
        raise
    except MemoryError:
        raise DecodeMemoryError("decoding the picture needs more memory than a decode worker "
                                "may use") from None
    except Exception as e:  # a decoder exception the library does not type yet
        raise CorruptImageError(f"the decoder failed on this data ({type(e).__name__})") from None


def _ocr_task(identity, blob, image, budget_s):
    """Worker: (text, complete) of a decoded picture, read within `budget_s`."""
    engine = _engines.get(identity)
    if engine is None:
        engine = _engines[identity] = pickle.loads(blob)
    return read_picture_text_within(engine, image, budget_s)


def _probe_task():
    """Worker: facts for tests (pid, whether torch is loaded, the address-space cap, the OCR
    engines built)."""
    try:
        import resource
        cap = resource.getrlimit(resource.RLIMIT_AS)[0]
    except ImportError:
        cap = None
    cv2 = sys.modules.get("cv2")
    return {"pid": os.getpid(), "torch": "torch" in sys.modules, "rlimit_as": cap,
            "engines": sorted(_engines), "start_address_space": _start.get("address_space"),
            "address_space": get_address_space(),
            "opencv_threads": cv2.getNumThreads() if cv2 is not None else None}


# ---------------------------------------------------------------------------- server side

class DecodePool:
    """Worker processes that decode and OCR untrusted pictures within `WorkerLimits`.

    Args:
        workers: worker processes (pictures decoded or read at once).
        limits: the WorkerLimits of each picture.
        ocr: an OCR engine to build in every worker at its start (so a new worker does not
            spend a picture's OCR budget building it); None builds engines on first use.
    """

    def __init__(self, workers, limits, ocr=None):
        self.limits = limits
        self.timeouts = {"decode": 0, "ocr": 0}  # tasks killed over their budget
        self.crashes = 0  # workers that died (the memory cap, a decoder crash)
        self._blobs = {}  # engine identity -> pickled engine
        self._lock = threading.Lock()
        engines = []
        if ocr is not None and self._get_blob(ocr) is not None:
            engines.append((_identity(ocr), self._get_blob(ocr)))
        if limits.memory_mb and not _has_memory_cap():
            logger.warning("this platform has no per-process memory cap (RLIMIT_AS): decode "
                           "workers are bounded by their time budgets and the decoders' pixel "
                           "limits only")
        self._pool = ProcessPool(max_workers=workers, initializer=_init_worker,
                                 initargs=(limits.memory_mb, engines),
                                 context=multiprocessing.get_context("spawn"))

    def _get_blob(self, ocr):
        """The pickled engine (its settings; workers build their own), or None when it does not
        pickle (an engine only this process can run)."""
        identity = _identity(ocr)
        with self._lock:
            if identity not in self._blobs:
                try:
                    self._blobs[identity] = pickle.dumps(ocr)
                except (pickle.PicklingError, TypeError, AttributeError):
                    logger.warning("the OCR engine %r cannot run in a worker process; it reads "
                                   "in the server process", getattr(ocr, "name", ocr))
                    self._blobs[identity] = None
            return self._blobs[identity]

    def decode(self, data, max_pixels, max_frames, exif_formats=None, display_rules=()):
        """Bytes -> the decoded picture (`simclip.decode_picture`, with the client's
        `exif_formats` and `display_rules`), decoded in a worker.

        Raises:
            ImageError: the library's typed refusals; DecodeTimeoutError over the decode
                budget; DecodeMemoryError over the memory cap or when the worker died.
        """
        future = self._pool.schedule(_decode_task, timeout=self.limits.decode_s,
                                     args=(data, max_pixels, max_frames,
                                           self.limits.output_pixels, exif_formats,
                                           tuple(display_rules)))
        try:
            return future.result()
        except TimeoutError:
            self.timeouts["decode"] += 1
            raise DecodeTimeoutError(f"decoding the picture took over {self.limits.decode_s:g} s"
                                     ) from None
        except (ProcessExpired, CancelledError) as e:
            self.crashes += 1
            raise DecodeMemoryError(f"the decoder died on this picture ({e})") from None

    def read_text(self, ocr, image):
        """(text, complete) of a decoded picture read in a worker within the OCR budget;
        ("", False) when it ran over, out of memory or failed (logged)."""
        if getattr(ocr, "name", None) == "none":
            return "", True
        blob = self._get_blob(ocr)
        if blob is None:
            return read_picture_text_within(ocr, image, self.limits.ocr_s)
        t0 = time.monotonic()
        future = self._pool.schedule(_ocr_task, timeout=self.limits.ocr_s + OCR_GRACE_S,
                                     args=(_identity(ocr), blob, image, self.limits.ocr_s))
        try:
            return future.result()
        except TimeoutError:
            self.timeouts["ocr"] += 1
            logger.info("OCR over its %.1f s budget: judged on the image alone",
                        self.limits.ocr_s)
        except (ProcessExpired, CancelledError) as e:
            self.crashes += 1
            logger.warning("the OCR worker died after %.1f s (%s): judged on the image alone",
                           time.monotonic() - t0, e)
        except Exception as e:
            logger.warning("OCR failed (%s: %s): judged on the image alone", type(e).__name__, e)
        return "", False

    def probe(self):
        """Facts about one worker (tests): pid, torch loaded, its RLIMIT_AS, its address space
        at start and now (bytes), the OCR engines built, OpenCV's thread count."""
        return self._pool.schedule(_probe_task, timeout=30).result()

    def stats(self):
        """{"timeouts": {"decode", "ocr"}, "crashes"}: tasks killed and workers lost so far."""
        return {"timeouts": dict(self.timeouts), "crashes": self.crashes}

    def close(self):
        """Stop the workers (tasks in flight are cancelled)."""
        self._pool.stop()
        self._pool.join(timeout=10)


def _identity(ocr):
    return getattr(ocr, "identity", None) or getattr(ocr, "name", repr(ocr))


def _has_memory_cap():
    return sys.platform.startswith("linux") or sys.platform.startswith("freebsd")
