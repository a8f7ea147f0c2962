"""Helpers shared by the e2e conftest and tests (a plain module: `conftest` is not importable by name)."""

import contextlib
import json
import os
import time
from pathlib import Path

import pytest
from before_paint import EVERY_PAINT_JS

from bench.timeline_site import CARD_SIZES, CATEGORIES

REPO = Path(__file__).resolve().parents[2]
# SIMCLIP_E2E_EXTENSION loads another copy of the extension (e.g. an older commit's, for a before/after measurement).
EXTENSION_DIR = Path(os.environ.get("SIMCLIP_E2E_EXTENSION") or REPO / "extension")

# The meme elements of a document: its own, and those in the shadow roots a fixture page lists in
# window.__fixtureRoots (open, closed or declarative: the page's main world cannot find closed ones).
LIST_MEMES_JS = r"""
(doc, selector) => {
  const roots = [doc, ...((doc.defaultView && doc.defaultView.__fixtureRoots) || [])];
  return roots.flatMap((root) => Array.from(root.querySelectorAll(selector)));
}
"""

# Runs in the page (main world) from document start: records every frame in which a harmful meme
# is visible without a verdict (checked at the last moment before paint, before_paint.py), and the
# page's long tasks. Same-origin child frames without their
# own monitor (about:blank ones a script filled) are checked from their parent.
MONITOR_JS = r"""
window.__shield = { violations: {}, longTasks: [] };
try {
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__shield.longTasks.push(Math.round(e.duration)); })
    .observe({ type: 'longtask', buffered: true });
} catch (e) {}
const listMemes = """ + LIST_MEMES_JS.strip() + r""";
const isShowing = (el, cs) => {
  if (el.dataset.pseudo) {
    const ps = el.ownerDocument.defaultView.getComputedStyle(el, '::' + el.dataset.pseudo);
    return ps.visibility === 'visible' && !ps.filter.includes('blur') && /\/m\//.test(ps.backgroundImage + ps.content);
  }
  // a style part (picture_sources.js STYLE_PARTS): the element's own content, its marker, its border image
  if (el.dataset.part === 'content') return /\/m\//.test(cs.content);
  if (el.dataset.part === 'list-style') { // its list-style-image, or its ::marker's own content
    const marker = el.ownerDocument.defaultView.getComputedStyle(el, '::marker').content;
    return /\/m\//.test(cs.listStyleImage + marker) && marker !== 'none';
  }
  if (el.dataset.part === 'border-image') return /\/m\//.test(cs.borderImageSource) && !/^0(px|%)?$/.test(cs.borderImageSlice);
  if (el.tagName === 'INPUT') return /\/m\//.test(el.src);
  // a meme (not a 1 px lazy placeholder): a /m/ URL, or a data: or blob: copy of one
  if (el.tagName === 'IMG') return el.complete && el.naturalWidth > 1 && /\/m\/|^data:image\/png|^blob:/.test(el.currentSrc || el.src);
  if (el.tagName === 'image') return /\/m\//.test(el.href.baseVal);
  if (el.tagName === 'VIDEO') return el.readyState >= 2 || (el.poster && /\/m\//.test(el.poster));
  return /\/m\/|data:image\/png|blob:/.test(cs.backgroundImage);
};
const checkDoc = (doc) => {
  const view = doc.defaultView;
  for (const el of listMemes(doc, '[data-truth="harmful"]')) {
    const part = el.dataset.pseudo || el.dataset.part; // a ::before / ::after or a style part's picture
    const state = el.getAttribute(part ? 'data-simclip-' + part : 'data-simclip');
    if (state === 'revealed') continue; // shown by the user; a flagged one must be covered (its picture out of its box, or blurred)
    const cs = view.getComputedStyle(el);
    if (cs.filter.includes('blur') || cs.visibility !== 'visible' || el.getClientRects().length === 0) continue;
    if (cs.objectPosition === '-100000px -100000px') continue; // its picture moved out of its box ("checking" placeholder)
    if (isShowing(el, cs)) {
      const key = el.dataset.post;
      window.__shield.violations[key] ??= { post: key, kind: el.dataset.kind, state, t: Math.round(performance.now()) };
    }
  }
  for (const frame of doc.querySelectorAll('iframe')) {
    try {
      const inner = frame.contentDocument;
      if (inner && !(inner.defaultView && inner.defaultView.__shield)) checkDoc(inner);
    } catch (e) {} // cross-origin: it has its own monitor
  }
};
""" + EVERY_PAINT_JS + r"""(() => checkDoc(document));
"""

