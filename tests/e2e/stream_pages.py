"""The streamed page of the loader's declarative-shadow-root race (issue 19), for Chromium
(test_loader_race_e2e.py) and Firefox (test_firefox_e2e.py).

A declarative root (`<template shadowrootmode>`) is attached by the parser with no event and no
document mutation. The page's response stops after a shadow host's start tag (and again after the
template's) and goes on later, so the loader (content/loader.js) sees the host still empty; the
root, and the pictures in it, arrive while the loader or main.js is watching. Several hosts with
staggered delays cover the time before, during and after main.js takes over from the loader.
"""

import contextlib
import html
import time
from http.server import BaseHTTPRequestHandler

from bench.timeline_site import serve_on_loopback, stop_serving
from case_pages import BASE_CSS
from feed_site import FEED_HOST

# (name, tag, mode, seconds the response stops after the host's start tag, then after the template's)
HOSTS = {
    # the root and its pictures arrive while the loader watches (main.js takes over later)
    "loader": (
        ("now", "x-race-now", "closed", 0.01, 0.01),
        ("frame", "x-race-frame", "closed", 0.03, 0.03),
        ("early", "div", "open", 0.05, 0.03),
    ),
    # the root arrives after main.js took over from the loader
    "handover": (
        ("late", "x-race-late", "closed", 0.5, 0.4),
        ("after", "section", "open", 1.2, 0.8),
    ),
}
ALL_TAGS = sorted({tag for hosts in HOSTS.values() for _, tag, *_ in hosts if "-" in tag})

# Runs first (head): keeps each host's ElementInternals, and lists the declarative roots for the
# monitor (e2e_support MONITOR_JS reads window.__fixtureRoots every frame; the page's main world
# cannot find a closed root any other way).
HEAD_JS = """
const internals = [];
for (const tag of %(tags)s) {
  customElements.define(tag, class extends HTMLElement {
    constructor() { super(); internals.push(this.attachInternals()); }
  });
}
Object.defineProperty(window, '__fixtureRoots', {
  get: () => [...internals.map((i) => i.shadowRoot),
              ...Array.from(document.querySelectorAll('.race-host'), (el) => el.shadowRoot)].filter(Boolean),
});
window.__caseSettled = false;
"""


class StreamSite:
    """Serves /race on loopback (opened as FEED_HOST): the page's parts, flushed one by one with a
    server-side sleep between them; its pictures come from the feed site."""

    def __init__(self, feed_site):
        self.feed = feed_site
        self.server = None

    @property
    def port(self):
        return self.server.server_address[1]

    def url(self, hosts, seed):
        return f"http://{FEED_HOST}:{self.port}/race/{hosts}?s={seed}"

    def img(self, k, name, seed):
        truth = self.feed.memes[k][1]
        src = f"http://{FEED_HOST}:{self.feed.port}/m/{k}.png?p=race-{html.escape(name)}&amp;s={html.escape(seed)}"
        return (f'<img class="meme" data-truth="{truth}" data-meme="{k}" data-post="{name}" data-kind="img" '
                f'src="{src}" alt="">')

    def parts(self, hosts, seed):
        """[(html, seconds to sleep after writing it)] of the page with HOSTS[hosts]."""
        harmful = self.feed.harmful
        neutral = [k for k, (_, t) in enumerate(self.feed.memes) if t == "neutral"]
        head = (f'<!doctype html><html><head><meta charset="utf-8"><title>race</title><style>{BASE_CSS}</style>'
                f'<script>{HEAD_JS % {"tags": ALL_TAGS}}</script></head><body>')
        out = [(head, 0.0)]
        for i, (name, tag, mode, after_host, after_template) in enumerate(HOSTS[hosts]):
            cls = "" if "-" in tag else ' class="race-host"'
            pictures = self.img(harmful[i % len(harmful)], f"{name}-img", seed)
            if i % 2 == 0:
                pictures += self.img(neutral[i % len(neutral)], f"{name}-neutral", seed)
            out += [(f"<p>{name}</p><{tag}{cls} id=\"race-{name}\">", after_host),
                    (f'<template shadowrootmode="{mode}"><style>{BASE_CSS}</style>', after_template),
                    (f"{pictures}</template></{tag}>", 0.0)]
        out.append(("<script>window.__caseSettled = true;</script></body></html>", 0.0))
        return out

    def start(self):
        site = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: the body ends when the connection closes
            def log_message(self, *args):
                pass

            def do_GET(self):
                path, _, query = self.path.partition("?")
                hosts = path.removeprefix("/race/")
                if hosts not in HOSTS:
                    self.send_error(404)
                    return
                seed = query.partition("s=")[2] or "race"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the browser stopped reading
                    for text, pause in site.parts(hosts, seed):
                        self.wfile.write(text.encode())
                        self.wfile.flush()
                        if pause:
                            time.sleep(pause)  # the server is slow here: the browser parses what it has

        self.server = serve_on_loopback(Handler)
        return self

    def stop(self):
        stop_serving(self.server)


def expected_posts(hosts):
    return ({f"{name}-img" for name, *_ in HOSTS[hosts]}
            | {f"{name}-neutral" for i, (name, *_) in enumerate(HOSTS[hosts]) if i % 2 == 0})
