"""A meme as a viewer sees it, and its text, without the encoders: decode and OCR only.

Torch-free, so that processes that only read pictures (the Ray readers of `simclip score`, one
per CPU of a cluster) start without importing torch and open_clip, and hold no model memory.
`Predictor.decode` and `Predictor.read_text` are these functions with the predictor's limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from .constants import MAX_ANIMATION_FRAMES, MAX_IMAGE_PIXELS
from .images import Frames, ImageSource, decode_frames
from .ocr import OCREngine
from .video import decode_video, is_video


def decode_picture(data: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS,
                   max_frames: int = MAX_ANIMATION_FRAMES) -> Image.Image | Frames:
    """Bytes, path or PIL -> what a viewer sees: one RGB PIL image, or `Frames` for an animation
    (`decode_frames`) or a video (`simclip.video.decode_video`: MP4 or WebM, recognised by its
    magic bytes) with several visible frames.

    Args:
        data: the file's bytes, a path, or a PIL image.
        max_pixels: the decode cap in pixels (width x height).
        max_frames: frames of an animation or video kept at most.

    Raises:
        ImageError: a typed subclass (CorruptImageError, ImageTooLargeError...; a VideoError
            for a video).
    """
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    if is_video(data):
        frames = decode_video(data, max_frames=max_frames)
    else:
        frames = decode_frames(data, max_pixels=max_pixels, max_frames=max_frames)
    return frames[0] if len(frames) == 1 else Frames(frames)


def read_picture_text(ocr: OCREngine, image: Image.Image | Frames) -> str:
    """OCR text of a decoded picture ('' when the engine is 'none' or finds nothing); for
    `Frames`, every frame is read and the texts merged (`merge_texts`)."""
    if isinstance(image, Frames):
        return merge_texts(ocr(frame) for frame in image)
    return ocr(image)


def merge_texts(texts: Iterable[str]) -> str:
    """The OCR texts of an animation's frames as one text: their lines in order of first
    appearance, each line once (compared without case, spacing and punctuation)."""
    seen: set[str] = set()
    lines = []
    for text in texts:
        for line in text.splitlines():
            key = re.sub(r"[\W_]+", "", line.lower())
            if key and key not in seen:
                seen.add(key)
                lines.append(line.strip())
    return "\n".join(lines)
