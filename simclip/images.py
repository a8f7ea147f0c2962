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
- Truncated JPEG and PNG data is decoded as far as it goes, as browsers paint it, per image (the
  global ImageFile.LOAD_TRUNCATED_IMAGES stays False, so threads never see each other's setting);
  data a browser paints nothing of (cut in or right after its header) is refused.
"""

from __future__ import annotations

import io
import math
import struct
import time
import warnings
import zlib
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TypeAlias

import numpy as np
from PIL import Image, ImageChops, ImageFile, ImageStat, UnidentifiedImageError, features

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
    MAX_TILES,
    SAME_FRAME_DIFF,
    TILE_MIN_ASPECT,
)
from .display import orient, to_srgb
from .errors import (
    CorruptImageError,
    EmptyImageError,
    ImageDataTooShortError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # global and shared by threads: truncation is handled per image

# What decode_image accepts: encoded bytes, a filesystem path, or an opened PIL image.
ImageSource: TypeAlias = bytes | bytearray | memoryview | str | Path | Image.Image

# Pillow's decoders signal malformed or truncated data with these (its fuzzers' expected set);
# the AVIF plugin raises RuntimeError ("Failed to decode image: Missing or empty image item").
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error,
                  RuntimeError)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP", "AVIF")
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_MIN_PAINTED_ROWS = 32  # two 16-px MCU rows: less than this of a truncated JPEG shows nothing
# A canvas over this many pixels whose bytes cannot hold it is refused (check_data_covers);
# under it a truncated picture costs little and is painted as far as its data goes.
COVER_CHECK_MIN_PIXELS = 1 << 20
_DEFLATE_MAX_RATIO = 1032  # deflate's best ratio: 258 bytes per 2-bit code, with block overhead
_JPEG_HUFFMAN_SOF = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7)  # not arithmetic-coded (C9-CF)


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


def _jpeg_segments(data: bytes) -> tuple[int | None, int | None]:
    """(where the first scan's coded data starts, the frame's SOF marker) in a JPEG whose marker
    segments are well formed up to there: the start is past len(data) when the data ends before
    it (a download cut short); (None, None) for a malformed header or not a JPEG."""
    if not data.startswith(b"\xff\xd8\xff"):
        return None, None
    i, n, sof = 2, len(data), None
    while i < n:
        if data[i] != 0xFF:
            return None, None
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in (0x00, 0xD9):
            return None, None
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers
            continue
        if i + 2 > n:
            break
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2:
            return None, None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and sof is None:
            sof = marker  # a start of frame (not DHT, JPG or DAC)
        i += length
        if marker == 0xDA:  # start of scan
            return i, sof
    return n + 1, sof


def _jpeg_scan_start(data: bytes) -> int | None:
    """Where the first scan's coded data starts (`_jpeg_segments`), or None."""
    return _jpeg_segments(data)[0]


def _jpeg_cut_in_header(data: bytes) -> bool:
    scan = _jpeg_scan_start(data)
    return scan is not None and scan > len(data)


def _open(data: bytes) -> Image.Image:
    """Open lazily (header only) with the format allowlist."""
    fp = io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on bad metadata
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(fp, formats=list_image_formats())
    except UnidentifiedImageError as e:
        if _jpeg_cut_in_header(data):
            raise CorruptImageError("JPEG data is truncated in its header: nothing to show") from e
        raise UnsupportedImageError(
            f"not an image in an allowed format ({', '.join(list_image_formats())})"
        ) from e
    except _BOMB_ERRORS as e:
        raise ImageTooLargeError(f"image dimensions exceed the decoder's safety limit: {e}") from e
    except _DECODE_ERRORS as e:
        if _jpeg_cut_in_header(data):
            raise CorruptImageError("JPEG data is truncated in its header: nothing to show") from e
        # The magic bytes matched but no valid header follows (e.g. HTML behind a PNG
        # signature): not an image at all, as far as any caller is concerned.
        raise UnsupportedImageError(f"not a valid image: malformed header ({e})") from e


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


def _png_coverable_bytes(data: bytes) -> int:
    """The most filtered-scanline bytes the IDAT data present can inflate to (deflate's best
    ratio, plus a little for the zlib framing)."""
    pos, idat = 8, 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += max(0, min(length, len(data) - pos - 8))
        elif kind == b"IEND":
            break
        pos += 12 + length
    return idat * _DEFLATE_MAX_RATIO + 1024


def _png_needed_bytes(data: bytes) -> int | None:
    """The filtered-scanline bytes the IHDR's canvas needs; None for a malformed IHDR."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        return None
    return _png_raw_size(width, height, channels * depth, bool(interlace))[0]


def _jpeg_coverable_share(data: bytes, width: int, height: int) -> float | None:
    """The most of a Huffman-coded JPEG's canvas its entropy-coded bytes can hold: every block
    of the full-resolution component costs at least one bit (its DC code); None for an
    arithmetic-coded or unparsable JPEG, whose blocks can cost less."""
    scan, sof = _jpeg_segments(data)
    if scan is None or scan > len(data) or sof not in _JPEG_HUFFMAN_SOF:
        return None
    blocks = math.ceil(width / 8) * math.ceil(height / 8)
    return (len(data) - scan) * 8 / blocks


def check_data_covers(data: bytes, fmt: str | None, width: int, height: int) -> None:
    """Refuse a PNG or JPEG whose bytes cannot hold the canvas its header declares.

    A PNG's IDAT bytes inflate to at most 1032 times their size (deflate's best ratio) and a
    Huffman-coded JPEG spends at least one bit on every 8x8 block; a file whose bytes fall
    short of the declared canvas by these bounds is truncated beyond doubt, and what a browser
    would paint of it is a sliver of an empty canvas. Over COVER_CHECK_MIN_PIXELS (1 MP) such a
    file is refused before any pixel is decoded (a 1 KB PNG claiming 6324x6324 16-bit RGBA, an
    824-byte progressive JPEG claiming 40 MP); smaller canvases decode as far as they go.

    Args:
        data: the file's bytes.
        fmt: its format as Pillow names it ('PNG', 'JPEG'; others are not checked).
        width, height: the canvas the header declares, in pixels.

    Raises:
        ImageDataTooShortError: the bytes cannot hold the canvas.
    """
    if width * height <= COVER_CHECK_MIN_PIXELS:
        return
    share = None
    if fmt == "PNG":
        needed = _png_needed_bytes(data)
        if needed:
            share = _png_coverable_bytes(data) / needed
    elif fmt in ("JPEG", "MPO"):
        share = _jpeg_coverable_share(data, width, height)
    if share is not None and share < 1.0:
        raise ImageDataTooShortError(
            f"the {fmt} declares {width}x{height} px, but its {len(data):,} bytes can hold at "
            f"most {share:.1%} of it: truncated beyond what a viewer would see")


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


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode (RGBA, LA, PA, P, CMYK, I;16, 1, ...) to RGB.

    Every alpha-carrying form (an alpha band, a palette or colour key `transparency`, 16-bit
    grey with a tRNS key) is composited on the background `choose_background` picks.
    """
    transparency = img.info.get("transparency")
    if img.mode == "RGB" and transparency is None:
        return img
    if img.mode in _WIDE_GREY:
        # 16/32-bit greyscale: scale to 8 bits rather than clip everything to white
        grey = img.point(lambda v: v / 256).convert("L")
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


