"""OCR engines named by a spec: `auto`, `rapidocr`, `tesseract`, `none`, plus options.

    rapidocr                       the tuned CPU engine (simclip.get_ocr_engine)
    rapidocr:threads=2             options go to the engine's constructor
    rapidocr:device=cuda           the same engine and settings on onnxruntime-gpu's CUDA
    rapidocr:device=cuda:1,rec_batch=8

GPU OCR (UNTESTED: no GPU was available when it was written, see docs/bench.md) builds
`simclip`'s tuned RapidOCR with onnxruntime's CUDAExecutionProvider: the detector and the
recognizer run on the GPU, the rest (resizing, box geometry, word splitting) on the calling
thread. Several OCR workers share the one engine, so a batch of memes is in flight on the GPU
at once. It needs `onnxruntime-gpu` in place of `onnxruntime`; without CUDA in onnxruntime's
providers it refuses to start rather than fall back to the CPU unseen.
"""

from __future__ import annotations

import threading
from typing import Any

from simclip import get_ocr_engine
from simclip.ocr import parse_ocr_spec

CUDA_PROVIDER = "CUDAExecutionProvider"
_PATCH_LOCK = threading.Lock()


def _cuda_device_id(device: str) -> int:
    """'cuda' -> 0, 'cuda:1' -> 1."""
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ValueError(f"OCR device {device!r}: use cpu, cuda or cuda:N")


def build_ocr_engine(spec: str) -> Any:
    """An OCR engine from a spec (see the module docstring).

    Raises:
        ValueError: an unknown engine, a malformed option, device= on an engine other than
            rapidocr.
        RuntimeError: device=cuda without CUDA in onnxruntime's providers.
    """
    name, options = parse_ocr_spec(spec)
    device = str(options.pop("device", "cpu"))
    if device == "cpu":
        return get_ocr_engine(name, **options)
    if name not in ("rapidocr", "auto"):
        raise ValueError(f"OCR device={device} needs rapidocr, not {name!r}")
    return build_cuda_rapidocr(_cuda_device_id(device), **options)


def build_cuda_rapidocr(device_id: int = 0, **options: Any) -> Any:
    """simclip's tuned RapidOCR with its detector and recognizer on CUDA device `device_id`.

    The engine's settings are simclip's own (`get_ocr_engine('rapidocr', **options)`); the
    onnxruntime sessions it builds get rapidocr's `EngineConfig.onnxruntime.use_cuda` and the
    device id. Its identity says `device=cuda`, so results are never mixed with the CPU
    engine's in a result cache.
    """
    import onnxruntime
    import rapidocr

    providers = onnxruntime.get_available_providers()
    if CUDA_PROVIDER not in providers:
        raise RuntimeError(f"OCR on CUDA needs onnxruntime-gpu ({CUDA_PROVIDER} is not among "
                           f"{providers}): pip uninstall onnxruntime && pip install onnxruntime-gpu")
    base = rapidocr.RapidOCR

    class CudaEngine(base):  # rapidocr's engine, its sessions on CUDA
        def __init__(self, *args: Any, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
            params = {**(params or {}), "EngineConfig.onnxruntime.use_cuda": True,
                      "EngineConfig.onnxruntime.cuda_ep_cfg.device_id": device_id}
            super().__init__(*args, params=params, **kwargs)

    with _PATCH_LOCK:  # simclip's RapidOCR imports rapidocr.RapidOCR when it is built
        rapidocr.RapidOCR = CudaEngine
        try:
            engine = get_ocr_engine("rapidocr", **options)
        finally:
            rapidocr.RapidOCR = base
    engine.identity = f"{engine.identity},device=cuda"
    engine.name = "rapidocr-cuda"
    return engine