# What the page itself can read of each meme element (main world): its coarse state (pending,
# waiting, flagged, revealed or shown) and its record id. The extension's own state, reason and
# warning text come from the content script through the worker (extension_pictures).
MEME_STATES_JS = """
() => (""" + LIST_MEMES_JS.strip() + """)(document, '[data-truth]').map((el) => {
  const part = el.dataset.pseudo || el.dataset.part; // a ::before / ::after or a style part's picture
  const attr = part ? `data-simclip-${part}` : 'data-simclip';
  const id = el.getAttribute(`${attr}-id`);
  return {
    post: el.dataset.post, truth: el.dataset.truth, kind: el.dataset.kind, pageState: el.getAttribute(attr),
    pageWhy: el.getAttribute(`${attr}-why`), pageLabel: el.getAttribute(`${attr}-label`), // never set: the page must not see them
    src: el.currentSrc ?? null, top: Math.round(el.getBoundingClientRect().top + scrollY), id,
    card: getComputedStyle(el).getPropertyValue('--simclip-card').includes('svg'), // the card's picture reaches it
  };
})
"""

# In the worker: the GET_PAGE_STATE answer of the frame at `frameUrl` in the newest tab showing
# `pageUrl` (the content script answers in its own world; the page never sees it).
PAGE_STATE_OF_FRAME_JS = """
async ({pageUrl, frameUrl, holds}) => {
  const tabs = (await chrome.tabs.query({})).filter((t) => t.url === pageUrl).sort((a, b) => b.id - a.id);
  if (tabs.length === 0) return null;
  try {
    return await chrome.tabs.sendMessage(tabs[0].id, {type: 'simclip/get-page-state', frameUrl, holds, picturesOnly: true});
  } catch (e) {
    return null;
  }
}
"""
_BROWSERS = {}  # a Playwright BrowserContext -> its ExtensionBrowser

# Main world: a post with a fresh harmful meme added at the top of the feed, as a timeline does.
ADD_POST_JS = """([src, post]) => {
  const img = Object.assign(document.createElement('img'), {src, width: 240, height: 180, className: 'meme', alt: ''});
  Object.assign(img.dataset, {truth: 'harmful', post, kind: 'img'});
  const article = document.createElement('article');
  article.className = 'post';
  article.append(img);
  document.getElementById('feed').prepend(article);
}"""

# Main world, from document start: whether each showing of the page came from the back/forward cache.
PAGESHOW_JS = "addEventListener('pageshow', (e) => { (window.__pageshows ??= []).push(e.persisted); });"

DECIDED = {"flagged", "clean", "revealed"}


class ExtensionBrowser:
    """A Chromium persistent context with the extension: its pages and its service worker."""

    def __init__(self, context, worker):
        self.context = context
        self.worker = worker
        self.extension_id = worker.url.split("/")[2]
        self.extension_dir = EXTENSION_DIR
        _BROWSERS[context] = self

    def ext_url(self, path):
        return f"chrome-extension://{self.extension_id}/{path}"

    def sw_eval(self, expression, arg=None):
        """Evaluate in the service worker (re-fetching it if Chromium restarted it)."""
        workers = [w for w in self.context.service_workers if self.extension_id in w.url]
        self.worker = workers[0] if workers else self.context.wait_for_event("serviceworker", timeout=10_000)
        return self.worker.evaluate(expression, arg)


