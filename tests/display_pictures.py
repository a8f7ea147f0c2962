"""Test pictures that Chromium and Firefox paint differently, one per display rule
(simclip.display.DISPLAY_RULES): the unit tests decode them under each rule, the extension's
probe (extension/background/orientation.js) carries 4x4 copies, and the e2e test shows larger ones
in both browsers.

Each picture is painted `FOLLOWED` by a browser that follows its rule and `OTHERWISE` by one that
does not (measured 2026-12-04 in headless Chromium 156 and Firefox ESR 153; the colours as an
8-bit canvas reads them back, within a few levels). exif-last-entry is told by the size instead:
a picture stored 2:1 is painted 1:2 where the rule is followed. `adam7_png` writes the
interlaced PNGs browsers paint pass by pass, `damaged` the files damaged in the middle they paint
up to the damage.
"""

import io
import itertools
import struct
import zlib

import numpy as np
from PIL import Image, ImageCms, ImageDraw

# rule -> (colour painted where the browser follows the rule, colour painted where it does not)
FOLLOWED_OTHERWISE = {
    "cmyk-profile-ignored": ((255, 0, 0), (0, 0, 255)),  # Adobe CMYK red, vs its profile's blue
    "png-icc-checksum-ignored": ((12, 12, 221), (220, 20, 20)),  # the swapped profile, vs none
    "png-gama-beside-srgb": ((188, 188, 188), (128, 128, 128)),  # gAMA 1.0, vs the sRGB chunk
    "lab-profile-on-rgb": ((0, 144, 0), (128, 60, 200)),  # the pixels as Lab, vs as stored
}
COLOUR_TOLERANCE = 12  # 8-bit levels: browsers and LittleCMS round and interpolate differently
_D50 = (0.9642, 1.0, 0.8249)
_SRGB_D50 = np.array([[0.4361, 0.3851, 0.1431], [0.2225, 0.7169, 0.0606], [0.0139, 0.0971, 0.7141]])