# ---------------------------------------------------------------------------------- truncation

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_raw_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> tuple[int, int]:
    """(bytes of filtered scanlines for the whole image, bytes of its first scanline)."""
    def row(w):
        return 1 + (w * bits_per_pixel + 7) // 8
    if not interlaced:
        return height * row(width), row(width)
    total, first = 0, 0
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                           (1, 0, 2, 2), (0, 1, 1, 2)):
        pw, ph = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if pw > 0 and ph > 0:
            total += ph * row(pw)
            first = first or row(pw)
    return total, first


def _png_repaired(data: bytes) -> bytes | None:
    """A PNG cut short or damaged in its image data, rebuilt from the scanlines that inflate
    (the rest zero: black, or transparent with alpha); None when not one scanline does.

    Chunks are read up to the first one that ends early or fails its CRC; that chunk's bytes
    still count, as browsers decode a chunk's data while it streams in. Only IHDR, PLTE and tRNS
    travel with the pixels (an APNG becomes its default image).
    """
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    pos, ihdr, colour, idat = 8, None, [], []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        end = pos + 12 + length
        crc_ok = end <= len(data) and struct.unpack(">I", data[end - 4:end])[0] == \
            zlib.crc32(kind + body)
        if kind == b"IHDR":
            if not crc_ok or length != 13:
                return None
            ihdr = body
        elif kind in (b"PLTE", b"tRNS") and not idat and crc_ok:
            colour.append((kind, body))
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        if not crc_ok:
            break
        pos = end
    if ihdr is None or not idat:
        return None
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type)
    if channels is None or depth not in (1, 2, 4, 8, 16) or width * height > MAX_IMAGE_PIXELS:
        return None
    total, first_row = _png_raw_size(width, height, channels * depth, bool(interlace))
    stream, raw, inflate = b"".join(idat), bytearray(), zlib.decompressobj()
    try:
        for i in range(0, len(stream), 1 << 16):  # small steps keep what inflated before damage
            raw += inflate.decompress(stream[i:i + (1 << 16)], total - len(raw) + 1)
            if len(raw) >= total:
                break
    except zlib.error:
        pass
    if len(raw) < first_row:
        return None
    raw = bytes(raw[:total]) + bytes(max(0, total - len(raw)))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + b"".join(_png_chunk(k, b) for k, b in colour)
            + _png_chunk(b"IDAT", zlib.compress(raw, 1)) + _png_chunk(b"IEND", b""))


