"""Safe decoding: every file of a bad-image corpus gets a typed error or a valid RGB result."""

import io
import struct
import zlib

import pytest
from PIL import Image

from simclip import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
    decode_image,
    list_image_formats,
)


def _encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header_claiming(width, height):
    """A tiny valid-looking PNG whose IHDR declares width x height (a header bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _gradient(size=(64, 48)):
    img = Image.new("RGB", size)
    img.putdata([(x * 4 % 256, y * 5 % 256, 128) for y in range(size[1]) for x in range(size[0])])
    return img


def _animated_gif(frames=20):
    imgs = [Image.new("P", (40, 30), i % 256) for i in range(frames)]
    return _encode(imgs[0], "GIF", save_all=True, append_images=imgs[1:], duration=10, loop=0)


def _exif_rotated_jpeg():
    img = Image.new("RGB", (60, 30), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 30, 30))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    return _encode(img, "JPEG", exif=exif.tobytes())


def _png16():
    img = Image.new("I;16", (32, 32))
    img.putdata([i * 60 for i in range(32 * 32)])
    return _encode(img, "PNG")


BAD = {
    "zero_bytes": (b"", EmptyImageError),
    "text_file": (b"hello, this is not an image\n" * 10, UnsupportedImageError),
    "svg": (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>', UnsupportedImageError),
    "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", UnsupportedImageError),
    "tiff": (_encode(_gradient(), "TIFF"), UnsupportedImageError),
    "png_header_50000x50000": (_png_header_claiming(50000, 50000), ImageTooLargeError),
    "png_header_zero_width": (_png_header_claiming(0, 10), ImageError),
    "truncated_jpeg": (_encode(_gradient((400, 400)), "JPEG", quality=95)[:4000], CorruptImageError),
    "png_magic_then_html": (b"\x89PNG\r\n\x1a\n<!doctype html><html></html>", UnsupportedImageError),
    "truncated_png": (_encode(_gradient((200, 200)), "PNG")[:300], CorruptImageError),
}

VALID = {
    "animated_gif": _animated_gif(),
    "cmyk_jpeg": _encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"),
    "png_16bit": _png16(),
    "exif_rotated_jpeg": _exif_rotated_jpeg(),
    "webp": _encode(_gradient(), "WEBP"),
    "rgba_png": _encode(Image.new("RGBA", (20, 20), (255, 0, 0, 0)), "PNG"),
    "la_png": _encode(Image.new("LA", (20, 20), (10, 200)), "PNG"),
    "palette_png": _encode(_gradient().convert("P"), "PNG"),
    "bmp": _encode(_gradient(), "BMP"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_image_gets_a_typed_error_naming_the_problem(name):
    data, expected = BAD[name]
    with pytest.raises(expected) as info:
        decode_image(data)
    assert info.value.code and str(info.value)


@pytest.mark.parametrize("name", sorted(VALID))
def test_unusual_but_valid_image_decodes_to_rgb(name):
    img = decode_image(VALID[name])
    assert img.mode == "RGB" and img.width > 0 and img.height > 0


def test_exif_orientation_is_applied():
    img = decode_image(VALID["exif_rotated_jpeg"])
    assert img.size == (30, 60)  # stored 60x30, displayed rotated
    r, g, b = img.getpixel((15, 5))  # the blue half is on top after a 90 degree CW turn
    assert b > 200 and r < 60


def test_transparent_pixels_are_composited_on_white():
    assert decode_image(VALID["rgba_png"]).getpixel((5, 5)) == (255, 255, 255)


def test_16bit_greyscale_keeps_its_range():
    img = decode_image(VALID["png_16bit"])
    values = [img.getpixel((x, 31))[0] for x in range(32)]
    assert 0 < min(values) < max(values) < 255


def test_animated_gif_gives_its_first_frame():
    assert decode_image(VALID["animated_gif"]).getpixel((0, 0)) == decode_image(
        _encode(Image.new("P", (40, 30), 0), "GIF")).getpixel((0, 0))


def test_pixel_cap_is_checked_before_decoding():
    data = _encode(_gradient((100, 100)), "PNG")
    with pytest.raises(ImageTooLargeError, match="10,000 px"):
        decode_image(data, max_pixels=9_999)
    assert decode_image(data, max_pixels=10_000).size == (100, 100)


def test_eps_never_reaches_ghostscript(monkeypatch):
    import subprocess

    def no_subprocess(*a, **k):
        raise AssertionError("a subprocess was spawned while decoding")
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    with pytest.raises(UnsupportedImageError):
        decode_image(BAD["eps"][0])


def test_avif_decodes_where_pillow_supports_it():
    if "AVIF" not in list_image_formats():
        pytest.skip("this Pillow build has no AVIF codec")
    assert decode_image(_encode(_gradient(), "AVIF")).size == (64, 48)


def test_non_bytes_input_is_a_type_error():
    with pytest.raises(TypeError):
        decode_image(12345)
