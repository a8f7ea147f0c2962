"""The loader's declarative-shadow-root race (issue 19), in Chromium with the extension and the
real server, on stream_pages.py's streamed page: every picture inside a declarative root that
arrives while the loader or main.js watches must be hidden until its verdict (never shown
unchecked) and get one. test_firefox_e2e.py runs the same page in Firefox.
"""

import pytest

from e2e_support import MONITOR_JS, assert_flagged_exactly_the_harmful, violations, wait_decided
from stream_pages import expected_posts


def open_race(browser, stream_site, hosts, seed):
    page = browser.context.new_page()
    page.add_init_script(MONITOR_JS)
    page.goto(stream_site.url(hosts, seed), wait_until="commit")
    page.wait_for_function("() => window.__caseSettled === true", timeout=30_000)
    return page


def assert_hidden_until_checked(page, hosts):
    states = wait_decided(page, lambda s: True, 40, "a verdict for every picture in a streamed declarative root")
    posts = {s["post"] for s in states}
    assert posts == expected_posts(hosts), (sorted(expected_posts(hosts) - posts), sorted(posts - expected_posts(hosts)))
    assert_flagged_exactly_the_harmful(states)
    assert violations(page) == {}, violations(page)


@pytest.mark.parametrize("seed", ["race-1", "race-2"])
def test_pictures_in_a_declarative_root_half_parsed_under_the_loader_are_hidden_until_checked(browser, stream_site, seed):
    """The host is inserted empty, its root is attached a few frames later, before main.js takes
    over: the loader's recheck (loader.js recheckHosts) adopts the pre-hide rules into it."""
    page = open_race(browser, stream_site, "loader", seed)
    assert_hidden_until_checked(page, "loader")
    page.close()


def test_pictures_in_a_declarative_root_attached_after_the_hand_over_are_hidden_until_checked(browser, stream_site):
    """The root is attached after main.js took over from the loader: dom_watcher.js looked at the
    host while it was empty, so the loader's recheck, still running while the page is parsed,
    finds the root and hands it to the watcher (main.js onLateRoot)."""
    page = open_race(browser, stream_site, "handover", "race-h")
    assert_hidden_until_checked(page, "handover")
    page.close()
