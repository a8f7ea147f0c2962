"""The raster pictures inside an SVG, which is how a browser paints an SVG shown as a picture.

A page can show a meme as an SVG (`<img src="meme.svg">`, a CSS background) that wraps the meme's
PNG or JPEG in an `<image>` element. A browser draws an SVG used as a picture without loading
anything outside it: only pictures embedded as `data:` URIs are painted (measured 2026-12-04:
Chromium 156 and Firefox ESR 153 paint an `<image>` with a `data:image/png` `href` or
`xlink:href`, and nothing for an `http:` one). The server judges those embedded pictures; it
never renders the SVG itself (no SVG renderer or XML parser sees page bytes: the embedded URIs
are found by one linear regular-expression scan). Vector drawing and `<text>` are not judged.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse

from .errors import VectorSVGError

SVG_SNIFF_BYTES = 4096  # an SVG's root element starts within this many bytes
MAX_SVG_PICTURES = 8  # embedded pictures judged at most, the largest data first
MAX_SVG_DEPTH = 2  # an SVG embedded in an SVG is read, one in that one too, no deeper

_PROLOGUE = re.compile(  # a BOM, white space, an XML declaration, comments, a DOCTYPE
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]{0,512}\?>\s*)?"
    rb"(?:<!--(?:(?!-->).){0,2048}-->\s*|<!DOCTYPE[^>\[]{0,1024}(?:\[[^\]]{0,2048}\])?\s*>\s*)*"
    rb"<svg[\s>/]", re.S | re.I)
_DATA_HREF = re.compile(  # href="data:image/...;base64,..." (or xlink:href, single quotes)
    rb"""\bhref\s*=\s*(["'])\s*data:(image/[a-z0-9.+-]+)?((?:;[a-z0-9=._+-]*)*),([^"']*)\1""",
    re.I)


def is_svg(data: object) -> bool:
    """True for bytes whose root element is `<svg` (after an optional XML declaration, comments
    and DOCTYPE within the first SVG_SNIFF_BYTES); never parses the document."""
    return isinstance(data, (bytes, bytearray, memoryview)) and \
        _PROLOGUE.match(bytes(data[:SVG_SNIFF_BYTES])) is not None


_DATA_HREF_START = re.compile(rb"""\bhref\s*=\s*["']\s*data:image/""", re.I)


def embeds_picture(head: bytes) -> bool:
    """Whether an SVG's bytes (its first bytes are enough: the picture's data may run past
    them) hold the start of an `href` to a `data:image/` URI."""
    return _DATA_HREF_START.search(head) is not None


def embedded_pictures(data: bytes) -> list[bytes]:
    """The bytes of the pictures an SVG embeds as `data:` URIs in `href` or `xlink:href`
    attributes, in document order; base64 and percent-encoded ones alike. A URI that does not
    decode is left out."""
    pictures = []
    for match in _DATA_HREF.finditer(data):
        params, payload = match.group(3).lower(), match.group(4)
        try:
            if b";base64" in params:
                raw = base64.b64decode(re.sub(rb"\s+", b"", urllib.parse.unquote_to_bytes(payload)),
                                       validate=True)
            else:
                raw = urllib.parse.unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            continue
        if raw:
            pictures.append(raw)
    return pictures


def svg_pictures(data: bytes) -> list[bytes]:
    """The embedded pictures to judge: at most MAX_SVG_PICTURES, the largest data first.

    Raises:
        VectorSVGError: the SVG embeds no picture (a vector drawing: nothing the server
            judges; an UnsupportedImageError, 415, code 'vector_svg').
    """
    pictures = sorted(embedded_pictures(data), key=len, reverse=True)[:MAX_SVG_PICTURES]
    if not pictures:
        raise VectorSVGError("an SVG with no embedded picture (data: URI): its vector drawing "
                             "is not judged")
    return pictures
