"""Fixture pages where an element switches pictures without being replaced (issue 17, items 2 and 7),
served by FeedSite at /case/switch and /case/canvas.

`switch`: each element paints one meme at a wide window (1200 px) and another once the window is
narrow (600 px) or once the page calls `window.__switch()`: an Instagram-like <picture> whose
<source media="(max-width: 700px)"> takes over, a Mastodon-like srcset re-picked at another width,
a background through a custom property set on an ancestor (of the element, or of the host of
the open shadow root it is in), a class toggled on an ancestor, a stylesheet rule edited through
the CSSOM, a sheet disabled, a checkbox checked by a script, a Web Animations animation, a
media query, a container query, a CSS animation and a container query's box resized by a CSS
animation. Every kind comes twice: neutral then harmful, and
harmful then neutral. Each element carries `data-post`, `data-kind` and `data-truth` (the truth of
what it paints now: the page rewrites it as it switches); `window.__harmful` lists the harmful
URLs, and PAINT_MONITOR_JS records every frame in which an element paints one of them uncovered.

Structure only: no real site's code. Pictures are the feed's synthetic memes under URLs no other
page uses (`?p=<name>&s=<seed>`).
"""

import html
import json

from before_paint import EVERY_PAINT_JS

ANIMATED = "[data-kind=animation], [data-animated]"  # the elements the switch animates (a picture, a container's size)
# Every animation the switch started has finished.
ANIMATIONS_DONE_JS = f"""() => [...document.querySelectorAll('{ANIMATED}')]
    .every((el) => el.getAnimations().every((a) => a.playState === 'finished'))"""
# For a runner that cannot wait on the page's events itself (the Firefox driver): the script
# switches, resolving once the animations have ended.
SWITCH_THEN = """(async () => {
  const ends = [...document.querySelectorAll('""" + ANIMATED + """')]
    .map((el) => new Promise((resolve) => el.addEventListener('animationend', resolve, { once: true })));
  await new Promise((resolve) => requestAnimationFrame(resolve));
  window.__switch();
  await Promise.all(ends);
})()"""
PAINT_VIOLATIONS = "(window.__paint || {}).violations || {}"
NARROW_PX = 600  # a width where the narrow pictures apply (the pages switch below 700 px)
WIDE_PX = 1200
CROWD = 300  # neutral pictures near the viewport on /case/switch-crowd

# Runs in the page from document start. Every frame, after the page's and the extension's
# animation-frame and ResizeObserver callbacks and layout (the last moment before paint),
# it records each element that paints a harmful URL (window.__harmful) without a cover: the
# picture a paint would show. Also records, per element, when it last switched (the page sets
# window.__switchedAt[post]) and when the extension next hid it, for the detection delay.
PAINT_MONITOR_JS = r"""
window.__paint = { violations: {}, hiddenAt: {}, frames: 0 };
window.__switchedAt = window.__switchedAt || {};
(() => {
  const isHarmful = (url) => (window.__harmful || []).some((h) => url.includes(h));
  const paints = (el) => {
    const cs = getComputedStyle(el);
    if (cs.visibility !== 'visible' || cs.filter.includes('blur') || el.getClientRects().length === 0) return '';
    // an <img>'s picture or a <canvas>'s drawing moved out of its box (a card, or "checking")
    if (cs.objectPosition === '-100000px -100000px' && /^(IMG|CANVAS)$/.test(el.tagName)) return '';
    if (el.tagName === 'IMG') {
      if (!el.complete || el.naturalWidth <= 1) return '';
      return el.currentSrc || el.src;
    }
    if (el.tagName === 'CANVAS') return el.dataset.painted || '';
    return cs.backgroundImage;
  };
  const check = () => {
    window.__paint.frames += 1;
    for (const el of [document, ...(window.__fixtureRoots || [])].flatMap((r) => [...r.querySelectorAll('[data-post]')])) {
      const url = paints(el);
      if (url && isHarmful(url)) {
        const post = el.dataset.post;
        window.__paint.violations[post] ??= { post, kind: el.dataset.kind, url: url.slice(0, 120),
          state: el.getAttribute('data-simclip'), t: Math.round(performance.now()) };
      }
    }
  };
  """ + EVERY_PAINT_JS + r"""(check);
  const start = () => {
    // the extension hides an element: its state leaves "shown", "flagged" (a new record) or goes away
    const hidings = new MutationObserver((records) => {
      for (const r of records) {
        const post = r.target.dataset && r.target.dataset.post;
        const since = post && window.__switchedAt[post];
        if (!since || (window.__paint.hiddenAt[post] || 0) > since) continue;
        const state = r.target.getAttribute('data-simclip');
        if (state === null || state === 'pending' || state === 'waiting') window.__paint.hiddenAt[post] = performance.now();
      }
    });
    window.__paint.observe = (root) => hidings.observe(root, { subtree: true, attributes: true, attributeFilter: ['data-simclip'] });
    window.__paint.observe(document);
    for (const root of window.__fixtureRoots || []) window.__paint.observe(root);
  };
  if (document.documentElement) start(); else addEventListener('DOMContentLoaded', start);
})();
"""

