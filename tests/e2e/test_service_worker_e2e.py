"""A site whose own service worker answers its pictures (a PWA: Workbox's image recipe,
CacheFirst), in Chromium with the extension and the real server: no picture request of the page
reaches the network as the page's own, yet the extension, which judges only pictures it saw the
tab load, must flag the harmful ones. Then again once the extension's worker restarted (its
verdicts forgotten) while the site's Cache Storage answers every picture: a user's next visit.

The site is plain http on a made-up name: Chromium treats its origin as secure
(`--unsafely-treat-insecure-origin-as-secure`) so it may run a service worker.
"""

import time

import pytest

from e2e_support import (
    MONITOR_JS,
    ExtensionBrowser,
    assert_flagged_exactly_the_harmful,
    launch_with_extension,
    pair_through_options_page,
    stop_extension_worker,
    wait_decided,
    wait_for,
)
from feed_site import EMBED_HOST, FEED_HOST


@pytest.fixture()
def pwa_browser(tmp_path, playwright_driver, chromium_path, feed_site, simclip_server):
    origin = "/".join(feed_site.url.split("/", 3)[:3])
    with launch_with_extension(playwright_driver, tmp_path / "profile", chromium_path, (FEED_HOST, EMBED_HOST),
                               {"width": 1200, "height": 900},
                               extra_args=[f"--unsafely-treat-insecure-origin-as-secure={origin}"]) as (context, worker):
        b = ExtensionBrowser(context, worker)
        pair_through_options_page(b, simclip_server)
        yield b


def open_controlled(b, feed_site, seed, query=""):
    """The case page, shown under its service worker's control (it loads itself again once);
    `query` adds to its URL (case_pages.py service_worker: `&sw=all`, `&posts=24`)."""
    page = b.context.new_page()
    page.add_init_script(MONITOR_JS)
    page.goto(feed_site.case_url("service-worker", seed) + query)
    page.wait_for_function("() => window.__caseSettled === true", timeout=30_000)
    return page


def test_a_site_whose_service_worker_answers_its_pictures_is_protected(pwa_browser, feed_site):
    b = pwa_browser
    page = open_controlled(b, feed_site, "pwa")
    states = wait_decided(page, lambda s: True, 60, "a verdict for every picture the service worker answered")
    assert len(states) == 4, states
    assert_flagged_exactly_the_harmful(states)
    assert page.evaluate("window.__shield.violations") == {}

    # The next visit: the site's Cache Storage answers every picture (nothing reaches the network),
    # and the extension's new worker has no verdict cached.
    served = len(feed_site.meme_hits)
    b.sw_eval("() => { globalThis.__beforeStop = true; }")
    stop_extension_worker(b, page)
    page.close()
    again = open_controlled(b, feed_site, "pwa")
    states = wait_decided(again, lambda s: True, 60, "a verdict for every picture answered from the site's cache")
    assert_flagged_exactly_the_harmful(states)
    assert again.evaluate("window.__shield.violations") == {}
    wait_for(lambda: b.sw_eval("() => globalThis.__beforeStop ?? false") is False, 10,
             message="the extension's worker to have restarted")
    page_hits = [h for h in feed_site.meme_hits[served:] if "s=pwa" in h[1] and h[2] == "image"]
    assert page_hits == [], f"the page's own requests reached the network: {page_hits}"


# The feed below: 24 posts of 8 kinds (an <img>, a CSS background, a srcset, a <picture>, a post
# added after the load, a cross-origin <img>, one the service worker makes up, a cross-origin one
# served untyped), half of them harmful.
FEED = "&posts=24"


def decide_feed(b, feed_site, seed, mode):
    """Seconds from the page's controlled load (or its only load, for mode "none") until every
    picture of the feed is decided, and the states."""
    page = open_controlled(b, feed_site, seed, f"{FEED}&sw={mode}")
    start = time.monotonic()
    states = wait_decided(page, lambda s: True, 120, f"a verdict for every post of the feed (service worker: {mode})",
                          posts=[f"sw-{i}" for i in range(24)])
    took = time.monotonic() - start
    assert page.evaluate("window.__swControlled") is (mode != "none")
    assert page.evaluate("window.__shield.violations") == {}
    page.close()
    return took, states


@pytest.mark.parametrize("mode", ["images", "all"])
def test_a_whole_feed_under_a_service_worker_is_decided_as_fast_as_without(pwa_browser, feed_site, mode):
    """Chromium tells the extension's observers nothing of a request the page's service worker
    answers: each picture used to wait out the worker's 5 s wait for a load it never saw, then be
    requested again, a few at a time (a 24-post feed: about 50 s late). Whatever the service
    worker answers (its pictures, or every request of the page, the page's own fetches too, and
    pictures it makes up, which no request of the extension could fetch: read from their
    painting), the feed is decided about as fast as the same feed with no service worker, each
    kind of picture flagged exactly when harmful."""
    b = pwa_browser
    plain, plain_states = decide_feed(b, feed_site, f"pwa-none-{mode}", "none")
    controlled, states = decide_feed(b, feed_site, f"pwa-{mode}", mode)
    assert len(states) == len(plain_states) == 24, states
    assert_flagged_exactly_the_harmful(plain_states)
    assert_flagged_exactly_the_harmful(states)
    print(f"service worker {mode}: the feed decided in {controlled:.1f} s, without one {plain:.1f} s")
    # The worker waits 5 s for a load it has not seen: a feed that waited for it is late by far more.
    assert controlled < plain * 1.25 + 4, f"under its service worker the feed took {controlled:.1f} s, without {plain:.1f} s"
