"""The "social feed" fixture site for the extension's end-to-end tests.

Served on 127.0.0.1 but opened as http://feed.test:PORT/ (Chromium maps the name with
--host-resolver-rules), so the extension's rule that refuses loopback image hosts stays on.
Each post shows one meme in one of six ways: <img>, <img loading=lazy>, a data-src lazy loader,
<img srcset>, <picture>, an inline CSS background, or a stylesheet CSS background. The page
loads more posts as it is scrolled (infinite scroll), adds a post at the top after load, and has
one meme on a literal loopback URL. Every meme element carries `data-truth` (harmful / neutral /
loopback) and `data-meme` (its image), which only the tests read.
"""

import contextlib
import html
import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from PIL import Image, PngImagePlugin

from case_pages import SERVICE_WORKER_JS, CasePages

FEED_HOST = "feed.test"
EMBED_HOST = "embed.test"  # another site on the same server: cross-origin embedded posts
# A public name (not a special-use one like .test) that Chromium also maps to 127.0.0.1: a public
# site whose name resolves to a loopback address, the DNS-rebinding case.
PUBLIC_HOST = "memes.example.net"
UNIQUE_PREFIX = "uniq"  # a feed seed starting with this gives every post's meme its own bytes
INITIAL_POSTS = 200
PAGE_POSTS = 50
MAX_POSTS = 500
KINDS = ("img", "lazy", "datasrc", "srcset", "picture", "inline-bg", "sheet-bg")
PIXEL_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

PAGE_CSS = """
body { font: 14px system-ui, sans-serif; margin: 0; background: #f3f1f5; }
header.top { position: sticky; top: 0; background: #fff; padding: 8px 16px; z-index: 5; border-bottom: 1px solid #ddd; }
#feed { display: grid; grid-template-columns: repeat(4, 260px); gap: 12px; padding: 12px; }
.post { background: #fff; border-radius: 8px; padding: 8px; }
.post .who { display: flex; align-items: center; gap: 6px; margin-bottom: 6px; }
.post .who img { width: 24px; height: 24px; border-radius: 50%; }
.meme { display: block; width: 240px; height: 180px; background-size: cover; }
"""

PAGE_JS = """
const feed = document.getElementById('feed');
const cacheParam = new URLSearchParams(location.search).get('cache') === '1' ? '&cache=1' : ''; // the page's own caching
const still = new URLSearchParams(location.search).get('still') === '1'; // loads nothing after its load event
let next = Number(feed.dataset.next), loading = false;
const sentinel = document.getElementById('sentinel');
new IntersectionObserver(async ([e]) => {
  if (still || !e.isIntersecting || loading || next >= %(max)d) return;
  loading = true;
  const r = await fetch('/posts?from=' + next + '&count=%(page)d&s=' + (new URLSearchParams(location.search).get('s') ?? '') + cacheParam);
  feed.insertAdjacentHTML('beforeend', await r.text());
  next += %(page)d;
  feed.dataset.next = String(next);
  loading = false;
}, { rootMargin: '400px' }).observe(sentinel);
// a lazy loader library: data-src -> src when near the viewport
const lazy = new IntersectionObserver((entries) => {
  for (const e of entries) if (e.isIntersecting) { e.target.src = e.target.dataset.src; lazy.unobserve(e.target); }
}, { rootMargin: '200px' });
const watchLazy = (root) => root.querySelectorAll('img[data-src]').forEach((img) => lazy.observe(img));
watchLazy(document);
new MutationObserver((rs) => rs.forEach((r) => r.addedNodes.forEach((n) => n.nodeType === 1 && watchLazy(n))))
  .observe(feed, { childList: true });
// a post added after load, at the top
if (!still) window.addEventListener('load', () => setTimeout(() => {
  fetch('/posts?late=1&s=' + (new URLSearchParams(location.search).get('s') ?? '') + cacheParam).then((r) => r.text()).then((t) => feed.insertAdjacentHTML('afterbegin', t));
}, 300));
"""


