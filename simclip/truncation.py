"""Truncated and damaged JPEG, PNG, GIF and BMP data, painted as far as it goes, as browsers do.

Browsers paint a picture whose download was cut short row by row as far as its data goes;
a meme judged on less than that is a meme shown unjudged. This module decides, per image and
without Pillow's global LOAD_TRUNCATED_IMAGES (threads would see each other's setting):

- before decoding, whether the bytes can hold the canvas the header declares at all
  (`check_data_covers`: a 1 KB file claiming 40 MP is refused, not painted as an empty canvas);
- after a failed decode, the repaired byte strings to try (`truncation_repairs`: a JPEG with its
  end marker supplied, a PNG rebuilt from the scanlines that inflate), or for a GIF or BMP cut
  inside its first frame, the pixels that arrived (`truncated_gif_frame`, `truncated_bmp`);
- whether a repaired decode shows anything at all (`paints_nothing`).

`simclip.images` calls these; measured browser behaviour is in docs/api.md, "Truncated data".
"""

from __future__ import annotations

import functools
import io
import math
import re
import struct
import zlib
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageChops, ImageFile

from .bmp import bmp_fields
from .constants import MAX_IMAGE_PIXELS
from .errors import ImageDataTooShortError

MIN_PAINTED_ROWS = 32  # two 16-px MCU rows: less than this of a truncated JPEG shows nothing
# A canvas over this many pixels whose bytes cannot hold it is refused (check_data_covers);
# under it a truncated picture costs little and is painted as far as its data goes.
COVER_CHECK_MIN_PIXELS = 1 << 20
_GIF_MIN_CODE_BITS, _GIF_MAX_CODE_PIXELS = 3, 4096  # LZW: 2-bit minimum code size; 12-bit dictionary
_DEFLATE_MAX_RATIO = 1032  # deflate's best ratio: 258 bytes per 2-bit code, with block overhead
_JPEG_HUFFMAN_SOF = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7)  # not arithmetic-coded (C9-CF)


# ----------------------------------------------------------------------------------- headers

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


# Markers libjpeg takes after the first scan: DHT, DAC, SOS, DQT, DNL, DRI, APPn, COM; a marker
# elsewhere in coded data is damage, which libjpeg stops at with an error
_JPEG_BETWEEN_SCANS = frozenset((0xC4, 0xCC, 0xDA, 0xDB, 0xDC, 0xDD, *range(0xE0, 0xF0), 0xFE))
_JPEG_MAX_SEGMENTS = 1000  # a real JPEG has tens after its first scan: past this, no search
_JPEG_MARKER = re.compile(rb"\xff([^\x00\x01\xd0-\xd7\xff])")  # not a stuffed zero, TEM, RSTn or fill


def _jpeg_damage_at(data: bytes) -> int | None:
    """Where a JPEG's coded data holds a marker no JPEG has there, or None. A bit flipped into
    0xFF makes one (FF A0, or FF DB with a length that does not lead to the next marker):
    libjpeg stops the picture with an error at it, so Pillow refuses the whole file, while
    browsers paint what was decoded before it (the whole picture at a coarser scan for a
    progressive JPEG; Chromium 156 and Firefox 153, measured 2026-12-05). One regex scan, linear
    in the data whatever its bytes, over at most _JPEG_MAX_SEGMENTS marker segments."""
    scan = _jpeg_scan_start(data)
    if scan is None or scan > len(data):
        return None
    i, n, segments = scan, len(data), 0
    while (found := _JPEG_MARKER.search(data, i)) is not None:
        i, marker = found.start(), found.group(1)[0]
        if marker == 0xD9:  # end of image
            return None
        if marker not in _JPEG_BETWEEN_SCANS:
            return i
        if i + 4 > n:
            return None
        end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:  # SOS: 6 + 2 bytes a component, then the scan's coded data
            components = data[i + 4] if i + 4 < n else 0
            if not 1 <= components <= 4 or end - i - 2 != 6 + 2 * components:
                return i
        elif end >= n or data[end] != 0xFF:  # another segment is followed by a marker
            return i
        i, segments = end, segments + 1
        if segments > _JPEG_MAX_SEGMENTS:
            return None
    return None