SWITCH_JS = """
window.__switchedAt = window.__switchedAt || {};
// the open declarative shadow roots (their pictures take the custom property from outside)
window.__fixtureRoots = [...document.querySelectorAll('[data-shadow-host]')].map((host) => host.shadowRoot);
for (const root of window.__fixtureRoots) window.__paint?.observe?.(root);
const el = (post) => [document, ...window.__fixtureRoots].map((r) => r.querySelector('[data-post="' + post + '"]')).find(Boolean);
const settle = (post, second) => {
  el(post).dataset.truth = window.__plan[post][second ? 1 : 0];
  if (second) window.__switchedAt[post] = performance.now();
};
// the window's width: <picture>, srcset, media and container queries (the page only relabels them;
// an <img> by the source it loaded, as the browser may keep a larger srcset candidate)
const narrow = matchMedia('(max-width: 700px)');
const isHarmful = (url) => window.__harmful.some((h) => url.includes(h));
narrow.addEventListener('change', () => {
  for (const post of Object.keys(window.__plan)) {
    if (/^(picture|srcset|media|container)-/.test(post)) window.__switchedAt[post] = performance.now();
    if (/^(media|container)-/.test(post)) el(post).dataset.truth = window.__plan[post][narrow.matches ? 1 : 0];
  }
});
document.addEventListener('load', (e) => {
  if (e.target.tagName === 'IMG' && e.target.dataset.post) e.target.dataset.truth = isHarmful(e.target.currentSrc) ? 'harmful' : 'neutral';
}, true);
// the script's own switches: a custom property, a class, a stylesheet rule and a sheet (CSSOM), a
// checkbox, a Web Animations animation, a CSS animation
// the switches no DOM change or event announces (the extension learns of them from its main-world hook)
const QUIET_SWITCHES = {
  rule: (tag, second) => {
    const r = el('rule-' + tag);
    // setProperty, as CSS-in-JS libraries write it (Chromium's `style.backgroundImage = ...` on a
    // rule is a named-property interceptor no hook can wrap: found by the sweep, docs/extension.md)
    document.getElementById('rule-' + tag + '-sheet').sheet.cssRules[0].style
      .setProperty('background-image', 'url("' + (second ? r.dataset.then : r.dataset.first) + '")');
    settle('rule-' + tag, second);
  },
  sheet: (tag, second) => {
    document.getElementById('sheet-' + tag + '-sheet').sheet.disabled = second;
    settle('sheet-' + tag, second);
  },
  checked: (tag, second) => {
    document.getElementById('checked-' + tag + '-box').checked = second;
    settle('checked-' + tag, second);
  },
  waapi: (tag, second) => {
    const w = el('waapi-' + tag);
    if (second) w.animate([{ backgroundImage: 'url("' + w.dataset.then + '")' }], { duration: 1, fill: 'forwards' });
    else for (const animation of w.getAnimations()) animation.cancel();
    settle('waapi-' + tag, second);
  },
};
// one of them alone, both ways (nothing else changes in that task)
window.__switchOnly = (kind, second) => { for (const tag of ['nh', 'hn']) QUIET_SWITCHES[kind](tag, second); };
const switchBoxes = (tag, second) => {
  const v = el('var-' + tag);
  document.getElementById('var-' + tag + '-box').style.setProperty('--bg', 'url("' + (second ? v.dataset.then : v.dataset.first) + '")');
  settle('var-' + tag, second);
  const sv = el('shadow-var-' + tag);
  document.getElementById('shadow-var-' + tag + '-box').style.setProperty('--bg', 'url("' + (second ? sv.dataset.then : sv.dataset.first) + '")');
  settle('shadow-var-' + tag, second);
  document.getElementById('class-' + tag + '-box').classList.toggle('on', second);
  settle('class-' + tag, second);
  for (const kind of Object.keys(QUIET_SWITCHES)) QUIET_SWITCHES[kind](tag, second);
  // a keyword, which names no picture itself: the shadow root's style query picks the picture
  document.getElementById('shadow-query-' + tag + '-box').style.setProperty('--theme', second ? 'dark' : 'light');
  settle('shadow-query-' + tag, second);
};
// the second pictures loaded and decoded before the switch (a site that preloads them): a switch
// then paints at once, with no network time for the extension to hide it in
window.__preload = () => Promise.all(window.__seconds.map((url) => {
  const img = new Image();
  img.src = url;
  return img.decode().catch(() => {});
}));
window.__switch = () => {
  for (const tag of ['nh', 'hn']) {
    switchBoxes(tag, true);
    const a = el('animation-' + tag);
    a.classList.add('run');
    a.addEventListener('animationend', () => { a.dataset.truth = window.__plan['animation-' + tag][1]; }, { once: true });
    window.__switchedAt['animation-' + tag] = performance.now() + 500; // its keyframe at 50%
    // the container shrinks from 480 to 200 px in 1 s: its query picks the second picture at 300 px
    const box = document.getElementById('resize-' + tag + '-box');
    box.classList.add('run');
    box.addEventListener('animationend', () => { el('resize-' + tag).dataset.truth = window.__plan['resize-' + tag][1]; }, { once: true });
    window.__switchedAt['resize-' + tag] = performance.now() + 640;
  }
};
// and back to the first pictures
window.__unswitch = () => {
  for (const tag of ['nh', 'hn']) {
    switchBoxes(tag, false);
    el('animation-' + tag).classList.remove('run');
    settle('animation-' + tag, false);
    document.getElementById('resize-' + tag + '-box').classList.remove('run');
    settle('resize-' + tag, false);
  }
};
"""