@contextlib.contextmanager
def launch_with_extension(driver, profile, chromium_path, hosts, viewport, bfcache=False, extra_args=()):
    """Debian Chromium with the unpacked extension in a persistent context, `hosts` mapped to
    127.0.0.1, started by the session's Playwright `driver` (the sync API allows one per
    thread); yields (context, the extension's service worker) and closes it at the end.
    `bfcache`: keep the back/forward cache on (Playwright turns it off by default);
    `extra_args`: more Chromium switches."""
    rules = ", ".join(f"MAP {host} 127.0.0.1" for host in hosts)
    args = [f"--disable-extensions-except={EXTENSION_DIR}", f"--load-extension={EXTENSION_DIR}",
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--host-resolver-rules={rules}", *extra_args]
    context = driver.chromium.launch_persistent_context(
        str(profile), headless=True, executable_path=chromium_path, args=args,
        viewport=viewport, timeout=60_000, ignore_default_args=["--disable-back-forward-cache"] if bfcache else None)
    context.set_default_timeout(20_000)
    try:
        workers = context.service_workers
        worker = workers[0] if workers else context.wait_for_event("serviceworker", timeout=30_000)
        yield context, worker
    finally:
        context.close()


def wait_for(predicate, timeout_s, interval_s=0.2, message="condition"):
    """Poll `predicate` until truthy or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {message}")
        time.sleep(interval_s)


class ChromiumTrace:
    """Chromium's timeline trace of one page, recorded over CDP (`Tracing`) from `start()` to
    `stop()`, which returns the trace events (Chrome's trace event format: `ts`, `dur` and the
    thread's CPU time `tdur`, in microseconds)."""

    CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "toplevel"]

    def __init__(self, context, page):
        self.page = page
        self.cdp = context.new_cdp_session(page)
        self.events, self.complete = [], []
        self.cdp.on("Tracing.dataCollected", lambda params: self.events.extend(params["value"]))
        self.cdp.on("Tracing.tracingComplete", lambda params: self.complete.append(True))

    def start(self):
        self.cdp.send("Tracing.start", {"traceConfig": {"includedCategories": self.CATEGORIES}, "transferMode": "ReportEvents"})
        return self

    def stop(self, timeout_s=60):
        self.cdp.send("Tracing.end")
        # the sync API hands CDP events over only inside a Playwright call
        wait_for(lambda: self.page.evaluate("1") and self.complete, timeout_s, message="the trace")
        return self.events


FORCED_PASSES = ("UpdateLayoutTree", "Layout")  # style and layout passes (perf.js books a forced one apart)


def script_cpu_ms(events, url_prefix):
    """The main-thread CPU time, in ms, of each call into a script whose URL starts with
    `url_prefix` (the outermost such call, nested ones counted in it), less the style and layout
    passes it forced: what perf.js's `timed` measures, on the thread's clock instead of the wall
    clock, so a machine busy with other work does not lengthen it."""
    spans = {}
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            spans.setdefault((e["pid"], e["tid"]), []).append(e)
    costs = []
    for thread in spans.values():
        thread.sort(key=lambda e: (e["ts"], -e["dur"]))
        end = passed = -1  # the ends of the outermost call being counted and of the last pass taken off it
        for e in thread:
            is_call = e["name"] == "FunctionCall" and e["args"].get("data", {}).get("url", "").startswith(url_prefix)
            if is_call and e["ts"] >= end:
                end = e["ts"] + e["dur"]
                costs.append(e.get("tdur", e["dur"]))
            elif e["name"] in FORCED_PASSES and passed <= e["ts"] < end:
                passed = e["ts"] + e["dur"]
                costs[-1] -= e.get("tdur", e["dur"])
    return [round(c / 1000, 1) for c in costs]


def write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True))


def extension_pictures(page, frame_url, holds=None):
    """{record id: {id, kind, state, why, warning}} of the frame at `frame_url` in `page`, as the
    extension sees them (its own world, through the worker): the page cannot read any of it.
    `holds` ([{id, url}], the ids the page's elements carry) picks the frame among several at one
    URL (about:blank frames number their records from 1 each)."""
    browser = _BROWSERS.get(page.context)
    if browser is None:
        return {}
    state = browser.sw_eval(PAGE_STATE_OF_FRAME_JS, {"pageUrl": page.url, "frameUrl": frame_url,
                                                     "holds": holds})
    return {str(p["id"]): p for p in (state or {}).get("pictures", [])}


def merge_states(page_states, pictures):
    """The page's view of each meme element joined with the extension's record of it: `state` is
    the extension's (clean, unchecked, skip... where the page sees only "shown"), with its `why`
    and `warning` (the card's text with the scores)."""
    merged = []
    for s in page_states:
        rec = pictures.get(str(s["id"])) if s["id"] else None
        state = rec["state"] if rec else ("skip" if s["pageState"] == "shown" else s["pageState"])
        merged.append({**s, "state": state, "why": rec["why"] if rec else None,
                       "warning": (rec["warning"] or None) if rec else None})
    return merged


def meme_states(page):
    """The meme elements' states in every frame of `page` (a frame that went away is skipped)."""
    from playwright.sync_api import Error as PlaywrightError

    states = []
    for frame in page.frames:
        with contextlib.suppress(PlaywrightError):  # a frame that went away
            # the extension's records first: the page's DOM, read after, is at least as recent
            # (the content script writes a state into the page as it takes it); the ids the DOM
            # carried just before pick the frame's answer among frames at one URL
            holds = [{"id": s["id"], "url": s["src"]} for s in frame.evaluate(MEME_STATES_JS) if s["id"]]
            pictures = extension_pictures(page, frame.url, holds or None)
            found = frame.evaluate(MEME_STATES_JS)
            states += [{**s, "frame": frame.url[:80]} for s in merge_states(found, pictures)]
    return states


