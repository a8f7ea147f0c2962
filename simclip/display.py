"""What a browser does to decoded pixels before it paints them: the EXIF orientation it honours,
and the colour of an embedded ICC profile converted to sRGB.

Orientation. Browsers read the orientation from a picture's EXIF block only (never from XMP or
from a PNG text chunk), and they differ on which formats they read it in: all of them in JPEG,
but Chromium paints a WebP with an EXIF orientation as stored, and support for a PNG `eXIf`
chunk came at different times. A client that knows its browser's rule passes the formats it
orients (`exif_formats`); the extension finds them by decoding tiny test pictures in the browser
itself (docs/api.md, "What is judged"). An AVIF's rotation and mirror (`irot`, `imir`) are not
EXIF: every browser applies them, and Pillow reports them as the EXIF orientation of the image.

Colour. An embedded ICC profile (a Display P3 photo, a CMYK JPEG with its press profile) is
converted to sRGB, as browsers convert a tagged picture for the screen; a profile that does not
fit the pixels, or does not parse, is ignored, as browsers ignore it. Pictures without a profile
are left as decoded (sRGB is what browsers assume).
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Collection

import numpy as np
from PIL import Image, ImageCms, features

# The formats whose EXIF orientation browsers may or may not honour: the names a client lists.
EXIF_ORIENTATION_FORMATS = ("JPEG", "PNG", "WEBP")
_ALWAYS_ORIENTED = ("AVIF",)  # irot/imir, which Pillow reports as the EXIF orientation
_FORMAT_FAMILY = {"MPO": "JPEG"}  # an MPO is a JPEG with more pictures after it

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_IDENTITY_TOLERANCE = 2  # a profile that moves no 8-bit value by more than this is sRGB itself


_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION_TAG, _SHORT = 0x0112, 3


def read_orientation(block: bytes | bytearray | None) -> int:
    """The orientation (1 to 8) in an EXIF block as browsers read it, else 1.

    Only the first image directory (IFD0) is read, and in it the first orientation entry that
    is one SHORT of value 1 to 8 (Chromium; Firefox 153 also agrees wherever there is one such
    entry). A block that is not a TIFF structure, an entry of another type or count, and an
    orientation elsewhere (IFD1, XMP, PNG text) give 1: browsers ignore them. `block` may
    start with the `Exif\\0\\0` header a JPEG APP1 segment carries. Costs at most one pass over
    IFD0's entries (65,535 at most), whatever the block's size.
    """
    if not isinstance(block, (bytes, bytearray)):
        return 1
    tiff = bytes(block[len(_EXIF_HEADER):] if block.startswith(_EXIF_HEADER) else block)
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or struct.unpack(order + "H", tiff[2:4])[0] != 42:
        return 1
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    if ifd < 8 or ifd + 2 > len(tiff):
        return 1
    count = struct.unpack(order + "H", tiff[ifd:ifd + 2])[0]
    end = min(len(tiff), ifd + 2 + 12 * count)
    for entry in range(ifd + 2, end - 11, 12):
        tag, kind, n, value = struct.unpack(order + "HHIH", tiff[entry:entry + 10])
        if tag == _ORIENTATION_TAG and kind == _SHORT and n == 1 and 1 <= value <= 8:
            return value
    return 1


def exif_orientation(img: Image.Image, exif: bytes | None = None) -> int:
    """The EXIF orientation (1 to 8) of `img` as browsers read it (`read_orientation`): from
    `exif`, the EXIF block its browser reads, when given, else from `img.info['exif']`."""
    return read_orientation(img.info.get("exif") if exif is None else exif)


def orients(fmt: str | None, exif_formats: Collection[str] | None) -> bool:
    """Whether a picture in format `fmt` (as Pillow names it) is turned by its EXIF orientation
    under `exif_formats` (see `orient`)."""
    fmt = _FORMAT_FAMILY.get(fmt or "", fmt)
    if fmt in _ALWAYS_ORIENTED or exif_formats is None:
        return True
    return fmt in {f.upper() for f in exif_formats}


def orient(img: Image.Image, exif_formats: Collection[str] | None = None,
           fmt: str | None = None, exif: bytes | None = None) -> Image.Image:
    """`img` turned upright by its EXIF orientation, where the viewer's browser does that.

    Args:
        img: a loaded image (its current frame).
        exif_formats: the formats whose EXIF orientation is applied, as Pillow names them
            (EXIF_ORIENTATION_FORMATS: 'JPEG', 'PNG', 'WEBP'; others are ignored); None applies
            it in every format. An AVIF is always turned (its irot/imir).
        fmt: the picture's format, when `img` is a frame that lost it; default `img.format`.
        exif: the EXIF block the browser reads (for a PNG, an `eXIf` chunk before the image
            data: `simclip.images` finds it in the bytes); default `img.info['exif']`.

    Returns:
        A transposed copy, or `img` itself when nothing is to be done.
    """
    method = _TRANSPOSE.get(exif_orientation(img, exif))
    if method is None or not orients(fmt or img.format, exif_formats):
        return img
    return img.transpose(method)


# ------------------------------------------------------------------------------------- colour

@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _probe_image(mode: str) -> Image.Image:
    """Every 8-bit value of each channel, combined on a coarse grid, in `mode` ('RGB' or 'L')."""
    if mode == "L":
        return Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L")
    levels = np.linspace(0, 255, 9).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(27, 27, 3)
    return Image.fromarray(grid, "RGB")


@functools.lru_cache(maxsize=16)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from the profile `icc` to sRGB for pixels in `mode` ('RGB', 'RGBA', 'CMYK',
    'L'), or None when the profile does not parse, does not fit the mode, or is sRGB already."""
    out_mode = {"L": "RGB", "CMYK": "RGB"}.get(mode, mode)
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        transform = ImageCms.buildTransform(profile, _srgb(), mode, out_mode,
                                            ImageCms.Intent.PERCEPTUAL)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    if mode in ("RGB", "RGBA", "L"):
        probe = _probe_image("L" if mode == "L" else "RGB")
        try:
            moved = transform.apply(probe.convert(mode))
        except (ImageCms.PyCMSError, ValueError):
            return None
        before = np.asarray(probe.convert("RGB"), dtype=np.int16)
        after = np.asarray(moved.convert("RGB"), dtype=np.int16)
        if np.abs(after - before).max() <= _IDENTITY_TOLERANCE:
            return None
    return transform


def to_srgb(img: Image.Image) -> Image.Image:
    """`img` with its embedded ICC profile applied: RGB, RGBA, CMYK (to RGB), L and LA (to RGB,
    RGBA) and palette pictures converted to sRGB. Returns `img` itself when it has no profile,
    an unusable one, an sRGB one, or a mode without one (16-bit grey)."""
    icc = img.info.get("icc_profile")
    if not isinstance(icc, (bytes, bytearray)) or not icc or not features.check("littlecms2"):
        return img
    original, icc = img, bytes(icc)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    alpha = None
    if img.mode == "LA":
        img, alpha = img.getchannel("L"), img.getchannel("A")
    if img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return original
    transform = _transform(icc, img.mode)
    if transform is None:
        return original
    try:
        out = transform.apply(img)
    except (ImageCms.PyCMSError, ValueError):
        return original
    if alpha is not None:
        out.putalpha(alpha)
    return out
