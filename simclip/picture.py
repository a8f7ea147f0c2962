"""A meme as a viewer sees it, and its text, without the encoders: decode and OCR only.

Torch-free, so that processes that only read pictures (the Ray readers of `simclip score`, one
per CPU of a cluster) start without importing torch and open_clip, and hold no model memory.
`Predictor.decode` and `Predictor.read_text` are these functions with the predictor's limits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterable
from pathlib import Path

from PIL import Image

from .constants import MAX_ANIMATION_FRAMES, MAX_IMAGE_PIXELS
from .errors import ImageError, UnrecognisedImageError, UnsupportedImageError
from .images import Frames, ImageSource, decode_frames, list_image_formats, shrink
from .ocr import OCREngine
from .svg import MAX_SVG_DEPTH, is_svg, svg_pictures
from .video import decode_video, is_video


def decode_picture(data: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS,
                   max_frames: int = MAX_ANIMATION_FRAMES,
                   max_output_pixels: int | None = None,
                   exif_formats: Collection[str] | None = None,
                   display_rules: Collection[str] = ()) -> Image.Image | Frames:
    """Bytes, path or PIL -> what a viewer sees: one RGB PIL image, or `Frames` for an animation
    (`decode_frames`) or a video (`simclip.video.decode_video`: MP4 or WebM, recognised by its
    magic bytes) with several visible frames. An SVG is the pictures it embeds as `data:` URIs
    (`simclip.svg`: what a browser paints of an SVG shown as a picture), the largest first.

    Args:
        data: the file's bytes, a path, or a PIL image.
        max_pixels: the decode cap in pixels (width x height).
        max_frames: frames of an animation or video kept at most.
        max_output_pixels: each frame returned is scaled down (area-averaged, aspect kept) to
            at most this many pixels; None keeps the decoded size. The server's decode workers
            send back at most 4 MP a frame: CLIP sees 336 px a side (tiles included), OCR at
            most 1280 (rapidocr) or 2000 (tesseract) px on a tile's long side.
        exif_formats: the image formats whose EXIF orientation is applied, as the viewer's
            browser does (`simclip.images.decode_image`); None applies it in every format.
        display_rules: the rules of `simclip.display.DISPLAY_RULES` the viewer's browser
            follows where browsers disagree; none by default.

    Raises:
        ImageError: a typed subclass (CorruptImageError, ImageTooLargeError...; a VideoError
            for a video).
    """
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    if is_video(data):
        frames = decode_video(data, max_frames=max_frames)
    elif is_svg(data):
        frames = _svg_frames(bytes(data), max_pixels, max_frames, max_output_pixels,
                             exif_formats, display_rules)
    else:
        try:
            frames = decode_frames(data, max_pixels=max_pixels, max_frames=max_frames,
                                   exif_formats=exif_formats, max_output_pixels=max_output_pixels,
                                   display_rules=display_rules)
        except UnrecognisedImageError as e:
            raise UnsupportedImageError(f"not a picture in an allowed format (images: "
                                        f"{', '.join(list_image_formats())}, SVG with an "
                                        f"embedded picture; videos: MP4, WebM)") from e
    if max_output_pixels:
        frames = [shrink(frame, max_output_pixels) for frame in frames]
    return frames[0] if len(frames) == 1 else Frames(frames)


def _svg_frames(data: bytes, max_pixels: int, max_frames: int, max_output_pixels: int | None,
                exif_formats: Collection[str] | None, display_rules: Collection[str],
                depth: int = 1) -> list[Image.Image]:
    """The frames of the pictures an SVG embeds (`simclip.svg`), the largest first, at most
    `max_frames` in all; an embedded picture that does not decode is skipped, and when none
    decodes, the first one's error is raised."""
    frames: list[Image.Image] = []
    first_error: ImageError | None = None
    for picture in svg_pictures(data):
        try:
            if is_svg(picture):
                if depth >= MAX_SVG_DEPTH:
                    continue
                found = _svg_frames(picture, max_pixels, max_frames, max_output_pixels,
                                    exif_formats, display_rules, depth + 1)
            else:
                found = decode_frames(picture, max_pixels=max_pixels, max_frames=max_frames,
                                      exif_formats=exif_formats,
                                      max_output_pixels=max_output_pixels,
                                      display_rules=display_rules)
        except ImageError as e:
            first_error = first_error or e
            continue
        frames.extend(found[:max_frames - len(frames)])
        if len(frames) >= max_frames:
            break
    if not frames:
        raise first_error or UnsupportedImageError("an SVG whose embedded pictures are SVGs "
                                                   f"nested deeper than {MAX_SVG_DEPTH}")
    return frames


def read_picture_text(ocr: OCREngine, image: Image.Image | Frames) -> str:
    """OCR text of a decoded picture ('' when the engine is 'none' or finds nothing); for
    `Frames`, every frame is read and the texts merged (`merge_texts`)."""
    return read_picture_text_within(ocr, image, None)[0]


def read_picture_text_within(ocr: OCREngine, image: Image.Image | Frames,
                             budget_s: float | None) -> tuple[str, bool]:
    """OCR text of a decoded picture read within a time budget, and whether it is complete.

    The frames of `Frames` are read in order; the next one is not started when the time spent
    so far plus the slowest frame's would pass `budget_s`, and the text read until then is the
    result (merged, `merge_texts`). One frame is always read: a hard limit on it is the
    caller's (the server kills its OCR worker).

    Args:
        ocr: the OCR engine.
        image: a decoded picture (`decode_picture`).
        budget_s: seconds of wall-clock time; None reads every frame.

    Returns:
        (text, complete): complete is False when frames were left unread.
    """
    frames = list(image) if isinstance(image, Frames) else [image]
    t0 = time.monotonic()
    texts: list[str] = []
    slowest = 0.0
    for frame in frames:
        spent = time.monotonic() - t0
        if texts and budget_s is not None and spent + slowest > budget_s:
            return merge_texts(texts), False
        t_frame = time.monotonic()
        texts.append(ocr(frame))
        slowest = max(slowest, time.monotonic() - t_frame)
    return (merge_texts(texts) if len(texts) > 1 else texts[0]), True


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
