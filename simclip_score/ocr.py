"""OCR engines named by a spec: `auto`, `rapidocr`, `tesseract`, `none`, plus options.

    rapidocr                       the tuned CPU engine (simclip.get_ocr_engine)
    rapidocr:threads=2             options go to the engine's constructor
    rapidocr:device=cuda           the same engine and settings on onnxruntime-gpu's CUDA
    rapidocr:device=cuda:1,rec_batch=8

`device=` is simclip's `RapidOCR(device=...)`: its detector and recognizer sessions run on
onnxruntime's CUDAExecutionProvider, the rest (resizing, box geometry, word splitting) on the
calling thread. Several OCR workers share the one engine, so a batch of memes is in flight on
the GPU at once. It needs `onnxruntime-gpu` in place of `onnxruntime`; without CUDA in
onnxruntime's providers it refuses to start rather than fall back to the CPU unseen. (The
providers asked for are tested with onnxruntime's stubbed; no run on a real GPU yet, see
docs/bench.md.)
"""

from __future__ import annotations

from typing import Any

from simclip import get_ocr_engine
from simclip.ocr import parse_ocr_spec


def build_ocr_engine(spec: str) -> Any:
    """An OCR engine from a spec (see the module docstring).

    Raises:
        ValueError: an unknown engine, a malformed option or device, device= on an engine
            other than rapidocr.
        RuntimeError: device=cuda without CUDA in onnxruntime's providers.
    """
    name, options = parse_ocr_spec(spec)
    device = str(options.pop("device", "cpu"))
    if device == "cpu":
        return get_ocr_engine(name, **options)
    if name not in ("rapidocr", "auto"):
        raise ValueError(f"OCR device={device} needs rapidocr, not {name!r}")
    return get_ocr_engine("rapidocr", device=device, **options)
