"""The extension end to end: Debian Chromium + the unpacked extension + the real simclip-server
(tiny backbone, a head trained in conftest on synthetic memes) + the feed fixture site.
"""

import json
import time

import pytest

from e2e_support import (
    MONITOR_JS,
    ChromiumTrace,
    click_warning,
    meme_states,
    script_cpu_ms,
    stop_extension_worker,
    summarize,
    wait_decided,
    wait_for,
    write_json,
)
from feed_site import MAX_POSTS

PICTURE_OUT = "-100000px -100000px"  # object-position of a flagged <img> (prehide.css)


def open_feed(browser, feed_site, seed="", trace=None):
    page = browser.context.new_page()
    if trace is not None:
        trace.append(ChromiumTrace(browser.context, page).start())
    page.add_init_script(MONITOR_JS)
    page.goto(f"{feed_site.url}?s={seed}")
    return page


def scroll_through(page, timeout_s=150):
    """Scroll to the end of the infinite feed (all MAX_POSTS posts loaded), step by step."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = page.evaluate("""(maxPosts) => {
            window.scrollBy(0, Math.round(innerHeight * 0.8));
            return Number(document.getElementById('feed').dataset.next) >= maxPosts
                && innerHeight + scrollY >= document.documentElement.scrollHeight - 2;
        }""", MAX_POSTS)
        if done:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"could not scroll through the feed in {timeout_s} s")
        page.wait_for_timeout(120)


# The first 8 memes of the feed: on the first screen, asked about first.
TOP_MEMES_JS = """() => Array.from(document.querySelectorAll('[data-truth="neutral"], [data-truth="harmful"]')).slice(0, 8)"""


def wait_late_meme_flagged(page, timeout_ms=30_000):
    """Wait for the post added after load (a harmful meme at the top of the feed) to be flagged."""
    page.wait_for_function("() => document.getElementById('late-meme')?.getAttribute('data-simclip') === 'flagged'",
                           timeout=timeout_ms)


def top_memes(page):
    """The first 8 memes of the feed's own document, with the extension's state of each."""
    return [s for s in meme_states(page) if s["truth"] in ("harmful", "neutral") and s["frame"] == page.url[:80]][:8]


def wait_top_memes_in_state(page, state, timeout_ms):
    """Wait until the first 8 memes are all in the extension's `state` (e.g. "unchecked", which the page sees as "shown")."""
    wait_for(lambda: (lambda memes: len(memes) == 8 and all(m["state"] == state for m in memes))(top_memes(page)),
             timeout_ms / 1000, interval_s=0.25, message=f"the first memes to be {state}")


def wait_top_memes_decided_truly(page, timeout_ms):
    """Wait until the first memes are flagged exactly when harmful (clean otherwise)."""
    last = {}

    def decided_truly():
        last["memes"] = top_memes(page)
        return all(m["state"] == ("flagged" if m["truth"] == "harmful" else "clean") for m in last["memes"])

    try:
        wait_for(decided_truly, timeout_ms / 1000, interval_s=0.25, message="the first memes flagged exactly when harmful")
    except pytest.fail.Exception:
        pytest.fail(f"not decided truly: {[(m['post'], m['truth'], m['kind'], m['id'], m['pageState'], m['state'], m['why']) for m in last['memes']]}")


def badge_text(browser, tab_id):
    return browser.sw_eval("(id) => chrome.action.getBadgeText({tabId: id})", tab_id)


def popup_for(browser, tab_id):
    popup = browser.context.new_page()
    popup.set_viewport_size({"width": 320, "height": 520})
    popup.goto(browser.ext_url(f"popup/popup.html?tab={tab_id}"))
    return popup


def test_options_page_says_exactly_what_is_wrong_with_the_connection(browser, simclip_server, feed_site):
    page = browser.context.new_page()
    page.goto(browser.ext_url("options/options.html"))
    page.wait_for_selector("body[data-ready='true']")
    status = page.locator("#connection-status")
    cases = [
        (simclip_server.url, "x" * 43, "unauthorized", "Wrong token"),
        (simclip_server.url, "", "unauthorized", "No token"),
        ("http://127.0.0.1:9", simclip_server.token, "unreachable", "not running"),
        (f"http://127.0.0.1:{feed_site.port}", simclip_server.token, "not_simclip", "not a simclip server"),
        (simclip_server.url, simclip_server.token, "ok", "Connected"),
    ]
    try:
        for url, token, kind, words in cases:
            page.fill("#server-url", url)
            page.fill("#token", token)
            page.click("#save-test")
            # kind and text together: two cases in a row share the kind 'unauthorized'
            page.wait_for_function(
                "([k, w]) => { const s = document.getElementById('connection-status');"
                " return s.dataset.kind === k && s.textContent.includes(w); }",
                arg=[kind, words], timeout=15_000)
            assert words in status.inner_text(), (url, token[:4], status.inner_text())
        page.screenshot(path=str(browser.artifacts / "options-connected.png"))
    finally:
        page.fill("#server-url", simclip_server.url)
        page.fill("#token", simclip_server.token)
        page.click("#save-test")
        status.filter(has_text="Connected").wait_for(timeout=15_000)
        page.close()
    wait_for(lambda: browser.sw_eval("async () => (await chrome.storage.local.get('health')).health?.state") == "ok",
             20, message="the worker to see the server as healthy again")


