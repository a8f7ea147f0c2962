"""An X-like infinite timeline for the extension's feed benchmark (bench/feed_bench.py) and its
end-to-end tests, and a stand-in classifier that decides from the pictures' pixels.

The timeline is virtualized as X's is: posts are absolutely placed in one tall column and only
those within OVERSCAN posts of the viewport are in the document; a post scrolled past is
removed, and the page keeps a WeakRef to each removed post (window.__timeline.removed), so a
benchmark can tell whether anything still holds its nodes. Every post has about 20 nodes (an
avatar, a name, text, one meme, a row of buttons with SVG icons) and its own meme: /m/{i}.png,
bytes of its own (a PNG text chunk), so no cache on the way answers for another post. Post i is
flagged for `categories_of(i)` categories (0 to 4, a third of the posts flagged), which the
stand-in classifier reads back from a marker in the pixels.

Served on 127.0.0.1; browsers open it as http://timeline.test:PORT/ (--host-resolver-rules), so
the extension's refusal of loopback picture hosts stays on.
"""

import contextlib
import io
import secrets
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from PIL import Image, ImageDraw

from backend.serve import ServerThread
from simclip import decode_image

HOST = "timeline.test"
POST_HEIGHT = 540  # px, every post
MEME_SIZE = (480, 360)  # px, as shown
OVERSCAN = 6  # posts kept above and below the viewport
CATEGORIES = (  # as simclip-server names them (docs/api.md, /v1/labels)
    ("harmful", "Harmful"), ("misogynous", "Misogyny"), ("hateful", "Hateful"), ("offensive", "Offensive"),
)
MARKER = 24  # px: the top-left square whose red level tells the stand-in classifier the categories
LEVEL = 50  # red level per category in the marker


