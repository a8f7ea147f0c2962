"""Safe decoding: every file of a bad-image corpus gets a typed error or a valid RGB result;
transparency, animations, truncated data and long pictures give what a viewer sees."""

import contextlib
import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile, ImageFont, ImageStat

from display_pictures import adam7_png, chunk
from simclip import (
    MAX_IMAGE_PIXELS,
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
    decode_image,
    list_image_formats,
)
from simclip import images as images_module
from simclip.images import choose_background, decode_frames
from simclip.predictor import split_tiles


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
    # cut in its header: browsers show a broken image
    "truncated_jpeg_in_header": (_encode(_gradient((400, 400)), "JPEG", quality=95)[:200],
                                 CorruptImageError),
    # every header, no scan data: browsers paint nothing
    "truncated_jpeg_header_only": ((lambda d: d[:d.index(b"\xff\xda") + 14])(
        _encode(_gradient((400, 400)), "JPEG", quality=95)), CorruptImageError),
    "png_magic_then_html": (b"\x89PNG\r\n\x1a\n<!doctype html><html></html>", UnsupportedImageError),
    # cut before the first scanline's bytes
    "truncated_png_before_rows": ((lambda d: d[:d.index(b"IDAT") + 8])(
        _encode(_gradient((200, 200)), "PNG")), CorruptImageError),
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


FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
CAPTION = "STAY HOME SAVE LIVES"


