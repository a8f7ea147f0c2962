"""The extension's own life under open tabs (issue 17, item 1): a reload of the unpacked extension
as chrome://extensions' Reload button does it (what a store update does to open tabs), and a
disable then enable, under an open X-like feed. The tab opened before keeps every decided picture
covered, and the pictures it adds afterwards get verdicts; a tab opened after is protected too.

Each test starts its own Chromium: a reload changes the extension's worker and would disturb the
session's shared browser.
"""

import pytest
from slow_server import SlowServer

from e2e_support import (
    ADD_POST_JS,
    MONITOR_JS,
    PAGESHOW_JS,
    ExtensionBrowser,
    assert_flagged_exactly_the_harmful,
    launch_with_extension,
    meme_states,
    pair_through_options_page,
    summarize,
    wait_decided,
    wait_for,
)
from feed_site import EMBED_HOST, FEED_HOST, PUBLIC_HOST, UNIQUE_PREFIX

# On chrome://extensions: what its buttons call (an unpacked extension reloads only in developer mode).
RELOAD_JS = """(id) => new Promise((resolve) => chrome.developerPrivate.updateProfileConfiguration({inDeveloperMode: true},
  () => chrome.developerPrivate.reload(id, {failQuietly: true}, () => resolve(chrome.runtime.lastError?.message ?? null))))"""
SET_ENABLED_JS = """([id, enabled]) => new Promise((resolve) => chrome.management.setEnabled(id, enabled,
  () => resolve(chrome.runtime.lastError?.message ?? null)))"""
# In the page: for each post, whether its picture is covered (a card or a placeholder) or hidden.
COVERED_JS = """(posts) => Object.fromEntries(posts.map((post) => {
  const el = document.querySelector(`[data-post="${post}"][data-truth]`);
  const cs = getComputedStyle(el);
  return [post, ['flagged', 'pending'].includes(el.getAttribute('data-simclip')) || cs.visibility === 'hidden'
    || (el.tagName !== 'IMG' && el.tagName !== 'VIDEO' && cs.backgroundImage === 'none')];
}))"""
STATE_JS = """(id) => new Promise((resolve) => chrome.developerPrivate.getExtensionInfo(id, (info) => resolve(info.state)))"""


@pytest.fixture()
def lifecycle_browser(tmp_path, playwright_driver, chromium_path, feed_site, simclip_server):
    with launch_with_extension(playwright_driver, tmp_path / "profile", chromium_path, (FEED_HOST, EMBED_HOST, PUBLIC_HOST),
                               {"width": 1200, "height": 900}) as (context, worker):
        b = ExtensionBrowser(context, worker)
        pair_through_options_page(b, simclip_server)
        b.extensions_page = context.new_page()
        b.extensions_page.goto("chrome://extensions")
        yield b


def open_feed(b, feed_site, seed):
    page = b.context.new_page()
    page.add_init_script(MONITOR_JS)
    page.goto(f"{feed_site.url}?s={seed}")
    return page


def on_screen_memes(page):
    """The extension's state of the memes in the viewport (harmful or neutral)."""
    visible = set(page.evaluate("""() => Array.from(document.querySelectorAll('[data-truth="harmful"], [data-truth="neutral"]'))
        .filter((el) => { const r = el.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight && r.width > 0; })
        .map((el) => el.dataset.post)"""))
    return [s for s in meme_states(page) if s["post"] in visible and s["frame"] == page.url[:80]]


def wait_on_screen_decided_truly(page, timeout_s, message):
    """Every meme on screen flagged exactly when harmful, clean otherwise (never shown unchecked)."""
    last = {}

    def truly():
        last["memes"] = on_screen_memes(page)
        return last["memes"] and all(m["state"] == ("flagged" if m["truth"] == "harmful" else "clean") for m in last["memes"])

    try:
        wait_for(truly, timeout_s, interval_s=0.3, message=message)
    except pytest.fail.Exception:
        pytest.fail(f"{message}: {summarize(last['memes'])}; "
                    f"{[(m['post'], m['truth'], m['kind'], m['state'], m['why']) for m in last['memes'] if m['state'] != 'flagged' or m['truth'] != 'harmful'][:12]}")
    return last["memes"]