CANVAS_JS = """
const U = window.__canvasUrls;
window.__caseSettled = false; // until every picture is drawn
window.__switchedAt = window.__switchedAt || {};
const canvasOf = (post) => document.querySelector('canvas[data-post="' + post + '"]');
const load = (url, cors) => new Promise((resolve, reject) => {
  const img = new Image();
  if (cors) img.crossOrigin = 'anonymous';
  img.onload = () => resolve(img);
  img.onerror = reject;
  img.src = url;
});
const draw = (post, picture, url) => {
  const c = canvasOf(post);
  c.getContext('2d').drawImage(picture, 0, 0, c.width, c.height);
  c.dataset.painted = url;
};
window.__drawn = Promise.all([
  // a viewer: the canvas is in the page, blank, and the picture is drawn once it has loaded
  load(U['viewer']).then((img) => draw('viewer', img, U['viewer'])),
  // from a blob:
  fetch(U['blob']).then((r) => r.blob()).then(createImageBitmap).then((bm) => draw('blob', bm, U['blob'])),
  load(U['redraw-nh-a']).then((img) => draw('redraw-nh', img, U['redraw-nh-a'])),
  load(U['redraw-hn-a']).then((img) => draw('redraw-hn', img, U['redraw-hn-a'])),
  load(U['tainted']).then((img) => draw('tainted', img, U['tainted'])),
]).then(() => {
  window.__caseSettled = true;
  return true;
});
(() => {
  const c = canvasOf('small');
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#36c';
  ctx.fillRect(10, 10, 40, 30);
})();
(() => {
  const c = canvasOf('animated');
  const ctx = c.getContext('2d');
  let t = 0;
  const frame = () => {
    t += 1;
    ctx.fillStyle = `hsl(${t % 360}, 60%, 50%)`;
    ctx.fillRect(0, 0, c.width, c.height);
    ctx.fillStyle = '#fff';
    ctx.fillRect((t * 7) % c.width, 40, 60, 60);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})();
// drawn over later: neutral then harmful, harmful then neutral
window.__redraw = async () => {
  const [nh, hn] = await Promise.all([load(U['redraw-nh-b']), load(U['redraw-hn-b'])]);
  for (const [post, img, url] of [['redraw-nh', nh, U['redraw-nh-b']], ['redraw-hn', hn, U['redraw-hn-b']]]) {
    window.__switchedAt[post] = performance.now();
    draw(post, img, url);
    canvasOf(post).dataset.truth = post === 'redraw-nh' ? 'harmful' : 'neutral';
  }
};
"""

