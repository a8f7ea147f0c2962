"""The bad-input corpus over real HTTP with the real safe decoder (THREATS.md T6, T9-T11).

Every refusal has its documented code, every valid-but-unusual image gets 200, and the server
keeps serving afterwards. The tiny backbone classifies, so the whole path is real.
"""

import io
import os
import resource
import struct
import subprocess
import time
import zlib

import pytest
import requests
from PIL import Image, features

from server_support import TEST_TOKEN

RED = (200, 30, 30)


def encode(image, fmt, **kwargs):
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def meme(size=(96, 64)):
    """A small image with some structure (so truncation really cuts pixel data)."""
    im = Image.new("RGB", size, RED)
    for x in range(0, size[0], 8):
        for y in range(0, size[1], 8):
            im.putpixel((x, y), (x % 256, y % 256, 120))
    return im


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width, height, color_type=2):
    """A PNG whose IHDR declares width x height, with one tiny IDAT (a header bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def png_zlib_bomb(side=7000):
    """A real side x side greyscale PNG of zeros: a few hundred KB that inflate to 49 MB."""
    comp = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def jpeg_declaring(width, height):
    """A valid small JPEG whose SOF0 is patched to declare width x height."""
    data = bytearray(encode(meme(), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_frames(n):
    frames = [Image.new("P", (8, 8), i % 2) for i in range(n)]
    for f in frames:
        f.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)


def exif_rotated_jpeg(image):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


JPEG = encode(meme(), "JPEG", quality=90)
PNG = encode(meme(), "PNG")
HTML = b"<!doctype html><html><script>alert(1)</script></html>"
XXE_SVG = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           b'<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>')
LAUGHS_SVG = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
              b'<svg xmlns="http://www.w3.org/2000/svg"><text>&lol2;</text></svg>')
EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
       b"newpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n")

# name -> (bytes factory, expected status, expected error code or None)
REFUSED = {
    "one_byte": (lambda: b"\x89", 415, "unsupported_format"),
    "random_4k": (lambda: os.urandom(4096).replace(b"\xff\xd8", b"xx"), 415,
                  "unsupported_format"),
    "html": (lambda: HTML, 415, "unsupported_format"),
    "html_with_png_magic": (lambda: b"\x89PNG\r\n\x1a\n" + HTML, 415, "unsupported_format"),
    "gif_js_polyglot": (lambda: b"GIF89a/*\x00\x00\x00\x00*/=1;alert(1);" + b"\x00" * 16, 415,
                        "unsupported_format"),
    # no XML parser sees an SVG (simclip/svg.py): neither embeds a data: picture, so both are vector
    "xxe_svg": (lambda: XXE_SVG, 415, "vector_svg"),
    "billion_laughs_svg": (lambda: LAUGHS_SVG, 415, "vector_svg"),
    "eps": (lambda: EPS, 415, "unsupported_format"),
    "tiff": (lambda: encode(meme(), "TIFF"), 415, "unsupported_format"),
    "ico": (lambda: encode(meme(), "ICO"), 415, "unsupported_format"),
    "psd_magic": (lambda: b"8BPS\x00\x01" + b"\x00" * 64, 415, "unsupported_format"),
    "pdf": (lambda: encode(meme(), "PDF"), 415, "unsupported_format"),
    "png_zero_width": (lambda: png_header_only(0, 10), 415, "unsupported_format"),
    # every header up to the start of scan, no entropy-coded data: browsers paint nothing
    "truncated_jpeg_header_only": (lambda: JPEG[:JPEG.index(b"\xff\xda") + 14], 422,
                                   "corrupt_image"),
    # a JPEG cut in its header is a truncated JPEG (422), not another format (415)
    "truncated_jpeg_inside_header": (lambda: JPEG[:200], 422, "corrupt_image"),
    "truncated_png_before_rows": (lambda: PNG[:PNG.index(b"IDAT") + 8], 422, "corrupt_image"),
}
BOMBS = {
    "png_header_100k_x_100k": (lambda: png_header_only(100_000, 100_000), 422),
    "png_header_65535_x_1": (lambda: png_header_only(65_535, 1), 422),
    "png_header_9000_x_9000": (lambda: png_header_only(9000, 9000), 422),
    "png_zlib_bomb_7000_x_7000": (png_zlib_bomb, 422),
    "jpeg_sof_10001_x_10001": (lambda: jpeg_declaring(10_001, 10_001), 422),
}
VALID = {
    "jpeg": lambda: JPEG,
    "cmyk_jpeg": lambda: encode(meme().convert("CMYK"), "JPEG"),
    "gray16_png": lambda: encode(Image.new("I;16", (40, 30), 40000), "PNG"),
    "la_png": lambda: encode(meme().convert("LA"), "PNG"),
    "palette_transparency_png": lambda: encode(meme().convert("P"), "PNG", transparency=0),
    "mode1_png": lambda: encode(meme().convert("1"), "PNG"),
    "webp": lambda: encode(meme(), "WEBP"),
    "bmp": lambda: encode(meme(), "BMP"),
    "gif": lambda: encode(meme().convert("P"), "GIF"),
    "jpeg_then_zip": lambda: JPEG + b"PK\x03\x04" + b"\x00" * 100,
    # truncated downloads that browsers paint as far as the data goes (docs/api.md)
    "truncated_jpeg_without_end_marker": lambda: JPEG[:-2],
    "truncated_jpeg_half": lambda: JPEG[:len(JPEG) // 2],
    "truncated_png_two_thirds": lambda: PNG[:len(PNG) * 2 // 3],
}


@pytest.fixture(scope="module")
def corpus_server(tiny_predictor):
    """One real-decoder server for the module (tiny backbone, no OCR)."""
    from backend import create_app
    from backend.model import close_app
    from server_support import LiveServer

    app = create_app({"TESTING": True, "CLASSIFIER": tiny_predictor, "TOKEN": TEST_TOKEN,
                      "CACHE_DIR": ""})
    server = LiveServer(app)
    yield server
    server.close()
    close_app(app)


def post(server, data, content_type="application/octet-stream"):
    return requests.post(server.url + "/v1/classify", data=data, timeout=30,
                         headers={"X-Auth-Token": TEST_TOKEN, "Content-Type": content_type})


@pytest.fixture
def no_subprocess(monkeypatch):
    """Fail loudly if anything (Ghostscript for EPS) is spawned while the test runs."""
    spawned = []

    def refuse(*args, **kwargs):
        spawned.append(args)
        raise AssertionError(f"a subprocess was spawned: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    return spawned


def test_zero_bytes_get_400(corpus_server):
    r = post(corpus_server, b"")
    assert r.status_code == 400


@pytest.mark.parametrize("name", REFUSED)
def test_malformed_and_dangerous_inputs_get_their_documented_code(corpus_server, name,
                                                                  no_subprocess):
    make, status, code = REFUSED[name]
    r = post(corpus_server, make())
    assert r.status_code == status, r.text
    if code:
        assert r.json()["error"]["code"] == code
    assert not no_subprocess


@pytest.mark.parametrize("name", BOMBS)
def test_pixel_bombs_get_422_fast_without_decoding(corpus_server, name):
    make, status = BOMBS[name]
    data = make()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    r = post(corpus_server, data)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == "image_too_large"
    assert time.perf_counter() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100_000  # KiB


def test_gif_with_thousands_of_frames_is_classified_from_its_first_frame(corpus_server):
    data = gif_frames(3000)
    t0 = time.perf_counter()
    r = post(corpus_server, data, "image/gif")
    assert r.status_code == 200, r.text
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("name", VALID)
def test_valid_unusual_images_get_200(corpus_server, name):
    r = post(corpus_server, VALID[name]())
    assert r.status_code == 200, r.text
    assert set(r.json()["scores"]) == {"harmful", "misogynous", "hateful", "offensive"}


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow build has no AVIF codec")
def test_avif_image_gets_200(corpus_server):
    assert post(corpus_server, encode(meme(), "AVIF"), "image/avif").status_code == 200


def test_exif_rotated_jpeg_scores_like_the_upright_image(corpus_server):
    im = meme((120, 60))
    rotated = post(corpus_server, exif_rotated_jpeg(im)).json()["scores"]
    upright = post(corpus_server, encode(im.transpose(Image.Transpose.ROTATE_270), "JPEG",
                                         quality=95)).json()["scores"]
    sideways = post(corpus_server, encode(im, "JPEG", quality=95)).json()["scores"]
    for cat in upright:
        assert abs(rotated[cat] - upright[cat]) <= abs(sideways[cat] - upright[cat]) + 1e-3


def test_server_still_serves_after_the_whole_corpus(corpus_server):
    for make, *_ in list(REFUSED.values()) + list(BOMBS.values()):
        assert post(corpus_server, make()).status_code in (400, 415, 422)
    health = requests.get(corpus_server.url + "/v1/health", timeout=10,
                          headers={"X-Auth-Token": TEST_TOKEN})
    assert health.status_code == 200
    assert post(corpus_server, PNG).status_code == 200


# ------------------------------------------------------- hostile bytes, issue 16

def mp4_sample_table_bomb():
    """A small real MP4 whose sample tables declare 85 million samples."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            for packet in stream.encode(av.VideoFrame.from_image(Image.new("RGB", (64, 48),
                                                                           (i * 20, 0, 0)))):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = bytearray(buf.getvalue())
    stsz, stts = data.index(b"stsz") + 8, data.index(b"stts") + 8
    data[stsz:stsz + 8] = struct.pack(">II", 100, 85_000_000)
    data[stts:stts + 8] = struct.pack(">II", 1, 85_000_000)
    return bytes(data)