def wait_worker_back(b):
    """The new worker of the reloaded (or enabled) extension, healthy."""
    wait_for(lambda: b.extensions_page.evaluate(STATE_JS, b.extension_id) == "ENABLED", 30, message="the extension enabled")
    wait_for(lambda: b.sw_eval("async () => (await chrome.storage.local.get('health')).health?.state") == "ok", 30,
             message="the new worker to see the server as healthy")


def assert_open_tab_protected_after(b, page, feed_site, seed, when):
    """The open tab after a lifecycle change: its pictures decided truly, a new harmful post flagged,
    the posts the feed loads on scroll decided truly, and no harmful meme ever shown."""
    wait_on_screen_decided_truly(page, 60, f"the open tab's memes decided truly {when}")
    page.evaluate(ADD_POST_JS, [f"/m/{feed_site.harmful[1]}.png?p=added-{when}&s={seed}", f"added-{when}"])
    wait_for(lambda: any(s["post"] == f"added-{when}" and s["state"] == "flagged" for s in meme_states(page)), 60,
             message=f"a harmful post added {when} to be flagged")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")  # the feed loads more posts
    wait_for(lambda: int(page.evaluate("document.getElementById('feed').dataset.next")) > 200, 30,
             message="the feed to load more posts")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight - 2 * innerHeight)")
    wait_on_screen_decided_truly(page, 90, f"the posts loaded {when} decided truly")
    assert page.evaluate("window.__shield.violations") == {}, "a harmful meme was shown without its verdict"


def test_a_reload_of_the_extension_under_an_open_feed_protects_the_open_tab_and_a_new_one(lifecycle_browser, feed_site):
    b = lifecycle_browser
    seed = "lifecycle-reload"
    page = open_feed(b, feed_site, seed)
    wait_on_screen_decided_truly(page, 90, "the first screen decided truly before the reload")
    flagged_before = {m["post"] for m in on_screen_memes(page) if m["state"] == "flagged"}
    assert flagged_before

    assert b.extensions_page.evaluate(RELOAD_JS, b.extension_id) is None
    wait_worker_back(b)
    # Never shown meanwhile (the monitor checks every frame): the successor may have taken a picture
    # back to unchecked (no state: the pre-hide sheet hides it) while it asks about it again.
    covered = page.evaluate(COVERED_JS, sorted(flagged_before))
    assert all(covered.values()), covered
    assert page.evaluate("window.__shield.violations") == {}
    assert_open_tab_protected_after(b, page, feed_site, seed, "after the reload")

    fresh = open_feed(b, feed_site, seed + "-new-tab")
    wait_on_screen_decided_truly(fresh, 90, "a tab opened after the reload decided truly")
    assert fresh.evaluate("window.__shield.violations") == {}