def _caption_mask(size=(640, 160)):
    """An 'L' mask of a bold caption: 255 on the letters."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).text((20, 45), CAPTION, fill=255, font=ImageFont.truetype(FONT, 56))
    return mask


def _sticker(mode, ink):
    """A caption in `ink` (0 black or 255 white) on a transparent background, in `mode`. The
    transparent pixels hold the other colour, as sticker exporters leave them (a colour key
    format: a colour that is neither)."""
    mask = _caption_mask()
    paper = 255 - ink
    if mode in ("RGBA", "LA", "PA", "webp_RGBA"):
        rgba = Image.new("RGBA", mask.size, (paper, paper, paper, 0))
        rgba.paste((ink, ink, ink, 255), mask=mask)
        if mode == "PA":
            return rgba.convert("PA")  # Pillow cannot write PA: the decoder gets the PIL image
        if mode == "webp_RGBA":
            return _encode(rgba, "WEBP", lossless=True)
        return _encode(rgba.convert(mode), "PNG")
    if mode in ("P_png", "P_gif"):
        img = Image.new("P", mask.size, 0)
        img.putpalette([paper] * 3 + [ink] * 3 + [0] * 762)
        img.paste(1, mask=mask.point(lambda v: 255 if v > 127 else 0))
        return _encode(img, "PNG" if mode == "P_png" else "GIF", transparency=0)
    if mode == "RGB_tRNS":  # a colour key: magenta (for white ink) or green is transparent
        key = (255, 0, 255) if ink else (0, 255, 0)
        img = Image.new("RGB", mask.size, key)
        img.paste((ink, ink, ink), mask=mask.point(lambda v: 255 if v > 127 else 0))
        return _encode(img, "PNG", transparency=key)
    if mode == "I16_tRNS":  # a 16-bit grey key: mid grey is transparent
        img = Image.new("I;16", mask.size, 128 * 257)
        img.paste(ink * 257, mask=mask.point(lambda v: 255 if v > 127 else 0))
        return _encode(img, "PNG", transparency=128 * 257)
    raise ValueError(mode)


STICKER_MODES = ["RGBA", "LA", "PA", "P_png", "P_gif", "RGB_tRNS", "I16_tRNS", "webp_RGBA"]


def _contrast(img):
    """Mean luminance on the letters minus off them."""
    mask = _caption_mask().point(lambda v: 255 if v > 200 else 0)
    lum = img.convert("L")
    return (ImageStat.Stat(lum, mask).mean[0]
            - ImageStat.Stat(lum, mask.point(lambda v: 255 - v)).mean[0])


@pytest.mark.parametrize("mode", STICKER_MODES)
def test_white_caption_on_transparent_background_stays_visible(mode):
    img = decode_image(_sticker(mode, ink=255))
    assert _contrast(img) > 200  # white letters on black; on white (before) the contrast was 0
    assert img.getpixel((2, 2)) == (0, 0, 0)


@pytest.mark.parametrize("mode", STICKER_MODES)
def test_black_caption_on_transparent_background_stays_on_white(mode):
    img = decode_image(_sticker(mode, ink=0))
    assert _contrast(img) < -200
    assert img.getpixel((2, 2)) == (255, 255, 255)


def test_background_follows_the_luminance_of_the_visible_pixels():
    light = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    light.paste((230, 220, 40, 255), (10, 10, 40, 40))  # yellow caption colour
    dark = Image.new("RGBA", (50, 50), (255, 255, 255, 0))
    dark.paste((20, 30, 120, 255), (10, 10, 40, 40))
    assert choose_background(light) == (0, 0, 0)
    assert choose_background(dark) == (255, 255, 255)
    assert choose_background(Image.new("RGBA", (5, 5), (255, 255, 255, 0))) == (255, 255, 255)


def test_semi_transparent_pixels_are_blended_on_the_chosen_background():
    img = Image.new("RGBA", (40, 40), (255, 255, 255, 0))
    img.paste((255, 255, 255, 128), (0, 0, 40, 20))
    out = decode_image(_encode(img, "PNG"))
    assert out.getpixel((5, 5))[0] == pytest.approx(128, abs=2) and out.getpixel((5, 30)) == (0, 0, 0)


def test_ocr_reads_a_white_caption_on_a_transparent_sticker():
    from simclip import get_ocr_engine

    text = get_ocr_engine("auto")(decode_image(_sticker("RGBA", ink=255)))
    words = set(text.upper().split())
    assert len(words & set(CAPTION.split())) >= 3, text


def test_16bit_greyscale_keeps_its_range():
    img = decode_image(VALID["png_16bit"])
    values = [img.getpixel((x, 31))[0] for x in range(32)]
    assert 0 < min(values) < max(values) < 255


def test_animated_gif_of_blank_frames_gives_its_first_frame():
    assert decode_image(VALID["animated_gif"]).getpixel((0, 0)) == decode_image(
        _encode(Image.new("P", (40, 30), 0), "GIF")).getpixel((0, 0))


def test_a_header_past_pillows_bomb_limit_is_refused_in_our_limits_terms():
    """A 100000x100000 header trips Pillow's own decompression-bomb refusal before our check: the
    error names the size and the documented limit, not Pillow's limit and its "DOS attack"."""
    with pytest.raises(ImageTooLargeError) as refused:
        decode_image(_png_header_claiming(100_000, 100_000))
    assert str(refused.value) == f"image is 10,000,000,000 px, over the {MAX_IMAGE_PIXELS:,} px limit"


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


# ------------------------------------------------------------------------------ animations

