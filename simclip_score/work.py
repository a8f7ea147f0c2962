"""The per-picture work both engines share: options, read + hash, decode + OCR, encode + rows.

The decode and OCR stages are the Predictor's own (`simclip.picture`, which `Predictor.decode`
and `Predictor.read_text` call), run by a `Reader` that holds only the OCR engine, so a CPU
worker (a thread, a Ray reader) reads pictures exactly as the server does without loading the
encoders. This module imports no torch: a Ray reader process starts without it (torch and
open_clip load only in `ScoreConfig.load_predictor`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from simclip import (
    MAX_IMAGE_PIXELS,
    ClassifierOptions,
    Frames,
    ImageError,
    decode_picture,
    read_picture_text,
)
from simclip.constants import MAX_ANIMATION_FRAMES

from .ocr import build_ocr_engine
from .output import INTERNAL_ERROR, OCR_FAILED, error_row, result_row
from .sources import Item, SourceError, read_item_bytes

if TYPE_CHECKING:
    from simclip import Predictor


@dataclass
class ScoreConfig(ClassifierOptions):
    """Everything a scoring run needs to rebuild its model and stages in another process: the
    backbone and OCR options every command shares (`ClassifierOptions`; `ocr` may also be an
    engine spec such as 'rapidocr:device=cuda'), plus these."""

    checkpoint: str | None = None  # trained head; None: zero-shot
    batch_size: int = 32  # pictures per encoder batch
    max_wait_ms: float = 5.0  # the encoder waits this long for a batch to fill
    workers: int = 0  # decode + OCR workers (threads, Ray CPU tasks); 0: every core
    cache_dir: str | None = None  # the server's result cache (local engine)

    def load_predictor(self, ocr: Any = None) -> Predictor:
        """The Predictor these options describe (`ocr`: an engine object, default from spec)."""
        from simclip import load_classifier  # torch and open_clip: only where the encoders run

        engine = ocr if ocr is not None else build_ocr_engine(self.ocr)
        kwargs = {**self.classifier_kwargs(), "ocr": engine}
        return load_classifier(self.checkpoint, batch_size=self.batch_size, **kwargs)

    def get_workers(self) -> int:
        """Decode + OCR workers: `workers`, or one per core."""
        return self.workers or os.cpu_count() or 1

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict (for Ray actors)."""
        return asdict(self)


def get_model_id(predictor: Predictor) -> str:
    """The `model` column: backbone id and head (checkpoint sha256 or zero-shot digest)."""
    return f"{predictor.backbone.info.id}|{predictor.checkpoint_id}"


def list_category_ids(predictor: Predictor) -> list[str]:
    """The warning categories the predictor scores, in its order (the `scores` fields)."""
    return [c["id"] for c in predictor.list_categories()]


class Reader:
    """Decode + OCR without the encoders: what `Predictor.decode` and `Predictor.read_text` do
    (`simclip.picture`), with the same limits."""

    def __init__(self, ocr: Any, max_pixels: int = MAX_IMAGE_PIXELS,
                 max_frames: int = MAX_ANIMATION_FRAMES) -> None:
        self.ocr = ocr
        self.max_pixels = max_pixels
        self.max_frames = max_frames

    def decode(self, data: bytes) -> Image.Image | Frames:
        """Bytes -> one RGB image or `Frames`. Raises a typed ImageError."""
        return decode_picture(data, max_pixels=self.max_pixels, max_frames=self.max_frames)

    def read_text(self, image: Image.Image | Frames) -> str:
        """The OCR text of a decoded picture (frames' texts merged)."""
        return read_picture_text(self.ocr, image)


def read_and_hash(item: Item) -> tuple[bytes, str]:
    """(bytes, sha256 hex) of an item. Raises SourceError."""
    data = read_item_bytes(item)
    return data, hashlib.sha256(data).hexdigest()


class StageError(Exception):
    """A picture that cannot be scored: `code` is a typed error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def decode_and_read(reader: Any, data: bytes) -> tuple[Image.Image | Frames, str]:
    """(decoded picture, OCR text). Raises StageError with the ImageError code, or ocr_failed."""
    try:
        image = reader.decode(data)
    except ImageError as e:
        raise StageError(e.code, str(e)) from e
    try:
        text = reader.read_text(image)
    except Exception as e:  # an engine failure is ours, not the picture's: say so, go on
        raise StageError(OCR_FAILED, f"OCR failed: {type(e).__name__}: {e}") from e
    return image, text


def source_error(e: SourceError) -> StageError:
    """A SourceError as a StageError."""
    return StageError(e.code, str(e))


def internal_error(e: Exception) -> StageError:
    """An unexpected exception (our bug) as one input's StageError(internal_error)."""
    return StageError(INTERNAL_ERROR, f"{type(e).__name__}: {e}")


def classify_batch(predictor: Predictor, images: list[Any], texts: list[str]) -> list[dict[str, Any]] | StageError:
    """Server-format results (mode, scores, warnings, text, calibrated, frames) of a batch, or
    one StageError(internal_error) for the whole batch when the encoders raise."""
    try:
        results = predictor.classify(images, texts)
    except Exception as e:
        return StageError(INTERNAL_ERROR, f"encoder failed: {type(e).__name__}: {e}")
    return [{"mode": r["mode"], "scores": r["scores"], "warnings": r["warnings"],
             "text": r["text"], "calibrated": r["calibrated"], "frames": r["frames"]}
            for r in results]


def make_row(item_id: str, sha256: str | None, outcome: dict[str, Any] | StageError,
             model: str, identity: str) -> dict[str, Any]:
    """The output row of one input from its result or its error."""
    if isinstance(outcome, StageError):
        return error_row(item_id, sha256, outcome.code, str(outcome), model, identity)
    return result_row(item_id, sha256 or "", outcome, model, identity)


def pack_picture(image: Image.Image | Frames) -> tuple[bytes, list[int]]:
    """A decoded picture as raw RGB bytes + [w0, h0, w1, h1, ...] (Arrow-friendly, for Ray)."""
    frames = list(image) if isinstance(image, Frames) else [image]
    sizes = [v for f in frames for v in f.size]
    return b"".join(f.tobytes() for f in frames), sizes


def unpack_picture(pixels: bytes, sizes: list[int]) -> Image.Image | Frames:
    """The inverse of `pack_picture`."""
    frames, offset = [], 0
    for w, h in zip(sizes[0::2], sizes[1::2]):
        n = w * h * 3
        frames.append(Image.frombytes("RGB", (w, h), pixels[offset:offset + n]))
        offset += n
    return frames[0] if len(frames) == 1 else Frames(frames)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM off while the block runs, then deliver the first one
    that came: for the steps that must not be cut in the middle (Ray's start and shutdown,
    draining the local engine's threads after a first Ctrl-C): cut there, Ray leaves its agents
    running, and an interpreter exiting under the OCR threads aborts. Outside the main thread
    (where Python delivers signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: arrived.append(signum))
                for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if arrived:
            signal.raise_signal(arrived[0])  # the handler of before runs now