def test_flags_exactly_the_abusive_memes_in_a_500_image_feed(browser, feed_site):
    trace = []
    page = open_feed(browser, feed_site, seed="main", trace=trace)
    page.wait_for_selector("#late-meme", state="attached", timeout=15_000)
    scroll_through(page)
    states = wait_decided(page, lambda s: s["truth"] != "loopback", 120, "a verdict for every meme")
    page.evaluate("window.scrollTo(0, 0)")

    memes = [s for s in states if s["truth"] in ("harmful", "neutral")]
    assert len(memes) >= MAX_POSTS
    flagged = {s["post"] for s in memes if s["state"] == "flagged"}
    harmful = {s["post"] for s in memes if s["truth"] == "harmful"}
    assert flagged == harmful, summarize(states)
    assert "late" in flagged  # the post added after load
    assert {s["kind"] for s in memes if s["state"] == "flagged"} >= {"img", "lazy", "datasrc", "srcset", "picture", "inline-bg", "sheet-bg"}
    for s in memes:
        if s["state"] == "flagged":
            assert s["warning"] is not None and "Harmful" in s["warning"] and s["card"], s
        else:
            assert s["warning"] is None and not s["card"], s
    loopback = next(s for s in states if s["truth"] == "loopback")
    assert loopback["state"] == "skip"  # a literal 127.0.0.1 image is never fetched by the worker

    shield = page.evaluate("window.__shield")
    tab_id = browser.tab_id(f"{feed_site.url}?s=main")
    state = browser.page_state(tab_id)
    cpu_ms = script_cpu_ms(trace[0].stop(), browser.ext_url("content/"))
    write_json(browser.artifacts / "feed-stats.json",
               {"content_script": state, "page_long_tasks_ms": shield["longTasks"], "states": summarize(states),
                "cpu_ms": {"calls": len(cpu_ms), "max": max(cpu_ms), "over_50": sum(ms > 50 for ms in cpu_ms)}})
    assert shield["violations"] == {}, f"harmful memes visible before their verdict: {shield['violations']}"
    # Every piece of the content script's work yields within a budget of 8-12 ms: none may take
    # 50 ms of the main thread's CPU time (the wall clock perf.js reads also counts the time the
    # OS gave the core to other work, on a shared machine)
    assert len(cpu_ms) >= state["stats"]["tasks"] // 2  # the trace saw the content script's work
    assert max(cpu_ms) <= 50, sorted(cpu_ms)[-5:]
    assert state["flagged"] == len(flagged)
    # The content script reports its count at most every 300 ms, so the badge settles shortly after
    # the last verdict; once settled it must equal the page's count (a stale paint never wins).
    wait_for(lambda: badge_text(browser, tab_id) == str(len(flagged)), 5,
             message=f"the toolbar badge to read {len(flagged)}")
    time.sleep(0.7)  # longer than the report interval: the settled badge stays put
    assert badge_text(browser, tab_id) == str(len(flagged))

    page.screenshot(path=str(browser.artifacts / "feed-top.png"))
    row = page.evaluate("""() => {
        const r = Array.from(document.querySelectorAll('#feed > article')).slice(0, 4).map((a) => a.getBoundingClientRect());
        return { x: r[0].left, y: r[0].top, width: r[3].right - r[0].left, height: Math.max(...r.map((b) => b.bottom)) - r[0].top };
    }""")
    page.screenshot(path=str(browser.artifacts / "feed-row.png"), clip=row)
    first = page.locator('[data-truth="harmful"][data-simclip="flagged"]').first
    first.scroll_into_view_if_needed()
    first.locator("xpath=ancestor::article").screenshot(path=str(browser.artifacts / "flagged-meme.png"))
    page.close()


