"""An SVG shown as a picture is judged on the pictures it embeds (simclip/svg.py): a page that
wraps a meme's PNG in an SVG got a 415 and the meme was shown unchecked."""

import base64
import io
import time
import urllib.parse

import pytest
from PIL import Image

from simclip import CorruptImageError, UnsupportedImageError, VectorSVGError, decode_picture
from simclip.images import Frames
from simclip.svg import MAX_SVG_PICTURES, embedded_pictures, is_svg

SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


def png(size=(300, 200), colour=(200, 30, 30)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def svg(*images, prologue="", attr="href", quote='"'):
    """An SVG embedding `images` (bytes, or ready data: URIs) as <image> elements."""
    body = ""
    for image in images:
        uri = image if isinstance(image, str) else "data:image/png;base64," + base64.b64encode(image).decode()
        body += f'<image width="300" height="200" {attr}={quote}{uri}{quote}/>'
    return f'{prologue}<svg {SVG_NS} width="300" height="200">{body}</svg>'.encode()


@pytest.mark.parametrize("prologue", [
    "", '<?xml version="1.0" encoding="UTF-8"?>\n', "\ufeff", "  \n<!-- made by hand -->\n",
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">',
])
def test_an_svg_is_told_by_its_root_element_after_any_prologue(prologue):
    assert is_svg(svg(png(), prologue=prologue))


@pytest.mark.parametrize("data", [b"", png(), b"<html><body><svg></svg></body></html>",
                                  b"<?xml version='1.0'?><rss/>", b"svg", b"<svgfoo/>"])
def test_other_bytes_are_not_an_svg(data):
    assert not is_svg(data)


@pytest.mark.parametrize("attr,quote", [("href", '"'), ("xlink:href", '"'), ("href", "'"), ("HREF", '"')])
def test_an_svg_meme_is_judged_on_the_picture_it_embeds(attr, quote):
    """Chromium 156 and Firefox 153 paint an <image> whose href or xlink:href is a data: URI
    (and nothing for an http: one: an SVG used as a picture loads nothing)."""
    shown = decode_picture(svg(png(), attr=attr, quote=quote))
    assert shown.size == (300, 200) and shown.getpixel((5, 5)) == (200, 30, 30)


def test_base64_with_line_breaks_and_percent_encoded_uris_are_read():
    b64 = base64.encodebytes(png()).decode()  # broken into lines, as some tools write it
    assert embedded_pictures(svg("data:image/png;base64," + b64)) == [png()]
    inner = svg(png()).decode()
    nested = svg("data:image/svg+xml," + urllib.parse.quote(inner))
    assert embedded_pictures(nested) == [inner.encode()]
    assert decode_picture(nested).getpixel((5, 5)) == (200, 30, 30)  # an SVG in an SVG


def test_several_pictures_are_frames_the_largest_first_and_a_bad_one_is_skipped():
    small, large = png((40, 40), (0, 0, 200)), png((300, 200), (200, 30, 30))
    frames = decode_picture(svg(small, b"\x89PNG\r\n\x1a\nbroken", large))
    assert isinstance(frames, Frames) and [f.size for f in frames] == [(300, 200), (40, 40)]
    assert len(embedded_pictures(svg(*[png((10 + i, 10)) for i in range(20)]))) == 20
    assert len(decode_picture(svg(*[png((10 + i, 10)) for i in range(20)]), max_frames=64)) == MAX_SVG_PICTURES


def test_an_svg_with_nothing_to_judge_gets_a_typed_refusal():
    with pytest.raises(VectorSVGError, match="no embedded picture") as e:
        decode_picture(f'<svg {SVG_NS}><text>a vector meme</text></svg>'.encode())
    assert (e.value.code, e.value.status) == ("vector_svg", 415) and isinstance(e.value, UnsupportedImageError)
    with pytest.raises(VectorSVGError):
        decode_picture(svg('http://127.0.0.1:9/x.png'))  # not painted by browsers either
    with pytest.raises(CorruptImageError):
        decode_picture(svg(png()[:60]))  # its only picture is cut in its header


def test_svgs_nested_past_the_depth_limit_are_not_read():
    nested = svg(png())
    for _ in range(3):
        nested = svg("data:image/svg+xml;base64," + base64.b64encode(nested).decode())
    with pytest.raises(UnsupportedImageError, match="nested deeper"):
        decode_picture(nested)


def test_a_hostile_svg_is_scanned_in_linear_time():
    """10 MiB of attribute soup: one pass of the scanner, no XML parser."""
    soup = b"<svg " + b'href="data:image/png;base64,' * 1 + b"A" * 10_000_000 + b" href='data:;" * 1000
    t0 = time.perf_counter()
    with pytest.raises((UnsupportedImageError, CorruptImageError)):
        decode_picture(soup)
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("isolated", [False, True], ids=["threads", "decode-workers"])
def test_the_server_judges_an_svg_meme_and_refuses_a_vector_one(make_app, tiny_predictor, isolated):
    client = make_app(CLASSIFIER=tiny_predictor, OCR_WORKERS=1, DECODE_ISOLATION=isolated).test_client()
    r = client.post("/v1/classify", data=svg(png()), content_type="image/svg+xml")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["size"] == {"width": 300, "height": 200}
    r = client.post("/v1/classify", data=f"<svg {SVG_NS}/>".encode(), content_type="image/svg+xml")
    assert r.status_code == 415 and "SVG" in r.get_json()["error"]["message"]
    assert r.get_json()["error"]["code"] == "vector_svg"  # the extension skips it as an icon
