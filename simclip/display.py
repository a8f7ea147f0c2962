"""What a browser does to decoded pixels before it paints them: the EXIF orientation it honours,
and the colour of an embedded ICC profile converted to sRGB.

Orientation. Browsers read the orientation from a picture's EXIF block only (never from XMP or
from a PNG text chunk), and they differ on which formats they read it in: all of them in JPEG,
but Chromium paints a WebP with an EXIF orientation as stored, and support for a PNG `eXIf`
chunk came at different times; Firefox paints an animated PNG (APNG) as stored. A client that
knows its browser's rule passes the formats it orients (`exif_formats`), and the display rules
it follows where browsers read the same picture differently (`display_rules`, DISPLAY_RULES:
an APNG painted as stored is one of them); the extension finds both by decoding tiny test
pictures in the browser itself (docs/api.md, "What is judged"). An AVIF's rotation and mirror
(`irot`, `imir`) are not EXIF: every browser applies them, and Pillow reports them as the EXIF
orientation of the image.

Colour. An embedded ICC profile (a Display P3 photo, a CMYK JPEG with its press profile) is
converted to sRGB, as browsers convert a tagged picture for the screen; a profile that does not
fit the pixels, or does not parse, is ignored, as browsers ignore it. A PNG without a profile is
painted with its `gAMA` and `cHRM` chunks as browsers paint it. Pictures without any of these
are left as decoded (sRGB is what browsers assume). Where Chromium and Firefox paint a profile
differently, `display_rules` says which way the viewer's browser goes (DISPLAY_RULES).
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
# Where browsers paint the same bytes differently, the rule the server follows by default is one
# browser's; a client whose browser follows the other lists it by name (X-Display-Rules).
# Measured 2026-12-04 in headless Chromium 156 and Firefox ESR 153 (tests/test_display.py):
#   exif-last-entry: of several orientation entries in an EXIF directory, the last valid one
#       before any invalid one counts (Firefox); by default the first valid one (Chromium).
#   apng-exif-ignored: an APNG (a PNG with an animation control chunk, `acTL`, before its image
#       data, even one announcing one frame) is painted as stored (Firefox); by default it is
#       turned wherever a PNG is (Chromium).
#   cmyk-profile-ignored: a CMYK picture's ICC profile is ignored, its pixels converted with the
#       Adobe convention (Firefox); by default the profile is applied (Chromium).
#   png-icc-checksum-ignored: a PNG profile whose zlib checksum is wrong is applied (Firefox); by
#       default it is ignored (Chromium).
#   png-gama-beside-srgb: a PNG's gAMA is applied even beside an sRGB chunk (Firefox); by
#       default the sRGB chunk wins (Chromium).
#   lab-profile-on-rgb: an RGB, palette or grey picture tagged with a Lab profile is painted as
#       Lab pixels (8-bit ICC encoding: a and b offset by 128; grey is L, neutral), converted by
#       the profile (Chromium); by default the profile, which does not fit the pixels, is
#       ignored (Firefox).
DISPLAY_RULES = ("exif-last-entry", "apng-exif-ignored", "cmyk-profile-ignored",
                 "png-icc-checksum-ignored", "png-gama-beside-srgb", "lab-profile-on-rgb")
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


def read_orientation(block: bytes | bytearray | None, last_entry: bool = False) -> int:
    """The orientation (1 to 8) in an EXIF block as browsers read it, else 1.

    Only the first image directory (IFD0) is read. An orientation entry is valid when it is one
    SHORT of value 1 to 8. By default the first valid entry counts, invalid ones skipped
    (Chromium 156); with `last_entry`, the last valid one, the scan stopping at the first
    invalid one (Firefox 153: orientation entries 1 then 6 give 6, 9 then 6 give 1, 6 then 9
    give 6). The two agree on a directory with one orientation entry. A block that is not a
    TIFF structure and an orientation elsewhere (IFD1, XMP, PNG text) give 1: browsers ignore
    them. `block` may start with the `Exif\\0\\0` header a JPEG APP1 segment carries. Costs at
    most one pass over IFD0's entries (65,535 at most), whatever the block's size.
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
    found = 1
    for entry in range(ifd + 2, end - 11, 12):
        tag, kind, n, value = struct.unpack(order + "HHIH", tiff[entry:entry + 10])
        if tag != _ORIENTATION_TAG:
            continue
        valid = kind == _SHORT and n == 1 and 1 <= value <= 8
        if not last_entry and valid:
            return value
        if last_entry:
            if not valid:
                break
            found = value
    return found


def exif_orientation(img: Image.Image, exif: bytes | None = None,
                     display_rules: Collection[str] = ()) -> int:
    """The EXIF orientation (1 to 8) of `img` as browsers read it (`read_orientation`, the last
    entry where `display_rules` lists 'exif-last-entry'): from `exif`, the EXIF block its
    browser reads, when given, else from `img.info['exif']`."""
    return read_orientation(img.info.get("exif") if exif is None else exif,
                            last_entry="exif-last-entry" in display_rules)