def test_pictures_and_videos_of_another_site_without_cors_are_judged_again_after_a_reload(lifecycle_browser, feed_site):
    """The worker fetches only what it saw the tab load, and the worker after a reload saw
    nothing: the successor asks the page's browser for each picture once more (a no-cors fetch of
    the page: a picture host sends no CORS headers). A harmful picture from a CDN-like other site
    stays flagged, and a video whose frames the page cannot read (cross-origin, the server
    decodes it by URL) gets the same verdict again: never `not_loaded`, shown unchecked."""
    b = lifecycle_browser
    feed = open_feed(b, feed_site, "lifecycle-cross")
    src = f"http://{EMBED_HOST}:{feed_site.port}/m/{feed_site.harmful[1]}.png?p=cdn&s=lifecycle-cross"
    feed.evaluate(ADD_POST_JS, [src, "cdn"])
    videos = b.context.new_page()
    videos.add_init_script(MONITOR_JS)
    videos.goto(feed_site.case_url("video", "lifecycle-video"))
    judged = lambda s: s["truth"] in ("harmful", "neutral")  # noqa: E731

    def decided(page, post, states=("flagged", "unchecked", "clean")):  # by the extension's record (not an orphan's mark)
        return next((s for s in meme_states(page) if s["post"] == post and s["state"] in states and s["why"] is not None), None)

    cdn = lambda: decided(feed, "cdn")  # noqa: E731
    cross = lambda: decided(videos, "video-cross", ("flagged", "unchecked"))  # noqa: E731

    assert wait_for(cdn, 60, message="the other site's picture decided")["state"] == "flagged"
    assert_flagged_exactly_the_harmful(wait_decided(videos, judged, 60, "a verdict for every video"))
    before = wait_for(cross, 60, message="the cross-origin video decided")

    assert b.extensions_page.evaluate(RELOAD_JS, b.extension_id) is None
    wait_worker_back(b)
    after = wait_for(cdn, 60, message="the other site's picture decided after the reload")
    assert (after["state"], after["why"]) == ("flagged", ""), after
    assert_flagged_exactly_the_harmful(wait_decided(videos, judged, 60, "a verdict for every video after the reload"))
    again = wait_for(cross, 60, message="the cross-origin video decided after the reload")
    assert (again["state"], again["why"]) == (before["state"], before["why"]), (before, again)
    assert feed.evaluate("window.__shield.violations") == {}
    assert videos.evaluate("window.__shield.violations") == {}, [(s["post"], s["state"], s["why"]) for s in meme_states(videos)]


def test_a_disable_then_enable_keeps_decided_pictures_covered_and_protects_the_open_tab_again(lifecycle_browser, feed_site):
    b = lifecycle_browser
    seed = "lifecycle-disable"
    page = open_feed(b, feed_site, seed)
    wait_on_screen_decided_truly(page, 90, "the first screen decided truly before the disable")

    assert b.extensions_page.evaluate(SET_ENABLED_JS, [b.extension_id, False]) is None
    wait_for(lambda: b.extensions_page.evaluate(STATE_JS, b.extension_id) == "DISABLED", 30, message="the extension disabled")
    # While it is off: a post added meanwhile stays hidden (nobody can check it yet), nothing decided is shown.
    page.evaluate(ADD_POST_JS, [f"/m/{feed_site.harmful[2]}.png?p=while-off&s={seed}", "while-off"])
    page.wait_for_function("() => { const el = document.querySelector('[data-post=\"while-off\"]'); return el.complete; }")
    assert page.evaluate("getComputedStyle(document.querySelector('[data-post=\"while-off\"]')).visibility") == "hidden"

    # A tab opened while it is off: its pictures load with no worker to see them (nor any script of ours).
    opened_off = open_feed(b, feed_site, seed + "-opened-off")
    opened_off.wait_for_function("() => document.readyState === 'complete'")

    assert b.extensions_page.evaluate(SET_ENABLED_JS, [b.extension_id, True]) is None
    wait_worker_back(b)
    wait_for(lambda: any(s["post"] == "while-off" and s["state"] == "flagged" for s in meme_states(page)), 60,
             message="the post added while the extension was off to be flagged")
    assert_open_tab_protected_after(b, page, feed_site, seed, "after the enable")
    # The worker injects the content scripts into that tab: its pictures are loaded once more where
    # the new worker sees it, then judged (not refused as loads it never saw, and shown unchecked).
    wait_on_screen_decided_truly(opened_off, 60, "a tab opened while the extension was off decided truly after the enable")


@pytest.mark.parametrize(("referer", "next_has_pictures"), [(False, False), (True, False), (True, True)],
                         ids=["no-referer", "referer", "referer-then-a-site-with-pictures"])
