"""A site whose own service worker answers its pictures (a PWA: Workbox's image recipe,
CacheFirst), in Chromium with the extension and the real server: no picture request of the page
reaches the network as the page's own, yet the extension, which judges only pictures it saw the
tab load, must flag the harmful ones. Then again once the extension's worker restarted (its
verdicts forgotten) while the site's Cache Storage answers every picture: a user's next visit.

The site is plain http on a made-up name: Chromium treats its origin as secure
(`--unsafely-treat-insecure-origin-as-secure`) so it may run a service worker.
"""

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


def open_controlled(b, feed_site, seed):
    """The case page, shown under its service worker's control (it loads itself again once)."""
    page = b.context.new_page()
    page.add_init_script(MONITOR_JS)
    page.goto(feed_site.case_url("service-worker", seed))
    page.wait_for_function("() => window.__swControlled === true", timeout=30_000)
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