def _truncation_repairs(data: bytes, fmt: str | None) -> Iterator[bytes]:
    """Candidate byte strings that decode a truncated JPEG or PNG as far as its data goes.

    JPEG: the end-of-image marker is appended (what Pillow's LOAD_TRUNCATED_IMAGES does inside
    its reader), so libjpeg fills what never arrived with grey; when the cut fell inside a
    marker segment between progressive scans, the segment is dropped first.
    """
    if fmt in ("JPEG", "MPO"):
        yield data + b"\xff\xd9"
        last = data.rfind(b"\xff", 0, len(data) - 1)
        while last > 2 and (data[last + 1] == 0 or 0xD0 <= data[last + 1] <= 0xD7
                            or data[last + 1] == 0xFF):
            last = data.rfind(b"\xff", 0, last)  # stuffed bytes and restarts are scan data
        if last > 2:
            yield data[:last] + b"\xff\xd9"
    elif fmt == "PNG":
        repaired = _png_repaired(data)
        if repaired is not None:
            yield repaired


def _load(img: Image.Image) -> None:
    """Load the current frame, with Pillow's bomb warning as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on bad metadata
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img.load()


def _paints_nothing(fixed: Image.Image, data: bytes) -> bool:
    """True when a repaired decode shows nothing of the picture: a PNG whose rows are all the
    zero fill, or a JPEG that differs from its header alone (which libjpeg decodes to grey plus
    a block row or two made of the end marker itself) in no more than its first
    _MIN_PAINTED_ROWS rows: browsers paint only complete MCU rows, and nothing there."""
    if fixed.format == "PNG":
        return fixed.getbbox(alpha_only=False) is None
    scan = _jpeg_scan_start(data)
    if scan is None or scan > len(data):
        return False
    try:
        header_only = _open(data[:scan] + b"\xff\xd9")
        _load(header_only)
    except (ImageError, *_DECODE_ERRORS, *_BOMB_ERRORS, MemoryError):
        return False
    if header_only.size != fixed.size or header_only.mode != fixed.mode:
        return False
    bbox = ImageChops.difference(fixed, header_only).getbbox()
    return bbox is None or bbox[3] <= min(_MIN_PAINTED_ROWS, fixed.height - 1)


def _open_loaded(data: bytes, max_pixels: int) -> tuple[Image.Image, bool]:
    """(image opened and its first frame loaded, animated); truncated data repaired per image.

    Raises the typed ImageError of `decode_image`.
    """
    img = _open(data)
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
        raise ImageTooLargeError(f"image exceeds the decoder's safety limit: {e}") from e
    except MemoryError as e:
        raise ImageTooLargeError("image is too large to decode in memory") from e
    except _DECODE_ERRORS as e:
        error = e
    for repaired in _truncation_repairs(data, img.format):
        try:
            fixed = _open(repaired)
            if fixed.size != img.size:
                continue
            _load(fixed)
        except (ImageError, *_DECODE_ERRORS, *_BOMB_ERRORS, MemoryError):
            continue
        if _paints_nothing(fixed, data):
            raise CorruptImageError(
                f"image data is truncated before its first rows: nothing to show ({error})"
            ) from error
        return fixed, False
    raise CorruptImageError(f"image data is truncated or malformed: {error}") from error


# ---------------------------------------------------------------------------------- animation

def _frame_rgb(img: Image.Image, exif_formats: Collection[str] | None) -> Image.Image:
    """The current frame as the browser paints it, an RGB copy (the file object moves on when
    it seeks): turned by its EXIF orientation where `exif_formats` says so (`simclip.display`),
    its ICC profile's colours converted to sRGB, transparency composited."""
    rgb = _to_rgb(to_srgb(orient(img, exif_formats)))
    return rgb if rgb is not img else img.copy()


