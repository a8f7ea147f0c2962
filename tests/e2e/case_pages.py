"""Fixture pages for the ways real sites show pictures (issue 10), served by FeedSite at /case/NAME.

Each page marks every picture element with `data-truth` (harmful / neutral) and `data-post` (a
unique name), which only the tests read; `data-kind` says how it is shown. Pictures are the
feed's synthetic memes (/m/K.png), under URLs no other page uses (`?p=<case>-<name>&s=<seed>`).
Structure only: no real content, no real site's code.
"""

import base64
import html
import io
import json
import threading
from fractions import Fraction

from PIL import Image
from site_pages import SitePages

from switch_pages import SwitchPages

# The props page's small list bullets (a PNG icon, too small to be a meme): each one shown, untracked.
BULLETS_SHOWN_JS = """() => [...document.querySelectorAll('[data-bullet]')].map((el) =>
  getComputedStyle(el, '::marker').content !== 'none' && !el.hasAttribute('data-simclip-list-style-id'))"""
# The props page's SVG icons (a ::before's or an element's own `content`): each one visible.
ICONS_SHOWN_JS = """() => [...document.querySelectorAll('[data-icon]')].map((el) => {
  const cs = getComputedStyle(el, el.dataset.icon === 'own' ? null : '::before');
  return cs.visibility === 'visible' && !cs.filter.includes('blur') && cs.content.includes('svg+xml');
})"""
REVEAL_AFTER_MS = 9000  # long after load: a picture is found when shown, not by a timer after load

BASE_CSS = """
body { font: 14px system-ui, sans-serif; margin: 0; background: #f6f5f8; }
.meme { display: block; width: 240px; height: 180px; background-size: cover; }
section { margin: 8px; padding: 8px; background: #fff; }
"""


def encode_webm(images, fps):
    """A VP8 WebM of `images` (PIL), `fps` frames a second, at a quality OCR can read."""
    import av  # the test environment's PyAV (the server's video decoder); imported only when a video is served

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=Fraction(fps).limit_denominator(100))
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "4", "b:v": "8M", "quality": "good", "cpu-used": "4"}
        for im in images:
            for packet in stream.encode(av.VideoFrame.from_image(im.convert("RGB"))):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


# A site's service worker. Mode "images" (the default), as Workbox's image recipe writes it
# (CacheFirst): every picture of a page it controls is answered from its Cache Storage, fetched by
# the worker itself on a miss. Mode "all", the offline cookbook's "cache, falling back to the
# network": every request of the page but its documents, the page's own fetches too. Either way a
# picture under /made/ is one the service worker makes up (as from its IndexedDB): the network has
# no such file. Installed on the first visit (skipWaiting, clients.claim), it answers from the
# next load on.
SERVICE_WORKER_JS = """
const ALL = new URL(self.location).searchParams.get('mode') === 'all';
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || request.mode === 'navigate') return;
  const made = new URL(request.url).pathname.startsWith('/made/');
  if (made) {
    event.respondWith(fetch(request.url.replace('/made/', '/m/')).then(async (r) =>
      new Response(await r.blob(), { headers: { 'Content-Type': 'image/png' } })));
    return;
  }
  if (!ALL && request.destination !== 'image') return;
  event.respondWith(caches.open('pictures').then(async (cache) => {
    const hit = await cache.match(request);
    if (hit) return hit;
    const response = await fetch(request);
    if (response.ok || response.type === 'opaque') cache.put(request, response.clone());
    return response;
  }));
});
"""


