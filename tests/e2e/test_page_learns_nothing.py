"""The page learns nothing new from the extension (issue 16, item 5), and a shed request is
retried after its Retry-After (item 2), in Chromium with the real server: no failure reason or
score in the page's DOM, a verdict cached for one site is no answer on another, the worker fetches
no URL the tab's browser did not load, nor one a public name resolved to a loopback address for.
"""

import json
import re
import time
from urllib.parse import unquote

from slow_server import StandIn

from e2e_support import meme_states, pair_through_options_page, wait_for
from feed_site import EMBED_HOST, FEED_HOST, PUBLIC_HOST

PAGE_STATES = {"pending", "waiting", "flagged", "revealed", "shown"}  # all the page may see of a picture

# Main world: every simclip attribute in the document, and what the page can read of a flagged card.
PAGE_VIEW_JS = r"""() => {
  const attrs = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) if (a.name.startsWith('data-simclip')) attrs.push([a.name, a.value]);
  }
  const flagged = Array.from(document.querySelectorAll('[data-simclip="flagged"]'));
  return {
    attrs,
    labels: flagged.map((el) => el.getAttribute('aria-label')),
    cards: flagged.map((el) => decodeURIComponent(getComputedStyle(el).getPropertyValue('--simclip-card'))),
  };
}"""


def open_probe(browser, feed_site, host, seed, img_host=FEED_HOST):
    page = browser.context.new_page()
    page.goto(f"http://{host}:{feed_site.port}/probe?s={seed}&img_host={img_host}")
    return page


def probe_state(page, states=("flagged", "unchecked", "clean"), timeout_s=40):
    """The extension's record of the probe picture, once it is in one of `states`."""
    return wait_for(lambda: next((s for s in meme_states(page) if s["post"] == "probe" and s["state"] in states), None),
                    timeout_s, message=f"the probe picture to be one of {states}")


def test_a_page_reads_no_failure_reason_and_no_score_from_the_dom(browser, feed_site):
    """The bytes case: two pictures the worker cannot fetch (a redirect to a private host, a
    one-time URL) and four flagged ones. The extension knows why each is unchecked; the page
    sees them "shown", like a clean picture, and the flagged cards name the category, not a score."""
    page = browser.context.new_page()
    page.goto(feed_site.case_url("bytes", "no-reasons"))
    unfetchable = wait_for(lambda: (lambda u: len(u) == 2 and all(s["state"] == "unchecked" for s in u) and u)(
        [s for s in meme_states(page) if s["truth"] == "unfetchable"]), 40, message="the unfetchable pictures unchecked")
    assert all(s["why"] for s in unfetchable), unfetchable  # known to the extension
    wait_for(lambda: len(page.evaluate(PAGE_VIEW_JS)["cards"]) == 4, 40, message="four flagged cards")
    view = page.evaluate(PAGE_VIEW_JS)
    names = {name for name, _ in view["attrs"]}
    assert not {n for n in names if n.endswith("-why") or n.endswith("-label")}, names
    states = {value for name, value in view["attrs"] if name in ("data-simclip", "data-simclip-before", "data-simclip-after")}
    assert states <= PAGE_STATES, states
    reasons = {s["why"] for s in unfetchable}
    assert not any(r in value for _, value in view["attrs"] for r in reasons), view["attrs"]
    for text in view["labels"]:
        assert "Harmful" in text and "%" not in text, text
    # A card is an SVG drawing: what it says is its <text> ("50%" in x= is layout). A compact or
    # sign-only card in a small box may name nothing; its name is in the labels checked above.
    for card in view["cards"]:
        said = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", unquote(card)))
        assert "%" not in said and not re.search(r"\d", said), said
    page.close()


def test_a_verdict_cached_for_one_site_is_not_answered_from_the_cache_on_another(browser, feed_site):
    """The same picture URL on feed.test, then on embed.test: the second site's answer is not the
    first one's cached verdict (the worker fetches and asks again), nor is a second visit to the
    first site a new fetch."""
    seed = f"partition-{time.time_ns()}"
    first = open_probe(browser, feed_site, FEED_HOST, seed)
    assert probe_state(first)["state"] == "flagged"
    assert len(feed_site.hits(f"s={seed}&p=probe", "empty")) == 1, feed_site.hits(seed)
    again = open_probe(browser, feed_site, FEED_HOST, seed)
    assert probe_state(again)["state"] == "flagged"
    assert len(feed_site.hits(f"s={seed}&p=probe", "empty")) == 1, feed_site.hits(seed)  # this site's cache answered
    other = open_probe(browser, feed_site, EMBED_HOST, seed)
    assert probe_state(other)["state"] == "flagged"
    assert len(feed_site.hits(f"s={seed}&p=probe", "empty")) == 2, feed_site.hits(seed)  # not from feed.test's cache
    for page in (first, again, other):
        page.close()


def isolated_world_eval(page, expression):
    """Evaluate `expression` in the extension's content-script world of `page`'s main frame (a
    content script the page tricked, or a forged message: the worker must judge it alone)."""
    cdp = page.context.new_cdp_session(page)
    contexts = []
    cdp.on("Runtime.executionContextCreated", lambda e: contexts.append(e["context"]))
    cdp.send("Runtime.enable")
    main = cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]

    def ours():
        return next((c for c in contexts if c.get("auxData", {}).get("frameId") == main
                     and c.get("auxData", {}).get("type") == "isolated" and c.get("name") == "SimCLIP Meme Shield"), None)

    context = wait_for(ours, 10, message="the content script's world")
    result = cdp.send("Runtime.evaluate", {"expression": expression, "contextId": context["id"],
                                           "awaitPromise": True, "returnByValue": True})
    cdp.detach()
    return result["result"].get("value")


