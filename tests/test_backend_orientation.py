"""POST /v1/classify with X-Exif-Orientation and X-Display-Rules: the client says in which formats
its browser turns a picture by its EXIF orientation, and which rules it follows where browsers
read a picture differently, and the server judges the picture as that browser paints it
(docs/api.md, "What is judged")."""

import io
import struct
import zlib

import pytest
from PIL import Image

from backend.openapi import create_openapi

STORED = {"width": 60, "height": 20}
UPRIGHT = {"width": 20, "height": 60}


def oriented(fmt, seed=0):
    """A 60x20 picture whose EXIF orientation (6) shows it as 20x60; `seed` varies its bytes."""
    img = Image.new("RGB", (60, 20), (200, 40 + seed, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, fmt, exif=exif.tobytes())
    return buf.getvalue()


def post(client, data, rule=None, display_rules=None):
    """POST `data`; `rule`: the X-Exif-Orientation value, `display_rules` X-Display-Rules' (a
    list: the header sent once per item)."""
    headers = []
    for name, value in (("X-Exif-Orientation", rule), ("X-Display-Rules", display_rules)):
        if value is not None:
            headers += [(name, v) for v in ([value] if isinstance(value, str) else value)]
    return client.post("/v1/classify", data=data, content_type="application/octet-stream", headers=headers)


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _ifd0(*orientations, seed=0):
    """A JPEG (60x20) whose EXIF directory holds these orientation entries, in order."""
    entries = b"".join(struct.pack(">HHIHH", 0x112, 3, 1, o, 0) for o in orientations)
    block = b"Exif\0\0MM\0*\0\0\0\x08" + struct.pack(">H", len(orientations)) + entries + bytes(4)
    buf = io.BytesIO()
    Image.new("RGB", (60, 20), (200, 40 + seed, 40)).save(buf, "JPEG", exif=block)
    return buf.getvalue()


def animated_png(seed=0):
    """A two-frame APNG (60x20) with an eXIf of orientation 6 before its image data."""
    frames = [Image.new("RGB", (60, 20), (200, 40 + seed + k, 40)) for k in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100)
    data = buf.getvalue()
    at = data.index(b"IHDR") + 4 + 13 + 4
    block = b"MM\0*\0\0\0\x08" + struct.pack(">HHHIHH", 1, 0x112, 3, 1, 6, 0) + bytes(4)
    return data[:at] + _chunk(b"eXIf", block) + data[at:]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_without_the_parameter_every_format_is_turned_upright(client, fmt):
    answer = post(client, oriented(fmt))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["size"] == UPRIGHT


@pytest.mark.parametrize("fmt,rule,size", [
    ("WEBP", "jpeg,png", STORED),  # Chromium: a WebP is painted as stored
    ("JPEG", "jpeg,png", UPRIGHT),
    ("PNG", "jpeg,png", UPRIGHT),
    ("PNG", "jpeg", STORED),
    ("WEBP", "jpeg,png,webp", UPRIGHT),
    ("JPEG", "none", STORED),  # a browser that turns nothing
    ("JPEG", "", STORED),
    ("JPEG", "JPEG, PNG", UPRIGHT),  # names are case-insensitive, spaces ignored
    ("WEBP", "heic,webp", UPRIGHT),  # a name the server does not know is ignored
    ("WEBP", ["jpeg", "webp"], UPRIGHT),  # a repeated field is one list (RFC 9110 5.3)
    ("PNG", ["jpeg", "webp"], STORED),
    ("PNG", ["png", "webp"], UPRIGHT),  # each field counts, not the last one
    # RFC 9110 5.6.1: optional white space is SP or HTAB, and empty list elements are ignored
    ("PNG", "jpeg,\tpng", UPRIGHT),
    ("PNG", "jpeg, ,png", UPRIGHT),
    ("PNG", ",png,", UPRIGHT),
    ("JPEG", "jpg", UPRIGHT),  # the file extension names the format too
])
def test_the_picture_is_judged_as_the_clients_browser_paints_it(client, fmt, rule, size):
    answer = post(client, oriented(fmt), rule)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["size"] == size


@pytest.mark.parametrize("rule,display_rules,size", [
    (None, None, UPRIGHT), ("jpeg,png", None, UPRIGHT), ("jpeg,png", "apng-exif-ignored", STORED),
    ("jpeg", None, STORED), ("jpeg,png", "exif-last-entry", UPRIGHT)])
def test_an_apng_is_turned_only_where_the_browser_turns_one(client, rule, display_rules, size):
    """Firefox paints an APNG with an eXIf as stored, Chromium turns it where it turns a PNG
    (docs/api.md); a client that lists png and no rule, as before the rule, keeps it turned."""
    answer = post(client, animated_png(), rule, display_rules)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["size"] == size


@pytest.mark.parametrize("display_rules,size", [
    (None, STORED),  # the first valid entry, 1 (Chromium)
    ("exif-last-entry", UPRIGHT),  # the last, 6 (Firefox)
    ("EXIF-Last-Entry, ", UPRIGHT),  # case-insensitive, a list as for X-Exif-Orientation
    (["none", "exif-last-entry"], UPRIGHT),
    ("none", STORED), ("", STORED),
    ("some-future-rule", STORED),  # a name the server does not know is ignored
])
def test_several_orientation_entries_are_read_by_the_clients_rule(client, display_rules, size):
    answer = post(client, _ifd0(1, 6), "jpeg,png", display_rules)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["size"] == size


def test_the_same_bytes_under_other_display_rules_are_another_picture(client):
    data = _ifd0(1, 6, seed=9)
    first = post(client, data, "jpeg").get_json()
    other = post(client, data, "jpeg", "exif-last-entry").get_json()
    again = post(client, data, "jpeg", "none").get_json()
    assert (first["size"], first["cached"]) == (STORED, False)
    assert (other["size"], other["cached"]) == (UPRIGHT, False)
    assert (again["size"], again["cached"]) == (STORED, True)


@pytest.mark.parametrize("display_rules", ["exif;last", "a" * 40, ",".join(["x"] * 17), "-x", "exif last"])
def test_malformed_display_rules_are_a_400(client, display_rules):
    answer = post(client, oriented("JPEG"), "jpeg", display_rules)
    assert answer.status_code == 400
    assert "X-Display-Rules" in answer.get_json()["error"]["message"]


def test_the_same_bytes_under_another_rule_are_not_answered_from_the_others_cache(client):
    data = oriented("WEBP", seed=7)
    first = post(client, data, "jpeg,png").get_json()
    other = post(client, data, "png,jpeg,webp").get_json()
    again = post(client, data, "png,jpeg").get_json()
    assert (first["size"], first["cached"]) == (STORED, False)
    assert (other["size"], other["cached"]) == (UPRIGHT, False)
    assert (again["size"], again["cached"]) == (STORED, True)  # the same rule, listed in another order
    spelled = post(client, data, ["PNG,\tJPG,", "heic"]).get_json()
    assert (spelled["size"], spelled["cached"]) == (STORED, True)  # and spelled another way
    assert first["sha256"] == other["sha256"] == again["sha256"]  # the body's hash either way


@pytest.mark.parametrize("rule", ["jpeg;png", "x" * 40, "jpeg,ü", ",".join(["png"] * 17), "image/jpeg", "*",
                                  "jpeg png", "," * 40])
def test_a_malformed_rule_is_a_400_before_the_body_is_read(client, rule):
    answer = post(client, oriented("JPEG"), rule)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "bad_request"
    assert "X-Exif-Orientation" in answer.get_json()["error"]["message"]


def test_the_rule_reaches_the_isolated_decode_workers(make_app, tiny_predictor):
    client = make_app(CLASSIFIER=tiny_predictor, OCR_WORKERS=1).test_client()
    data = oriented("WEBP", seed=3)
    assert post(client, data, "jpeg").get_json()["size"] == STORED
    assert post(client, data).get_json()["size"] == UPRIGHT
    entries = _ifd0(1, 6, seed=3)
    assert post(client, entries, "jpeg", "exif-last-entry").get_json()["size"] == UPRIGHT
    assert post(client, animated_png(seed=3), "jpeg,png", "apng-exif-ignored").get_json()["size"] == STORED


def test_openapi_documents_the_rule_and_the_size():
    classify = create_openapi(8478)["paths"]["/v1/classify"]["post"]
    assert [(p["name"], p["in"]) for p in classify["parameters"]] == [
        ("X-Exif-Orientation", "header"), ("X-Display-Rules", "header")]
    assert "size" in create_openapi(8478)["components"]["schemas"]["ClassifyResult"]["properties"]


def test_a_png_with_megabytes_of_compressed_text_is_judged_not_refused(make_app, tiny_predictor):
    """Pillow refuses a PNG whose zTXt inflates past 1 MB; browsers paint it, so a page could
    hide any picture from the server behind such a chunk (a 415 is shown unchecked)."""
    import struct
    import zlib

    buf = io.BytesIO()
    Image.new("RGB", (60, 20), (200, 40, 40)).save(buf, "PNG")
    plain = buf.getvalue()
    text = b"Comment\x00\x00" + zlib.compress(b"a" * 2_000_000)
    ztxt = struct.pack(">I", len(text)) + b"zTXt" + text + struct.pack(">I", zlib.crc32(b"zTXt" + text))
    first = plain.index(b"IDAT") - 4
    client = make_app(CLASSIFIER=tiny_predictor, OCR_WORKERS=1).test_client()
    answer = post(client, plain[:first] + ztxt + plain[first:], "jpeg,png")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["size"] == STORED