def test_clicking_a_warning_reveals_the_image_and_the_popup_covers_it_again(browser, feed_site):
    page = open_feed(browser, feed_site, seed="main")
    meme = page.locator("#late-meme")
    wait_late_meme_flagged(page)
    late = next(s for s in meme_states(page) if s["post"] == "late")
    assert "Harmful" in late["warning"] and late["pageLabel"] is None, late  # the scores stay in the extension
    # the picture left its box; the warning card is the element's own background
    assert meme.evaluate("(el) => getComputedStyle(el).objectPosition") == PICTURE_OUT
    click_warning(page, "#late-meme")
    page.wait_for_function("() => document.getElementById('late-meme').getAttribute('data-simclip') === 'revealed'",
                           timeout=5_000)
    assert meme.evaluate("(el) => getComputedStyle(el).objectPosition") != PICTURE_OUT
    page.screenshot(path=str(browser.artifacts / "revealed.png"))
    popup = popup_for(browser, browser.tab_id(f"{feed_site.url}?s=main"))
    popup.locator("#hide-revealed:not([hidden])").click(timeout=10_000)
    page.wait_for_function("() => document.getElementById('late-meme').getAttribute('data-simclip') === 'flagged'",
                           timeout=5_000)
    popup.close()
    # a site rewriting the element's style does not undo the warning
    meme.evaluate("(el) => el.setAttribute('style', 'object-position: 0 0 !important; background: none !important')")
    page.wait_for_function(f"""() => getComputedStyle(document.getElementById('late-meme')).objectPosition === '{PICTURE_OUT}'""",
                           timeout=5_000)
    page.close()


def test_a_flagged_picture_is_a_named_button_that_enter_shows(browser, feed_site):
    """Keyboard and screen-reader users: the card is in the tab order with a label naming the
    reason, Enter shows the picture, and the element's own attributes come back."""
    page = open_feed(browser, feed_site, seed="keys")
    meme = page.locator("#late-meme")
    wait_late_meme_flagged(page)
    a11y = "(el) => [el.tabIndex, el.getAttribute('role'), el.getAttribute('aria-label')]"
    tab_index, role, label = meme.evaluate(a11y)
    assert tab_index == 0 and role == "button" and "Harmful" in label and "Enter" in label
    meme.focus()
    assert page.evaluate("() => document.activeElement.id") == "late-meme"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('late-meme').getAttribute('data-simclip') === 'revealed'",
                           timeout=5_000)
    assert meme.evaluate(a11y) == [-1, None, None]  # the page's own <img>: no tabindex, role or label
    page.close()


def test_a_popup_toggle_switches_a_category_off_and_on_in_the_open_page(browser, feed_site):
    page = open_feed(browser, feed_site, seed="main")
    wait_late_meme_flagged(page)
    tab_id = browser.tab_id(f"{feed_site.url}?s=main")
    popup = popup_for(browser, tab_id)
    toggle = popup.locator("#category-harmful")
    toggle.wait_for(timeout=10_000)
    assert toggle.is_checked()
    popup.locator("#status[data-state='ok']").wait_for(timeout=10_000)
    assert "trained mode" in popup.inner_text("#server-info")
    popup.locator("#page-count", has_text="Flagged on this page:").wait_for(timeout=10_000)
    popup.screenshot(path=str(browser.artifacts / "popup.png"))
    try:
        toggle.uncheck()
        page.wait_for_function("""() => document.querySelectorAll('[data-simclip="flagged"]').length === 0
            && document.getElementById('late-meme').getAttribute('data-simclip') === 'shown'""", timeout=5_000)
        assert page.evaluate("document.querySelectorAll('[aria-label^=\"Hidden picture\"]').length") == 0
    finally:
        toggle.check()
    page.wait_for_function("() => document.getElementById('late-meme').getAttribute('data-simclip') === 'flagged'",
                           timeout=5_000)
    popup.close()
    page.close()


def test_pause_on_this_site_shows_every_image_and_unpausing_blurs_again(browser, feed_site):
    page = open_feed(browser, feed_site, seed="main")
    wait_late_meme_flagged(page)
    popup = popup_for(browser, browser.tab_id(f"{feed_site.url}?s=main"))
    pause = popup.locator("#pause-site")
    pause.wait_for()
    assert "feed.test" in popup.inner_text("#site")
    try:
        pause.check()
        page.wait_for_function("() => document.documentElement.getAttribute('data-simclip-off') === 'paused'", timeout=5_000)
        assert page.locator("#late-meme").evaluate("(el) => getComputedStyle(el).objectPosition") != PICTURE_OUT
        # the paint monitor every e2e test relies on sees a harmful meme painted uncovered
        page.wait_for_function("() => 'late' in window.__shield.violations", timeout=5_000)
    finally:
        pause.uncheck()
    page.wait_for_function("() => !document.documentElement.hasAttribute('data-simclip-off')", timeout=5_000)
    assert page.locator("#late-meme").evaluate("(el) => getComputedStyle(el).objectPosition") == PICTURE_OUT
    popup.close()
    page.close()