def violations(page):
    """Harmful memes seen without a verdict, by every frame's monitor."""
    from playwright.sync_api import Error as PlaywrightError

    found = {}
    for frame in page.frames:
        with contextlib.suppress(PlaywrightError):  # a frame that went away
            found.update(frame.evaluate("() => (window.__shield || {}).violations || {}"))
    return found


def summarize(states):
    """{"truth/state": count} for a list of meme states; an unchecked picture's key names why
    ("harmful/unchecked(not_loaded)"), so that a failure says what the extension was told."""
    out = {}
    for s in states:
        key = f"{s['truth']}/{s['state']}"
        if s["state"] == "unchecked" and s.get("why"):
            key += f"({s['why']})"
        out[key] = out.get(key, 0) + 1
    return out


def wait_decided(page, predicate_states, timeout_s, message, posts=()):
    """Wait until every meme element passing `predicate_states` has a final state, and every post
    in `posts` is among them (a page that adds pictures late: no fixed wait for them)."""
    last = {}

    def check():
        states = meme_states(page)
        last["s"] = states
        present = {s["post"] for s in states if predicate_states(s)}
        return set(posts) <= present and all(s["state"] in DECIDED for s in states if predicate_states(s))

    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            stuck = [s for s in last["s"] if predicate_states(s) and s["state"] not in DECIDED][:10]
            pytest.fail(f"timed out after {timeout_s} s waiting for {message}: {summarize(last['s'])}; "
                        f"undecided: {stuck}")
        page.wait_for_timeout(250)
    return last["s"]


def assert_flagged_exactly_the_harmful(states):
    """Every harmful meme flagged, every neutral one clean."""
    wrong = [s for s in states if s["truth"] in ("harmful", "neutral")
             and s["state"] != ("flagged" if s["truth"] == "harmful" else "clean")]
    assert not wrong, f"{summarize(states)}; wrong: {wrong[:10]}"


# Main world: the "Not harmful?" chip of a flagged element's card, from the card's own drawing (its
# `--simclip-card` SVG, which the page can read): {x, y, width, height} from the box's centre, in
# CSS px (the card is drawn unscaled, centred in the box: extension/content/card.js); null if none.
CARD_CHIP_JS = r"""(el) => {
  const value = getComputedStyle(el).getPropertyValue('--simclip-card');
  const match = /data:image\/svg\+xml;charset=utf-8,([^"')]+)/.exec(value);
  if (!match) return null;
  const svg = new DOMParser().parseFromString(decodeURIComponent(match[1]), 'image/svg+xml');
  const rect = svg.querySelector('rect');
  return rect ? Object.fromEntries(['x', 'y', 'width', 'height'].map((k) => [k, Number(rect.getAttribute(k))])) : null;
}"""


def click_warning(page, selector, where="show"):
    """Click a flagged picture's warning like a user: anywhere on it shows it; the chip reports it."""
    target = page.locator(selector)
    target.evaluate("(el) => el.scrollIntoView({block: 'center'})")  # clear of sticky headers
    box = target.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    if where == "report":
        chip = wait_for(lambda: target.evaluate(CARD_CHIP_JS), 10, message=f"the card's chip on {selector}")
        x, y = cx + chip["x"] + chip["width"] / 2, cy + chip["y"] + chip["height"] / 2
    else:  # off the chip: the top left of the box, inside it
        x, y = box["x"] + min(8, box["width"] / 4), box["y"] + min(8, box["height"] / 4)
    page.mouse.click(x, y)


def pair_through_options_page(b, server):
    """Pair like a user: paste the server URL and token into the options page and test it."""
    from playwright.sync_api import Error as PlaywrightError

    # The worker's install handler opens the options page, then probes the server: once the probe
    # is stored, that page is open and cannot reload the tab used below.
    wait_for(lambda: b.sw_eval("async () => Boolean((await chrome.storage.local.get('health')).health)"),
             20, message="the worker's first health probe")
    page = b.context.new_page()
    try:
        page.goto(b.ext_url("options/options.html"))
    except PlaywrightError as e:
        # The extension opens its options page on install; Chromium may reuse this very tab.
        if "interrupted by another navigation" not in str(e):
            raise
    page.wait_for_selector("body[data-ready='true']")
    page.fill("#server-url", server.url)
    page.fill("#token", server.token)
    page.click("#save-test")
    status = page.locator("#connection-status")
    status.filter(has_text="Connected").wait_for(timeout=20_000)
    # Verdicts must not be revealed by the time limit on a slow CI machine.
    page.fill("#reveal-after", "60")
    page.dispatch_event("#reveal-after", "change")
    page.locator("#failure-status", has_text="Saved").wait_for()
    page.close()
    wait_for(lambda: (b.sw_eval("async () => (await chrome.storage.local.get('health')).health?.state") == "ok"),
             20, message="the worker to see the server as healthy")


