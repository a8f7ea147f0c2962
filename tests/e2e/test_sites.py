"""The real sites' patterns (issue 10, item 8), in Chromium with the extension and the real server:
for each fixture page of site_pages.py, every harmful picture is flagged exactly once (one warning
among the elements showing it, counted once), no neutral picture is flagged or stuck, no frame
shows a harmful picture before its verdict, and clicks on the site's own chrome reach it. And a
Facebook-sized insertion of 7,500 elements costs the content script no task over 50 ms.
"""

import pytest
from site_pages import SITES

from e2e_support import (
    MONITOR_JS,
    ChromiumTrace,
    click_warning,
    meme_states,
    script_cpu_ms,
    violations,
    wait_decided,
    wait_for,
    write_json,
)


def open_page(browser, url):
    page = browser.context.new_page()
    page.add_init_script(MONITOR_JS)
    page.goto(url)
    return page


def group_by_picture(page, states):
    pictures = dict(page.evaluate("""() => Array.from(document.querySelectorAll('[data-picture]'),
        (el) => [el.dataset.post, el.dataset.picture])"""))
    groups = {}
    for s in states:
        groups.setdefault(pictures.get(s["post"], s["post"]), []).append(s)
    return groups


@pytest.mark.parametrize("site", SITES)
def test_a_sites_pictures_are_flagged_exactly_once_and_its_chrome_gets_its_clicks(browser, feed_site, site):
    url = feed_site.case_url(f"site-{site}", f"site-{site}")
    page = open_page(browser, url)
    # the cards drawn over the pictures shown at first (the rest open with the site's own buttons):
    # Playwright refuses a click that something else (a warning card) would take
    shown = set(page.evaluate("""() => Array.from(document.querySelectorAll('[data-truth]'))
        .filter((el) => el.getClientRects().length > 0).map((el) => el.dataset.post)"""))
    wait_decided(page, lambda s: s["post"] in shown and s["truth"] in ("harmful", "neutral"), 60, f"the pictures shown on {site}")
    chrome = page.evaluate("() => Array.from(document.querySelectorAll('[data-chrome]'), (el) => el.dataset.chrome)")
    for name in chrome:
        page.click(f'[data-chrome="{name}"]', timeout=5_000)
    assert page.evaluate("window.__clicks") == chrome
    states = wait_decided(page, lambda s: s["truth"] in ("harmful", "neutral"), 60, f"a verdict for every picture on {site}")
    groups = group_by_picture(page, states)
    for picture, members in groups.items():
        truth = {m["truth"] for m in members}
        assert len(truth) == 1, (picture, members)
        if truth == {"harmful"}:
            assert all(m["state"] == "flagged" for m in members), (picture, members)
            assert sum(m["warning"] is not None for m in members) == 1, (picture, members)
        else:
            assert all(m["state"] == "clean" for m in members), (picture, members)
    harmful = sum(1 for members in groups.values() if members[0]["truth"] == "harmful")
    tab_id = browser.tab_id(url)
    wait_for(lambda: browser.page_state(tab_id)["flagged"] == harmful, 5, message=f"{harmful} pictures counted once")
    assert violations(page) == {}, violations(page)
    if site == "instagram":  # the site's transparent layer over the picture: a click on it is a click on the picture
        click_warning(page, '[data-post="ig-0"]')
        page.wait_for_function("() => document.querySelector('[data-post=\"ig-0\"]').getAttribute('data-simclip') === 'revealed'",
                               timeout=5_000)
    page.close()


def test_a_facebook_sized_insertion_of_7500_elements_costs_the_content_script_no_task_over_50_ms(
        browser, feed_site, artifacts_dir):
    """Counted on the main thread's CPU clock (Chromium's trace): on a machine busy with other
    work, the wall clock perf.js reads also counts the time the thread waited for a core."""
    url = feed_site.case_url("bulk", "bulk")
    page = browser.context.new_page()
    trace = ChromiumTrace(browser.context, page).start()
    page.add_init_script(MONITOR_JS)
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.inserted", timeout=30_000)
    inserted = int(page.evaluate("document.body.dataset.inserted"))
    assert inserted >= 7500
    on_screen = page.evaluate("""() => Array.from(document.querySelectorAll('[data-truth]'))
        .filter((el) => el.getBoundingClientRect().top < innerHeight).map((el) => el.dataset.post)""")
    wait_decided(page, lambda s: s["post"] in on_screen, 60, "a verdict for the pictures on screen")
    # the rest of the insertion is visited in slices: wait until none is left
    tab = browser.tab_id(url)
    state = wait_for(lambda: (lambda s: s if s["stats"]["slicesPending"] == 0 else None)(browser.page_state(tab)), 60,
                     message="the content script's slices to finish")
    cpu_ms = script_cpu_ms(trace.stop(), browser.ext_url("content/"))
    write_json(artifacts_dir / "bulk-stats.json", {
        "inserted": inserted, "insert_ms": page.evaluate("document.body.dataset.insertMs"),
        "content_script": state["stats"], "states": state["byState"],
        "cpu_ms": {"calls": len(cpu_ms), "max": max(cpu_ms), "over_50": sum(ms > 50 for ms in cpu_ms)}})
    assert len(meme_states(page)) == 250
    assert len(cpu_ms) >= state["stats"]["tasks"] // 2  # the trace saw the content script's work
    assert max(cpu_ms) <= 50, sorted(cpu_ms)[-5:]
    page.close()
