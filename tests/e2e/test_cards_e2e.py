"""The warning card a person can read at any size, and the bounded cost of an endless feed (issue
17, items 5 and 6), in headless Chromium with the extension and simclip-server's app.

The server is the real app (token, Host and Origin checks) with bench/timeline_site.py's
MarkerClassifier, which flags a picture for 0 to 4 categories from a marker in its pixels: the
cards need every number of categories, which the trained e2e head (one category) cannot give.

- Cards at 120, 200, 300 and 600 px with 1 to 4 categories: the card is read back from what the
  page can read of it (its `--simclip-card` SVG) and drawn at the element's size, as the browser
  draws it (unscaled: no viewBox, `background-size: 100% 100%`); every text is at least 11 px
  and inside the box, the "Not harmful?" chip is there, and it is reachable by a click and by
  the keyboard on every size. SIMCLIP_DOC_SCREENSHOTS=1 also writes docs/cards/cards-W.png.
- A virtualized 300-post timeline, a third flagged, scrolled to its end: the posts it removed
  are released (nothing of the extension holds them a second later, after a garbage
  collection), and the cards are a handful of shared rules, not one per flagged post.
"""

import os

import pytest

from bench.timeline_site import CARD_SIZES, CATEGORIES, HOST, MarkerServer, TimelineSite
from e2e_support import (
    CARD_IDS,
    MEASURE_CARD_JS,
    REPO,
    ExtensionBrowser,
    assert_cards_readable,
    click_warning,
    launch_with_extension,
    pair_through_options_page,
    wait_for,
)

NAMES = [name for _, name in CATEGORIES]
DOC_SCREENSHOTS = REPO / "docs" / "cards"


# Main world, from document start: every post that was flagged, and each card number drawn.
FLAGGED_JS = """
window.__flagged = { posts: new Set(), cards: new Set() };
new MutationObserver((records) => {
  for (const r of records) {
    const el = r.target;
    if (el.getAttribute('data-simclip') === 'flagged' && el.dataset.post) __flagged.posts.add(el.dataset.post);
    if (el.hasAttribute('data-simclip-card')) __flagged.cards.add(el.getAttribute('data-simclip-card'));
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-simclip', 'data-simclip-card'] });
"""

# the rules that draw a card (set --simclip-card), not the gap rules that paint it (loader.js)
CARD_RULES_JS = """() => document.adoptedStyleSheets.flatMap((s) => Array.from(s.cssRules))
  .filter((r) => r.style && r.style.getPropertyValue('--simclip-card') !== '').length"""

REMOVED_ALIVE_JS = """(ageMs) => {
  const now = performance.now();
  const old = __timeline.removed.filter((r) => now - r.t >= ageMs);
  return { removed: old.length, alive: old.filter((r) => r.ref.deref() !== undefined).length };
}"""


@pytest.fixture(scope="module")
def marker_browser(tmp_path_factory, playwright_driver, chromium_path):
    """(browser, site): Chromium with the extension paired with the marker server, and the timeline site."""
    site = TimelineSite().start()
    server = MarkerServer(tmp_path_factory.mktemp("marker-server")).start()
    profile = tmp_path_factory.mktemp("cards-profile")
    try:
        with launch_with_extension(playwright_driver, profile, chromium_path, (HOST,),
                                   {"width": 1400, "height": 1000}) as (context, worker):
            b = ExtensionBrowser(context, worker)
            pair_through_options_page(b, server)
            yield b, site
    finally:
        server.stop()
        site.stop()


def report_count(b):
    return b.sw_eval("async () => ((await chrome.storage.local.get('reports')).reports ?? []).length")


def wait_state(page, selector, state, timeout_s=20):
    wait_for(lambda: page.get_attribute(selector, "data-simclip") == state, timeout_s,
             message=f"{selector} to be {state}")