def orients(fmt: str | None, exif_formats: Collection[str] | None,
            display_rules: Collection[str] = ()) -> bool:
    """Whether a picture in format `fmt` (as Pillow names it, or 'APNG') is turned by its EXIF
    orientation under `exif_formats` and `display_rules` (see `orient`)."""
    if fmt == "APNG":
        if "apng-exif-ignored" in display_rules:
            return False
        fmt = "PNG"
    fmt = _FORMAT_FAMILY.get(fmt or "", fmt)
    if fmt in _ALWAYS_ORIENTED or exif_formats is None:
        return True
    return fmt in {f.upper() for f in exif_formats}


def orient(img: Image.Image, exif_formats: Collection[str] | None = None,
           fmt: str | None = None, exif: bytes | None = None,
           display_rules: Collection[str] = ()) -> Image.Image:
    """`img` turned upright by its EXIF orientation, where the viewer's browser does that.

    Args:
        img: a loaded image (its current frame).
        exif_formats: the formats whose EXIF orientation is applied, as Pillow names them
            (EXIF_ORIENTATION_FORMATS: 'JPEG', 'PNG', 'WEBP'; others are ignored); None
            applies it in every format. An APNG follows PNG's rule unless `display_rules` lists
            'apng-exif-ignored'. An AVIF is always turned (its irot/imir).
        fmt: the picture's format, when `img` is a frame that lost it or an APNG ('APNG':
            `simclip.images` finds its `acTL` in the bytes); default `img.format`, 'APNG' for
            an animated PNG.
        exif: the EXIF block the browser reads (for a PNG, an `eXIf` chunk before the image
            data: `simclip.images` finds it in the bytes); default `img.info['exif']`.
        display_rules: the DISPLAY_RULES the browser follows ('exif-last-entry',
            'apng-exif-ignored').

    Returns:
        A transposed copy, or `img` itself when nothing is to be done.
    """
    method = _TRANSPOSE.get(exif_orientation(img, exif, display_rules))
    if fmt is None:
        fmt = "APNG" if img.format == "PNG" and getattr(img, "is_animated", False) else img.format
    if method is None or not orients(fmt, exif_formats, display_rules):
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


_D50 = (0.9642, 1.0, 0.8249)
_SRGB_PRIMARIES_D50 = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
_PNG_GAMMA_RANGE = (0.01, 100.0)  # a PNG gAMA outside it is ignored (0, or 21474.83: Firefox)
_SRGB_LIKE_GAMMA = 0.05  # a gAMA within 5% of 1/2.2 alone is painted as sRGB


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def _primaries_d50(chromaticity: tuple[float, ...]) -> tuple[tuple[float, ...], ...] | None:
    """The D50-adapted XYZ of the red, green and blue primaries of a PNG `cHRM` (white x, y,
    then red, green, blue x, y; Bradford adaptation, as ICC profiles carry them), or None
    when they describe no colour space (a y of 0, primaries in a line)."""
    xy = np.asarray(chromaticity, dtype=np.float64).reshape(4, 2)
    if not np.all(np.isfinite(xy)) or np.any(xy[:, 1] <= 0):
        return None
    xyz = np.stack([xy[:, 0] / xy[:, 1], np.ones(4), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]], 1)
    white, primaries = xyz[0], xyz[1:].T  # (3,), (3, 3): a primary per column
    try:
        scale = np.linalg.solve(primaries, white)
        src, dst = _BRADFORD @ white, _BRADFORD @ np.asarray(_D50)
        adapt = np.linalg.inv(_BRADFORD) @ np.diag(dst / src) @ _BRADFORD
    except np.linalg.LinAlgError:
        return None
    to_d50 = adapt @ primaries @ np.diag(scale)  # (3, 3): RGB -> XYZ D50
    if not np.all(np.isfinite(to_d50)) or np.any(np.abs(to_d50) > 10):
        return None
    return tuple(tuple(float(v) for v in to_d50[:, k]) for k in range(3))


