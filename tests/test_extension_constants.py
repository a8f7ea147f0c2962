"""The extension's copies of the server's defaults agree with the server.

The extension cannot import Python, and it needs these values before it reaches any server (the
port to find it, the body limit to skip a picture without sending it), so it keeps copies; each
copy is read from its JavaScript source here and compared with its one home in Python.
"""

import math
import re
from pathlib import Path

import pytest

from backend.config import DEFAULT_CONFIG
from simclip import DEFAULT_PORT, MAX_BODY_BYTES

EXTENSION = Path(__file__).resolve().parents[1] / "extension"


def js_constant(path, name):
    """The value of `export const NAME = <integer product>;` in an extension source file
    (e.g. `10 * 1024 * 1024`, digits may carry `_`)."""
    source = (EXTENSION / path).read_text()
    match = re.search(rf"^export const {name} = ([\d_ *]+);", source, re.M)
    assert match, f"extension/{path} has no `export const {name} = <number>;`"
    return math.prod(int(factor.replace("_", "")) for factor in match[1].split("*"))


def test_the_extensions_picture_byte_limit_is_the_servers_body_limit():
    assert js_constant("shared/api.js", "MAX_IMAGE_BYTES") == MAX_BODY_BYTES
    assert DEFAULT_CONFIG["BODY_MAX"] == DEFAULT_CONFIG["MAX_CONTENT_LENGTH"] == MAX_BODY_BYTES


def test_the_extensions_default_port_is_the_servers():
    assert js_constant("shared/settings.js", "DEFAULT_PORT") == DEFAULT_PORT == DEFAULT_CONFIG["PORT"]


def _product_files():
    """The extension's own sources: no vendored builds, no tests."""
    for path in sorted(EXTENSION.rglob("*")):
        parts = path.relative_to(EXTENSION).parts
        if path.suffix in (".js", ".html", ".json") and parts[0] not in ("vendor", "test",
                                                                          "node_modules"):
            yield path


@pytest.mark.parametrize("path", list(_product_files()), ids=lambda p: str(p.relative_to(EXTENSION)))
def test_every_port_the_extension_writes_out_is_the_default_port(path):
    """Placeholders, fallbacks and help texts that spell the port out (they cannot use
    DEFAULT_PORT: HTML, or a message shown as is) name the server's default."""
    text = path.read_text()
    ports = re.findall(r"(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)", text)
    ports += re.findall(r"default (?:port )?(\d{4,5})\b", text)
    assert {int(p) for p in ports} <= {DEFAULT_PORT}, f"{path.name} names ports {ports}"


def test_the_port_check_reads_literal_ports():
    """The scan above finds the ports the extension writes out today (so it can fail)."""
    found = {path.name for path in _product_files()
             if re.search(rf"(?:127\.0\.0\.1:|default ){DEFAULT_PORT}\b", path.read_text())}
    assert {"api.js", "options.html", "options.js"} <= found
