"""What one picture costs on this machine: decode, OCR and encoder time, measured, not guessed.

`measure_cost(predictor)` runs a synthetic meme-like picture (a photo-like background with a
caption at the top and the bottom, what OCR and CLIP see in a real meme) through the
predictor's own stages on its own device: the server does it once when its model is loaded and
reports the result in /v1/health (`cost`), and setup uses it to plan.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING, TypedDict

from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from .predictor import Predictor

MEME_CAPTIONS = ("WHEN THE SERVER CHECKS EVERY MEME", "BEFORE YOU EVEN SEE IT")


class Cost(TypedDict):
    """Milliseconds per picture on one device (a plain dict at runtime)."""

    per_picture_ms: float  # decode + OCR + encode: one picture on an idle server, bytes to verdict
    encode_ms: float  # image and text encoders and the head, per picture in a batch of `batch`
    ocr_ms: float  # OCR of the meme-like picture (two caption lines)
    decode_ms: float  # decoding its PNG bytes
    device: str  # where the encoders ran: 'cpu', 'cuda', 'cuda:1', 'mps'
    precision: str | None  # the encoders' precision ('int8', 'fp32', 'fp16', 'bf16')
    batch: int  # pictures per encoder call when `encode_ms` was measured


def make_meme_picture(size: tuple[int, int] = (600, 600)) -> bytes:
    """PNG bytes of a meme-like picture: a gradient with shapes, a caption line at the top and
    one at the bottom in large black-outlined white capitals (the classic meme font style)."""
    w, h = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((w // 5, h // 4, w * 3 // 5, h * 3 // 4), fill=(190, 120, 70))
    draw.rectangle((w // 2, h // 3, w * 9 // 10, h * 2 // 3), fill=(60, 110, 170))
    font = ImageFont.load_default(size=max(12, h // 16))
    for caption, y in zip(MEME_CAPTIONS, (h // 30, h - h // 8)):
        draw.text((w // 2, y), caption, font=font, fill=(255, 255, 255), anchor="ma",
                  stroke_width=3, stroke_fill=(0, 0, 0))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 1)


def measure_cost(predictor: Predictor, batch: int = 2) -> Cost:
    """Measure the cost of one picture with `predictor` on its device.

    One prediction first warms every stage (lazy initialisation, OCR models, kernels: the
    server's warm-up), then the meme-like picture is decoded, read by OCR and, `batch` copies at
    once, encoded and scored, each stage timed once. Takes about 2 + `batch` pictures' time
    (ViT-L-14-336 on 2 CPU cores at int8: a few seconds; see docs/bench.md).

    Args:
        predictor: the loaded Predictor (its OCR engine, backbone, head and device).
        batch: pictures per encoder call for `encode_ms` (>= 1).

    Returns:
        A `Cost` in milliseconds.

    Raises:
        ValueError: batch < 1.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    data = make_meme_picture()
    predictor.predict([data])  # warm-up, untimed
    t0 = time.perf_counter()
    image = predictor.decode(data)
    decode_ms = _ms(t0)
    t0 = time.perf_counter()
    text = predictor.read_text(image)
    ocr_ms = _ms(t0)
    t0 = time.perf_counter()
    predictor.classify([image] * batch, [text] * batch)
    encode_ms = round(_ms(t0) / batch, 1)
    return {"per_picture_ms": round(decode_ms + ocr_ms + encode_ms, 1), "encode_ms": encode_ms,
            "ocr_ms": ocr_ms, "decode_ms": decode_ms, "device": predictor.device,
            "precision": predictor.backbone.info.precision, "batch": batch}