@functools.lru_cache(maxsize=16)
def _gamma_profile(gamma: float, grey: bool,
                   primaries: tuple[tuple[float, ...], ...] = _SRGB_PRIMARIES_D50) -> bytes:
    """A minimal ICC v2 display profile: these primaries (D50 XYZ; or grey), the power curve
    `gamma`."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, min(65535, round(gamma * 256))) + bytes(2)
    white = b"XYZ " + bytes(4) + b"".join(_s15(v) for v in _D50)
    tags = [(b"wtpt", white)]
    if grey:
        tags.append((b"kTRC", curve))
    else:
        for sig, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries):
            tags.append((sig, b"XYZ " + bytes(4) + b"".join(_s15(v) for v in xyz)))
        tags += [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    header = (struct.pack(">I", offset + len(body)) + bytes(4) + struct.pack(">I", 0x02100000)
              + b"mntr" + (b"GRAY" if grey else b"RGB ") + b"XYZ " + bytes(12) + b"acsp"
              + bytes(28) + b"".join(_s15(v) for v in _D50))
    return header + bytes(128 - len(header)) + struct.pack(">I", len(tags)) + table + body


def png_gamma_profile(img: Image.Image, beside_srgb: bool = False) -> bytes | None:
    """The profile equivalent to a PNG's `gAMA` chunk, and its `cHRM` chunk beside it, as
    Chromium applies them to a PNG without a profile or an `sRGB` chunk (with `beside_srgb`,
    also beside an sRGB chunk, as Firefox): the power curve 1/gamma, the cHRM's primaries
    (sRGB's without a usable one). None without a gAMA, for one outside 0.01 to 100, or for a
    gAMA alone within 5% of 1/2.2 (painted as sRGB); a cHRM without a gAMA is ignored, as both
    browsers ignore it."""
    gamma = img.info.get("gamma")
    if not isinstance(gamma, (int, float)) or img.info.get("icc_profile") or \
            ("srgb" in img.info and not beside_srgb):
        return None
    if not _PNG_GAMMA_RANGE[0] <= gamma <= _PNG_GAMMA_RANGE[1]:
        return None
    grey = img.mode in ("L", "LA", "La", "1") or img.mode.startswith("I")
    chromaticity = img.info.get("chromaticity")
    primaries = None if grey or not chromaticity or len(chromaticity) != 8 else _primaries_d50(chromaticity)
    if primaries is None and abs(gamma * 2.2 - 1) < _SRGB_LIKE_GAMMA:
        return None
    return _gamma_profile(round(1 / gamma, 4), grey, primaries or _SRGB_PRIMARIES_D50)


def colour_profile(img: Image.Image, display_rules: Collection[str] = ()) -> bytes | None:
    """The ICC profile a browser paints `img` with under `display_rules` (DISPLAY_RULES): its
    embedded one (none for a CMYK picture under 'cmyk-profile-ignored'), or its PNG gamma's
    (`png_gamma_profile`, beside an sRGB chunk under 'png-gama-beside-srgb'); None for neither
    (the pixels are taken as sRGB)."""
    icc = img.info.get("icc_profile")
    if isinstance(icc, (bytes, bytearray)) and icc:
        if img.mode == "CMYK" and "cmyk-profile-ignored" in display_rules:
            return None
        return bytes(icc)
    return png_gamma_profile(img, beside_srgb="png-gama-beside-srgb" in display_rules)


@functools.lru_cache(maxsize=16)
def _lab_transform(icc: bytes) -> ImageCms.ImageCmsTransform | None:
    """A transform from the Lab profile `icc` to sRGB for Lab pixels, None for a profile that
    does not parse or whose colour space is not Lab."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if profile.profile.xcolor_space.strip() != "Lab":
            return None
        return ImageCms.buildTransform(profile, _srgb(), "LAB", "RGB", ImageCms.Intent.PERCEPTUAL)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _pixels_as_lab(img: Image.Image, icc: bytes) -> Image.Image | None:
    """RGB(A), L or LA `img` painted as Lab pixels by its Lab profile, as Chromium 156 paints
    them (8-bit ICC Lab: L in 0..255, a and b offset by 128, so that 128 is neutral; a grey
    picture is its L, neutral; Pillow's LAB mode stores a and b as signed bytes), alpha kept;
    None when the profile is not a usable Lab profile."""
    transform = _lab_transform(icc)
    if transform is None:
        return None
    if img.mode in ("L", "LA"):
        grey = np.asarray(img.getchannel("L"), dtype=np.uint8)
        pixels = np.stack([grey, np.zeros_like(grey), np.zeros_like(grey)], axis=-1)
    else:
        pixels = np.asarray(img.convert("RGB"), dtype=np.uint8) ^ np.array([0, 128, 128], dtype=np.uint8)
    try:
        out = transform.apply(Image.frombytes("LAB", img.size, pixels.tobytes()))
    except (ImageCms.PyCMSError, ValueError):
        return None
    if img.mode in ("RGBA", "LA"):
        out.putalpha(img.getchannel("A"))
    return out


def to_srgb(img: Image.Image, display_rules: Collection[str] = ()) -> Image.Image:
    """`img` with its colour profile (`colour_profile`: an embedded ICC profile, or a PNG
    gamma) applied as the viewer's browser applies it (`display_rules`, DISPLAY_RULES): RGB,
    RGBA, CMYK (to RGB), L and LA (to RGB, RGBA) and palette pictures converted to sRGB.
    Returns `img` itself when it has no profile, an unusable one, an sRGB one, or a mode
    without one (16-bit grey: `simclip.images` makes it 8-bit first)."""
    icc = colour_profile(img, display_rules)
    if not icc or not features.check("littlecms2"):
        return img
    original = img
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("RGB", "L") and "transparency" in img.info:  # a colour key: keyed on the
        img = img.convert("RGBA" if img.mode == "RGB" else "LA")  # stored values, as browsers do
    if "lab-profile-on-rgb" in display_rules and img.mode in ("RGB", "RGBA", "L", "LA"):
        lab = _pixels_as_lab(img, icc)
        if lab is not None:
            return lab
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