SWITCH_CSS = """
.meme { display: block; width: 240px; height: 180px; background-size: cover; }
section { display: inline-block; vertical-align: top; margin: 6px; padding: 6px; background: #fff; width: 250px; }
@media (max-width: 700px) { section { width: 250px; } }
.cq-box { container-type: inline-size; width: 40vw; }
.cq-box .meme { width: 240px; }
.cqa-box { container-type: inline-size; width: 480px; }
.cqa-box.run { animation: shrink-box 1s linear forwards; }
@keyframes shrink-box { from { width: 480px; } to { width: 200px; } }
"""


class SwitchPages:
    """Builds the switch and canvas pages from a CasePages (meme URLs and attributes)."""

    def __init__(self, cases):
        self.cases = cases
        self.site = cases.site

    def url(self, k, name, seed):
        """A meme's URL for element `name` (unescaped: for CSS and scripts)."""
        return f"/m/{k}.png?p={name}&s={seed}"

    def truth(self, k):
        return self.site.memes[k][1]

    def pairs(self):
        """(suffix, first meme, second meme): neutral then harmful, and harmful then neutral."""
        h, n = self.cases.harmful, self.cases.neutral
        return [("nh", n(0), h(0)), ("hn", h(1), n(1))]

    def switch(self, seed, crowd=0):
        """The switch page; `crowd` neutral pictures come first (one meme, one verdict for all), so
        that re-reading every picture near the viewport takes longer than one frame's budget."""
        esc = html.escape
        css = [SWITCH_CSS]
        body = []
        if crowd:
            # first in the document (so first among the pictures to re-read), shown below the rest
            decoy = esc(self.url(self.cases.neutral(2), "crowd", seed))
            css.append("#crowd { position: absolute; left: 0; top: 1500px; width: 1150px; }"
                       " .crowd { width: 64px; height: 64px; margin: 2px; }")
            body.append('<div id="crowd">' + "".join(
                f'<img class="crowd" data-post="crowd-{i}" data-kind="crowd" data-truth="neutral" src="{decoy}" alt="">'
                for i in range(crowd)) + "</div>")
        harmful = []
        seconds = []  # the pictures the script switches to (window.__preload)
        # what each element paints before and after, for data-truth
        plan = {}
        for tag, first, second in self.pairs():
            def both(kind, tag=tag, first=first, second=second):
                post = f"{kind}-{tag}"
                a, b = self.url(first, f"{post}-a", seed), self.url(second, f"{post}-b", seed)
                plan[post] = (self.truth(first), self.truth(second))
                seconds.append(b)
                for k, url in ((first, a), (second, b)):
                    if self.truth(k) == "harmful":
                        harmful.append(url.split("?", 1)[1])
                return post, a, b

            # Instagram: <picture> with a narrow art-directed <source>
            post, a, b = both("picture")
            body.append(f'<section><picture><source media="(max-width: 700px)" srcset="{esc(b)}">'
                        f'<img class="meme" data-post="{post}" data-kind="picture" data-truth="{self.truth(first)}" '
                        f'src="{esc(a)}" alt=""></picture></section>')
            # Mastodon: srcset with width descriptors, sizes that follow the window
            post, a, b = both("srcset")
            body.append(f'<section><img class="meme" data-post="{post}" data-kind="srcset" data-truth="{self.truth(first)}" '
                        f'srcset="{esc(a)} 300w, {esc(b)} 1000w" sizes="(max-width: 700px) 100vw, 240px" '
                        f'src="{esc(a)}" alt=""></section>')
            # a custom property set on an ancestor, swapped by a script
            post, a, b = both("var")
            css.append(f'.var-{tag} .meme {{ background-image: var(--bg); }}')
            body.append(f'<section class="var-{tag}" id="{post}-box" style="--bg: url(&quot;{esc(a)}&quot;)">'
                        f'<div class="meme" role="img" data-post="{post}" data-kind="var" data-truth="{self.truth(first)}" '
                        f'data-first="{esc(a)}" data-then="{esc(b)}"></div></section>')
            # the same, for a picture inside a (declarative, open) shadow root under the ancestor
            post, a, b = both("shadow-var")
            body.append(f'<section id="{post}-box" style="--bg: url(&quot;{esc(a)}&quot;)"><div data-shadow-host>'
                        f'<template shadowrootmode="open"><style>.meme {{ display: block; width: 240px; height: 180px; '
                        f'background-size: cover; background-image: var(--bg); }}</style>'
                        f'<div class="meme" role="img" data-post="{post}" data-kind="shadow-var" data-truth="{self.truth(first)}" '
                        f'data-first="{esc(a)}" data-then="{esc(b)}"></div></template></div></section>')
            # a keyword custom property (`--theme: light` -> `dark`) set on an ancestor of a shadow
            # host, and a style query in the shadow root's own sheet that picks the picture by it
            # (the document's sheets have none)
            post, a, b = both("shadow-query")
            body.append(f'<section id="{post}-box" style="--theme: light"><div data-shadow-host>'
                        f'<template shadowrootmode="open"><style>.meme {{ display: block; width: 240px; height: 180px; '
                        f'background-size: cover; background-image: url("{a}"); }} '
                        f'@container style(--theme: dark) {{ .meme {{ background-image: url("{b}"); }} }}</style>'
                        f'<div class="meme" role="img" data-post="{post}" data-kind="shadow-query" '
                        f'data-truth="{self.truth(first)}"></div></template></div></section>')
            # a class toggled on an ancestor
            post, a, b = both("class")
            css.append(f'.cls-{tag} .meme {{ background-image: url("{a}"); }}\n'
                       f'.cls-{tag}.on .meme {{ background-image: url("{b}"); }}')
            body.append(f'<section class="cls-{tag}" id="{post}-box"><div class="meme" role="img" data-post="{post}" '
                        f'data-kind="class" data-truth="{self.truth(first)}"></div></section>')
            # a stylesheet rule edited through the CSSOM (a CSS-in-JS library), and a sheet that
            # overrides the first picture, disabled: no DOM change announces either
            post, a, b = both("rule")
            body.append(f'<style id="{post}-sheet">.rule-{tag} {{ background-image: url("{a}"); }}</style>'
                        f'<section><div class="meme rule-{tag}" role="img" data-post="{post}" data-kind="rule" '
                        f'data-truth="{self.truth(first)}" data-first="{esc(a)}" data-then="{esc(b)}"></div></section>')
            post, a, b = both("sheet")
            body.append(f'<style>.sheet-{tag} {{ background-image: url("{b}"); }}</style>'
                        f'<style id="{post}-sheet">.sheet-{tag} {{ background-image: url("{a}"); }}</style>'
                        f'<section><div class="meme sheet-{tag}" role="img" data-post="{post}" data-kind="sheet" '
                        f'data-truth="{self.truth(first)}"></div></section>')
            # a checkbox checked by a script (`:checked ~`), and a Web Animations animation that
            # holds the second picture: neither is a DOM change or an event
            post, a, b = both("checked")
            css.append(f'.chk-{tag} ~ .meme {{ background-image: url("{a}"); }}\n'
                       f'.chk-{tag}:checked ~ .meme {{ background-image: url("{b}"); }}')
            body.append(f'<section><input type="checkbox" class="chk-{tag}" id="{post}-box" aria-label="switch">'
                        f'<div class="meme" role="img" data-post="{post}" data-kind="checked" '
                        f'data-truth="{self.truth(first)}"></div></section>')
            post, a, b = both("waapi")
            css.append(f'.waapi-{tag} {{ background-image: url("{a}"); }}')
            body.append(f'<section><div class="meme waapi-{tag}" role="img" data-post="{post}" data-kind="waapi" '
                        f'data-truth="{self.truth(first)}" data-then="{esc(b)}"></div></section>')
            # a media query, and a container query (the box is 40vw: 480 px wide, 240 px narrow)
            for kind, cls, query, (open_box, close_box) in (
                    ("media", "mq", "@media (max-width: 700px)", ("", "")),
                    ("container", "cq", "@container (max-width: 300px)", ('<div class="cq-box">', "</div>"))):
                post, a, b = both(kind)
                css.append(f'.{cls}-{tag} {{ background-image: url("{a}"); }}\n'
                           f'{query} {{ .{cls}-{tag} {{ background-image: url("{b}"); }} }}')
                body.append(f'<section>{open_box}<div class="meme {cls}-{tag}" role="img" data-post="{post}" '
                            f'data-kind="{kind}" data-truth="{self.truth(first)}"></div>{close_box}</section>')
            # a CSS animation that ends on the second picture
            post, a, b = both("animation")
            css.append(f'.anim-{tag} {{ background-image: url("{a}"); }}\n'
                       f'@keyframes swap-{tag} {{ 0%, 49% {{ background-image: url("{a}"); }} '
                       f'50%, 100% {{ background-image: url("{b}"); }} }}\n'
                       f'.anim-{tag}.run {{ animation: swap-{tag} 1s steps(1) forwards; }}')
            body.append(f'<section><div class="meme anim-{tag}" role="img" data-post="{post}" data-kind="animation" '
                        f'data-truth="{self.truth(first)}"></div></section>')
            # a container query's box resized by a CSS animation: no event in the frame it crosses
            post, a, b = both("resize")
            css.append(f'.cqa-{tag} {{ background-image: url("{a}"); }}\n'
                       f'@container (max-width: 300px) {{ .cqa-{tag} {{ background-image: url("{b}"); }} }}')
            body.append(f'<section><div class="cqa-box" id="{post}-box" data-animated><div class="meme cqa-{tag}" role="img" '
                        f'data-post="{post}" data-kind="resize" data-truth="{self.truth(first)}"></div></div></section>')
        script = (f"window.__harmful = {json.dumps(sorted(set(harmful)))};\n"
                  f"window.__seconds = {json.dumps(seconds)};\n"
                  f"window.__plan = {json.dumps({k: list(v) for k, v in plan.items()})};\n" + SWITCH_JS)
        return self.cases.page("pictures that switch", "".join(body), script, "".join(css))

    def canvas(self, seed):
        """Pictures drawn on a <canvas> (Telegram Web's media viewer, image viewers): drawn after
        load from an image of the page's own origin, from a blob:, drawn over later (neutral then
        harmful, harmful then neutral); and what stays out: a canvas tainted by a cross-origin
        picture (data-truth "tainted"), a small one, and one that changes every frame."""
        h, n = self.cases.harmful, self.cases.neutral
        port = self.site.port

        def canvas(post, truth, kind, size=(480, 360)):
            return (f'<section><canvas data-post="{post}" data-truth="{truth}" data-kind="{kind}" '
                    f'width="{size[0]}" height="{size[1]}" style="width: 240px; height: 180px"></canvas></section>')

        urls = {
            "viewer": self.url(h(2), "canvas-viewer", seed), "blob": self.url(n(2), "canvas-blob", seed),
            "redraw-nh-a": self.url(n(3), "canvas-redraw-nh-a", seed), "redraw-nh-b": self.url(h(3), "canvas-redraw-nh-b", seed),
            "redraw-hn-a": self.url(h(4), "canvas-redraw-hn-a", seed), "redraw-hn-b": self.url(n(4), "canvas-redraw-hn-b", seed),
            "tainted": f"http://embed.test:{port}" + self.url(h(5), "canvas-tainted", seed),
        }
        harmful = [u.split("?", 1)[1] for key, u in urls.items() if key != "tainted" and "harmful" in self.truth_of(u)]
        body = "".join([
            canvas("viewer", "harmful", "canvas-viewer"),
            canvas("blob", "neutral", "canvas-blob"),
            canvas("redraw-nh", "neutral", "canvas-redraw"),
            canvas("redraw-hn", "harmful", "canvas-redraw"),
            canvas("tainted", "tainted", "canvas-tainted"),
            canvas("small", "small", "canvas-small", size=(80, 60)),
            canvas("animated", "animated", "canvas-animated"),
        ])
        script = f"""
window.__harmful = {json.dumps(harmful)};
window.__canvasUrls = {json.dumps(urls)};
""" + CANVAS_JS
        return self.cases.page("pictures on a canvas", body, script)

    def truth_of(self, url):
        k = int(url.split("/m/", 1)[1].split(".", 1)[0])
        return self.truth(k)

    def render(self, name, seed):
        """The page `name` (switch, canvas), or None."""
        pages = {"switch": lambda: self.switch(seed), "switch-crowd": lambda: self.switch(seed, crowd=CROWD),
                 "canvas": lambda: self.canvas(seed)}
        return pages.get(name, lambda: None)()