def png_claiming_40_mp():
    ihdr = struct.pack(">IIBBBBB", 6324, 6324, 16, 6, 0, 0, 0)
    stream = zlib.compress(bytes(range(256)) * 64)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + struct.pack(">I", len(stream)) + b"IDAT" + stream[:900])


HOSTILE = {
    "mp4_declaring_85_million_samples": (mp4_sample_table_bomb, "video/mp4", 422,
                                         "video_too_many_frames"),
    "png_1kb_claiming_40_mp": (png_claiming_40_mp, "image/png", 422, "image_data_too_short"),
    "jpeg_824_bytes_claiming_40_mp": (
        lambda: encode(Image.new("RGB", (6300, 6300), "white"), "JPEG", progressive=True,
                       quality=10)[:824], "image/jpeg", 422, "image_data_too_short"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_bomb_gets_its_typed_code_from_the_container_headers(corpus_server, name):
    make, content_type, status, code = HOSTILE[name]
    r = post(corpus_server, make(), content_type)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize("name", ["hopper-no-pitm.avif", "hopper-no-iloc.avif", "hopper.heif",
                                  "broken.png"])
def test_a_real_corrupt_file_is_never_a_500(corpus_server, name):
    from pathlib import Path

    data = (Path(__file__).parent / "data" / "corrupt" / name).read_bytes()
    r = post(corpus_server, data)
    assert r.status_code in (415, 422), r.text
    assert r.json()["error"]["code"] in ("unsupported_format", "corrupt_image")
