"""Safe image decoding: an allowlist of formats, a pixel cap before decoding, RGB frames out.

Pillow opens about 43 formats by default, EPS among them, which launches Ghostscript; every
image reaching this module comes from an arbitrary web page, so only the formats memes use are
opened (THREATS.md T9 to T11).

What comes out is what a viewer sees (docs/api.md, "What is judged"):

- Orientation and colour as the browser paints them (`simclip.display`): the EXIF orientation
  in the formats the viewer's browser honours it in, an ICC profile's colours in sRGB.
- Transparency is composited on a background that keeps the content visible: black behind light
  content (white captions on a transparent sticker), white behind dark content.
- An animation gives the frames a viewer sees (`decode_frames`): the APNG default image, which
  browsers never show, and blank frames are skipped, and up to MAX_ANIMATION_FRAMES frames are
  sampled over the animation within a bound on frames, pixels and time.
- Truncated JPEG and PNG data is decoded as far as it goes, as browsers paint it, per image
  (`simclip.truncation`; the global ImageFile.LOAD_TRUNCATED_IMAGES stays False, so threads never
  see each other's setting); data a browser paints nothing of (cut in or right after its header)
  is refused.
"""

from __future__ import annotations

import functools
import io
import math
import re
import struct
import time
import warnings
import zlib
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TypeAlias

import numpy as np
from PIL import Image, ImageChops, ImageFile, ImageStat, UnidentifiedImageError, features

from .bmp import BmpLayoutError, bmp_size, decode_bmp
from .constants import (
    ALLOWED_IMAGE_FORMATS,
    BLANK_FRAME_STDDEV,
    LIGHT_CONTENT_LUMINANCE,
    MAX_ANIMATION_DECODE_PIXELS,
    MAX_ANIMATION_DECODE_S,
    MAX_ANIMATION_FRAMES,
    MAX_ANIMATION_FRAMES_SCANNED,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    SAME_FRAME_DIFF,
)
from .display import colour_profile, orient, to_srgb
from .errors import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnrecognisedImageError,
    UnsupportedImageError,
)
from .truncation import (
    check_data_covers,
    jpeg_cut_in_header,
    paints_nothing,
    truncated_bmp,
    truncated_gif_frame,
    truncation_repairs,
    webp_animation_repaired,
    webp_vp8_payload,
)
from .video import decode_vp8_keyframe

ImageFile.LOAD_TRUNCATED_IMAGES = False  # global and shared by threads: truncation is handled per image

# What decode_image accepts: encoded bytes, a filesystem path, or an opened PIL image.
ImageSource: TypeAlias = bytes | bytearray | memoryview | str | Path | Image.Image

# Pillow's decoders signal malformed or truncated data with these (its fuzzers' expected set);
# the AVIF plugin raises RuntimeError ("Failed to decode image: Missing or empty image item").
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error,
                  RuntimeError)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_BOMB_SIZE = re.compile(r"\((\d+) pixels\)")  # Pillow's "Image size (N pixels) exceeds limit of..."
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP", "AVIF")
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# An ICC profile inflated from a PNG at most (Chromium's libpng refuses chunks over 8 MB)
MAX_ICC_PROFILE_BYTES = 8_000_000


class Frames(list[Image.Image]):
    """The frames of one animation (or video) that a viewer sees: two or more upright RGB
    images, in order.

    `simclip.Predictor.decode` returns one for an animation or a video (`simclip.video`) with
    more than one visible frame;
    `Predictor.read_text` reads every frame and `Predictor.classify` scores every frame.
    """


def list_image_formats() -> list[str]:
    """The allowed formats this Pillow build can decode, as Pillow names them ('JPEG', 'PNG', ...).

    A subset of ALLOWED_IMAGE_FORMATS: AVIF only when this Pillow build has the AVIF plugin.
    """
    formats = [f for f in ALLOWED_IMAGE_FORMATS if f != "AVIF"]
    if features.check("avif"):
        formats.append("AVIF")
    return formats


