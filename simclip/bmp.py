"""Uncompressed BMP layouts that Pillow refuses and browsers paint.

Pillow's BMP reader knows the common layouts only. Chromium 156 and Firefox 153 also paint
(measured on the bmpsuite files in Pillow 13.0.0's `Tests/images/bmp/`): 16- and 32-bit pixels
with any bit fields (`BI_BITFIELDS`, 3, with masks such as 2-3-1, 4-4-4-4 or 11-11-10, or in
an unusual order) and with an alpha field (`BI_ALPHABITFIELDS`, 6), 2-bit palettes, an OS/2
2.x header shorter than 40 bytes (16 to 64 bytes: the fields it leaves out are zero), and a
palette with more entries than the pixel depth can index. Left refused: compressed layouts
(RLE, Huffman, embedded JPEG or PNG), which Pillow reads where it can.

`decode_bmp` reads these with numpy, the way Chromium's BMP reader does: each bit mask is cut to
the pixel's depth, and a mask with a gap or two masks sharing a bit refuse the file; a field of
fewer than 8 bits is scaled to 8 (`v * 255 / (2**n - 1)`, rounded), a wider one keeps its top 8
bits; an alpha field whose every pixel is 0 means an opaque picture (writers leave it unset);
rows are stored bottom-up unless the height is negative; a palette index past the palette is
black; rows the data does not reach are transparent (as `truncation.truncated_bmp`). Header
sizes are Chromium's: 40, 52, 56, 108 and 124 bytes, or an OS/2 2.x header of 16 to 64 (a
multiple of 4, or 42 or 46) with 1, 4, 8 or 24-bit pixels stored bottom-up, uncompressed.
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

_FILE_HEADER = 14
_CORE_HEADER = 12  # OS/2 1.x BITMAPCOREHEADER: 16-bit sizes, 3-byte palette entries
_BI_RGB, _BI_BITFIELDS, _BI_ALPHABITFIELDS = 0, 3, 6
_WINDOWS_HEADERS = (40, 52, 56, 108, 124)  # BITMAPINFOHEADER, V2, V3, V4, V5; others 16-64: OS/2 2.x
# 16 and 32-bit BI_RGB: 5-5-5 and 8-8-8, no alpha
_DEFAULT_MASKS = {16: (0x7C00, 0x03E0, 0x001F, 0), 32: (0x00FF0000, 0x0000FF00, 0x000000FF, 0)}


class BmpLayoutError(ValueError):
    """The bytes are not an uncompressed BMP layout `decode_bmp` reads."""


def bmp_fields(data: bytes) -> tuple[int, int, int, int, int, int] | None:
    """A BMP's layout as its headers store it: (offset of the pixel rows in bytes, info header
    size in bytes, width in px, height in px (negative: rows stored top-down), bits per pixel,
    compression (0 BI_RGB, 1-2 RLE, 3 BI_BITFIELDS, 4-5 embedded JPEG/PNG, 6
    BI_ALPHABITFIELDS)). An OS/2 1.x header's 16-bit sizes are read as such, and a header with no
    compression field (OS/2 1.x, OS/2 2.x of 16 to 19 bytes) gives 0. None for bytes that are not
    a BMP or end before these fields; nothing else is checked (the Microsoft BMP file format:
    BITMAPFILEHEADER, BITMAPINFOHEADER and its successors, and IBM's OS/2 headers)."""
    if len(data) < _FILE_HEADER + 16 or data[:2] != b"BM":
        return None
    offset, size = struct.unpack_from("<II", data, 10)
    if size == _CORE_HEADER:
        width, height, _, bits = struct.unpack_from("<HHHH", data, _FILE_HEADER + 4)
        return offset, size, width, height, bits, _BI_RGB
    if 16 <= size < 20:
        width, height, _, bits = struct.unpack_from("<iiHH", data, _FILE_HEADER + 4)
        return offset, size, width, height, bits, _BI_RGB
    if size < 20 or len(data) < _FILE_HEADER + 20:
        return None
    width, height, _, bits, compression = struct.unpack_from("<iiHHI", data, _FILE_HEADER + 4)
    return offset, size, width, height, bits, compression


def _header(data: bytes) -> dict:
    """The fields of a BMP's headers that decoding needs. Raises BmpLayoutError."""
    fields = bmp_fields(data)
    if fields is None:
        raise BmpLayoutError("not a BMP, or its headers are cut off")
    offset, size, width, height, bits, compression = fields
    if size == _CORE_HEADER:
        raise BmpLayoutError("an OS/2 1.x header: Pillow reads those")
    os2 = size not in _WINDOWS_HEADERS
    if (os2 and not (16 <= size <= 64 and (size % 4 == 0 or size in (42, 46)))) or len(data) < _FILE_HEADER + size:
        raise BmpLayoutError(f"unknown BMP header size {size}")
    # the 124-byte BITMAPV5HEADER's fields; a shorter header (OS/2 2.x, v2 to v4) leaves the rest 0
    fields = data[_FILE_HEADER + 4:_FILE_HEADER + size].ljust(120, b"\0")
    colours = struct.unpack_from("<I", fields, 28)[0]
    if os2 and (compression != _BI_RGB or bits not in (1, 4, 8, 24) or height < 0):
        # OS/2 2.x compression 3 and 4 are Huffman and RLE24, not bit fields; no 2, 16 or 32-bit
        # pixels and no top-down rows there either: Chromium refuses the file
        raise BmpLayoutError(f"an OS/2 2.x BMP layout browsers do not paint ({bits} bits, compression {compression})")
    masks = None
    if compression in (_BI_BITFIELDS, _BI_ALPHABITFIELDS) and bits in (16, 32):
        if size >= 52:  # BITMAPV2INFOHEADER and later hold the masks (the alpha one from 56 bytes)
            masks = struct.unpack_from("<IIII", fields, 36)
            if size < 56 and compression == _BI_BITFIELDS:
                masks = (*masks[:3], 0)
        else:  # after a 40-byte header: three masks, four with BI_ALPHABITFIELDS
            count = 4 if compression == _BI_ALPHABITFIELDS else 3
            end = _FILE_HEADER + size + 4 * count
            if len(data) < end:
                raise BmpLayoutError("the bit masks are cut off")
            masks = (*struct.unpack_from(f"<{count}I", data, _FILE_HEADER + size), 0)[:4]
    elif compression == _BI_RGB and bits in (16, 32):
        masks = _DEFAULT_MASKS[bits]
    elif compression != _BI_RGB or bits not in (1, 2, 4, 8, 24):
        raise BmpLayoutError(f"a compressed or unknown BMP layout ({bits} bits, compression {compression})")
    if masks is not None:
        masks = _checked_masks(masks, bits)
    if width <= 0 or height == 0:
        raise BmpLayoutError(f"BMP size {width}x{height}")
    return {"offset": offset, "size": size, "width": width, "height": abs(height), "top_down": height < 0,
            "bits": bits, "masks": masks, "colours": colours}


def _checked_masks(masks: tuple[int, ...], bits: int) -> tuple[int, ...]:
    """The bit masks cut to the pixel's `bits`, as Chromium reads them. Raises BmpLayoutError for
    a mask with a gap in it or two masks that share a bit: Chromium paints nothing of such a file."""
    cut = tuple(mask & ((1 << bits) - 1) for mask in masks)
    seen = 0
    for mask in cut:
        if mask & seen:
            raise BmpLayoutError("two BMP bit masks overlap")
        seen |= mask
        low = mask >> ((mask & -mask).bit_length() - 1) if mask else 0
        if low & (low + 1):
            raise BmpLayoutError(f"a BMP bit mask with a gap ({mask:#x})")
    return cut


def bmp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in px of a BMP layout `decode_bmp` reads, or None for any other bytes."""
    try:
        header = _header(data)
    except BmpLayoutError:
        return None
    return header["width"], header["height"]


def _field(values: np.ndarray, mask: int) -> np.ndarray:
    """The 8-bit channel a bit field `mask` holds in each pixel of `values` (uint32)."""
    if mask == 0:
        return np.zeros(values.shape, np.uint8)
    shift = (mask & -mask).bit_length() - 1
    width = (mask >> shift).bit_length()
    field = (values & np.uint32(mask)) >> np.uint32(shift)
    if width >= 8:
        return (field >> np.uint32(width - 8)).astype(np.uint8)
    top = (1 << width) - 1
    return ((field * 255 + top // 2) // top).astype(np.uint8)


def _palette(data: bytes, header: dict) -> np.ndarray:
    """The palette as (256, 3) RGB rows; entries the file leaves out are black."""
    start = _FILE_HEADER + header["size"]  # 4-byte entries after any header but OS/2 1.x's
    count = header["colours"] or 1 << header["bits"]
    end = min(start + 4 * min(count, 256), header["offset"], len(data))
    entries = np.frombuffer(data[start:start + max(0, end - start) // 4 * 4], np.uint8).reshape(-1, 4)
    palette = np.zeros((256, 3), np.uint8)
    palette[:len(entries)] = entries[:, 2::-1]  # stored B, G, R, reserved
    return palette


def decode_bmp(data: bytes, max_pixels: int) -> Image.Image:
    """Decode an uncompressed BMP in a layout Pillow refuses (see the module docstring).

    Args:
        data: the file's bytes.
        max_pixels: the largest width x height accepted; the caller checks the size first
            (`bmp_size`), this only guards the allocation.

    Returns:
        An RGB image, or RGBA when the picture has an alpha field with a non-zero pixel or rows
        its data does not reach (those are transparent). `format` is "BMP".

    Raises:
        BmpLayoutError: not such a BMP, too large, or no row of pixels in the data.
    """
    header = _header(data)
    width, height, bits = header["width"], header["height"], header["bits"]
    if width * height > max_pixels:
        raise BmpLayoutError(f"BMP of {width}x{height} px is over {max_pixels} px")
    stride = (width * bits + 31) // 32 * 4  # rows are padded to 4 bytes
    body = data[header["offset"]:]
    arrived = min(height, len(body) // stride)
    if arrived == 0 or header["offset"] < _FILE_HEADER + header["size"]:
        raise BmpLayoutError("no row of pixels in the data")
    rows = np.frombuffer(body[:arrived * stride], np.uint8).reshape(arrived, stride)
    alpha = None
    if bits in (16, 32):
        values = rows[:, :width * bits // 8].copy().view("<u2" if bits == 16 else "<u4").astype(np.uint32)
        red, green, blue, alpha_mask = header["masks"]
        rgb = np.stack([_field(values, red), _field(values, green), _field(values, blue)], axis=-1)
        if alpha_mask:
            alpha = _field(values, alpha_mask)
            if not alpha.any():  # unset by the writer: an opaque picture
                alpha = None
    elif bits == 24:
        rgb = rows[:, :width * 3].reshape(arrived, width, 3)[:, :, ::-1]
    else:
        per_byte = 8 // bits
        shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)  # the first pixel is in the top bits
        indices = (rows[:, :, None] >> shifts) & np.uint8((1 << bits) - 1)
        indices = indices.reshape(arrived, stride * per_byte)[:, :width]
        rgb = _palette(data, header)[indices]
    canvas = np.zeros((height, width, 4), np.uint8)
    placed = slice(0, arrived) if header["top_down"] else slice(height - arrived, height)
    stored = rgb if header["top_down"] else rgb[::-1]
    canvas[placed, :, :3] = stored
    canvas[placed, :, 3] = 255 if alpha is None else (alpha if header["top_down"] else alpha[::-1])
    if arrived == height and alpha is None:
        image = Image.fromarray(np.ascontiguousarray(canvas[:, :, :3]), "RGB")
    else:
        image = Image.fromarray(canvas, "RGBA")
    image.format = "BMP"
    return image
