"""The picture judged is the picture shown (issue 17, item 4), in Chromium and Firefox with the
real server: a JPEG, a PNG (eXIf) and a WebP, each stored 240x120 with EXIF orientation 6, an
APNG (eXIf) and a JPEG with two orientation entries (1, then 6), and one picture per colour rule
browsers disagree on (tests/display_pictures.py: a CMYK profile, a PNG profile with a bad
checksum, gAMA beside sRGB, a Lab profile on RGB), shown on a page. The server's answer for each
says it judged the picture at the size this browser paints it (`naturalWidth` x
`naturalHeight`), and the server's decoding under the rules the extension sent paints each
colour picture's centre as this browser's canvas reads it back. The extension measures its
rules itself (extension/background/orientation.js) and sends them in X-Exif-Orientation and
X-Display-Rules.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageDraw
from slow_server import StandIn

from display_pictures import FOLLOWED_OTHERWISE, close
from display_pictures import rule_picture as colour_picture
from e2e_support import (
    DECIDED,
    EXTENSION_DIR,
    MEME_STATES_JS,
    MONITOR_JS,
    meme_states,
    pair_through_options_page,
    wait_for,
    write_json,
)
from feed_site import EMBED_HOST, FEED_HOST
from simclip.images import decode_image

FORMATS = {"jpeg": ("JPEG", {"quality": 90}), "png": ("PNG", {}), "webp": ("WEBP", {"quality": 90})}
# each painted at this size only in a browser that follows the rule, at the other one elsewhere
RULES = {"exif-last-entry": "turned", "apng-exif-ignored": "stored"}
COLOUR_RULES = tuple(FOLLOWED_OTHERWISE)  # each painted in its followed colour only under its rule
TURNED = {"width": 120, "height": 240}
SIZES = {"turned": TURNED, "stored": {"width": 240, "height": 120}}
FIREFOX_CANDIDATES = ("/usr/bin/firefox-esr", "/usr/bin/firefox")

# Main world: the size this browser paints each test picture at, and the colour of its centre as
# a canvas reads it back, by its data-post.
SHOWN_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('img[data-post]'), (img) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const centre = Array.from(context.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data.slice(0, 3));
  return [img.dataset.post, {width: img.naturalWidth, height: img.naturalHeight, centre}];
}))"""


def _picture(label, seed):
    img = Image.new("RGB", (240, 120), (235, 235, 235))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 119, 119), fill=(200, 40, 40))
    draw.text((130, 50), f"{label} {seed}", fill=(0, 0, 0))
    return img


def _tiff(*orientations):
    """An EXIF block whose first directory holds these orientation entries (SHORT), in order."""
    entries = b"".join(struct.pack(">HHIHH", 0x112, 3, 1, o, 0) for o in orientations)
    return b"MM\0*\0\0\0\x08" + struct.pack(">H", len(orientations)) + entries + bytes(4)


def oriented_picture(fmt, seed):
    """A 240x120 picture in `fmt` (bytes unique to `seed`) with EXIF orientation 6."""
    name, save = FORMATS[fmt]
    img, buf = _picture(fmt, seed), io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(buf, name, exif=exif.tobytes(), **save)
    return buf.getvalue()


def rule_picture(rule, seed):
    """A 240x120 picture painted at RULES[rule]'s size only under `rule`: exif-last-entry, a
    JPEG with orientation entries 1 then 6; apng-exif-ignored, an APNG of two frames with an
    eXIf of orientation 6 before its image data."""
    img, buf = _picture(rule, seed), io.BytesIO()
    if rule == "exif-last-entry":
        img.save(buf, "JPEG", quality=90, exif=b"Exif\0\0" + _tiff(1, 6))
        return buf.getvalue()
    assert rule == "apng-exif-ignored", rule
    second = img.copy()
    ImageDraw.Draw(second).text((130, 80), "2", fill=(0, 0, 0))
    img.save(buf, "PNG", save_all=True, append_images=[second], duration=200)
    data, block = buf.getvalue(), _tiff(6)
    at = data.index(b"IHDR") + 4 + 13 + 4
    exif = struct.pack(">I", len(block)) + b"eXIf" + block + struct.pack(">I", zlib.crc32(b"eXIf" + block))
    return data[:at] + exif + data[at:]


class RecordingServer(StandIn):
    """Forwards every request to the real server, and records each classify request's
    X-Exif-Orientation and X-Display-Rules and the real server's answer, by the sha256 of the
    body."""

    def __init__(self, real):
        super().__init__(real)
        self.classified = {}  # sha256 -> {"rule", "answer"}
        self.lock = threading.Lock()

    def answer(self, handler, method, body):
        if method != "POST" or handler.path != "/v1/classify":
            return False
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
        r = requests.post(self.real.url + handler.path, data=body, headers=headers, timeout=60)
        with self.lock:
            self.classified[hashlib.sha256(body).hexdigest()] = {
                "rule": handler.headers.get("X-Exif-Orientation"),
                "display_rules": handler.headers.get("X-Display-Rules"),
                "answer": r.json() if r.status_code == 200 else None}
        keep = {k: v for k, v in r.headers.items() if k.lower() in StandIn.FORWARDED_HEADERS}
        handler.reply(r.status_code, r.content, keep)
        return True