def _thumbnail(frame: Image.Image) -> Image.Image:
    return frame.resize((64, 64), Image.Resampling.BOX)


def _scan_animation(img: Image.Image, max_frames: int, first_only: bool,
                    exif_formats: Collection[str] | None) -> list[Image.Image]:
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
            frame = _frame_rgb(img, exif_formats)
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
    return [_frame_rgb(img, exif_formats)]


def _decode(data: ImageSource, max_pixels: int, max_frames: int, first_only: bool,
            exif_formats: Collection[str] | None) -> list[Image.Image]:
    if isinstance(data, Image.Image):
        check_dimensions(*data.size, max_pixels=max_pixels)
        return [_frame_rgb(data, exif_formats)]
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
            if animated and max_frames >= 1:
                return _scan_animation(img, max_frames, first_only, exif_formats)
            return [_frame_rgb(img, exif_formats)]
    except ImageError:
        raise
    except _BOMB_ERRORS as e:
        raise ImageTooLargeError(f"image exceeds the decoder's safety limit: {e}") from e
    except MemoryError as e:
        raise ImageTooLargeError("image is too large to decode in memory") from e
    except _DECODE_ERRORS as e:
        raise CorruptImageError(f"image data is truncated or malformed: {e}") from e


def decode_image(data: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS,
                 exif_formats: Collection[str] | None = None) -> Image.Image:
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
    return _decode(data, max_pixels, 1, first_only=True, exif_formats=exif_formats)[0]


def decode_frames(data: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS,
                  max_frames: int = MAX_ANIMATION_FRAMES,
                  exif_formats: Collection[str] | None = None) -> list[Image.Image]:
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
        exif_formats: as for `decode_image`.

    Returns:
        A non-empty list of upright RGB images, in display order.

    Raises:
        The errors of `decode_image`, for the first frame.
    """
    return _decode(data, max_pixels, max(1, max_frames), first_only=False,
                   exif_formats=exif_formats)


# ------------------------------------------------------------------------------ aspect ratio

def split_tiles(image: Image.Image, max_tiles: int = MAX_TILES,
                min_aspect: float = TILE_MIN_ASPECT) -> list[Image.Image]:
    """CLIP's view of a picture with an extreme aspect ratio: square tiles along its long side.

    CLIP's preprocessing keeps the centre square, so a 800x6400 stacked meme would lose 87.5%
    of its rows; tiles let every row reach the encoder at the scale of the short side
    (bench/aspect_bench.py, docs/api.md). A picture at most `min_aspect` times longer than
    wide (or wide than long) is returned alone, so common memes cost one encoder input.

    Args:
        image: an RGB image.
        max_tiles: the most tiles; a longer picture gets longer tiles, each padded to a
            square with black (open_clip's letterbox fill) so that nothing is cropped.
        min_aspect: the long/short side ratio over which the picture is tiled.

    Returns:
        [image] or 2..max_tiles tiles, ordered along the long side, overlapping evenly so that
        together they cover every pixel.
    """
    w, h = image.size
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 0 or long_side <= min_aspect * short_side or max_tiles < 2:
        return [image]
    n = min(max_tiles, math.ceil(long_side / short_side))
    side = max(short_side, math.ceil(long_side / n))
    offsets = [round(i * (long_side - side) / (n - 1)) for i in range(n)]
    tiles = []
    for o in offsets:
        box = (0, o, w, o + side) if h >= w else (o, 0, o + side, h)
        tile = image.crop(box)
        if side > short_side:
            square = Image.new("RGB", (side, side), (0, 0, 0))
            square.paste(tile, ((side - tile.width) // 2, (side - tile.height) // 2))
            tile = square
        tiles.append(tile)
    return tiles