def test_cards_at_every_size_are_readable_fit_their_box_and_keep_the_not_harmful_chip_reachable(marker_browser, artifacts_dir):
    b, site = marker_browser
    page = b.context.new_page()
    page.goto(site.cards_url(seed="cards"))
    ids = CARD_IDS
    wait_for(lambda: all(page.get_attribute(i, "data-simclip") == "flagged" for i in ids), 60, message="every card flagged")
    cards = {i: wait_for(lambda i=i: page.eval_on_selector(i, MEASURE_CARD_JS), 10, message=f"{i}'s card") for i in ids}
    for w in CARD_SIZES:  # the screenshots of each size (docs/extension.md shows them)
        row = page.locator(f"#card-{w}-1").locator("xpath=..")
        row.screenshot(path=str(artifacts_dir / f"cards-{w}.png"))
        if os.environ.get("SIMCLIP_DOC_SCREENSHOTS") == "1":
            DOC_SCREENSHOTS.mkdir(exist_ok=True)
            row.screenshot(path=str(DOC_SCREENSHOTS / f"cards-{w}.png"))
    assert_cards_readable(cards, NAMES)
    for w in CARD_SIZES:
        reports = report_count(b)
        click_warning(page, f"#card-{w}-2", "report")  # the chip, with the pointer
        wait_state(page, f"#card-{w}-2", "revealed")
        wait_for(lambda r=reports: report_count(b) == r + 1, 10, message=f"the report of #card-{w}-2")
        page.focus(f"#card-{w}-3")  # the chip's action, from the keyboard
        page.keyboard.press("Shift+Enter")
        wait_state(page, f"#card-{w}-3", "revealed")
        wait_for(lambda r=reports: report_count(b) == r + 2, 10, message=f"the report of #card-{w}-3")
        page.focus(f"#card-{w}-4")  # Enter shows it, without a report
        page.keyboard.press("Enter")
        wait_state(page, f"#card-{w}-4", "revealed")
        click_warning(page, f"#card-{w}-1")  # a click off the chip shows it
        wait_state(page, f"#card-{w}-1", "revealed")
        assert report_count(b) == reports + 2
        assert page.get_attribute(f"#card-{w}-1", "title") is None  # the element's own attributes are back
    page.close()


def test_a_virtualized_feed_releases_the_posts_it_removes_and_shares_one_rule_per_distinct_card(marker_browser):
    b, site = marker_browser
    posts = 300
    page = b.context.new_page()
    page.add_init_script(FLAGGED_JS)
    page.goto(site.url(posts, seed="bounded"))
    page.wait_for_function("document.querySelectorAll('article').length > 0")
    bottom = page.evaluate("document.documentElement.scrollHeight - innerHeight")
    y = 0
    while y < bottom:
        y = min(bottom, y + 900)
        page.evaluate("(y) => scrollTo(0, y)", y)
        # the posts on screen decided before the next screen: their cards are drawn
        wait_for(lambda: page.evaluate("""() => Array.from(document.querySelectorAll('img.meme')).every((img) => {
            const r = img.getBoundingClientRect();
            return r.bottom < 0 || r.top > innerHeight || ['flagged', 'shown'].includes(img.getAttribute('data-simclip'));
        })"""), 30, interval_s=0.05, message=f"the posts on screen at {y} px decided")
    flagged = page.evaluate("__flagged.posts.size")
    cards = page.evaluate("__flagged.cards.size")
    rules = page.evaluate(CARD_RULES_JS)
    assert flagged >= posts // 10, flagged  # many flagged posts (a third of the feed is), few cards
    # one box size: one card per number of categories, whatever the number of flagged posts
    assert 1 <= cards <= len(NAMES) and 1 <= rules <= len(NAMES), (flagged, cards, rules)
    # The page empties its timeline: posts removed while no new picture is decided (nothing else
    # walks the extension's records meanwhile), each released within a second.
    page.evaluate("__timeline.clear()")
    page.wait_for_timeout(1000)
    cdp = b.context.new_cdp_session(page)
    cdp.send("HeapProfiler.enable")
    cdp.send("HeapProfiler.collectGarbage")
    released = page.evaluate(REMOVED_ALIVE_JS, 1000)
    assert released["removed"] >= posts - 1, released
    assert released["alive"] == 0, released
    page.close()