# The card page of bench/timeline_site.py: a picture flagged for 1 to 4 categories at each size.
CARD_IDS = [f"#card-{w}-{n}" for w in CARD_SIZES for n in range(1, len(CATEGORIES) + 1)]
MIN_FONT_PX = 11

# Main world: the flagged element's card as the browser draws it: its SVG (the page can read the
# custom property) drawn inline at the element's box size, each text's and the chip's extent in
# that box, and the element's accessible name.
MEASURE_CARD_JS = r"""(el) => {
  const value = getComputedStyle(el).getPropertyValue('--simclip-card');
  const match = /data:image\/svg\+xml;charset=utf-8,([^"')]+)/.exec(value);
  if (!match) return null;
  const probe = document.createElement('div');
  probe.style.cssText = `position: absolute; left: 0; top: 0; width: ${el.clientWidth}px; height: ${el.clientHeight}px;`;
  probe.innerHTML = decodeURIComponent(match[1]);
  const svg = probe.firstElementChild;
  svg.setAttribute('width', '100%');
  svg.setAttribute('height', '100%');
  svg.style.display = 'block';
  document.body.append(probe);
  const outer = probe.getBoundingClientRect();
  const parts = Array.from(svg.querySelectorAll('text, rect'), (node) => {
    const r = node.getBoundingClientRect();
    return { tag: node.tagName, text: node.textContent,
             fontPx: node.tagName === 'text' ? parseFloat(getComputedStyle(node).fontSize) : null,
             left: r.left - outer.left, top: r.top - outer.top, right: r.right - outer.left, bottom: r.bottom - outer.top };
  });
  probe.remove();
  return { width: el.clientWidth, height: el.clientHeight, backgroundSize: getComputedStyle(el).backgroundSize,
           parts, label: el.getAttribute('aria-label'), title: el.getAttribute('title') };
}"""


def assert_cards_readable(cards, names):
    """`cards`: {"#card-W-N": MEASURE_CARD_JS's reading}. Each card drawn unscaled, every text at
    least MIN_FONT_PX and inside the box, the "Not harmful?" chip there, and the first N `names` (and
    no other) in its accessible name and title."""
    for i, card in cards.items():
        assert card is not None, f"{i} has no card"
        n = int(i.rsplit("-", 1)[1])
        assert card["backgroundSize"].startswith("100% 100%"), (i, card["backgroundSize"])  # drawn unscaled
        texts = [p for p in card["parts"] if p["tag"] == "text"]
        assert texts and all(p["fontPx"] >= MIN_FONT_PX for p in texts), (i, texts)
        for p in card["parts"]:
            assert p["left"] >= -0.5 and p["top"] >= -0.5, (i, p, card["width"], card["height"])
            assert p["right"] <= card["width"] + 0.5 and p["bottom"] <= card["height"] + 0.5, (i, p, card["width"], card["height"])
        assert any(p["text"] == "Not harmful?" for p in texts), (i, [p["text"] for p in texts])
        assert all(name in card["label"] and name in card["title"] for name in names[:n]), (i, card["label"], card["title"])
        assert not any(name in card["label"] for name in names[n:]), (i, card["label"])


def stop_extension_worker(b, page):
    """Stop the extension's service worker as Chromium's idle timeout does (CDP, through `page`),
    and wait until the ServiceWorker domain reports the running version stopped."""
    cdp = b.context.new_cdp_session(page)
    worker = next(t for t in cdp.send("Target.getTargets")["targetInfos"]
                  if t["type"] == "service_worker" and b.extension_id in t["url"])
    seen = []  # the extension's worker versions as the ServiceWorker domain reports them
    cdp.on("ServiceWorker.workerVersionUpdated",
           lambda e: seen.extend(v for v in e["versions"] if b.extension_id in v["scriptURL"]))
    cdp.send("ServiceWorker.enable")
    cdp.send("Target.closeTarget", {"targetId": worker["targetId"]})

    def stopped():  # a version reported running, then stopped
        running = {v["versionId"] for v in seen if v["runningStatus"] == "running"}
        return any(v["runningStatus"] == "stopped" and v["versionId"] in running for v in seen)

    # The sync API delivers CDP events while it waits in a call of its own: wait in short page waits.
    wait_for(lambda: page.wait_for_timeout(50) or stopped(), 10, interval_s=0,
             message="the ServiceWorker domain to report the running worker 'stopped'")
    cdp.detach()