def _open(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open lazily (header only) with the format allowlist. `max_pixels` caps what is decoded
    while opening (a BMP layout Pillow refuses); the caller checks the size of anything else."""
    try:
        try:
            return _open_allowed(data)
        except ValueError:
            # Pillow refuses a PNG whose compressed text or ICC profile inflates past its limit
            # (1 MB); browsers paint it: open it without them, the profile inflated here.
            bare, icc = _png_without_compressed_chunks(data)
            if bare is None:
                raise
            img = _open_allowed(bare)
            if icc:
                img.info["icc_profile"] = icc
            return img
    except UnidentifiedImageError as e:
        if jpeg_cut_in_header(data):
            raise CorruptImageError("JPEG data is truncated in its header: nothing to show") from e
        raise UnrecognisedImageError(
            f"not an image in an allowed format ({', '.join(list_image_formats())})"
        ) from e
    except _BOMB_ERRORS as e:
        raise _too_large(e) from e
    except _DECODE_ERRORS as e:
        if jpeg_cut_in_header(data):
            raise CorruptImageError("JPEG data is truncated in its header: nothing to show") from e
        painted = _bmp_as_painted(data, max_pixels)
        if painted is not None:  # a BMP layout Pillow refuses and browsers paint
            return painted
        repaired = webp_animation_repaired(data)
        if repaired is not None:  # an animated WebP cut short: the frames that arrived
            return _open(repaired, max_pixels)
        # The magic bytes matched but no valid header follows (e.g. HTML behind a PNG
        # signature): not an image at all, as far as any caller is concerned.
        raise UnsupportedImageError(f"not a valid image: malformed header ({e})") from e


def _bmp_as_painted(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image | None:
    """An uncompressed BMP in a layout Pillow refuses, decoded as browsers paint it
    (`simclip.bmp`), or None for any other bytes. Raises ImageTooLargeError (over `max_pixels`)
    and ImageDataTooShortError as the other formats' checks do, before any pixel is decoded."""
    size = bmp_size(data)
    if size is None:
        return None
    check_dimensions(*size, max_pixels=max_pixels)
    check_data_covers(data, "BMP", *size)
    try:
        return decode_bmp(data, max_pixels)
    except BmpLayoutError:
        return None


def _open_allowed(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on bad metadata
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=list_image_formats())


def _png_without_compressed_chunks(data: bytes) -> tuple[bytes | None, bytes | None]:
    """(PNG `data` without its zTXt, iTXt and iCCP chunks, its ICC profile inflated up to
    MAX_ICC_PROFILE_BYTES), or (None, None) when `data` is not a PNG or has none of them."""
    if not data.startswith(_PNG_SIGNATURE):
        return None, None
    kept, icc, dropped = [data[:len(_PNG_SIGNATURE)]], None, False
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = min(len(data), pos + 12 + length)
        if kind in (b"zTXt", b"iTXt", b"iCCP"):
            dropped = True
            if kind == b"iCCP" and icc is None:
                icc = _inflate_icc(data[pos + 8:pos + 8 + length])
        else:
            kept.append(data[pos:end])
        pos = end
    kept.append(data[pos:])
    return (b"".join(kept), icc) if dropped else (None, None)


def _inflate_icc(body: bytes, check: bool = True) -> bytes | None:
    """The profile of an iCCP chunk's body (name, 0, method 0, zlib data), None when it does
    not inflate whole within MAX_ICC_PROFILE_BYTES (a zlib bomb is cut there, not inflated; a
    stream cut short is no profile) or, with `check`, when its zlib checksum is wrong (without
    it, the deflate data alone is read, as Firefox reads it)."""
    name_end = body.find(b"\x00")
    if name_end < 0 or body[name_end + 1:name_end + 2] != b"\x00":
        return None
    stream = body[name_end + 2:]
    inflater = zlib.decompressobj() if check else zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        icc = inflater.decompress(stream if check else stream[2:], MAX_ICC_PROFILE_BYTES)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail or not inflater.eof else icc  # cut short: ignored


def _png_profile_unchecked(data: bytes) -> bytes | None:
    """The profile of PNG `data`'s first iCCP chunk before its image data, read without its zlib
    checksum (`_inflate_icc`), or None."""
    for kind, start, length in _png_header_chunks(data):
        if kind == b"iCCP":
            return _inflate_icc(data[start:start + length], check=False)
    return None


def _too_large(bomb: Exception) -> ImageTooLargeError:
    """Pillow's decompression-bomb refusal (far past our own limit) told in our limit's terms."""
    found = _BOMB_SIZE.search(str(bomb))
    size = f"{int(found.group(1)):,} px" if found else "bigger than Pillow decodes"
    return ImageTooLargeError(f"image is {size}, over the {MAX_IMAGE_PIXELS:,} px limit")


def struct_error() -> type[struct.error]:
    """struct.error, raised by some Pillow header parsers on short input."""
    return struct.error


def check_dimensions(width: int, height: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse zero (UnsupportedImageError), oversized or bomb-like (ImageTooLargeError) sizes."""
    if width <= 0 or height <= 0:
        raise UnsupportedImageError(f"image has an invalid size {width}x{height}")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise ImageTooLargeError(
            f"image side {max(width, height)} px exceeds the {MAX_IMAGE_SIDE} px limit"
        )
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height:,} px, over the {max_pixels:,} px limit"
        )


# ------------------------------------------------------------------------------- transparency

def choose_background(image: Image.Image) -> tuple[int, int, int]:
    """The background that keeps an RGBA image's content visible: black (0, 0, 0) when the
    alpha-weighted mean luminance of its pixels is over LIGHT_CONTENT_LUMINANCE (light content,
    such as white caption letters), else white. A fully transparent image gets white."""
    small = image
    if image.width * image.height > 256 * 256:  # the statistic needs no more than this
        scale = 256 / max(image.size)
        small = image.resize((max(1, round(image.width * scale)),
                              max(1, round(image.height * scale))), Image.Resampling.NEAREST)
    rgba = small.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64)
    if alpha.sum() <= 0:
        return (255, 255, 255)
    lum = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float64)
    mean = float((lum * alpha).sum() / alpha.sum())
    return (0, 0, 0) if mean > LIGHT_CONTENT_LUMINANCE else (255, 255, 255)


def _composite(rgba: Image.Image) -> Image.Image:
    """RGBA -> RGB on `choose_background`'s colour (alpha blended)."""
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return rgba.convert("RGB")
    out = Image.new("RGB", rgba.size, choose_background(rgba))
    out.paste(rgba.convert("RGB"), mask=alpha)
    return out


def _eight_bit_grey(img: Image.Image) -> Image.Image:
    """16/32-bit greyscale scaled to 8 bits ('L'), rather than clipped to white."""
    return img.point(lambda v: v / 256).convert("L")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode (RGBA, LA, PA, P, CMYK, I;16, 1, ...) to RGB.

    Every alpha-carrying form (an alpha band, a palette or colour key `transparency`, 16-bit
    grey with a tRNS key) is composited on the background `choose_background` picks.
    """
    transparency = img.info.get("transparency")
    if img.mode == "RGB" and transparency is None:
        return img
    if img.mode in _WIDE_GREY:
        grey = _eight_bit_grey(img)
        if isinstance(transparency, int):
            key = np.asarray(img) != transparency
            alpha = Image.fromarray(key.astype(np.uint8) * 255, "L")
            return _composite(Image.merge("LA", (grey, alpha)).convert("RGBA"))
        return grey.convert("RGB")
    if img.mode == "La":
        img = img.convert("LA")  # Pillow converts premultiplied La only to LA
    if transparency is not None and img.mode in ("P", "L", "RGB", "1"):
        try:
            img = img.convert("RGBA")
        except ValueError:
            return img.convert("RGB")
    if img.mode in _ALPHA_MODES:
        return _composite(img.convert("RGBA"))
    return img.convert("RGB")


# ---------------------------------------------------------------------------------- loading

def _load(img: Image.Image) -> None:
    """Load the current frame, with Pillow's bomb warning as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on bad metadata
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img.load()


def _decoded_or_none(data: bytes) -> Image.Image | None:
    """`data` opened (format allowlist) and loaded, or None when it does not decode."""
    try:
        img = _open(data)
        _load(img)
    except (ImageError, *_DECODE_ERRORS, *_BOMB_ERRORS, MemoryError):
        return None
    return img


def _frame_as_painted(data: bytes, img: Image.Image) -> Image.Image | None:
    """The first frame of a GIF or BMP cut short, or of a lossy WebP damaged in the middle, as
    browsers paint it (`simclip.truncation`; FFmpeg's VP8 decoder conceals a WebP's damage), or
    None: another format, or nothing to paint. `img` is `data` opened, its load failed."""
    if img.format == "BMP":  # cut short, or a layout Pillow opens and cannot load (a palette too long)
        try:
            frame = truncated_bmp(data, lambda: _open(data))
        except (ImageError, *_DECODE_ERRORS, MemoryError):
            frame = None
        return frame if frame is not None else _bmp_as_painted(data)
    try:
        if img.format == "GIF":
            return truncated_gif_frame(lambda: _open(data))
        payload = webp_vp8_payload(data) if img.format == "WEBP" else None
        frame = decode_vp8_keyframe(payload, img.size) if payload else None
    except (ImageError, *_DECODE_ERRORS, MemoryError):
        return None
    if frame is not None:
        frame.info.update(img.info)  # its EXIF orientation, its ICC profile
    return frame


def _open_loaded(data: bytes, max_pixels: int) -> tuple[Image.Image, bool]:
    """(image opened and its first frame loaded, animated); truncated data repaired per image.

    Raises the typed ImageError of `decode_image`.
    """
    img = _open(data, max_pixels)
    check_dimensions(*img.size, max_pixels=max_pixels)
    check_data_covers(data, img.format, *img.size)
    try:  # before load: GIF seeks to tell. An MPO (JPEG with a stereo view or a preview
        # after it) shows its first picture in browsers: only these formats animate.
        animated = img.format in _ANIMATED_FORMATS and bool(getattr(img, "is_animated", False))
    except (*_DECODE_ERRORS, *_BOMB_ERRORS):
        animated = False
    try:
        img.seek(0)
        _load(img)
        return img, animated
    except _BOMB_ERRORS as e:
        raise _too_large(e) from e
    except MemoryError as e:
        raise ImageTooLargeError("image is too large to decode in memory") from e
    except _DECODE_ERRORS as e:
        error = e
    frame = _frame_as_painted(data, img)
    if frame is not None:
        frame.format = img.format
        return frame, False
    if img.format == "GIF":
        raise CorruptImageError(
            f"GIF data is truncated before its first pixels: nothing to show ({error})"
        ) from error
    for repaired in truncation_repairs(data, img.format):
        fixed = repaired if isinstance(repaired, Image.Image) else _decoded_or_none(repaired)
        if fixed is None or fixed.size != img.size:
            continue
        if paints_nothing(fixed, data, _decoded_or_none):
            raise CorruptImageError(
                f"image data is truncated before its first rows: nothing to show ({error})"
            ) from error
        return fixed, False
    raise CorruptImageError(f"image data is truncated or malformed: {error}") from error


# ---------------------------------------------------------------------------------- display

_RESIZABLE_MODES = ("RGB", "RGBA", "L", "LA", "CMYK")  # resized by area, alpha premultiplied


def _png_header_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, data start, length) of each chunk of PNG `data` before its image data (`IDAT`)."""
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            return
        yield kind, pos + 8, length
        pos += 12 + length


def png_header_exif(data: bytes) -> bytes | None:
    """The EXIF block browsers read in PNG `data`: its first `eXIf` chunk, when that comes
    before the image data (`IDAT`), with the `Exif\\0\\0` header Pillow gives it; else None.
    Browsers ignore an `eXIf` after the image data, and Pillow reports the last one read."""
    for kind, start, length in _png_header_chunks(data):
        if kind == b"eXIf":
            return b"Exif\x00\x00" + data[start:start + length]
    return None


def is_apng(data: bytes) -> bool:
    """Whether PNG `data` is an APNG as browsers tell one: an animation control chunk (`acTL`)
    before the image data, even one announcing a single frame (which Pillow reports as still)."""
    return any(kind == b"acTL" for kind, _, _ in _png_header_chunks(data))


def shrink(image: Image.Image, max_pixels: int) -> Image.Image:
    """`image` scaled down to at most `max_pixels` pixels, aspect kept (BOX: area average)."""
    if image.width * image.height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (image.width * image.height))
    size = (max(1, math.floor(image.width * scale)), max(1, math.floor(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


def _frame_rgb(img: Image.Image, exif_formats: Collection[str] | None, exif: bytes | None = None,
               max_pixels: int | None = None, fmt: str | None = None,
               display_rules: Collection[str] = ()) -> Image.Image:
    """The current frame as the browser paints it, an RGB copy (the file object moves on when
    it seeks): turned by its EXIF orientation (`exif`, default the image's own block) where
    `exif_formats` and `display_rules` say so for its format `fmt` (default the image's;
    `simclip.display.orient`), its ICC profile's colours converted to sRGB,
    transparency composited. A frame with a profile is scaled down to `max_pixels` before its
    colour conversion, which costs about twice its decoding at full size."""
    turned = orient(img, exif_formats, fmt=fmt, exif=exif, display_rules=display_rules)
    icc = colour_profile(turned, display_rules)
    if icc and turned.mode in _WIDE_GREY and "transparency" not in turned.info:
        turned = _eight_bit_grey(turned)  # the grey profile applies to 8-bit grey as well
        turned.info["icc_profile"] = icc
    if max_pixels and icc and turned.mode in _RESIZABLE_MODES:
        turned = shrink(turned, max_pixels)
    rgb = _to_rgb(to_srgb(turned, display_rules))
    return rgb if rgb is not img else img.copy()


# ---------------------------------------------------------------------------------- animation


def _thumbnail(frame: Image.Image) -> Image.Image:
    return frame.resize((64, 64), Image.Resampling.BOX)


def _scan_animation(img: Image.Image, max_frames: int, first_only: bool,
                    paint: Callable[[Image.Image], Image.Image]) -> list[Image.Image]:
    """The frames a viewer sees, sampled over the animation within the decode bounds."""
    start = 1 if img.format == "PNG" and img.info.get("default_image") else 0
    kept: list[tuple[int, Image.Image]] = []  # (candidate number, frame), every stride-th
    latest: tuple[int, Image.Image] | None = None  # the last candidate, so the end is sampled
    stride, candidates = 1, 0
    fallback: tuple[float, Image.Image] | None = None  # the least uniform blank frame
    last_thumb = None
    pixels, scanned, t0 = 0, 0, time.monotonic()
    index = start
    while scanned < MAX_ANIMATION_FRAMES_SCANNED:
        try:
            img.seek(index)
            check_dimensions(*img.size, max_pixels=MAX_IMAGE_PIXELS)
            _load(img)
            frame = paint(img)
        except EOFError:
            break
        except (ImageError, *_DECODE_ERRORS, *_BOMB_ERRORS, MemoryError):
            break  # a frame that does not decode ends the animation, as in browsers
        scanned += 1
        pixels += img.width * img.height
        thumb = _thumbnail(frame)
        spread = max(ImageStat.Stat(thumb).stddev)
        if spread < BLANK_FRAME_STDDEV:
            if fallback is None or spread > fallback[0]:
                fallback = (spread, frame)
        elif last_thumb is None or \
                max(ImageStat.Stat(ImageChops.difference(thumb, last_thumb)).mean) >= SAME_FRAME_DIFF:
            last_thumb = thumb
            latest = (candidates, frame)
            if candidates % stride == 0:
                kept.append(latest)
            candidates += 1
            while len(kept) > 4 * max_frames:  # keep every other one: the sample stays spread
                stride *= 2
                kept = [(c, f) for c, f in kept if c % stride == 0]
            if first_only:
                break
        if pixels >= MAX_ANIMATION_DECODE_PIXELS or time.monotonic() - t0 > MAX_ANIMATION_DECODE_S:
            break
        index += 1
    if latest is not None and latest[0] != kept[-1][0]:
        kept.append(latest)
    if kept:
        if len(kept) <= max_frames:
            return [f for _, f in kept]
        last = kept[-1][0]
        targets = [i * last / max(1, max_frames - 1) for i in range(max_frames)]
        picks = sorted({min(range(len(kept)), key=lambda k: abs(kept[k][0] - t)) for t in targets})
        return [kept[k][1] for k in picks]
    if fallback is not None:
        return [fallback[1]]
    img.seek(0)  # nothing after the APNG default image decoded: show what there is
    _load(img)
    return [paint(img)]


def _decode(data: ImageSource, max_pixels: int, max_frames: int, first_only: bool,
            exif_formats: Collection[str] | None,
            max_output_pixels: int | None = None,
            display_rules: Collection[str] = ()) -> list[Image.Image]:
    if isinstance(data, Image.Image):
        check_dimensions(*data.size, max_pixels=max_pixels)
        return [_frame_rgb(data, exif_formats, max_pixels=max_output_pixels,
                           display_rules=display_rules)]
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, a path or a PIL image, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise EmptyImageError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on bad metadata
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img, animated = _open_loaded(data, max_pixels)
            exif, fmt = None, img.format
            if img.format == "PNG":
                exif, fmt = png_header_exif(data) or b"", "APNG" if is_apng(data) else "PNG"
                if "png-icc-checksum-ignored" in display_rules and not img.info.get("icc_profile"):
                    icc = _png_profile_unchecked(data)
                    if icc:
                        img.info["icc_profile"] = icc
            paint = functools.partial(_frame_rgb, exif_formats=exif_formats, exif=exif, fmt=fmt,
                                      max_pixels=max_output_pixels, display_rules=display_rules)
            if animated and max_frames >= 1:
                return _scan_animation(img, max_frames, first_only, paint)
            return [paint(img)]
    except ImageError:
        raise
    except _BOMB_ERRORS as e:
        raise _too_large(e) from e
    except MemoryError as e:
        raise ImageTooLargeError("image is too large to decode in memory") from e
    except _DECODE_ERRORS as e:
        raise CorruptImageError(f"image data is truncated or malformed: {e}") from e


def decode_image(data: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS,
                 exif_formats: Collection[str] | None = None,
                 display_rules: Collection[str] = ()) -> Image.Image:
    """Decode bytes (or a path, or a PIL image) into one upright RGB PIL image.

    Only the formats of `list_image_formats()` are opened (THREATS.md T9 to T11). For an
    animation this is the first frame a viewer sees (`decode_frames` gives several).

    Args:
        data: encoded image bytes, a filesystem path (str or Path), or an opened PIL image
            (its current frame is used).
        max_pixels: width x height cap in pixels, checked from the header before decoding;
            each side is also capped at MAX_IMAGE_SIDE (16,384 pixels).
        exif_formats: the formats whose EXIF orientation is applied, as the viewer's browser
            does (`simclip.display.orient`: a subset of 'JPEG', 'PNG', 'WEBP'); None applies it
            in every format. An AVIF's rotation is always applied.
        display_rules: the rules of `simclip.display.DISPLAY_RULES` the viewer's browser
            follows where browsers disagree ('exif-last-entry', 'apng-exif-ignored'...); none
            by default.

    Returns:
        An RGB `PIL.Image.Image`: EXIF orientation applied (from the EXIF block only, per
        `exif_formats`); an embedded ICC profile's colours converted to sRGB
        (`simclip.display.to_srgb`); transparency composited on the
        background that keeps the content visible (`choose_background`); for an animation,
        its first non-blank frame (after the APNG default image); for truncated JPEG or PNG
        data, what arrived, the rest filled.

    Raises:
        EmptyImageError: zero bytes.
        UnsupportedImageError: not an allowed format, a malformed header, or a zero size.
        ImageTooLargeError: over `max_pixels` or the side cap, or a decompression bomb.
        CorruptImageError: an allowed format whose data is malformed, or truncated before any
            pixel row (a JPEG cut in or right after its header).
        TypeError: `data` is none of the accepted types.
        OSError: a path that cannot be read.
    """
    return _decode(data, max_pixels, 1, first_only=True, exif_formats=exif_formats,
                   display_rules=display_rules)[0]


def decode_frames(data: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS,
                  max_frames: int = MAX_ANIMATION_FRAMES,
                  exif_formats: Collection[str] | None = None,
                  max_output_pixels: int | None = None,
                  display_rules: Collection[str] = ()) -> list[Image.Image]:
    """Decode into the frames a viewer sees: one for a still image, up to `max_frames` for an
    animation (GIF, APNG, animated WebP or AVIF).

    The frames are decoded in order, the APNG default image (never shown by browsers) and
    blank (near-uniform) or repeated frames skipped, and `max_frames` of them are sampled
    evenly over the animation. At most MAX_ANIMATION_FRAMES_SCANNED frames are decoded, and
    scanning stops once MAX_ANIMATION_DECODE_PIXELS canvas pixels were decoded or
    MAX_ANIMATION_DECODE_S seconds passed, or at a frame that fails to decode: the frames
    found so far are the result. An animation whose frames are all blank gives its least
    uniform one.

    Args:
        data: as for `decode_image` (a PIL image gives its current frame only).
        max_pixels: the canvas cap in pixels, as for `decode_image`.
        max_frames: frames returned at most (>= 1).
        exif_formats, display_rules: as for `decode_image`.
        max_output_pixels: a frame with an ICC profile is scaled down to at most this many
            pixels (aspect kept, `shrink`) before its colours are converted, which is then
            about ten times cheaper on a 40 MP photo; None keeps every frame's size. Frames
            without a profile keep their size: the caller shrinks them.

    Returns:
        A non-empty list of upright RGB images, in display order.

    Raises:
        The errors of `decode_image`, for the first frame.
    """
    return _decode(data, max_pixels, max(1, max_frames), first_only=False,
                   exif_formats=exif_formats, max_output_pixels=max_output_pixels,
                   display_rules=display_rules)