class OrientationPage:
    """Serves /orientation on loopback (reached as FEED_HOST:port): the test pictures of `seed`
    (one per format and per display rule) as data: URLs, so that only the extension's own
    reading of them reaches the server."""

    def __init__(self, seed):
        self.pictures = {fmt: oriented_picture(fmt, seed) for fmt in FORMATS}
        self.pictures.update({rule: rule_picture(rule, seed) for rule in RULES})
        mime = {"exif-last-entry": "jpeg", "apng-exif-ignored": "png"}
        for rule in COLOUR_RULES:
            self.pictures[rule], mime[rule] = colour_picture(rule, (160, 120), label=seed)
        imgs = "".join(
            f'<section><img class="meme" data-truth="neutral" data-post="{name}" data-kind="data" alt="" '
            f'src="data:image/{mime.get(name, name)};base64,{base64.b64encode(data).decode()}"></section>'
            for name, data in self.pictures.items())
        body = f"<!doctype html><html><head><title>orientation</title></head><body>{imgs}</body></html>".encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200 if self.path == "/orientation" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://{FEED_HOST}:{self.server.server_address[1]}/orientation"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def check_judged_as_shown(page, recorder, shown):
    """Each picture's server answer has the size the browser paints it at, and a colour
    picture's centre, decoded by the server's rules under the headers sent, the colour the
    browser paints; the headers list exactly the formats the browser turned and the rules it
    followed. Returns the headers' values, 'X-Exif-Orientation; X-Display-Rules'."""
    rules = set()
    for name, data in page.pictures.items():
        record = recorder.classified.get(hashlib.sha256(data).hexdigest())
        assert record is not None and record["answer"] is not None, (name, recorder.classified)
        rules.add(f"{record['rule']}; {record['display_rules']}")
        size = {k: shown[name][k] for k in ("width", "height")}
        assert record["answer"]["size"] == size, (name, record, shown)
        listed = (record["display_rules"] if name in (*RULES, *COLOUR_RULES) else record["rule"]).split(",")
        if name in COLOUR_RULES:
            judged = decode_image(data, exif_formats=record["rule"].split(","),
                                  display_rules=record["display_rules"].split(","))
            centre = judged.getpixel((judged.width // 2, judged.height // 2))
            assert close(centre, shown[name]["centre"]), (name, record, centre, shown[name])
            assert close(shown[name]["centre"], FOLLOWED_OTHERWISE[name][name not in listed]), (name, record, shown[name])
            continue
        followed = size == SIZES[RULES[name]] if name in RULES else size == TURNED
        assert followed == (name in listed), (name, record, shown)
    assert len(rules) == 1, rules  # one rule for the browser, measured once
    assert {k: shown["jpeg"][k] for k in TURNED} == TURNED  # every browser turns a JPEG: the page shows what it should
    return rules.pop()


@pytest.fixture
def recorder(simclip_server):
    stand_in = RecordingServer(simclip_server).start()
    yield stand_in
    stand_in.stop()


def test_each_format_is_judged_at_the_size_chromium_paints_it(browser, simclip_server, recorder, artifacts_dir):
    site = OrientationPage("chromium")
    pair_through_options_page(browser, recorder)
    page = browser.context.new_page()
    try:
        page.goto(site.url)
        wait_for(lambda: {s["post"]: s["state"] for s in meme_states(page)}.keys() == site.pictures.keys()
                 and all(s["state"] in DECIDED for s in meme_states(page)), 90,
                 message="every picture decided")
        shown = page.evaluate(SHOWN_JS)
        rule = check_judged_as_shown(site, recorder, shown)
        write_json(artifacts_dir / "orientation-chromium.json", {"rule": rule, "shown": shown})
    finally:
        page.close()
        pair_through_options_page(browser, simclip_server)
        site.stop()


def test_each_format_is_judged_at_the_size_firefox_paints_it(simclip_server, recorder, artifacts_dir, tmp_path):
    firefox = os.environ.get("SIMCLIP_E2E_FIREFOX") or next((p for p in FIREFOX_CANDIDATES if Path(p).exists()), None)
    if not firefox or shutil.which("node") is None or not (EXTENSION_DIR / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("Firefox, node and extension/node_modules (npm ci) are needed: see tests/e2e/test_firefox_e2e.py")
    site = OrientationPage("firefox")
    states = "() => { const shown = (" + SHOWN_JS + ")(); return (" + MEME_STATES_JS.strip() + \
             ")().map((s) => ({...s, shown: shown[s.post]})); }"
    config = {"firefox": firefox, "extension": str(EXTENSION_DIR), "serverUrl": recorder.url,
              "token": recorder.token, "feedUrl": site.url, "feedHosts": [FEED_HOST, EMBED_HOST],
              "initScript": MONITOR_JS, "statesScript": states, "decided": sorted(DECIDED),
              "memes": len(site.pictures), "timeoutMs": 90_000, "revealAfterSeconds": 60, "cases": [], "keys": False}
    config_path = tmp_path / "firefox-orientation.json"
    config_path.write_text(json.dumps(config))
    try:
        proc = subprocess.run(["node", str(EXTENSION_DIR / "test" / "firefox" / "run_feed.mjs"), str(config_path)],
                              cwd=EXTENSION_DIR, capture_output=True, text=True, timeout=600)
    finally:
        site.stop()
    (artifacts_dir / "firefox-orientation.log").write_text(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["decidedInMs"] is not None, report["states"]
    shown = {s["post"]: s["shown"] for s in report["states"]}
    rule = check_judged_as_shown(site, recorder, shown)
    write_json(artifacts_dir / "orientation-firefox.json", {"rule": rule, "shown": shown, "browser": report["browser"]})