def test_a_wrong_verdict_report_is_kept_locally_and_exports_as_jsonl(browser, feed_site, tmp_path):
    page = open_feed(browser, feed_site, seed="main")
    wait_late_meme_flagged(page)
    click_warning(page, "#late-meme", "report")
    options = browser.context.new_page()
    options.goto(browser.ext_url("options/options.html"))
    options.locator("#report-count", has_text="1 report").wait_for(timeout=10_000)
    with options.expect_download(timeout=10_000) as download:
        options.click("#export-reports")
    path = tmp_path / "reports.jsonl"
    download.value.save_as(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["correction"] == "not_flagged" and row["categories"] == ["harmful"]
    assert row["labels"] == ["not harmful"]
    assert row["image_url"].startswith(f"http://feed.test:{feed_site.port}/m/")
    assert len(row["sha256"]) == 64 and row["timestamp"]
    options.click("#clear-reports")
    options.locator("#report-count", has_text="No reports").wait_for(timeout=5_000)
    options.close()
    page.close()


def test_a_dead_server_leaves_the_page_usable_and_a_restart_resumes(browser, feed_site, simclip_server):
    simclip_server.stop()
    try:
        page = open_feed(browser, feed_site, seed="down")
        tab_id = wait_for(lambda: browser.tab_id(f"{feed_site.url}?s=down"), 10, message="the feed tab")
        # fail open: the memes on screen are shown unchecked, quickly, not hidden forever
        wait_top_memes_in_state(page, "unchecked", 30_000)
        assert page.evaluate("getComputedStyle(document.querySelector('[data-truth=\"neutral\"]')).visibility") == "visible"
        page.evaluate("window.scrollBy(0, 2000)")  # the page still scrolls and loads
        popup = popup_for(browser, tab_id)
        popup.locator("#status[data-state='unreachable']").wait_for(timeout=15_000)
        assert "not running" in popup.inner_text("#status-text")
        wait_for(lambda: badge_text(browser, tab_id) == "!",
                 10, message="the toolbar badge to show the server is down")
        popup.screenshot(path=str(browser.artifacts / "popup-server-down.png"))
    finally:
        simclip_server.start()
    popup.locator("#status[data-state='ok']").wait_for(timeout=30_000)
    page.evaluate("window.scrollTo(0, 0)")
    wait_top_memes_decided_truly(page, 60_000)
    popup.close()
    page.close()


def test_keep_hidden_when_down_keeps_waiting_images_hidden_until_the_server_returns(
        browser, feed_site, simclip_server):
    options = browser.context.new_page()
    options.goto(browser.ext_url("options/options.html"))
    options.wait_for_selector("body[data-ready='true']")
    options.check("#keep-hidden")
    wait_for(lambda: browser.sw_eval(
        "async () => (await chrome.storage.local.get('settings')).settings?.keepHiddenWhenDown"),
        10, message="the setting to be stored")
    simclip_server.stop()
    try:
        page = open_feed(browser, feed_site, seed="down-hidden")
        wait_top_memes_in_state(page, "waiting", 30_000)
        time.sleep(2)  # still hidden later: nothing reveals them while the server is down
        hidden = page.evaluate(f"""() => ({TOP_MEMES_JS})().map((el) => {{
            const s = getComputedStyle(el);
            return el.getAttribute('data-simclip') === 'waiting' &&
                   (s.visibility === 'hidden' || s.backgroundImage === 'none');
        }})""")
        assert all(hidden), hidden
    finally:
        options.uncheck("#keep-hidden")
        simclip_server.start()
    wait_top_memes_decided_truly(page, 60_000)
    options.close()
    page.close()


def test_the_extension_keeps_working_after_chromium_stops_its_service_worker(browser, feed_site):
    """MV3 kills an idle worker; everything it needs must come back from storage."""
    page = open_feed(browser, feed_site, seed="main")
    wait_late_meme_flagged(page)
    browser.sw_eval("() => { globalThis.__beforeRestart = true; }")
    stop_extension_worker(browser, page)
    # A new page wakes the worker through its content script's first message.
    fresh = open_feed(browser, feed_site, seed="after-restart")
    wait_top_memes_decided_truly(fresh, 60_000)
    assert browser.sw_eval("() => globalThis.__beforeRestart ?? false") is False, "the worker was not restarted"
    assert browser.sw_eval("async () => (await chrome.storage.local.get('health')).health?.state") == "ok"
    tab_id = browser.tab_id(f"{feed_site.url}?s=after-restart")
    wait_for(lambda: badge_text(browser, tab_id) == str(browser.page_state(tab_id)["flagged"]), 10,
             message="the new worker to keep the toolbar badge count")
    page.close()
    fresh.close()