class CasePages:
    """Builds the case pages for a FeedSite (which gives meme bytes and the harmful/neutral lists)."""

    def __init__(self, site):
        self.site = site
        self.videos = {}  # name -> webm bytes
        self.video_lock = threading.Lock()

    def harmful(self, n):
        return self.site.harmful[n % len(self.site.harmful)]

    def neutral(self, n):
        neutral = [k for k, (_, t) in enumerate(self.site.memes) if t == "neutral"]
        return neutral[n % len(neutral)]

    def src(self, k, name, seed):
        return f"/m/{k}.png?p={html.escape(name)}&amp;s={html.escape(seed)}"

    def attrs(self, k, name, kind, extra=""):
        truth = self.site.memes[k][1]
        return f'data-truth="{truth}" data-meme="{k}" data-post="{name}" data-kind="{kind}" {extra}'.strip()

    def img(self, k, name, seed, extra="", kind="img"):
        return f'<img class="meme" {self.attrs(k, name, kind, extra)} src="{self.src(k, name, seed)}" alt="">'

    def bg(self, k, name, seed, extra=""):
        url = self.src(k, name, seed).replace("&amp;", "&")
        return (f'<div class="meme" role="img" {self.attrs(k, name, "inline-bg", extra)} '
                f'style="background-image: url(&quot;{url}&quot;)"></div>')

    def data_url(self, k, seed):
        return "data:image/png;base64," + base64.b64encode(self.site.meme_bytes(k, f"data-{seed}")).decode()

    def svg_wrapped(self, k, name, seed):
        """An <img> of an SVG (a data: URL) whose only content is meme `k` as an embedded PNG."""
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="240" height="180"><image width="240" '
               f'height="180" href="{self.data_url(k, f"{name}-{seed}")}"/></svg>')
        src = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
        return f'<img class="meme" {self.attrs(k, name, "svg-wrapped")} src="{src}" alt="">'

    def page(self, title, body, script="", css="", head_script=""):
        head = f"<script>{head_script}</script>" if head_script else ""
        return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
                f'<style>{BASE_CSS}{css}</style>{head}</head><body>{body}<script>{script}</script></body></html>')

    # ------------------------------------------------------------------ pages

    def stuck(self, seed):
        """Pictures that load inside hidden containers and are shown REVEAL_AFTER_MS later."""
        h, n = self.harmful, self.neutral
        big_data = self.data_url(h(1), seed)
        assert len(big_data) > 8192, "the data: meme must be longer than the message's URL limit"
        body = f"""
<section id="tabs"><button>Tab 1</button><button>Tab 2</button>
  <div class="panel">first tab</div>
  <div class="panel" id="tab-2" hidden>{self.img(h(0), "tab-img", seed)}{self.bg(n(0), "tab-bg", seed)}
    {self.img(n(1), "tab-lazy", seed, 'loading="lazy"', kind="lazy")}</div></section>
<section id="carousel" style="width: 260px; overflow: hidden">
  <div id="track" style="display: flex; transition: none">
    <div style="flex: 0 0 260px">{self.img(n(2), "slide-1", seed)}</div>
    <div style="flex: 0 0 260px">{self.img(h(2), "slide-2", seed)}</div></div></section>
<section><details id="details"><summary>Spoiler: open me</summary>{self.img(h(3), "details-img", seed)}</details></section>
<section id="spoiler" style="position: relative; width: 240px">{self.img(h(4), "spoiler-img", seed, 'style="filter: blur(24px)"')}
  <div id="cover" style="position: absolute; inset: 0; background: rgba(0,0,0,.6); color: #fff">NSFW: click to see</div></section>
<section class="comment"><a href="#" id="expand">[+] 1 reply</a>
  <div id="reply" style="display: none">{self.img(n(3), "comment-img", seed)}</div></section>
<section id="late-data" style="display: none"><img class="meme" {self.attrs(h(1), "data-img", "data")} src="{big_data}" alt="">
  <div class="meme" role="img" {self.attrs(h(1), "data-bg", "data-bg")} style="background-image: url(&quot;{big_data}&quot;)"></div></section>
<section id="blob-box"><img class="meme" id="blob-img" {self.attrs(h(5), "blob-img", "blob")} alt=""></section>
"""
        script = f"""
fetch('/m/{h(5)}.png?p=blob&s={seed}').then((r) => r.blob()).then((b) => {{
  document.getElementById('blob-img').src = URL.createObjectURL(b);
}});
setTimeout(() => {{
  document.getElementById('tab-2').hidden = false;
  document.getElementById('track').style.transform = 'translateX(-260px)';
  document.getElementById('details').open = true;
  document.getElementById('cover').remove();
  document.querySelector('[data-post="spoiler-img"]').style.filter = 'none';
  document.getElementById('reply').style.display = 'block';
  document.getElementById('late-data').style.display = 'block';
  document.body.dataset.revealed = 'true';
}}, {REVEAL_AFTER_MS});
"""
        return self.page("stuck cases", body, script)

    def embed(self, seed, query):
        """An embedded post (an iframe's page): a picture as <img> and one as a background."""
        who = html.escape(query.get("who", "embed"))
        k = self.harmful(int(query.get("k", "0"))) if query.get("harm") == "1" else self.neutral(int(query.get("k", "0")))
        nested = ""
        if query.get("nest") == "1":
            nested = (f'<iframe src="http://embed.test:{self.site.port}/case/embed?s={seed}&amp;who={who}-inner'
                      f'&amp;harm=1&amp;k=6" width="280" height="420" style="border: 0"></iframe>')
        return self.page(f"embed {who}", f"""<article class="post">@someone wrote:
  {self.img(k, f"{who}-img", seed)}{self.bg(self.harmful(7), f"{who}-bg", seed)}{nested}</article>""")

    def frames(self, seed):
        """Pictures inside iframes: same-origin, cross-origin (an embedded post), srcdoc, about:blank
        filled by a script at once and later, and a frame inside a cross-origin frame."""
        port = self.site.port
        src_doc = html.escape(f"<style>{BASE_CSS}</style>" + self.img(self.harmful(2), "srcdoc-img", seed)
                              + self.img(self.neutral(2), "srcdoc-neutral", seed))
        fill = lambda name, k: self.img(k, name, seed).replace("&amp;", "&").replace("'", "\\'")  # noqa: E731
        body = f"""
<section><iframe id="same" src="/case/embed?s={seed}&amp;who=same&amp;harm=1&amp;k=0" width="300" height="420"></iframe></section>
<section><iframe id="cross" src="http://embed.test:{port}/case/embed?s={seed}&amp;who=cross&amp;harm=0&amp;k=1" width="300" height="420"></iframe></section>
<section><iframe id="srcdoc" srcdoc="{src_doc}" width="300" height="420"></iframe></section>
<section id="blank-now"></section><section id="blank-late"></section>
<section><iframe id="nest" src="http://embed.test:{port}/case/embed?s={seed}&amp;who=nest&amp;harm=0&amp;k=3&amp;nest=1" width="320" height="900"></iframe></section>
"""
        script = f"""
const blank = (box, html) => {{
  const frame = document.createElement('iframe');
  frame.width = 300; frame.height = 420;
  document.getElementById(box).append(frame);
  const fill = () => {{
    const doc = frame.contentDocument;
    doc.head.innerHTML = '<style>{BASE_CSS.replace(chr(10), ' ')}</style>';
    doc.body.innerHTML = html;
  }};
  return fill;
}};
blank('blank-now', '{fill("blank-now-img", self.harmful(3))}')();
const later = blank('blank-late', '{fill("blank-late-img", self.harmful(4))}{fill("blank-late-neutral", self.neutral(4))}');
window.__caseSettled = false;
setTimeout(() => {{ later(); window.__caseSettled = true; }}, 600);  // the page's last change
"""
        return self.page("frames", body, script)

    def shadow(self, seed):
        """Pictures in shadow roots: open, closed, closed on an element upgraded after it was in the
        page, nested, declarative (open and closed), a Lit-like element that replaces its adopted
        sheets and renders a microtask later, and a src swapped later inside a root."""
        h, n = self.harmful, self.neutral
        lit = lambda name, k: self.img(k, name, seed).replace("&amp;", "&")  # noqa: E731
        style = f"<style>{BASE_CSS}</style>"
        body = f"""
<section><x-open-post id="open-post"></x-open-post></section>
<section><x-closed-post id="closed-post"></x-closed-post></section>
<section><x-late-post id="late-post"></x-late-post></section>
<section><x-nest-post id="nest-post"></x-nest-post></section>
<section><div id="dsd-open"><template shadowrootmode="open">{style}{self.img(h(4), "dsd-open-img", seed)}</template></div></section>
<section><x-dsd-closed id="dsd-closed"><template shadowrootmode="closed">{style}{self.img(h(5), "dsd-closed-img", seed)}
  {self.img(n(5), "dsd-closed-neutral", seed)}</template></x-dsd-closed></section>
<section><x-lit-post id="lit-post"></x-lit-post></section>
<section><x-swap-post id="swap-post"></x-swap-post></section>
"""
        script = f"""
window.__caseSettled = false;
window.__fixtureRoots = window.__fixtureRoots || [];
const keep = (root) => {{ window.__fixtureRoots.push(root); return root; }};
keep(document.getElementById('dsd-open').shadowRoot);
const fill = (root, html) => {{ root.innerHTML = '<style>{BASE_CSS.replace(chr(10), ' ')}</style>' + html; }};
customElements.define('x-open-post', class extends HTMLElement {{
  constructor() {{ super(); fill(keep(this.attachShadow({{ mode: 'open' }})), '{lit("open-img", h(0))}{lit("open-neutral", n(0))}'); }}
}});
customElements.define('x-closed-post', class extends HTMLElement {{
  constructor() {{ super(); fill(keep(this.attachShadow({{ mode: 'closed' }})), '{lit("closed-img", h(1))}{lit("closed-neutral", n(1))}'); }}
}});
customElements.define('x-nest-post', class extends HTMLElement {{
  constructor() {{
    super();
    const root = keep(this.attachShadow({{ mode: 'closed' }}));
    const inner = document.createElement('div');
    root.append(inner);
    fill(keep(inner.attachShadow({{ mode: 'closed' }})), '{lit("nest-img", h(3))}');
  }}
}});
customElements.define('x-dsd-closed', class extends HTMLElement {{
  constructor() {{ super(); const root = this.attachInternals().shadowRoot; if (root) keep(root); }}
}});
const litSheet = new CSSStyleSheet();
litSheet.replaceSync(':host {{ display: block; }}');
customElements.define('x-lit-post', class extends HTMLElement {{
  constructor() {{
    super();
    const root = keep(this.attachShadow({{ mode: 'open' }}));
    root.adoptedStyleSheets = [litSheet]; // what Lit's adoptStyles does right after attachShadow
    queueMicrotask(() => {{ root.innerHTML = '{lit("lit-img", h(6))}'; }});
  }}
}});
customElements.define('x-swap-post', class extends HTMLElement {{
  constructor() {{
    super();
    const root = keep(this.attachShadow({{ mode: 'closed' }}));
    fill(root, '{lit("swap-img", n(6))}');
    setTimeout(() => {{
      const img = root.querySelector('img');
      img.dataset.truth = 'harmful';
      img.src = '/m/{h(7)}.png?p=swap-img-2&s={seed}';
      window.__caseSettled = true;  // the page's last change (the tests wait for it, not a clock)
    }}, 1500);
  }}
}});
// defined after its element is in the page: the closed root is attached to a connected element
setTimeout(() => customElements.define('x-late-post', class extends HTMLElement {{
  constructor() {{ super(); fill(keep(this.attachShadow({{ mode: 'closed' }})), '{lit("late-img", h(2))}'); }}
}}), 300);
"""
        # Before the extension's modules have loaded (a script in <head>, as a web-components
        # site's first bundle): a closed root inside a closed root, with an <img> and a
        # stylesheet background. Its attach event does not leave the outer root, so the loader
        # must listen there too, and watch inside the roots.
        early = f"""
window.__fixtureRoots = window.__fixtureRoots || [];
(() => {{
  const host = document.createElement('section');
  host.id = 'early-nest';
  document.documentElement.append(host);
  const outer = host.attachShadow({{ mode: 'closed' }});
  window.__fixtureRoots.push(outer);
  const inner = document.createElement('div');
  outer.append(inner);
  const root = inner.attachShadow({{ mode: 'closed' }});
  window.__fixtureRoots.push(root);
  root.innerHTML = '<style>{BASE_CSS.replace(chr(10), ' ')} .early-bg {{ background-image: url("{self.src(h(9), "early-nest-bg", seed).replace("&amp;", "&")}"); }}</style>'
    + '{lit("early-nest-img", h(8))}<div class="meme early-bg" {self.attrs(h(9), "early-nest-bg", "early-bg")}></div>';
}})();
"""
        return self.page("shadow roots", body, script, head_script=early)

    def css(self, seed):
        """CSS backgrounds after first sight: a class toggle, a late <style>, a late <link>, ::before
        and ::after pictures, image-set(), a lazy data: placeholder swapped for the real URL,
        SVG <image> elements (href and xlink:href), and memes wrapped in an SVG shown by an <img>
        (the meme's PNG a data: URI in the SVG's <image>)."""
        h, n = self.harmful, self.neutral
        url = lambda k, name: self.src(k, name, seed).replace("&amp;", "&")  # noqa: E731
        pixel = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
        css = f"""
.pseudo {{ position: relative; overflow: hidden; }}
.pseudo-before::before {{ content: ""; position: absolute; inset: 0; background: url("{url(h(0), "before")}") center / cover; }}
.pseudo-after::after {{ content: url("{url(n(0), "after")}"); position: absolute; inset: 0; }}
.toggle.show-pic {{ background-image: url("{url(h(1), "toggle")}"); }}
.set-pic {{ background-image: image-set(url("{url(h(2), "set-1x")}") 1x, url("{url(n(2), "set-2x")}") 2x); }}
"""
        body = f"""
<section><div class="meme pseudo pseudo-before" {self.attrs(h(0), "before", "before", 'data-pseudo="before"')}></div></section>
<section><div class="meme pseudo pseudo-after" {self.attrs(n(0), "after", "after", 'data-pseudo="after"')}></div></section>
<section><div class="meme toggle" id="toggle" {self.attrs(h(1), "toggle", "class-toggle")}></div></section>
<section><div class="meme late-pic" {self.attrs(h(3), "late-style", "late-style")}></div></section>
<section><div class="meme link-pic" {self.attrs(h(6), "late-link", "late-link")}></div></section>
<section><div class="meme set-pic" {self.attrs(h(2), "image-set", "image-set")}></div></section>
<section><div class="meme" id="placeholder" {self.attrs(h(4), "placeholder", "data-placeholder")}
  style="background-image: url(&quot;{pixel}&quot;)"></div></section>
<section><svg width="240" height="180"><image {self.attrs(h(5), "svg-href", "svg")} href="{self.src(h(5), "svg-href", seed)}"
  width="240" height="180"/></svg>
  <svg width="240" height="180" xmlns:xlink="http://www.w3.org/1999/xlink"><image {self.attrs(n(5), "svg-xlink", "svg")}
  xlink:href="{self.src(n(5), "svg-xlink", seed)}" width="240" height="180"/></svg></section>
<section>{self.svg_wrapped(h(7), "svg-wrapped", seed)}{self.svg_wrapped(n(7), "svg-wrapped-neutral", seed)}</section>
"""
        script = f"""
window.__caseSettled = false;
setTimeout(() => document.getElementById('toggle').classList.add('show-pic'), 700);
setTimeout(() => {{
  const style = document.createElement('style');
  style.textContent = '.late-pic {{ background-image: url("{url(h(3), "late-style")}"); }}';
  document.head.append(style);
}}, 900);
setTimeout(() => {{
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = '/case/late.css?s={seed}';
  document.head.append(link);
}}, 1100);
setTimeout(() => {{
  document.getElementById('placeholder').style.backgroundImage = 'url("{url(h(4), "placeholder")}")';
  window.__caseSettled = true;  // the page's last change (the tests wait for it, not a clock)
}}, 1300);
"""
        return self.page("css backgrounds", body, script, css)

    def late_css(self, seed):
        """The stylesheet the css page links late."""
        url = self.src(self.harmful(6), "late-link", seed).replace("&amp;", "&")
        return f'.link-pic {{ background-image: url("{url}"); }}'

    def dupes(self, seed):
        """One picture, two elements: X's background <div> + invisible <img>, Reddit's blurred
        backdrop + post image; one meme posted twice (two pictures); a srcset that switches size."""
        h, n = self.harmful, self.neutral
        u = lambda k, name: self.src(k, name, seed)  # noqa: E731
        x, r, tw, ss = u(h(0), "x"), u(h(1), "reddit"), u(h(2), "twice"), u(h(3), "srcset")
        cell = 'style="position: relative; width: 240px; height: 180px; overflow: hidden"'
        body = f"""
<main id="feed">
<article><div class="x-photo" {cell}>
  <div {self.attrs(h(0), "x-div", "x-bg", 'data-picture="x"')} style="position: absolute; inset: 0; background-size: cover;
    background-image: url(&quot;{x.replace("&amp;", "&")}&quot;)"></div>
  <img {self.attrs(h(0), "x-img", "x-img", 'data-picture="x"')} src="{x}" alt="Image"
    style="position: absolute; inset: 0; width: 100%; height: 100%; opacity: 0"></div></article>
<article><div class="media" {cell}>
  <img {self.attrs(h(1), "reddit-backdrop", "backdrop", 'data-picture="reddit"')} src="{r}" alt=""
    style="position: absolute; left: -10px; top: -10px; width: 260px; height: 200px; filter: blur(20px)">
  <img {self.attrs(h(1), "reddit-post", "post-img", 'data-picture="reddit"')} src="{r}" alt="Post image"
    style="position: relative; width: 240px; height: 180px"></div></article>
<article><p>a meme</p>{self.img(h(2), "twice-1", seed, 'data-picture="twice-1"').replace(self.src(h(2), "twice-1", seed), tw)}</article>
<article><p>the same meme, posted again</p>{self.img(h(2), "twice-2", seed, 'data-picture="twice-2"').replace(self.src(h(2), "twice-2", seed), tw)}</article>
<article><img class="meme" id="responsive" {self.attrs(h(3), "srcset", "srcset", 'data-picture="srcset"')}
  srcset="{ss}&amp;w=240 240w, {ss}&amp;w=480 480w" sizes="(min-width: 1000px) 240px, 480px" src="{ss}&amp;w=240" alt=""></article>
<article>{self.img(n(0), "neutral", seed, 'data-picture="neutral"')}</article>
</main>"""
        return self.page("one picture, two elements", body)

    def chrome(self, seed):
        """A site's own chrome around flagged pictures: a sticky header and a chat input over the
        feed, a dialog, a carousel moved by a CSS transform, a column that scrolls by itself."""
        h, n = self.harmful, self.neutral
        css = """
header.top { position: sticky; top: 0; z-index: 5; height: 60px; background: #fff; border-bottom: 1px solid #ccc; }
#composer { position: fixed; left: 0; right: 0; bottom: 0; height: 70px; z-index: 5; background: #fff; }
#column { height: 300px; overflow-y: auto; width: 280px; border: 1px solid #999; }
#track { display: flex; width: 720px; }
#carousel { width: 260px; overflow: hidden; }
"""
        imgs = "".join(f"<p>post {i}</p>" + self.img(h(i) if i % 2 == 0 else n(i), f"feed-{i}", seed) for i in range(6))
        column = "".join(f"<p>message {i}</p>" + self.img(h(10 + i) if i % 2 == 0 else n(10 + i), f"column-{i}", seed)
                         for i in range(4))
        body = f"""
<header class="top" id="top"><button id="menu">Menu</button> a site header</header>
<main>
  <section id="carousel"><div id="track">{self.img(h(20), "slide-a", seed)}{self.img(n(20), "slide-b", seed)}{self.img(h(21), "slide-c", seed)}</div></section>
  <section id="column">{column}</section>
  {imgs}
  <div style="height: 800px"></div>
</main>
<div id="composer"><input id="chat" placeholder="Write a message" style="width: 90%; height: 40px"></div>
<dialog id="viewer"><p>a photo viewer</p><button id="close">Close</button></dialog>"""
        script = """
window.__clicks = [];
for (const id of ['menu', 'chat', 'close', 'top', 'composer']) {
  document.getElementById(id).addEventListener('click', () => window.__clicks.push(id));
}
document.getElementById('close').addEventListener('click', () => document.getElementById('viewer').close());
"""
        return self.page("site chrome", body, script, css)

    def bytes(self, seed):
        """Pictures only the page's own request gets: behind a Referer check, picked by the Accept
        header (an image CDN's format), a session cookie, a redirect, a redirect to a private host,
        a one-time URL (data-truth "unfetchable": the
        worker cannot get them, so they must be marked unchecked, never clean)."""
        h = self.harmful
        tag = lambda path, k, name, truth=None: (  # noqa: E731
            f'<img class="meme" {self.attrs(k, name, path)} src="/{path}/{k}.png?p={name}&amp;s={html.escape(seed)}" alt="">'
            if truth is None else
            f'<img class="meme" data-truth="{truth}" data-post="{name}" data-kind="{path}" '
            f'src="/{path}/{k}.png?p={name}&amp;s={html.escape(seed)}" alt="">')
        body = f"""
<section>{tag("hot", h(0), "hotlink")}</section>
<section>{tag("neg", h(5), "negotiated")}</section>
<section id="signed-in"></section>
<section>{tag("redir", h(2), "redirect")}</section>
<section>{tag("redir-private", h(3), "redirect-private", "unfetchable")}</section>
<section>{tag("once", h(4), "one-time", "unfetchable")}</section>"""
        script = f"""
document.getElementById('signed-in').innerHTML = '{tag("cookie", h(1), "cookie")}';
"""
        return self.page("bytes the user sees", body, script)

    def service_worker(self, seed, query):
        """A feed whose site runs a service worker (SERVICE_WORKER_JS) that answers its pictures:
        on a load it controls, no picture request of the page reaches the network. A load it does
        not control yet registers it and loads the page again (so the page is always shown
        controlled, as on a user's second visit); `window.__swControlled` says so. Query: `sw` the
        worker's mode ("images", "all"; "none": no service worker, the same page for comparison),
        `posts` how many posts, `sw-0`, `sw-1`... every other one harmful (4 <img>s by default;
        more: each of the 8 kinds in turn, an <img>, a CSS background, a srcset, a <picture>, a
        post the page adds after its load, a cross-origin <img>, an <img> the service worker makes
        up (an <img> where there is none), a cross-origin <img> served untyped)."""
        mode = query.get("sw", "images")
        posts = max(1, min(int(query.get("posts", "4")), 200))
        h, n = self.harmful, self.neutral
        body, added = [], []
        for i in range(posts):
            harmful = (i + i // 8) % 2 == 0  # each kind both harmful and neutral
            k = h(i) if harmful else n(i)
            name = f"sw-{i}"
            src = self.src(k, name, seed)
            kind = i % 8 if posts > 4 else 0
            if kind == 0:
                body.append(self.img(k, name, seed))
            elif kind == 1:
                body.append(self.bg(k, name, seed))
            elif kind == 2:
                body.append(f'<img class="meme" {self.attrs(k, name, "srcset")} srcset="{src}&amp;w=240 240w, '
                            f'{src}&amp;w=480 480w" sizes="240px" src="{src}&amp;w=240" alt="">')
            elif kind == 3:
                body.append(f'<picture><source type="image/png" srcset="{src}&amp;v=source">'
                            f'<img class="meme" {self.attrs(k, name, "picture")} src="{src}" alt=""></picture>')
            elif kind == 4:
                added.append((src.replace("&amp;", "&"), name, self.site.memes[k][1]))
                continue
            elif kind == 5:
                body.append(self.img(k, name, seed).replace('src="/m/', f'src="http://embed.test:{self.site.port}/m/'))
            elif kind == 6:
                body.append(self.img(k, name, seed).replace('src="/m/', 'src="/made/' if mode != "none" else 'src="/m/'))
            else:
                body.append(self.img(k, name, seed, 'data-served="untyped"')
                            .replace('src="/m/', f'src="http://embed.test:{self.site.port}/m/')
                            .replace('" alt=""', '&amp;type=octet" alt=""'))
        sections = "".join(f"<section>{b}</section>" for b in body)
        head_script = f"""
window.__swControlled = Boolean(navigator.serviceWorker?.controller);
window.__caseSettled = window.__swControlled || {json.dumps(mode == "none")}; // a case runner waits for the controlled load
if (navigator.serviceWorker && !window.__caseSettled) {{
  // scoped to this very URL (a scope is a prefix of the URLs it controls): the feed and the other
  // case pages of the run, this one with other seeds or modes too, stay uncontrolled
  navigator.serviceWorker.register('/sw.js?mode={mode}', {{scope: location.pathname + location.search}})
    .then(() => navigator.serviceWorker.ready).then(() => location.reload());
}}
"""
        script = f"""
addEventListener('load', () => {{
  for (const [src, post, truth] of {json.dumps(added)}) {{
    const img = Object.assign(document.createElement('img'), {{src, className: 'meme', alt: ''}});
    Object.assign(img.dataset, {{truth, post, kind: 'added'}});
    const section = document.createElement('section');
    section.append(img);
    document.body.append(section);
  }}
}});
"""
        return self.page("a site with a service worker", sections, script, head_script=head_script)

    def meme_image(self, k):
        return Image.open(io.BytesIO(self.site.memes[k][0]))

    # (frames: [(meme, seconds)], fps) per video; a meme's frames repeat at 2 fps
    VIDEOS = {
        "flag-frames": "neutral 1 s, then harmful 2 s",
        "clean": "neutral 3 s",
        "flag-poster": "neutral 3 s (its poster is harmful)",
        "no-poster": "harmful 3 s, no poster",
        "cross": "harmful 3 s, served by another site without CORS",
        "long": "neutral, 200 s: longer than a meme",
    }

    def video_bytes(self, name):
        """The WebM for video `name` (VIDEOS), made once."""
        h, n = self.harmful, self.neutral
        plan = {
            "flag-frames": ([(n(0), 1), (h(0), 2)], 2), "clean": ([(n(1), 3)], 2), "flag-poster": ([(n(2), 3)], 2),
            "no-poster": ([(h(3), 3)], 2), "cross": ([(h(4), 3)], 2), "long": ([(n(3), 200)], 0.5),
        }.get(name)
        if plan is None:
            return None
        with self.video_lock:
            if name not in self.videos:
                segments, fps = plan
                frames = [self.meme_image(k) for k, seconds in segments for _ in range(max(1, round(seconds * fps)))]
                self.videos[name] = encode_webm(frames, fps)
            return self.videos[name]

    def video(self, seed):
        """<video> memes ("GIFs"): flagged by a frame, clean, flagged by the poster, without a poster,
        cross-origin without CORS (frames unreadable in the page), and a long video (its poster only)."""
        h, n = self.harmful, self.neutral
        port = self.site.port

        def tag(name, truth, poster=None, host="", extra="autoplay muted loop playsinline"):
            src = f"{host}/v/{name}.webm?s={html.escape(seed)}"
            poster_attr = f' poster="{self.src(poster, name + "-poster", seed)}"' if poster is not None else ""
            return (f'<video class="meme" data-truth="{truth}" data-post="video-{name}" data-kind="video" '
                    f'width="240" height="180" {extra}{poster_attr} src="{src}"></video>')

        body = f"""
<section>{tag("flag-frames", "harmful", poster=n(0))}</section>
<section>{tag("clean", "neutral", poster=n(1))}</section>
<section>{tag("flag-poster", "harmful", poster=h(2))}</section>
<section>{tag("no-poster", "harmful")}</section>
<section>{tag("cross", "video-cross", host=f"http://embed.test:{port}")}</section>
<section>{tag("long", "neutral", poster=n(3), extra="muted preload=metadata")}</section>"""
        return self.page("video memes", body)

    def bulk(self, seed):
        """A Facebook-sized insertion: 250 posts of 30 elements each (7,500), each with a picture,
        added in one go after load."""
        h, n = self.harmful, self.neutral
        post = []
        for i in range(250):
            k = h(i) if i % 5 == 0 else n(i)
            inner = (f'<img class="meme" {self.attrs(k, f"bulk-{i}", "img")} '
                     f'src="{self.src(k, f"bulk-{i}", seed)}" width="240" height="180" alt="">')
            for _ in range(24):
                inner = f'<div class="x{i % 7}">{inner}</div>'
            post.append(f'<div role="article"><div class="who"><img src="/icon.png?u={i % 7}" width="24" height="24" alt="">'
                        f'<span>user</span><a href="#">2h</a></div>{inner}<div role="button">Like</div></div>')
        markup = "".join(post).replace("'", "\\'")
        script = f"""
window.addEventListener('load', () => setTimeout(() => {{
  const t0 = performance.now();
  document.getElementById('feed').insertAdjacentHTML('beforeend', '{markup}');
  document.body.dataset.inserted = String(document.getElementById('feed').getElementsByTagName('*').length);
  document.body.dataset.insertMs = String(Math.round(performance.now() - t0));
}}, 300));"""
        return self.page("bulk insertion", '<div role="feed" id="feed"></div>', script)

    def picture_docs(self, seed):
        """Memes shown as a frame's document (an <iframe> whose src is the picture itself: the
        browser's image document paints it), a harmful and a neutral one."""
        frames = "".join(
            f'<iframe data-doc="{name}" data-truth="{self.site.memes[k][1]}" width="260" height="200" '
            f'src="{self.src(k, name, seed)}"></iframe>'
            for k, name in ((self.harmful(0), "frame-doc-h"), (self.neutral(0), "frame-doc-n")))
        return self.page("picture documents", frames)

    def props(self, seed):
        """Pictures painted by CSS image properties other than backgrounds: an element's own
        `content: url()` (a <div>'s, and an <img>'s over its own picture), a list's
        `list-style-image` (its items' markers), a `::marker`'s own `content: url()`, a `border-image` with `fill` (the picture across
        the box), an `<input type=image>`; each from the first stylesheet, from a class toggled
        later and from an inline style set later. Beside them, SVG icons in `::before` /
        `content` (no picture to check) must stay visible."""
        h, n = self.harmful, self.neutral
        url = lambda k, name: self.src(k, name, seed).replace("&amp;", "&")  # noqa: E731
        icon = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='16' height='16'%3E"
                "%3Crect width='16' height='16' fill='%23c33'/%3E%3C/svg%3E")
        part = lambda k, name, kind, extra="": self.attrs(k, name, kind, f'data-part="{kind}" {extra}'.strip())  # noqa: E731
        css = f"""
.ico::before {{ content: url("{icon}"); }}
.ico-own {{ content: url("{icon}"); }}
.c-h {{ content: url("{url(h(0), "content-h")}"); }}
.c-n {{ content: url("{url(n(0), "content-n")}"); }}
.c-img {{ content: url("{url(h(1), "content-img")}"); }}
ul.l-h {{ list-style-image: url("{url(h(2), "list-h")}"); }}
ul.l-n {{ list-style-image: url("{url(n(2), "list-n")}"); }}
.mk li::marker {{ content: url("{url(h(8), "marker-h")}"); }}
ul.bullets {{ list-style-image: url("/icon.png?u=bullet"); }}
.b {{ border: 50px solid #999; width: 140px; height: 80px; }}
.b-h {{ border-image: url("{url(h(3), "border-h")}") 30% fill; }}
.b-n {{ border-image: url("{url(n(3), "border-n")}") 30% fill; }}
.late-c.on {{ content: url("{url(h(4), "late-content")}"); }}
ul.late-l.on {{ list-style-image: url("{url(h(5), "late-list")}"); }}
li {{ font-size: 14px; }}
"""
        body = f"""
<section>{"".join(f'<span class="ico" data-icon="{i}">icon {i}</span> ' for i in range(4))}
  <span class="ico-own" data-icon="own">own</span></section>
<section><div class="meme c-h" {part(h(0), "content-h", "content")}></div>
  <div class="meme c-n" {part(n(0), "content-n", "content")}></div>
  <img class="meme c-img" {part(h(1), "content-img", "content")} src="{self.src(n(6), "content-img-own", seed)}" alt=""></section>
<section><ul class="l-h"><li {part(h(2), "list-h", "list-style")}>a list item</li></ul>
  <ul class="l-n"><li {part(n(2), "list-n", "list-style")}>a list item</li></ul>
  <ul class="mk"><li {part(h(8), "marker-h", "list-style")}>a list item</li></ul>
  <ul class="bullets">{"".join(f'<li data-bullet="{i}">a list item with a small bullet</li>' for i in range(40))}</ul></section>
<section><div class="b b-h" {part(h(3), "border-h", "border-image")}></div>
  <div class="b b-n" {part(n(3), "border-n", "border-image")}></div></section>
<section><input type="image" {self.attrs(h(6), "input-h", "input")} src="{self.src(h(6), "input-h", seed)}" width="240" height="180" alt="go">
  <input type="image" {self.attrs(n(6), "input-n", "input")} src="{self.src(n(6), "input-n", seed)}" width="240" height="180" alt="go"></section>
<section><div class="meme late-c" id="late-c" {part(h(4), "late-content", "content")}></div>
  <ul class="late-l" id="late-l"><li {part(h(5), "late-list", "list-style")}>a list item</li></ul>
  <div class="b" id="late-b" {part(h(7), "late-border", "border-image")}></div></section>
"""
        script = f"""
window.__caseSettled = false;
setTimeout(() => document.getElementById('late-c').classList.add('on'), 700);
setTimeout(() => document.getElementById('late-l').classList.add('on'), 900);
setTimeout(() => {{
  document.getElementById('late-b').style.borderImage = 'url("{url(h(7), "late-border")}") 30% fill';
  window.__caseSettled = true;  // the page's last change (the tests wait for it, not a clock)
}}, 1100);
"""
        return self.page("css picture properties", body, script, css)

    def render(self, name, seed, query=None):
        """The page (or stylesheet) `name`, or None."""
        query = query or {}
        if name.startswith("site-"):
            return SitePages(self).render(name[len("site-"):], seed)
        if name in ("switch", "switch-crowd", "canvas"):
            return SwitchPages(self).render(name, seed)
        builders = {
            "css": lambda: self.css(seed),
            "dupes": lambda: self.dupes(seed),
            "chrome": lambda: self.chrome(seed),
            "bytes": lambda: self.bytes(seed),
            "video": lambda: self.video(seed),
            "bulk": lambda: self.bulk(seed),
            "late.css": lambda: self.late_css(seed),
            "stuck": lambda: self.stuck(seed),
            "frames": lambda: self.frames(seed),
            "embed": lambda: self.embed(seed, query),
            "shadow": lambda: self.shadow(seed),
            "picture-docs": lambda: self.picture_docs(seed),
            "props": lambda: self.props(seed),
            "service-worker": lambda: self.service_worker(seed, query),
        }
        return builders[name]() if name in builders else None