def test_a_url_the_page_did_not_load_is_never_fetched(browser, feed_site):
    """A URL named only in a data attribute, or in a CSS rule that applies to nothing: asked about
    from the content script's own world, the worker refuses both, and nobody requests them."""
    seed = f"not-loaded-{time.time_ns()}"
    page = open_probe(browser, feed_site, FEED_HOST, seed)
    assert probe_state(page)["state"] == "flagged"  # the picture the page did load is checked
    named = page.evaluate("document.getElementById('named').dataset.url")
    never = named.replace("p=data-attr", "p=css-never")
    answers = isolated_world_eval(page, f"""Promise.all({json.dumps([named, never])}.map((url) =>
        chrome.runtime.sendMessage({{type: 'simclip/classify', url, priority: 0}})))""")
    assert [(a["status"], a["reason"]) for a in answers] == [("failed", "not_loaded")] * 2, answers
    assert feed_site.hits(f"s={seed}&p=data-attr") == [] and feed_site.hits(f"s={seed}&p=css-never") == []
    page.close()


def test_a_public_name_resolving_to_loopback_is_never_fetched_by_the_worker(browser, feed_site):
    """memes.example.net is a public name; Chromium resolves it to 127.0.0.1 (--host-resolver-rules),
    as a DNS-rebinding attacker's name would. The page's own browser loads the picture; the
    worker never requests it, and the picture is shown unchecked."""
    seed = f"rebind-{time.time_ns()}"
    page = open_probe(browser, feed_site, PUBLIC_HOST, seed, img_host=PUBLIC_HOST)
    state = probe_state(page)
    assert (state["state"], state["why"], state["pageState"]) == ("unchecked", "private_address", "shown"), state
    assert feed_site.hits(f"s={seed}&p=probe", "image"), feed_site.hits(seed)  # the page's own load
    assert feed_site.hits(f"s={seed}&p=probe", "empty") == [], feed_site.hits(seed)  # never the worker's
    page.close()


class SheddingServer(StandIn):
    """A stand-in for simclip-server that sheds the first `shed` classify requests (503 `busy`,
    `retry_after_ms`, Retry-After in seconds, as docs/api.md says) and forwards everything else."""

    def __init__(self, real, shed=2, retry_after_ms=1500):
        super().__init__(real)
        self.shed, self.retry_after_ms = shed, retry_after_ms
        self.classify_at = []  # (monotonic time, status) of each classify request

    def answer(self, handler, method, body):
        if method != "POST" or handler.path != "/v1/classify":
            return False
        shed = sum(s == 503 for _, s in self.classify_at) < self.shed
        self.classify_at.append((time.monotonic(), 503 if shed else 200))
        if not shed:
            return False
        error = {"error": {"code": "busy", "message": "the server is busy",
                           "retry_after_ms": self.retry_after_ms}}
        origin = handler.headers.get("Origin") or ""
        handler.reply(503, json.dumps(error).encode(), {
            "Content-Type": "application/json", "Retry-After": str(-(-self.retry_after_ms // 1000)),
            "Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "Retry-After"})
        return True


def test_a_shed_request_is_retried_after_its_retry_after_and_the_server_is_not_called_down(browser, simclip_server,
                                                                                            feed_site):
    shedding = SheddingServer(simclip_server).start()
    pair_through_options_page(browser, shedding)
    try:
        seed = f"shed-{time.time_ns()}"
        page = open_probe(browser, feed_site, FEED_HOST, seed)
        assert probe_state(page, timeout_s=60)["state"] == "flagged"  # decided once the server took it
        times = shedding.classify_at
        assert [s for _, s in times][:3] == [503, 503, 200], times
        gaps = [b - a for (a, _), (b, _) in zip(times, times[1:])]
        assert all(g >= shedding.retry_after_ms / 1000 - 0.05 for g in gaps[:2]), gaps  # each retry waited its Retry-After
        health = browser.sw_eval("async () => (await chrome.storage.local.get('health')).health?.state")
        assert health == "ok", health  # shed is busy, not down
        tab_id = browser.sw_eval("async (u) => (await chrome.tabs.query({url: u}))[0]?.id ?? null", page.url)
        popup = browser.context.new_page()
        popup.goto(browser.ext_url(f"popup/popup.html?tab={tab_id}"))
        popup.locator("#status[data-state='ok']").wait_for(timeout=10_000)
        popup.close()
        page.close()
    finally:
        pair_through_options_page(browser, simclip_server)
        shedding.stop()


def test_chromium_reports_the_address_each_fetch_of_the_worker_reached(browser, feed_site):
    """What the rebinding check of the worker's own fetch stands on: Chromium reports the
    extension's own requests to its webRequest observers (tabId -1), with the address reached."""
    seen = browser.sw_eval("""async (u) => {
      const seen = [];
      const listener = (d) => seen.push({tabId: d.tabId, ip: d.ip, initiator: d.initiator, url: d.url});
      chrome.webRequest.onResponseStarted.addListener(listener, {urls: ['http://*/*'], tabId: -1});
      try {
        await (await fetch(u, {cache: 'no-store'})).arrayBuffer();
        for (let i = 0; i < 100 && !seen.some((s) => s.url === u); i += 1) await new Promise((r) => setTimeout(r, 50));
      } finally {
        chrome.webRequest.onResponseStarted.removeListener(listener);
      }
      return seen.filter((s) => s.url === u);
    }""", f"http://{FEED_HOST}:{feed_site.port}/icon.png?own-fetch={time.time_ns()}")
    assert len(seen) == 1 and seen[0]["ip"] == "127.0.0.1" and seen[0]["initiator"].startswith("chrome-extension://"), seen