class FeedSite:
    """Serves the feed for `memes`: a list of (png_bytes, truth) with truth 'harmful'/'neutral'."""

    def __init__(self, memes, icon_png):
        self.memes = memes
        self.icon_png = icon_png
        self.harmful = [k for k, (_, t) in enumerate(memes) if t == "harmful"]
        self.server = None
        self.thread = None
        self.requests = 0
        self.meme_hits = []  # (Host, path, dest) of every /m/ request: dest "image" the page's, "empty" the worker's
        self.variants = {}  # (meme, seed) -> png bytes
        self.lock = threading.Lock()
        self.cases = CasePages(self)
        self.served_once = set()  # /once/ pictures already served (a second request gets 410)
        self.private_hits = []  # (path, Sec-Fetch-Dest) of requests that reached the loopback name

    def meme_bytes(self, k, seed):
        """Meme k; another `seed` gives the same pixels in other bytes (a new sha256 for every cache)."""
        png = self.memes[k][0]
        if not seed or seed == "main":
            return png
        with self.lock:
            if (k, seed) not in self.variants:
                info = PngImagePlugin.PngInfo()
                info.add_text("seed", seed)
                buf = io.BytesIO()
                Image.open(io.BytesIO(png)).save(buf, "PNG", pnginfo=info)
                self.variants[(k, seed)] = buf.getvalue()
            return self.variants[(k, seed)]

    def placeholder(self):
        """What a hotlink-protected host serves other sites: a harmless picture of its own."""
        neutral = next(k for k, (_, t) in enumerate(self.memes) if t == "neutral")
        return self.meme_bytes(neutral, "hotlink-placeholder")

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return f"http://{FEED_HOST}:{self.port}/feed"

    def case_url(self, name, seed="main", host=FEED_HOST):
        """The URL of case page `name` (case_pages.py)."""
        return f"http://{host}:{self.port}/case/{name}?s={seed}"

    def meme_for(self, i):
        """Post i shows meme k in way `kind`."""
        return i % len(self.memes), KINDS[i % len(KINDS)]

    def post_html(self, i, late=False, seed="", still=False):
        """Post i's HTML; `still`: every picture loads before the page's load event (no lazy loading)."""
        k, kind = self.meme_for(i)
        truth = self.memes[k][1]
        src = f"/m/{k}.png?p={i}&amp;s={seed}"
        attrs = f'class="meme" data-truth="{truth}" data-meme="{k}" data-kind="{kind}" data-post="{i}"'
        if late:
            k = self.harmful[0]
            src, truth = f"/m/{k}.png?p=late&amp;s={seed}", "harmful"
            attrs = f'class="meme" id="late-meme" data-truth="harmful" data-meme="{k}" data-kind="img" data-post="late"'
            meme = f'<img {attrs} src="{src}" width="240" height="180" alt="">'
        elif kind == "img" or (still and kind == "lazy"):
            meme = f'<img {attrs} src="{src}" width="240" height="180" alt="">'
        elif kind == "lazy":
            meme = f'<img {attrs} loading="lazy" src="{src}" width="240" height="180" alt="">'
        elif kind == "datasrc" and still:
            meme = f'<img {attrs} src="{src}" width="240" height="180" alt="">'
        elif kind == "datasrc":
            meme = f'<img {attrs} src="{PIXEL_GIF}" data-src="{src}" width="240" height="180" alt="">'
        elif kind == "srcset":
            meme = (f'<img {attrs} srcset="{src}&amp;w=480 480w, {src}&amp;w=960 960w" '
                    f'sizes="240px" src="{src}" width="240" height="180" alt="">')
        elif kind == "picture":
            meme = (f'<picture><source srcset="{src}&amp;from=source" type="image/png">'
                    f'<img {attrs} src="{src}&amp;from=fallback" width="240" height="180" alt=""></picture>')
        elif kind == "inline-bg":
            meme = f'<div {attrs} role="img" style="background-image: url(\'{src}\')"></div>'
        else:  # sheet-bg: the URL is only in the page's stylesheet (a class per post)
            meme = f'<div {attrs} role="img"></div>'.replace('class="meme"', f'class="meme bg-post-{i}"')
        who = f'<div class="who"><img src="/icon.png?u={i % 7}" alt=""> user{i % 7}</div>'
        caption = "a post added after load" if late else f"post {i}"
        return f'<article class="post">{who}{meme}<p>{caption}</p></article>'

    def page(self, seed="", noref=False, still=False):
        """The feed; `seed` changes every image URL (a feed the extension has not seen yet).
        `still` (?still=1): a page whose own loading is over at its load event (every picture eager,
        no post added late, no infinite scroll), so that what loads afterwards is the extension's."""
        posts = "".join(self.post_html(i, seed=seed, still=still) for i in range(INITIAL_POSTS))
        loop_k = self.harmful[0]
        loopback = (f'<img class="meme" id="loopback-meme" data-truth="loopback" data-meme="{loop_k}" '
                    f'src="http://127.0.0.1:{self.port}/m/{loop_k}.png?p=loopback&amp;s={seed}" width="240" height="180" alt="">')
        js = PAGE_JS % {"max": MAX_POSTS, "page": PAGE_POSTS}
        sheet = "".join(f'.bg-post-{i} {{ background-image: url("/m/{self.meme_for(i)[0]}.png?p={i}&s={seed}"); }}\n'
                        for i in range(MAX_POSTS) if self.meme_for(i)[1] == "sheet-bg")
        # ?noref=1: a site that sends no Referer with its pictures (<meta name="referrer">)
        meta = '<meta name="referrer" content="no-referrer">' if noref else ""
        return (f'<!doctype html><html><head><meta charset="utf-8">{meta}<title>feed.test</title>'
                f'<style>{PAGE_CSS}</style><style>{sheet}</style></head><body>'
                f'<header class="top">feed.test: a social feed fixture <span id="loop">{loopback}</span></header>'
                f'<main id="feed" data-next="{INITIAL_POSTS}">{posts}</main><div id="sentinel"></div>'
                f'<script>{js}</script></body></html>')

    def probe_page(self, q):
        """One harmful meme (<img id="probe">, from `img_host`, feed.test by default), plus two
        picture URLs the page names but never loads: one in a data attribute, one in a CSS rule
        that applies to nothing."""
        seed = html.escape(q.get("s", [""])[0])
        host = html.escape(q.get("img_host", [FEED_HOST])[0])
        k = self.harmful[0]
        base = f"http://{host}:{self.port}/m/{k}.png?s={seed}"
        return (f'<!doctype html><html><head><meta charset="utf-8"><title>probe</title>'
                f'<style>.never-used {{ background-image: url("{base}&p=css-never"); }}</style></head><body>'
                f'<img id="probe" class="meme" data-truth="harmful" data-post="probe" data-kind="img" src="{base}&amp;p=probe" '
                f'width="240" height="180" alt="">'
                f'<div id="named" data-url="{base}&amp;p=data-attr">named only</div></body></html>')

    def hits(self, path_part, dest=None):
        """The /m/ requests whose path contains `path_part` (only those of `dest`, "image" or "empty", if given)."""
        return [h for h in self.meme_hits if path_part in h[1] and (dest is None or h[2] == dest)]

    def start(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, status, body, ctype, headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                # ?cache=1 on a page: revalidated, not no-store (a no-store page never enters the back/forward cache)
                self.send_header("Cache-Control", "no-cache" if "cache=1" in self.path else "no-store")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the browser stopped reading
                    self.wfile.write(body)

            def send_ranged(self, body, ctype):
                """A body served with byte ranges, as video hosts do (a player seeks with them)."""
                match = re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range") or "")
                if not match:
                    self.send_response(200)
                    start, end = 0, len(body) - 1
                else:
                    start = int(match[1]) if match[1] else max(0, len(body) - int(match[2]))
                    end = min(int(match[2]), len(body) - 1) if match[1] and match[2] else len(body) - 1
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                self.send_header("Content-Type", ctype)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a player that stops reading
                    self.wfile.write(body[start:end + 1])

            def fetch_case(self, url, q):
                """Pictures that only the page's own request gets (case page 'bytes'). True when answered."""
                kind, _, name = url.path[1:].partition("/")
                if kind not in ("hot", "neg", "cookie", "redir", "redir-private", "once") or not name.endswith(".png"):
                    return False
                k = int(name[:-4])
                meme = site.meme_bytes(k, q.get("s", [""])[0])
                if kind == "hot":  # hotlink protection: another picture without the site's Referer
                    ok = (self.headers.get("Referer") or "").startswith(f"http://{FEED_HOST}:{site.port}/")
                    self.send(200, meme if ok else site.placeholder(), "image/png")
                elif kind == "neg":  # an image CDN's format picked by Accept: the meme only to a client of images
                    ok = "image/webp" in (self.headers.get("Accept") or "")
                    self.send(200, meme if ok else site.placeholder(), "image/png", [("Vary", "Accept")])
                elif kind == "cookie":  # a picture for signed-in users only
                    ok = "session=yes" in (self.headers.get("Cookie") or "")
                    self.send(200, meme, "image/png") if ok else self.send(403, b"sign in", "text/plain")
                elif kind in ("redir", "redir-private"):
                    host = FEED_HOST if kind == "redir" else "127.0.0.1"
                    self.send_response(302)
                    self.send_header("Location", f"http://{host}:{site.port}/m/{k}.png?{url.query}&hop=1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:  # once: a one-time URL, gone when fetched again
                    key = self.path
                    gone = key in site.served_once
                    site.served_once.add(key)
                    self.send(410, b"gone", "text/plain") if gone else self.send(200, meme, "image/png")
                return True

            def do_GET(self):
                site.requests += 1
                url = urlparse(self.path)
                q = parse_qs(url.query)
                seed = html.escape(q.get("s", [""])[0])
                if (self.headers.get("Host") or "").startswith("127.0.0.1") and "hop=1" in url.query:
                    site.private_hits.append((self.path, self.headers.get("Sec-Fetch-Dest")))
                if self.fetch_case(url, q):
                    return
                if url.path == "/feed":
                    self.send(200, site.page(seed, noref="noref" in q, still="still" in q).encode(), "text/html; charset=utf-8")
                elif url.path == "/posts":
                    if "late" in q:
                        body = site.post_html(0, late=True, seed=seed)
                    else:
                        start, count = int(q["from"][0]), int(q["count"][0])
                        body = "".join(site.post_html(i, seed=seed)
                                       for i in range(start, min(start + count, MAX_POSTS)))
                    self.send(200, body.encode(), "text/html; charset=utf-8")
                elif url.path.startswith("/case/"):
                    page = site.cases.render(url.path[len("/case/"):], q.get("s", [""])[0],
                                             {k: v[0] for k, v in q.items()})
                    if page is None:
                        self.send(404, b"no such case", "text/plain")
                    else:
                        ctype = "text/css" if url.path.endswith(".css") else "text/html; charset=utf-8"
                        # signed in, as a site's login leaves it: the cookie is in the store before the
                        # page's pictures are requested (a document.cookie write can race them)
                        signed_in = [("Set-Cookie", "session=yes; Path=/")] if url.path == "/case/bytes" else []
                        self.send(200, page.encode(), ctype, signed_in)
                elif url.path.startswith("/v/") and url.path.endswith(".webm"):
                    video = site.cases.video_bytes(url.path[3:-5])
                    if video is None:
                        self.send(404, b"no such video", "text/plain")
                    else:
                        self.send_ranged(video, "video/webm")
                elif url.path == "/probe":
                    self.send(200, site.probe_page(q).encode(), "text/html; charset=utf-8")
                elif url.path.startswith("/m/") and url.path.endswith(".png"):
                    # plain http has no Sec-Fetch-Dest: an image load asks for images; the worker's fetch asks
                    # for them too but bypasses the cache (`no-store`: Pragma: no-cache), the page's fetch for */*
                    dest = ("image" if "image/" in (self.headers.get("Accept") or "")
                            and "no-cache" not in (self.headers.get("Pragma") or "") else "empty")
                    site.meme_hits.append((self.headers.get("Host"), self.path, dest))
                    k = int(url.path[3:-4])
                    seed = q.get("s", [""])[0]
                    if seed.startswith(UNIQUE_PREFIX):  # other bytes for every post: no cache helps
                        seed += "-" + q.get("p", [""])[0]
                    # `type=octet`: a host that serves its pictures untyped
                    untyped = q.get("type", [""])[0] == "octet"
                    self.send(200, site.meme_bytes(k, seed), "application/octet-stream" if untyped else "image/png")
                elif url.path == "/sw.js":  # the site's service worker (case_pages.py service_worker)
                    self.send(200, SERVICE_WORKER_JS.encode(), "text/javascript")
                elif url.path == "/icon.png":
                    self.send(200, site.icon_png, "image/png")
                else:
                    self.send(404, b"not found", "text/plain")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