def test_a_feed_left_mid_verdict_is_kept_in_the_back_forward_cache_and_decided_after_back(
        tmp_path, playwright_driver, chromium_path, feed_site, simclip_server, synthetic_memes, referer, next_has_pictures):
    """A server slower than the page asks (slow_server.py) keeps verdicts pending; the user leaves
    for another site and comes Back: the page comes from the back/forward cache (Chromium says
    why not if it does not), its pictures on screen are decided truly, none was shown before its
    verdict, and the toolbar badge counts its flagged pictures again. With and without a Referer
    sent by the page: a Referer takes a rule, and every change of the rules empties Chromium's
    back/forward cache, so a host that answers the same file without a Referer is fetched without
    one (picture_fetch.js fetchBytes), and the rules stay as they are while the worker fetches more
    pictures for the page (referer_rules.js). The site left for may show pictures of its own, from
    a host the worker never fetched from: no rule is added for it (every fetch from a new host took
    one before)."""
    with launch_with_extension(playwright_driver, tmp_path / "profile", chromium_path, (FEED_HOST, EMBED_HOST, PUBLIC_HOST),
                               {"width": 1200, "height": 900}, bfcache=True) as (context, worker):
        b = ExtensionBrowser(context, worker)
        stand_in = SlowServer(simclip_server, synthetic_memes, rate=4.0).start()
        try:
            pair_through_options_page(b, stand_in)
            page = b.context.new_page()
            page.add_init_script(MONITOR_JS + PAGESHOW_JS)
            url = f"{feed_site.url}?s={UNIQUE_PREFIX}-bfcache-{referer}&cache=1&still=1" + ("" if referer else "&noref=1")
            page.goto(url)
            wait_for(lambda: any(m["state"] == "pending" for m in on_screen_memes(page)), 30, message="verdicts pending")
            cdp = b.context.new_cdp_session(page)
            not_used = []
            cdp.on("Page.backForwardCacheNotUsed", lambda event: not_used.append(event))
            cdp.send("Page.enable")
            if next_has_pictures:  # another site's feed: its pictures come from its own host
                page.goto(f"http://{EMBED_HOST}:{feed_site.port}/feed?s={UNIQUE_PREFIX}-elsewhere&cache=1&still=1")
                wait_for(lambda: any(h[0].startswith(EMBED_HOST) and h[2] == "empty" for h in feed_site.hits("-elsewhere")), 60,
                         message="the worker to fetch a picture of the site left for")
                wait_for(lambda: any(m["state"] in ("clean", "flagged") for m in on_screen_memes(page)), 60,
                         message="a picture of the site left for decided")
                rules = b.sw_eval("async () => (await chrome.declarativeNetRequest.getSessionRules()).map((r) => JSON.stringify(r.condition))")
                assert not [r for r in rules if EMBED_HOST in r], f"a Referer rule was added for the new host: {rules}"
            else:
                page.goto(f"http://{EMBED_HOST}:{feed_site.port}/elsewhere?cache=1")  # another site, no pictures
            page.go_back(wait_until="commit")
            wait_for(lambda: not_used or page.evaluate("window.__pageshows?.length ?? 0") >= 2, 30, message="the page shown again")
            reasons = [e["reason"] for event in not_used for e in event["notRestoredExplanations"]]
            assert not reasons, f"not restored from the back/forward cache: {reasons}"
            assert page.evaluate("window.__pageshows") == [False, True]
            memes = wait_on_screen_decided_truly(page, 90, "the memes on screen decided truly after Back")
            assert page.evaluate("window.__shield.violations") == {}, "a harmful meme was shown without its verdict"
            tab_id = b.sw_eval("async (u) => (await chrome.tabs.query({url: u}))[0]?.id", url)
            def counts():  # what the page counts and what its badge shows, read together
                return b.sw_eval("""async (id) => [
                    (await chrome.tabs.sendMessage(id, {type: 'simclip/get-page-state'}, {frameId: 0})).flagged,
                    await chrome.action.getBadgeText({tabId: id})]""", tab_id)

            assert counts()[0] >= sum(m["state"] == "flagged" for m in memes) > 0
            # The slow server still decides pictures further down: the badge follows the page's count.
            wait_for(lambda: (lambda c: str(c[0]) == c[1])(counts()), 10,
                     message="the toolbar badge to count the page's flagged pictures again")
        finally:
            stand_in.stop()