def chunk(kind, data):
    """A PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _s15(value):
    return struct.pack(">i", round(value * 65536))


def icc_profile(space, pcs, device_class, tags):
    """A minimal ICC v2 profile: colour space `space` (b"RGB ", b"CMYK"), connection space `pcs`
    (b"XYZ ", b"Lab "), its description and D50 white point, then these (signature, data) tags."""
    name = b"simclip test profile\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(name)) + name + bytes(78)
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + bytes(4) + b"".join(_s15(v) for v in _D50)), *tags]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + bytes(4) + struct.pack(">I", 0x02100000)
              + device_class + space + pcs + bytes(12) + b"acsp" + bytes(28)
              + b"".join(_s15(v) for v in _D50))
    return header + bytes(128 - len(header)) + struct.pack(">I", len(tags)) + table + body


def swapped_rgb_profile():
    """An RGB display profile (sRGB's primaries and a 2.2 curve) whose red primary is sRGB's
    blue and blue its red: stored red is painted blue."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(2.2 * 256)) + bytes(2)
    xyz = [b"XYZ " + bytes(4) + b"".join(_s15(v) for v in _SRGB_D50[:, k]) for k in (2, 1, 0)]
    tags = [(b"rXYZ", xyz[0]), (b"gXYZ", xyz[1]), (b"bXYZ", xyz[2]),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    return icc_profile(b"RGB ", b"XYZ ", b"mntr", tags)


def _lab(rgb):
    """CIE Lab (D50) of an sRGB colour in 0..1."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    t = _SRGB_D50 @ linear / np.array(_D50)
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def swapped_cmyk_profile(grid=3):
    """A CMYK output profile (A2B0: a lut16 to Lab, `grid` points a side) of the Adobe
    convention's colours with red and blue swapped: the ink for red is painted blue. Chromium and
    LittleCMS apply it alike (within 8 levels; an XYZ-connection lut16 they scale differently)."""
    lut = b"mft2" + bytes(4) + bytes([4, 3, grid, 0]) + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut += struct.pack(">HH", 2, 2) + struct.pack(">HH", 0, 65535) * 4
    for c, m, y, k in itertools.product(np.linspace(0, 1, grid), repeat=4):
        rgb = np.array([(1 - y) * (1 - k), (1 - m) * (1 - k), (1 - c) * (1 - k)])  # red <-> blue
        lightness, a, b = _lab(rgb)
        encoded = (lightness / 100 * 0xFF00, (a + 128) * 256, (b + 128) * 256)
        lut += struct.pack(">HHH", *(max(0, min(65535, round(v))) for v in encoded))
    lut += struct.pack(">HH", 0, 65535) * 3
    return icc_profile(b"CMYK", b"Lab ", b"prtr", [(b"A2B0", lut)])


def _labelled(img, label):
    """`img` with `label` written in its top-left corner (bytes unique to the label; the
    centre, where the colour is read, untouched)."""
    if label:
        ImageDraw.Draw(img).text((1, 0), label, fill={"L": 0, "CMYK": (0, 0, 0, 255)}.get(img.mode, (0, 0, 0)))
    return img


def _png(img, *chunks, after_ihdr=False):
    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = buf.getvalue()
    at = data.index(b"IHDR") + 4 + 13 + 4 if after_ihdr else data.index(b"IDAT") - 4
    return data[:at] + b"".join(chunks) + data[at:]


def rule_picture(rule, size=(4, 4), label=""):
    """(bytes, MIME subtype) of the test picture of display rule `rule`, `size` px (stored size:
    exif-last-entry's is turned where its rule is followed), `label` written in a corner."""
    if rule == "exif-last-entry":  # orientation entries 1, then 6: Firefox reads the last
        entries = b"".join(struct.pack(">HHIHH", 0x112, 3, 1, o, 0) for o in (1, 6))
        block = b"Exif\0\0MM\0*\0\0\0\x08" + struct.pack(">H", 2) + entries + bytes(4)
        buf = io.BytesIO()
        _labelled(Image.new("L", size, 128), label).save(buf, "JPEG", quality=90, exif=block)
        return buf.getvalue(), "jpeg"
    if rule == "cmyk-profile-ignored":  # magenta + yellow ink: red by Adobe's convention
        buf = io.BytesIO()
        img = _labelled(Image.new("CMYK", size, (0, 255, 255, 0)), label)
        img.save(buf, "JPEG", quality=95, icc_profile=swapped_cmyk_profile())
        return buf.getvalue(), "jpeg"
    if rule == "png-icc-checksum-ignored":  # the profile's zlib checksum spoilt
        deflated = bytearray(zlib.compress(swapped_rgb_profile()))
        deflated[-1] ^= 0xFF
        img = _labelled(Image.new("RGB", size, (220, 20, 20)), label)
        return _png(img, chunk(b"iCCP", b"test\0\0" + bytes(deflated)), after_ihdr=True), "png"
    if rule == "png-gama-beside-srgb":  # gAMA 1.0 (linear samples) beside an sRGB chunk
        img = _labelled(Image.new("RGB", size, (128, 128, 128)), label)
        return _png(img, chunk(b"sRGB", b"\0"), chunk(b"gAMA", struct.pack(">I", 100000))), "png"
    if rule == "lab-profile-on-rgb":  # an RGB picture tagged with a Lab profile
        lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
        buf = io.BytesIO()
        _labelled(Image.new("RGB", size, (128, 60, 200)), label).save(buf, "PNG", icc_profile=lab)
        return buf.getvalue(), "png"
    raise ValueError(f"no test picture for display rule {rule!r}")


def close(colour, expected, tolerance=COLOUR_TOLERANCE):
    """Whether two RGB colours are within `tolerance` levels in every channel."""
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(colour, expected))


_PNG_COLOUR_TYPES = {"L": (0, 8), "I;16": (0, 16), "RGB": (2, 8), "P": (3, 8), "LA": (4, 8), "RGBA": (6, 8)}


def adam7_png(img, compress_level=-1):
    """An interlaced (Adam7) PNG of `img` (Pillow writes only non-interlaced PNGs): modes L,
    I;16 (16-bit grey), RGB, P (with its palette, as many entries as it has), LA and RGBA;
    `compress_level` as zlib's (0: stored, so a cut lands where its fraction says)."""
    colour_type, depth = _PNG_COLOUR_TYPES[img.mode]
    pixels = np.asarray(img).astype(">u2") if depth == 16 else np.asarray(img)
    raw = bytearray()
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                           (1, 0, 2, 2), (0, 1, 1, 2)):
        for row in pixels[y0::dy, x0::dx]:
            raw += b"\0" + row.tobytes() if row.size else b""
    ihdr = struct.pack(">IIBBBBB", img.width, img.height, depth, colour_type, 0, 0, 1)
    palette = chunk(b"PLTE", bytes(img.getpalette()[:768])) if img.mode == "P" else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + palette
            + chunk(b"IDAT", zlib.compress(bytes(raw), compress_level)) + chunk(b"IEND", b""))


def damaged(data, where, zero):
    """`data` with 64 bytes zeroed, or four bytes flipped, from `where` (0..1) of the way in."""
    out, at = bytearray(data), int(len(data) * where)
    if zero:
        out[at:at + 64] = bytes(64)
    else:
        for k in range(4):
            out[at + 7 * k] ^= 0x55
    return bytes(out)


def _bmp_fields(values, mask):
    """`values` (0-255) stored in the bit field `mask`: their top bits, as a writer keeps them."""
    shift = (mask & -mask).bit_length() - 1
    width = (mask >> shift).bit_length()
    return (values.astype(np.uint32) >> max(0, 8 - width) << max(0, width - 8)) << shift