def categories_of(i):
    """How many categories post i is flagged for: every third post, 1 to 4 in turn; else 0."""
    return 1 + (i // 3) % 4 if i % 3 == 0 else 0


def make_meme(n_categories, size=MEME_SIZE):
    """A meme-like PNG whose marker says it is flagged for `n_categories` categories."""
    img = Image.new("RGB", size, (60 + 30 * n_categories, 120, 170))
    draw = ImageDraw.Draw(img)
    for k in range(0, size[0], 40):
        draw.line([(k, 0), (size[0] - k, size[1])], fill=(200, 200 - 10 * n_categories, 90), width=3)
    draw.rectangle([10, size[1] - 60, size[0] - 10, size[1] - 15], fill=(255, 255, 255))
    draw.text((20, size[1] - 50), f"bench meme, {n_categories} categories", fill=(0, 0, 0))
    draw.rectangle([0, 0, MARKER - 1, MARKER - 1], fill=(LEVEL * n_categories, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def with_text_chunk(png, text):
    """`png` with a tEXt chunk carrying `text`: the same pixels in bytes of their own."""
    data = b"bench\x00" + text.encode()
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


class MarkerClassifier:
    """A classifier for create_app({"CLASSIFIER": ...}): real safe decoding, and the categories
    read from the picture's marker (make_meme). It costs the server almost nothing, so what a
    benchmark measures is the browser's side."""

    mode = "trained"
    calibrated = True
    device = "cpu"
    identity = "bench-marker"
    backbone = type("Backbone", (), {"info": type("Info", (), {"id": "bench/marker", "precision": "fp32",
                                                               "random_weights": False})()})()
    metadata = {}
    cost = None
    ocr = type("OCR", (), {"name": "none"})()

    def list_categories(self):
        """Every category, threshold 0.5."""
        return [{"id": cid, "name": name, "description": "bench", "default_threshold": 0.5, "calibrated": True}
                for cid, name in CATEGORIES]

    def decode(self, data, **options):
        """The picture, decoded as the server decodes untrusted bytes (`options` are the server's: unused)."""
        return decode_image(data)

    def read_text(self, image):
        """No OCR."""
        return ""

    def classify(self, images, texts):
        """Scores from each picture's marker: its first n categories 0.9, the others 0.1."""
        out = []
        for image in images:
            red = image.convert("RGB").crop((0, 0, MARKER // 2, MARKER // 2)).resize((1, 1)).getpixel((0, 0))[0]
            n = max(0, min(len(CATEGORIES), round(red / LEVEL)))
            scores = {cid: (0.9 - 0.02 * k if k < n else 0.1) for k, (cid, _) in enumerate(CATEGORIES)}
            warnings = [{"id": cid, "name": name, "score": scores[cid], "threshold": 0.5}
                        for cid, name in CATEGORIES if scores[cid] >= 0.5]
            out.append({"mode": self.mode, "scores": scores, "warnings": warnings, "text": "", "calibrated": True,
                        "frames": 1, "timings_ms": {"encode": 0.0, "head": 0.0}})
        return out


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>timeline.test</title><style>
body { margin: 0; font: 15px system-ui, sans-serif; background: #fff; color: #0f1419; }
header { position: sticky; top: 0; z-index: 3; height: 52px; background: rgba(255,255,255,.9);
  border-bottom: 1px solid #eff3f4; }
#timeline { position: relative; width: 600px; margin: 0 auto; }
article { position: absolute; left: 0; right: 0; height: %(post)dpx; box-sizing: border-box; padding: 12px 16px;
  border-bottom: 1px solid #eff3f4; display: flex; gap: 12px; }
article .avatar { width: 40px; height: 40px; border-radius: 50%%; }
article .body { flex: 1; min-width: 0; }
article .name { font-weight: 700; } article .handle { color: #536471; margin-left: 4px; }
article .media { margin-top: 8px; border-radius: 16px; overflow: hidden; width: %(w)dpx; height: %(h)dpx; }
article .media img { display: block; width: 100%%; height: 100%%; object-fit: cover; }
article .actions { display: flex; justify-content: space-between; max-width: 420px; margin-top: 8px; }
article .actions button { background: none; border: 0; padding: 4px; }
article .actions svg { width: 18px; height: 18px; fill: #536471; }
</style></head><body><header>timeline.test</header><main id="timeline"></main><script>
const N = %(n)d, H = %(post)d, OVERSCAN = %(overscan)d, SEED = %(seed)s;
const timeline = document.getElementById('timeline');
timeline.style.height = (N * H) + 'px';
const shown = new Map(); // post index -> its article
window.__timeline = { removed: [], added: 0, n: N };
const ICON = '<svg viewBox="0 0 24 24"><path d="M12 2 2 22h20z"/></svg>';
function build(i) {
  const a = document.createElement('article');
  a.style.top = (i * H) + 'px';
  a.dataset.post = String(i);
  a.innerHTML = `<img class="avatar" src="/avatar/${i %% 20}.png" alt="">` +
    `<div class="body"><div><span class="name">User ${i %% 97}</span>` +
    `<span class="handle">@user${i %% 97}</span></div>` +
    `<div class="text">Post ${i}: a line of text <a href="#">#tag</a> and <a href="#">@someone</a></div>` +
    `<div class="media"><img class="meme" data-post="${i}" src="/m/${i}.png?s=${SEED}" alt=""></div>` +
    `<div class="actions">${`<button>${ICON}</button>`.repeat(4)}</div></div>`;
  return a;
}
function render() {
  if (N_SHOWN.stopped) return;
  const first = Math.max(0, Math.floor(scrollY / H) - OVERSCAN);
  const last = Math.min(N - 1, Math.floor((scrollY + innerHeight) / H) + OVERSCAN);
  for (const [i, a] of shown) {
    if (i >= first && i <= last) continue;
    a.remove();
    shown.delete(i);
    __timeline.removed.push({ ref: new WeakRef(a), t: performance.now() });
  }
  for (let i = first; i <= last; i += 1) {
    if (shown.has(i)) continue;
    const a = build(i);
    shown.set(i, a);
    timeline.append(a);
    __timeline.added += 1;
  }
}
// The page empties its timeline (a new tab of the feed, a filter): every post removed, none added.
__timeline.clear = () => {
  N_SHOWN.stopped = true;
  for (const [i, a] of shown) {
    a.remove();
    shown.delete(i);
    __timeline.removed.push({ ref: new WeakRef(a), t: performance.now() });
  }
};
const N_SHOWN = { stopped: false };
let queued = false;
addEventListener('scroll', () => {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => { queued = false; render(); });
}, { passive: true });
render();
</script></body></html>"""


CARD_SIZES = (120, 200, 300, 600)  # px: the widths of the card page's pictures (height: 3/4 of it)

CARDS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>cards</title><style>
body { margin: 0; padding: 12px; font: 14px system-ui, sans-serif; background: #fff; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; margin-bottom: 16px; }
</style></head><body>%(rows)s</body></html>"""


def cards_page(seed):
    """A flagged picture per card size (CARD_SIZES) and number of categories (1 to 4): <img id="card-W-N">."""
    rows = []
    for w in CARD_SIZES:
        imgs = "".join(f'<img id="card-{w}-{n}" class="card" data-categories="{n}" src="/c/{n}.png?w={w}&amp;s={seed}" '
                       f'width="{w}" height="{w * 3 // 4}" alt="">' for n in range(1, len(CATEGORIES) + 1))
        rows.append(f'<div class="row">{imgs}</div>')
    return CARDS_PAGE % {"rows": "".join(rows)}


def serve_on_loopback(handler_class):
    """A ThreadingHTTPServer for `handler_class` on a free loopback port, serving from a daemon
    thread (the e2e stand-ins use it too); stop it with stop_serving."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_serving(server):
    """Stop a server of serve_on_loopback and close its socket."""
    server.shutdown()
    server.server_close()


class TimelineSite:
    """Serves the timeline (/timeline?n=N&s=SEED), its memes (/m/{i}.png) and avatars, and the
    card page (/cards?s=SEED: cards_page, its pictures /c/{n}.png flagged for n categories)."""

    def __init__(self):
        self.bases = {n: make_meme(n) for n in range(len(CATEGORIES) + 1)}
        buf = io.BytesIO()
        Image.new("RGB", (40, 40), (29, 155, 240)).save(buf, "PNG")
        self.avatar = buf.getvalue()
        self.server = None
        self.meme_requests = 0

    @property
    def port(self):
        return self.server.server_address[1]

    def url(self, n, seed="0", host=HOST):
        """The timeline of `n` posts; another `seed` gives every meme new bytes (no cache knows them)."""
        return f"http://{host}:{self.port}/timeline?n={n}&s={seed}"

    def cards_url(self, seed="0", host=HOST):
        """The card page (cards_page)."""
        return f"http://{host}:{self.port}/cards?s={seed}"

    def page(self, n, seed):
        """The timeline's HTML."""
        return PAGE % {"n": n, "post": POST_HEIGHT, "overscan": OVERSCAN, "seed": repr(seed),
                       "w": MEME_SIZE[0], "h": MEME_SIZE[1]}

    def meme(self, i, seed):
        """Post i's meme, in bytes of its own."""
        return with_text_chunk(self.bases[categories_of(i)], f"{seed}-{i}")

    def start(self):
        """Serve on a free loopback port, in a thread."""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, body, ctype, status=200):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the browser stopped reading
                    self.wfile.write(body)

            def do_GET(self):
                url = urlparse(self.path)
                q = parse_qs(url.query)
                seed = q.get("s", ["0"])[0][:40]
                if url.path == "/timeline":
                    self.send(site.page(int(q.get("n", ["100"])[0]), seed).encode(), "text/html; charset=utf-8")
                elif url.path.startswith("/m/") and url.path.endswith(".png") and url.path[3:-4].isdigit():
                    site.meme_requests += 1
                    self.send(site.meme(int(url.path[3:-4]), seed), "image/png")
                elif url.path == "/cards":
                    self.send(cards_page(seed).encode(), "text/html; charset=utf-8")
                elif url.path.startswith("/c/") and url.path.endswith(".png") and url.path[3:-4].isdigit():
                    n = min(int(url.path[3:-4]), len(CATEGORIES))
                    self.send(with_text_chunk(site.bases[n], f"card-{seed}-{url.query}"), "image/png")
                elif url.path.startswith("/avatar/"):
                    self.send(site.avatar, "image/png")
                else:
                    self.send(b"not found", "text/plain", 404)

        self.server = serve_on_loopback(Handler)
        return self

    def stop(self):
        """Stop serving."""
        stop_serving(self.server)


class MarkerServer(ServerThread):
    """simclip-server's app (the real HTTP contract: token, Host and Origin checks, CORS) with the
    MarkerClassifier, served by waitress on a free loopback port in a thread."""

    def __init__(self, config_dir, token=None):
        from backend import create_app

        self.token = token or secrets.token_urlsafe(32)  # as the server makes them: 43 characters
        super().__init__(create_app({"CLASSIFIER": MarkerClassifier(), "TOKEN": self.token,
                                     "CACHE_DIR": "", "CONFIG_DIR": str(config_dir), "PORT": 0}),
                         threads=4)

    def stop(self):
        """Stop serving."""
        self.close()