def _frame(i, size=(48, 32)):
    """A frame with structure whose colour encodes i (so frames are neither blank nor equal)."""
    img = Image.new("RGB", size, (i * 7 % 256, 255 - i * 5 % 256, i * 13 % 256))
    img.paste((255 - i * 7 % 256, 0, 0), (4, 4, size[0] // 2, size[1] // 2))
    return img


def _frame_index(img):
    return next(i for i in range(256) if img.getpixel((40, 28)) == _frame(i).getpixel((40, 28)))


def _apng(frames, **kw):
    return _encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50, **kw)


def test_animation_frames_are_sampled_over_the_whole_animation():
    frames = decode_frames(_apng([_frame(i) for i in range(40)]), max_frames=4)
    seen = [_frame_index(f) for f in frames]
    assert len(seen) == 4 and seen[0] == 0 and seen[-1] == 39, seen
    assert all(b - a >= 10 for a, b in zip(seen, seen[1:])), seen


def test_blank_and_repeated_frames_are_skipped():
    white, black = Image.new("RGB", (48, 32), "white"), Image.new("RGB", (48, 32), "black")
    seq = [white, _frame(1), _frame(1), black, _frame(2), white]
    frames = decode_frames(_apng(seq), max_frames=8)
    assert [_frame_index(f) for f in frames] == [1, 2]
    assert decode_image(_apng(seq)).getpixel((40, 28)) == _frame(1).getpixel((40, 28))


def test_an_animation_of_blank_frames_gives_one_frame():
    seq = [Image.new("RGB", (48, 32), c) for c in ("white", "black", "red")]
    assert len(decode_frames(_apng(seq))) == 1


def test_frames_scanned_are_bounded(monkeypatch):
    monkeypatch.setattr(images_module, "MAX_ANIMATION_FRAMES_SCANNED", 10)
    frames = decode_frames(_apng([_frame(i) for i in range(40)]), max_frames=4)
    assert max(_frame_index(f) for f in frames) <= 9


def test_decoded_pixels_across_frames_are_bounded(monkeypatch):
    monkeypatch.setattr(images_module, "MAX_ANIMATION_DECODE_PIXELS", 48 * 32 * 5)
    frames = decode_frames(_apng([_frame(i) for i in range(40)]), max_frames=4)
    assert max(_frame_index(f) for f in frames) == 4


def test_decode_time_across_frames_is_bounded(monkeypatch):
    monkeypatch.setattr(images_module, "MAX_ANIMATION_DECODE_S", 0.0)
    assert len(decode_frames(_apng([_frame(i) for i in range(40)]))) == 1


def test_a_gif_with_thousands_of_frames_decodes_quickly():
    data = _animated_gif(3000)
    t0 = time.perf_counter()
    frames = decode_frames(data)
    assert time.perf_counter() - t0 < 1.0 and 1 <= len(frames) <= 4


def test_a_frame_that_fails_to_decode_ends_the_animation():
    data = _apng([_frame(i) for i in range(6)])
    cut = data[:data.rindex(b"fdAT") + 20]  # the last frame's data stops short
    frames = decode_frames(cut, max_frames=8)
    assert 1 <= len(frames) <= 5 and _frame_index(frames[0]) == 0


# ------------------------------------------------------------------------- truncated data

def test_truncated_jpeg_decodes_what_arrived_without_the_global_flag():
    data = _encode(_gradient((400, 400)), "JPEG", quality=95)
    img = decode_image(data[:len(data) // 2])
    assert img.size == (400, 400) and img.getpixel((399, 399)) == (128, 128, 128)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_interlaced_png_decodes_its_early_passes():
    src = _gradient((64, 48))
    data = adam7_png(src)
    assert Image.open(io.BytesIO(data)).info.get("interlace") == 1
    assert decode_image(data).tobytes() == src.tobytes()
    img = decode_image(data[:len(data) * 3 // 4])  # the last pass (every odd row) is cut
    assert img.size == src.size and img.getpixel((0, 0)) == src.getpixel((0, 0))


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB", "P", "LA", "RGBA"])
def test_a_truncated_interlaced_png_of_each_colour_type_spreads_its_passes(mode):
    src = _gradient((64, 48)).convert("RGBA" if mode in ("LA", "RGBA") else "RGB")
    if mode == "I;16":  # 16-bit levels over the whole range
        src = Image.frombytes("I;16", src.size, (np.asarray(src.convert("L"), "<u2") * 257).tobytes())
    else:
        src = src.convert(mode)
    data = adam7_png(src)
    assert Image.open(io.BytesIO(data)).info.get("interlace") == 1
    whole = decode_image(data)
    img = decode_image(data[:len(data) // 2])
    assert img.size == whole.size and img.getpixel((0, 0)) == whole.getpixel((0, 0))
    assert all(img.crop((0, y, 64, y + 1)).getbbox() for y in range(48))  # no row left black


@pytest.mark.parametrize("interlaced", [False, True])
def test_a_truncated_png_keeps_its_colour_profile(interlaced):
    """A browser has read a PNG's iCCP before its cut image data and paints the rows that
    arrived through it; the repair kept only PLTE and tRNS, so a profile that paints stored red
    blue was dropped and the top rows judged red."""
    from display_pictures import swapped_rgb_profile

    noise = np.random.default_rng(0).integers(0, 20, (64, 64, 3), dtype=np.uint8)
    img = Image.fromarray(noise + np.array([200, 0, 0], np.uint8))  # reds that do not compress away
    if interlaced:
        data = adam7_png(img)
        iccp = chunk(b"iCCP", b"p\0\0" + zlib.compress(swapped_rgb_profile()))
        data = data[:33] + iccp + data[33:]  # after IHDR
    else:
        data = _encode(img, "PNG", icc_profile=swapped_rgb_profile(), compress_level=0)
    whole, cut = decode_image(data), decode_image(data[:len(data) * 6 // 10])
    assert whole.getpixel((1, 1))[2] > 200 and cut.getpixel((1, 1)) == whole.getpixel((1, 1))


def test_a_truncated_interlaced_png_keeps_colours_of_indices_past_its_palette():
    """Indices past the end of PLTE paint black; the spread passes keep the picture's own
    palette (a re-encode had packed it and shown them as a palette colour)."""
    indices = np.zeros((16, 16), np.uint8)
    indices[:, 1::2] = 6  # past the two entries
    img = Image.frombytes("P", (16, 16), indices.tobytes())
    img.putpalette([255, 0, 0, 0, 255, 0])
    data = adam7_png(img, compress_level=0)
    whole, cut = decode_image(data), decode_image(data[:len(data) * 7 // 10])
    assert whole.getpixel((1, 0)) == cut.getpixel((1, 0)) == (0, 0, 0)
    assert whole.getpixel((0, 0)) == cut.getpixel((0, 0)) == (255, 0, 0)


def test_a_truncated_rle_bmp_claiming_40_mp_is_refused_at_once():
    """Pillow's RLE decoder is Python, and four bytes of runs can claim 8000x5000: a cut RLE BMP
    stays refused (an uncompressed one is painted as far as it goes)."""
    info = struct.pack("<IiiHHIIiiII", 40, 8000, 5000, 1, 8, 1, 4, 0, 0, 256, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + 40 + 1024 + 4, 0, 0, 14 + 40 + 1024)
    data = header + info + bytes(1024) + bytes([255, 7, 0, 0])
    t0 = time.perf_counter()
    with pytest.raises(CorruptImageError):
        decode_image(data)
    assert time.perf_counter() - t0 < 1.0


def test_truncated_png_repair_is_bounded_by_the_header_size():
    # a zlib bomb behind a 10x10 header inflates only to what 10x10 needs
    ihdr = struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    comp = zlib.compressobj(9)
    idat = comp.compress(b"\0" * 50_000_000) + comp.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)[:-4]
    t0 = time.perf_counter()
    with contextlib.suppress(ImageError):
        decode_image(data)
    assert time.perf_counter() - t0 < 1.0


# ----------------------------------------------------------------------- aspect ratios

def test_tiles_cover_every_pixel_of_a_long_picture_once_square():
    img = Image.new("RGB", (300, 1000))
    img.putdata([(y % 256, y // 256, 0) for y in range(1000) for _ in range(300)])
    tiles = split_tiles(img)
    assert len(tiles) == 4 and all(t.size == (300, 300) for t in tiles)
    rows = {t.getpixel((0, y))[0] + 256 * t.getpixel((0, y))[1] for t in tiles for y in range(300)}
    assert rows == set(range(1000))


def test_a_picture_longer_than_the_tile_cap_is_letterboxed_per_tile():
    tiles = split_tiles(Image.new("RGB", (100, 2000), "white"), max_tiles=4)
    assert len(tiles) == 4 and all(t.size == (500, 500) for t in tiles)
    assert tiles[0].getpixel((0, 0)) == (0, 0, 0) and tiles[0].getpixel((250, 250)) == (255, 255, 255)


def test_an_mpo_jpeg_gives_its_first_picture_only():
    # browsers show the first picture of a multi-picture JPEG, not its stereo view or preview
    first, second = Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("RGB", (40, 30), (0, 0, 255))
    data = _encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    frames = decode_frames(data)
    assert len(frames) == 1 and frames[0].getpixel((5, 5))[0] > 240


# ------------------------------------------------------------- real corrupt files (issue 16)

CORRUPT_DIR = __import__("pathlib").Path(__file__).parent / "data" / "corrupt"
CORRUPT_OUTCOMES = {  # tests/data/corrupt/README.md: Pillow's own test files, and AVIFs made from one
    "broken.png": "unsupported_format",
    "broken_data_stream.png": None,  # the rows before the damage: Chromium paints them
    "pngtest_bad.png.bin": "unsupported_format",
    "truncated_end_chunk.png": None,  # decoded
    "truncated_jpeg.jpg": None,
    "shortfile.bmp": None,  # the rows that arrived, as both browsers paint them
    "decompression_bomb.gif": "image_too_large",
    "decompression_bomb_extents.gif": None,
    "hopper.heif": "unsupported_format",
    "hopper-no-pitm.avif": "unsupported_format",
    "hopper-no-iloc.avif": "unsupported_format",
    "hopper-no-av1C.avif": "unsupported_format",
}


def test_the_corrupt_corpus_lists_every_file_it_holds():
    assert {p.name for p in CORRUPT_DIR.iterdir() if p.suffix != ".md"} == set(CORRUPT_OUTCOMES)


@pytest.mark.parametrize("name", CORRUPT_OUTCOMES)
def test_a_real_corrupt_file_gets_its_typed_outcome(name):
    from simclip import decode_picture

    data = (CORRUPT_DIR / name).read_bytes()
    if name.endswith(".avif") and "AVIF" not in list_image_formats():
        pytest.skip("this Pillow build has no AVIF codec")  # then it is unsupported_format anyway
    expected = CORRUPT_OUTCOMES[name]
    if expected is None:
        picture = decode_picture(data)
        assert all(frame.mode == "RGB" for frame in (picture if isinstance(picture, list) else [picture]))
    else:
        with pytest.raises(ImageError) as e:
            decode_picture(data)
        assert e.value.code == expected


def _mutations(data, seed, count=40):
    """Seeded bit flips, truncations and overwritten length fields of `data`."""
    import random

    rng = random.Random(seed)
    for i in range(count):
        out = bytearray(data)
        kind = i % 3
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(len(out))
                out[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out = out[:rng.randrange(1, len(out))]
        else:
            pos = rng.randrange(max(1, len(out) - 4))
            out[pos:pos + 4] = struct.pack(">I", rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, len(out)]))
        yield bytes(out)


@pytest.mark.parametrize("fmt", ["WEBP", "GIF", "PNG", "JPEG", "AVIF", "BMP"])
def test_mutated_files_of_each_format_give_a_picture_or_a_typed_error(fmt):
    from simclip import decode_picture

    if fmt not in list_image_formats():
        pytest.skip(f"this Pillow build has no {fmt} codec")
    frames = [_gradient((64, 48)).rotate(a) for a in (0, 90, 180)]
    kwargs = {"save_all": True, "append_images": frames[1:]} if fmt in ("WEBP", "GIF", "PNG") else {}
    data = _encode(frames[0], fmt, **kwargs)
    for mutated in _mutations(data, seed=16):
        with contextlib.suppress(ImageError):  # typed: any other exception fails the test
            decode_picture(mutated)


def _png_claiming(width, height, body_bytes, depth=8, colour_type=6):
    """A PNG whose IHDR declares width x height and whose IDAT is cut after `body_bytes`."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    stream = zlib.compress(bytes(range(256)) * 64)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + struct.pack(">I", len(stream)) + b"IDAT" + stream[:body_bytes])


def test_a_tiny_png_claiming_40_mp_is_refused_before_decoding(monkeypatch):
    from simclip import ImageDataTooShortError

    monkeypatch.setattr(images_module, "_load", lambda img: pytest.fail("decoded"))
    with pytest.raises(ImageDataTooShortError) as e:
        decode_image(_png_claiming(6324, 6324, 900, depth=16))
    assert e.value.code == "image_data_too_short" and e.value.status == 422


def test_a_tiny_progressive_jpeg_claiming_40_mp_is_refused_but_the_whole_file_decodes():
    from simclip import ImageDataTooShortError

    data = _encode(Image.new("RGB", (6300, 6300), "white"), "JPEG", progressive=True, quality=10)
    with pytest.raises(ImageDataTooShortError):
        decode_image(data[:824])
    assert decode_image(data).size == (6300, 6300)  # the bound holds for a real, uniform picture


def test_a_tiny_gif_claiming_40_mp_is_refused_but_the_whole_file_and_a_small_frame_decode(monkeypatch):
    """A GIF's LZW codes are at least 3 bits and stand for at most 4096 pixels: 2 KB cannot hold
    16384x2441 (it was painted as a sliver, 1.5 s and 700 MB); a uniform 40 MP GIF of 30 KB can,
    and an animation's canvas is not its first frame."""
    from simclip import ImageDataTooShortError

    data = _encode(Image.new("P", (16384, 2441)), "GIF")
    assert decode_image(data).size == (16384, 2441)  # the bound holds for the most compressible frame
    with monkeypatch.context() as m:
        m.setattr(images_module, "_load", lambda img: pytest.fail("decoded"))
        with pytest.raises(ImageDataTooShortError):
            decode_image(data[:2000])
    frames = [Image.new("P", (8, 8), i) for i in range(2)]
    small = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    big_canvas = small[:6] + struct.pack("<HH", 2000, 2000) + small[10:]  # the frames stay 8x8
    assert decode_image(big_canvas).size == (2000, 2000)


def test_a_bmp_claiming_40_mp_with_a_few_rows_is_refused_but_32_rows_are_painted(monkeypatch):
    """An uncompressed BMP stores its rows as they are: 8000x5000 with 31 rows behind its header
    is a sliver (refused before decoding), with 32 rows it is painted as far as it goes."""
    from simclip import ImageDataTooShortError

    data = _encode(Image.new("L", (8000, 5000), 200), "BMP")
    offset = struct.unpack_from("<I", data, 10)[0]
    with monkeypatch.context() as m:
        m.setattr(images_module, "_load", lambda img: pytest.fail("decoded"))
        with pytest.raises(ImageDataTooShortError):
            decode_image(data[:offset + 31 * 8000])
    img = decode_image(data[:offset + 32 * 8000])  # bottom-up: the last 32 rows arrived
    assert img.size == (8000, 5000) and img.getpixel((0, 4999)) != img.getpixel((0, 0))


def test_a_small_truncated_png_is_still_painted_as_far_as_it_goes():
    # under COVER_CHECK_MIN_PIXELS the check does not apply: browsers paint what arrived
    data = _encode(_gradient((600, 400)), "PNG")
    assert decode_image(data[:len(data) // 2]).size == (600, 400)


def test_an_icc_profile_is_taken_only_when_its_stream_inflates_whole():
    """A profile cut short (25,541 of 25,600 bytes came back) is no profile, with or without
    its checksum read; a zlib bomb stops at MAX_ICC_PROFILE_BYTES."""
    from simclip.images import MAX_ICC_PROFILE_BYTES, _inflate_icc

    icc = bytes(range(256)) * 100
    stream = zlib.compress(icc)
    for check in (True, False):
        assert _inflate_icc(b"icc\0\0" + stream, check=check) == icc
        assert _inflate_icc(b"icc\0\0" + stream[:-20], check=check) is None
        bomb = zlib.compress(bytes(MAX_ICC_PROFILE_BYTES + 1))
        assert _inflate_icc(b"icc\0\0" + bomb, check=check) is None
    spoilt = stream[:-1] + bytes([stream[-1] ^ 0xFF])  # the checksum
    assert _inflate_icc(b"icc\0\0" + spoilt) is None
    assert _inflate_icc(b"icc\0\0" + spoilt, check=False) == icc