def bmp_with_bit_fields(img, bits, masks, header_size=40, alpha_bit_fields=False):
    """A bottom-up BMP of `img` (RGB or RGBA) with `bits` (16 or 32) per pixel in the bit fields
    `masks` (red, green, blue, alpha; 0: none), which Pillow reads only in its few usual layouts:
    compression BI_BITFIELDS (3), or BI_ALPHABITFIELDS (6) with its four masks after a 40-byte
    header; `header_size` 40 (masks after it), 56, 108 or 124 (masks inside it)."""
    rgba = np.asarray(img.convert("RGBA"))
    pixels = sum(_bmp_fields(rgba[..., c], m) for c, m in enumerate(masks) if m)
    row = pixels[::-1].astype("<u2" if bits == 16 else "<u4").tobytes()
    stride = (img.width * bits + 31) // 32 * 4
    rows = b"".join(row[i:i + img.width * bits // 8].ljust(stride, b"\0")
                    for i in range(0, len(row), img.width * bits // 8))
    listed = masks[:4 if alpha_bit_fields else 3]
    after = struct.pack(f"<{len(listed)}I", *listed) if header_size == 40 else b""
    info = struct.pack("<IiiHHIIiiII", header_size, img.width, img.height, 1, bits, 6 if alpha_bit_fields else 3,
                       len(rows), 2835, 2835, 0, 0)
    if header_size > 40:
        info += struct.pack("<4I", *masks)
    info = info.ljust(header_size, b"\0") + after
    offset = 14 + len(info)
    return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + info + rows


def bmp_with_palette(img, bits=8, header_size=40, palette_entries=None):
    """A bottom-up palette BMP of `img` quantized to 2**bits colours, in layouts Pillow refuses:
    `bits` 2, an OS/2 2.x `header_size` under 40 (16: sizes and depth only), or a palette of
    `palette_entries` entries, more than the depth can index (the extra ones black)."""
    quantized = img.convert("RGB").quantize(1 << bits)
    colours = np.array(quantized.getpalette()[:3 * (1 << bits)], np.uint8).reshape(-1, 3)
    entries = palette_entries or len(colours)
    palette = np.zeros((entries, 4), np.uint8)
    palette[:len(colours), :3] = colours[:, ::-1]
    indices = np.asarray(quantized)[::-1]
    per_byte = 8 // bits
    width = -(-img.width // per_byte) * per_byte
    padded = np.zeros((img.height, width), np.uint8)
    padded[:, :img.width] = indices
    packed = np.zeros((img.height, width // per_byte), np.uint8)
    for k in range(per_byte):
        packed |= padded[:, k::per_byte] << (8 - bits * (k + 1))
    stride = (img.width * bits + 31) // 32 * 4
    rows = b"".join(r.tobytes().ljust(stride, b"\0") for r in packed)
    if header_size < 40:
        info = struct.pack("<IiiHH", header_size, img.width, img.height, 1, bits).ljust(header_size, b"\0")
    else:
        info = struct.pack("<IiiHHIIiiII", header_size, img.width, img.height, 1, bits, 0, len(rows), 2835, 2835,
                           palette_entries or 0, 0)
    offset = 14 + len(info) + palette.size
    return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + info + palette.tobytes() + rows


# The BMP layouts Pillow 13 refuses and Chromium 156 and Firefox 153 paint (bmpsuite's names in
# Pillow's Tests/images/bmp), as `bmp_with_bit_fields` or `bmp_with_palette` arguments; with the
# largest per-channel error of an exact decoding (the layout's own rounding).
BMP_LAYOUTS = {
    "rgb32bf": ("fields", {"bits": 32, "masks": (0xFF000000, 0x0FF0, 0xFF0000, 0)}, 0),  # masks out of order
    "rgb16-231": ("fields", {"bits": 16, "masks": (0x30, 0x0E, 0x01, 0)}, 128),
    "rgba16-4444": ("fields", {"bits": 16, "masks": (0x0F00, 0xF0, 0x0F, 0xF000), "header_size": 124}, 16),
    "rgb32-111110": ("fields", {"bits": 32, "masks": (0xFFE00000, 0x1FFC00, 0x3FF, 0)}, 0),
    "rgba32abf": ("fields", {"bits": 32, "masks": (0xFF000000, 0xFF00, 0xFF, 0xFF0000), "alpha_bit_fields": True}, 0),
    "pal2": ("palette", {"bits": 2}, None),
    "pal8os2v2-16": ("palette", {"header_size": 16}, None),
    "pal8oversizepal": ("palette", {"palette_entries": 300}, None),
}


def unusual_bmp(img, layout):
    """`img` as a BMP in one of BMP_LAYOUTS."""
    kind, kwargs, _ = BMP_LAYOUTS[layout]
    if kind == "fields":
        return bmp_with_bit_fields(img, **kwargs)
    return bmp_with_palette(img, **kwargs)