def jpeg_cut_in_header(data: bytes) -> bool:
    """True for a JPEG whose data ends inside its marker segments, before its first scan."""
    scan = _jpeg_scan_start(data)
    return scan is not None and scan > len(data)


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


def _gif_first_frame(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, where its image data starts) of a GIF's first frame, from its image
    descriptor; None for a malformed GIF or one whose data ends before that descriptor."""
    if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while pos < len(data):
        if data[pos] == 0x21:  # an extension: its label, then sub-blocks up to a zero length
            pos += 2
            while pos < len(data) and data[pos]:
                pos += 1 + data[pos]
            pos += 1
        elif data[pos] == 0x2C and pos + 10 <= len(data):
            width, height = struct.unpack("<HH", data[pos + 5:pos + 9])
            flags = data[pos + 9]
            return width, height, pos + 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        else:
            return None
    return None


def _gif_coverable_share(data: bytes) -> float | None:
    """The most of a GIF's first frame its LZW data can hold: a code is at least 3 bits and
    stands for at most 4096 pixels (the longest string of a 12-bit dictionary)."""
    frame = _gif_first_frame(data)
    if frame is None or frame[0] * frame[1] == 0:
        return None
    width, height, start = frame
    return max(0, len(data) - start) * 8 / _GIF_MIN_CODE_BITS * _GIF_MAX_CODE_PIXELS / (width * height)


_BMP_UNCOMPRESSED = (0, 3, 6)  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: rows stored as they are


def _bmp_rows(data: bytes) -> tuple[int, int, bool] | None:
    """(rows whose bytes arrived, rows declared, stored top-down) of an uncompressed BMP; None
    for a compressed one (RLE, embedded JPEG or PNG), a malformed header, or not a BMP."""
    fields = bmp_fields(data)
    if fields is None:
        return None
    offset, _, width, height, bits, compression = fields
    if compression not in _BMP_UNCOMPRESSED or width <= 0 or height == 0 or bits not in (1, 2, 4, 8, 16, 24, 32):
        return None
    stride = (width * bits + 31) // 32 * 4  # rows are padded to 4 bytes
    return min(abs(height), max(0, len(data) - offset) // stride), abs(height), height < 0


def check_data_covers(data: bytes, fmt: str | None, width: int, height: int) -> None:
    """Refuse a PNG, JPEG, GIF or BMP whose bytes cannot hold the canvas its header declares.

    A PNG's IDAT bytes inflate to at most 1032 times their size (deflate's best ratio), a
    Huffman-coded JPEG spends at least one bit on every 8x8 block, and a GIF's LZW codes are at
    least 3 bits and stand for at most 4096 pixels each (its first frame, not its canvas, is
    checked: an animation's frames may be smaller); a file whose bytes fall short of the
    declared canvas by these bounds is truncated beyond doubt, and what a browser would paint
    of it is a sliver of an empty canvas. An uncompressed BMP stores its rows as they are: one
    with fewer than MIN_PAINTED_ROWS rows' bytes is such a sliver. Over COVER_CHECK_MIN_PIXELS
    (1 MP) such a file is refused before any pixel is decoded (a 1 KB PNG claiming 6324x6324
    16-bit RGBA, an 824-byte progressive JPEG claiming 40 MP, a 2 KB GIF claiming 16384x2441, a
    BMP header claiming 8000x5000 with a few rows behind it); smaller canvases decode as far as
    they go.

    Args:
        data: the file's bytes.
        fmt: its format as Pillow names it ('PNG', 'JPEG', 'GIF', 'BMP'; others are not checked).
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
    elif fmt == "GIF":
        share = _gif_coverable_share(data)
    elif fmt == "BMP":
        rows = _bmp_rows(data)
        if rows is not None and rows[0] < min(MIN_PAINTED_ROWS, rows[1]):
            raise ImageDataTooShortError(
                f"the BMP declares {width}x{height} px, but its {len(data):,} bytes hold {rows[0]} of its "
                f"rows: truncated beyond what a viewer would see")
    if share is not None and share < 1.0:
        raise ImageDataTooShortError(
            f"the {fmt} declares {width}x{height} px, but its {len(data):,} bytes can hold at "
            f"most {share:.1%} of it: truncated beyond what a viewer would see")


# -------------------------------------------------------------------------------- repairs

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# Adam7: each pass's first pixel (x0, y0) and step (dx, dy), and the block (width, height) each
# of its pixels stands for until later passes arrive (libpng's "rectangle" progressive display)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_ADAM7_BLOCKS = ((8, 8), (4, 8), (4, 4), (2, 4), (2, 2), (1, 2), (1, 1))


def _png_passes(width: int, height: int, interlaced: bool) -> list[tuple[int, int]]:
    """(pixels a row, rows) of each pass that holds pixels: the whole image when not interlaced."""
    if not interlaced:
        return [(width, height)]
    sizes = [((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy) for x0, y0, dx, dy in _ADAM7]
    return [(w, h) if w > 0 and h > 0 else (0, 0) for w, h in sizes]


def _png_row_bytes(width: int, bits_per_pixel: int) -> int:
    """Bytes of one filtered scanline: its filter type, then its pixels."""
    return 1 + (width * bits_per_pixel + 7) // 8


def _png_raw_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> tuple[int, int]:
    """(bytes of filtered scanlines for the whole image, bytes of its first scanline)."""
    passes = [(w, h) for w, h in _png_passes(width, height, interlaced) if h]
    return (sum(h * _png_row_bytes(w, bits_per_pixel) for w, h in passes),
            _png_row_bytes(passes[0][0], bits_per_pixel))


def _png_rows_arrived(raw: bytes | bytearray, width: int, height: int, bits_per_pixel: int,
                      interlaced: bool) -> tuple[int, list[int]]:
    """(bytes of `raw` that are whole rows, whole rows of each pass) of filtered scanlines
    possibly cut short, up to the first row whose filter type is not one of PNG's five: damaged
    data often inflates without a zlib error, into garbage that libpng stops at (Chromium 156
    paints the rows before it, measured 2026-12-05) and Pillow refuses outright."""
    passes = _png_passes(width, height, interlaced)
    pos, data, rows = 0, np.frombuffer(raw, np.uint8), []
    for w, h in passes:
        row = _png_row_bytes(w, bits_per_pixel)
        whole = min(h, (len(data) - pos) // row)  # rows of this pass that arrived whole
        bad = np.flatnonzero(data[pos:pos + whole * row:row] > 4)
        whole = int(bad[0]) if bad.size else whole
        rows.append(whole)
        pos += whole * row
        if whole < h:
            break
    return pos, rows + [0] * (len(passes) - len(rows))


def _adam7_spread(img: Image.Image, rows: list[int]) -> Image.Image:
    """An interlaced PNG's decode (the missing passes zero), painted as browsers paint a
    truncated one: each pixel of the passes that arrived stands for its Adam7 block until a
    later pass's pixel replaces it, so the whole picture shows at a lower resolution (Chromium
    156 and Firefox 153 paint every pixel of a real meme cut at 10% to 99%, measured
    2026-12-05); a place no arrived pixel stands for stays zero."""
    if img.mode == "1":
        img = img.convert("L")
    pixels = np.asarray(img)
    out = np.zeros_like(pixels)
    for (x0, y0, dx, dy), (bw, bh), n in zip(_ADAM7, _ADAM7_BLOCKS, rows):
        source = pixels[y0:y0 + n * dy:dy, x0::dx]
        for oy in range(bh):
            for ox in range(bw):
                target = out[y0 + oy:y0 + oy + n * dy:dy, x0 + ox::dx]
                target[...] = source[:target.shape[0], :target.shape[1]]
    spread = img.copy()
    spread.frombytes(out.tobytes())
    return spread


# what a repaired PNG keeps beside its pixels: its palette, transparency and colour (a browser
# has read them before the image data that was cut)
_PNG_KEPT_CHUNKS = (b"PLTE", b"tRNS", b"iCCP", b"sRGB", b"gAMA", b"cHRM")


def _png_repaired(data: bytes) -> bytes | Image.Image | None:
    """A PNG cut short or damaged in its image data, rebuilt from the scanlines that inflate
    (the rest zero: black, or transparent with alpha), as PNG bytes; an interlaced one, as the
    decoded picture with the passes that arrived spread over it (`_adam7_spread`); None when
    not one scanline inflates.

    Chunks are read up to the first one that ends early or fails its CRC; that chunk's bytes
    still count, as browsers decode a chunk's data while it streams in. Only IHDR and
    _PNG_KEPT_CHUNKS travel with the pixels (an APNG becomes its default image).
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
        elif kind in _PNG_KEPT_CHUNKS and not idat and crc_ok:
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
        for i in range(0, len(stream), 1 << 12):  # small steps keep what inflated before damage
            raw += inflate.decompress(stream[i:i + (1 << 12)], total - len(raw) + 1)
            if len(raw) >= total:
                break
    except zlib.error:
        pass
    arrived, rows = _png_rows_arrived(raw, width, height, channels * depth, bool(interlace))
    if arrived < first_row:
        return None
    raw = bytes(raw[:arrived]) + bytes(total - arrived)
    repaired = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                + b"".join(_png_chunk(k, b) for k, b in colour)
                + _png_chunk(b"IDAT", zlib.compress(raw, 1)) + _png_chunk(b"IEND", b""))
    if not interlace or arrived >= total:
        return repaired
    try:
        with Image.open(io.BytesIO(repaired), formats=["PNG"]) as img:
            img.load()
            spread = _adam7_spread(img, rows)
    except (OSError, ValueError, SyntaxError):
        return repaired
    spread.format = "PNG"
    return spread


def truncation_repairs(data: bytes, fmt: str | None) -> Iterator[bytes | Image.Image]:
    """Candidate byte strings that decode a truncated JPEG or PNG as far as its data goes (or,
    for an interlaced PNG, the picture itself, already decoded).

    JPEG: the end-of-image marker is appended (what Pillow's LOAD_TRUNCATED_IMAGES does inside
    its reader), so libjpeg fills what never arrived with grey; when the cut fell inside a
    marker segment between progressive scans, the segment is dropped first; a JPEG damaged by a
    marker where none can be (`_jpeg_damage_at`) is then cut there.
    """
    if fmt in ("JPEG", "MPO"):
        yield data + b"\xff\xd9"  # libjpeg skips some damage itself (to the next restart marker)
        damage = _jpeg_damage_at(data)
        if damage is not None:
            yield data[:damage] + b"\xff\xd9"
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


def _webp_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(kind, where its payload starts, its declared size) of each chunk of a WebP's RIFF whose
    header arrived, in order."""
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        yield kind, pos + 8, size
        pos += 8 + size + (size & 1)


def webp_animation_repaired(data: bytes) -> bytes | None:
    """An animated WebP whose data stops early, cut back to its complete chunks (the frames that
    arrived, `ANMF` chunks whole) with its RIFF size set to match, as Firefox 153 paints it (the
    frames that arrived; Chromium 156 paints nothing, measured 2026-12-04). None when `data` is
    not an extended (`VP8X`) WebP with an animation, when nothing is cut, or when no frame arrived
    whole: a still WebP cut short shows nothing in either browser."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8X" or not data[20] & 0x02:
        return None
    end, frames = None, 0
    for kind, start, size in _webp_chunks(data):
        if start + size > len(data):
            break
        frames += kind == b"ANMF"
        end = min(start + size + (size & 1), len(data))
    if end is None or frames == 0 or end >= struct.unpack("<I", data[4:8])[0] + 8:
        return None
    return b"RIFF" + struct.pack("<I", end - 8) + data[8:end]


def webp_vp8_payload(data: bytes) -> bytes | None:
    """The `VP8 ` chunk's payload (as much of it as arrived) of a still lossy WebP, simple or
    extended (`VP8X`); None for a lossless or animated one, or not a WebP."""
    if len(data) < 20 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    for kind, start, size in _webp_chunks(data):
        if kind == b"VP8 ":
            return data[start:start + size]
        if kind in (b"VP8L", b"ANIM", b"ANMF"):
            return None
    return None


def truncated_gif_frame(open_image: Callable[[], Image.Image]) -> Image.Image | None:
    """The first frame of a GIF whose data stops inside it, as Chromium 156 and Firefox 153
    paint it (measured 2026-12-04): the pixels that arrived; below them, nothing (transparent)
    in a sequential GIF, and in an interlaced one each missing row painted as the nearest row
    above that arrived (the passes so far, spread over the frame: browsers show the whole
    picture at a lower vertical resolution). An RGBA image, or None when no pixel arrived.

    Which pixels arrived is told by decoding twice, into a frame filled with palette index 0
    and then 255: a pixel the decoder wrote is the same in both. `open_image()` opens the GIF
    afresh (header only) each time.
    """
    frames = []
    for fill in (0, 255):
        img = open_image()
        interlaced = bool(img.tile and len(img.tile[0].args) > 1 and img.tile[0].args[1])
        img.load_prepare()  # the GIF's own: the frame, its mode and palette
        img.im.paste(fill, (0, 0, *img.size))
        # load() would prepare again, refilling the frame with its transparent index and
        # dropping the palette it just set: the second time, only the base step runs
        img.load_prepare = functools.partial(ImageFile.ImageFile.load_prepare, img)
        try:
            img.load()
        except (OSError, EOFError, ValueError):
            img.tile = []
        frames.append(img)
    first, second = (np.asarray(f) for f in frames)
    arrived = first == second
    if first.ndim != 2 or not arrived.any():
        return None
    rgba = np.array(frames[0].convert("RGBA"))
    rows = arrived.all(axis=1)
    if interlaced:
        last = None
        for y in range(rgba.shape[0]):
            if rows[y]:
                last = y
            elif last is not None:
                rgba[y] = rgba[last]
                arrived[y] = True
    rgba[~arrived, 3] = 0
    return Image.fromarray(rgba, "RGBA")


def _is_cut_short(error: Exception) -> bool:
    """True for Pillow's error on data that stops early (EOFError, "image file is truncated")."""
    return isinstance(error, EOFError) or "truncated" in str(error)


def truncated_bmp(data: bytes, open_image: Callable[[], Image.Image]) -> Image.Image | None:
    """An uncompressed BMP whose data stops early, as Chromium 156 and Firefox 153 paint it
    (measured 2026-12-05): the rows that arrived (its bottom rows when stored bottom-up, as most
    BMPs are, its top rows when top-down) and nothing elsewhere (transparent). An RGBA image, or
    None when not one row arrived, when every row did or Pillow's load fails for another reason
    than the data stopping (a layout Pillow cannot load: `simclip.bmp` reads it, or it is
    refused), or the BMP is compressed (RLE: Pillow's decoder is Python, a few bytes can claim a
    large canvas, and such a BMP stays refused). Decoded once: the rows that arrived are read
    from the header (`_bmp_rows`), into a frame Pillow starts at zero.
    `open_image()` opens the picture (header only)."""
    rows = _bmp_rows(data)
    if rows is None or rows[0] == 0:
        return None
    arrived, height, top_down = rows
    img = open_image()
    try:
        img.load()
    except (OSError, EOFError, ValueError) as e:
        if arrived == height or not _is_cut_short(e):
            return None  # not cut short: a layout Pillow cannot load (simclip.bmp reads it, or it is refused)
        img.tile = []
    rgba = img.convert("RGBA")
    if arrived < height:
        missing = (0, arrived, rgba.width, height) if top_down else (0, 0, rgba.width, height - arrived)
        rgba.paste((0, 0, 0, 0), missing)
    return rgba


def paints_nothing(fixed: Image.Image, data: bytes,
                   decode: Callable[[bytes], Image.Image | None]) -> bool:
    """True when a repaired decode shows nothing of the picture: a PNG whose rows are all the
    zero fill, or a JPEG that differs from its header alone (which libjpeg decodes to grey plus
    a block row or two made of the end marker itself) in no more than its first
    MIN_PAINTED_ROWS rows: browsers paint only complete MCU rows, and nothing there.

    Args:
        fixed: the decoded repair of `data` (its `format` says which rule applies).
        data: the original, truncated bytes.
        decode: bytes -> the loaded image, or None when they do not decode (the caller's safe
            decoder, with its format allowlist).
    """
    if fixed.format == "PNG":
        return fixed.getbbox(alpha_only=False) is None
    scan = _jpeg_scan_start(data)
    if scan is None or scan > len(data):
        return False
    header_only = decode(data[:scan] + b"\xff\xd9")
    if header_only is None or header_only.size != fixed.size or header_only.mode != fixed.mode:
        return False
    bbox = ImageChops.difference(fixed, header_only).getbbox()
    return bbox is None or bbox[3] <= min(MIN_PAINTED_ROWS, fixed.height - 1)
