"""The verdict follows the picture an element paints (issue 17, item 2), in Chromium with the
extension and the real server: elements that switch pictures without being replaced (switch_pages.py)
are hidden before the new picture is painted and asked about again; the old verdict never covers
another picture, and a neutral picture is not left covered.
"""

import json

from e2e_support import assert_flagged_exactly_the_harmful, meme_states, wait_decided, wait_for, write_json
from switch_pages import ANIMATIONS_DONE_JS, CROWD, NARROW_PX, PAINT_MONITOR_JS, PAINT_VIOLATIONS, WIDE_PX

MEDIA_KINDS = ("picture", "srcset", "media", "container")
SCRIPT_KINDS = ("var", "shadow-var", "shadow-query", "class", "rule", "sheet", "checked", "waapi", "animation", "resize")


def open_switch_page(browser, feed_site, seed, name="switch"):
    page = browser.context.new_page()
    page.set_viewport_size({"width": WIDE_PX, "height": 1400})
    page.add_init_script(PAINT_MONITOR_JS)
    page.goto(feed_site.case_url(name, seed))
    return page


def states_by_post(page):
    return {s["post"]: s for s in meme_states(page)}


def wait_verdicts_follow(page, kinds, what):
    """Until every picture of `kinds` has the verdict of what it paints now (an old verdict
    counts as decided for wait_decided), then a verdict for every picture: the states."""
    wait_for(lambda: all(s["state"] == ("flagged" if s["truth"] == "harmful" else "clean")
                         for s in meme_states(page) if s["kind"] in kinds), 30, message=f"the verdicts after {what}")
    return wait_decided(page, lambda s: True, 60, f"a verdict for every picture after {what}")


def detection_delays(page, kinds):
    """ms from each element's switch to the extension hiding it, per post of `kinds` (None: never hidden)."""
    return page.evaluate("""(kinds) => {
      const out = {};
      for (const [post, t] of Object.entries(window.__switchedAt)) {
        if (!kinds.some((k) => post.startsWith(k + '-'))) continue;
        const hidden = window.__paint.hiddenAt[post];
        out[post] = hidden === undefined ? null : Math.round(hidden - t);
      }
      return out;
    }""", list(kinds))


def test_pictures_that_switch_without_a_new_element_are_hidden_first_and_asked_again(browser, feed_site, artifacts_dir):
    """<picture> with <source media> on a narrowing window, a srcset re-picked at another width, a
    media query and a container query; then a custom property on an ancestor, a keyword one that a
    shadow root's style query reads, a class toggled on an ancestor and a CSS animation: each once neutral then harmful, once harmful then neutral."""
    page = open_switch_page(browser, feed_site, "switch")
    states = wait_decided(page, lambda s: True, 60, "a verdict for every picture at a wide window")
    assert len(states) == 2 * (len(MEDIA_KINDS) + len(SCRIPT_KINDS)), [s["post"] for s in states]
    assert_flagged_exactly_the_harmful(states)
    first_ids = {s["post"]: s["id"] for s in states}

    page.set_viewport_size({"width": NARROW_PX, "height": 1400})
    page.wait_for_function("() => matchMedia('(max-width: 700px)').matches")
    # inside the page's own animation-frame callback, as animation libraries change styles
    page.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => { window.__switch(); resolve(); }))")
    page.wait_for_function(ANIMATIONS_DONE_JS, timeout=20_000)
    states = wait_decided(page, lambda s: True, 60, "a verdict for every picture after the switch")
    by_post = {s["post"]: s for s in states}
    plan = page.evaluate("() => window.__plan")
    # each element now paints its second picture, and its record is a new one (asked about again)
    for post, (_, second) in plan.items():
        assert by_post[post]["truth"] == second, (post, by_post[post])
        assert by_post[post]["id"] != first_ids[post], f"{post} kept the record of the picture it showed before"
    assert_flagged_exactly_the_harmful(states)

    paint = page.evaluate("() => window.__paint")
    delays = detection_delays(page, MEDIA_KINDS + SCRIPT_KINDS)
    write_json(artifacts_dir / "switching-delays.json", {"delays_ms": delays, "frames": paint["frames"]})
    print("detection delay (ms from the switch to hidden):", json.dumps(delays, sort_keys=True))
    assert paint["violations"] == {}, f"harmful pictures painted uncovered after a switch: {paint['violations']}"
    # every element that switched was hidden before its new verdict (an <img> on its new source)
    assert all(v is not None for v in delays.values()), delays
    page.close()


def test_a_script_switch_among_hundreds_of_pictures_is_hidden_before_it_is_painted(browser, feed_site):
    """The script's switches of the switch page, to pictures already loaded and decoded, with 300
    pictures near the viewport before them: more than one frame's worth to read again. The pictures under a
    changed ancestor are read in that frame all the same."""
    page = open_switch_page(browser, feed_site, "crowd", name="switch-crowd")
    states = wait_decided(page, lambda s: True, 90, "a verdict for every picture")
    assert len(states) == CROWD + 2 * (len(MEDIA_KINDS) + len(SCRIPT_KINDS)), len(states)
    assert_flagged_exactly_the_harmful(states)
    page.evaluate("window.__preload()")  # in the cache and decoded: a switch paints at once
    for _ in range(3):  # every few frames, as a page's scripts do
        page.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => { window.__switch(); resolve(); }))")
        page.wait_for_function(ANIMATIONS_DONE_JS, timeout=20_000)
        assert_flagged_exactly_the_harmful(wait_verdicts_follow(page, SCRIPT_KINDS, "the switch"))
        assert page.evaluate(PAINT_VIOLATIONS) == {}, "harmful pictures painted uncovered after a switch"
        page.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => { window.__unswitch(); resolve(); }))")
        assert_flagged_exactly_the_harmful(wait_verdicts_follow(page, SCRIPT_KINDS, "the switch back"))
    paint = page.evaluate("() => window.__paint")
    assert paint["violations"] == {}, f"harmful pictures painted uncovered after a switch: {paint['violations']}"
    page.close()


def test_a_switch_no_dom_change_announces_is_hidden_before_it_is_painted(browser, feed_site):
    """A stylesheet rule edited and a sheet disabled through the CSSOM, a checkbox checked by a
    script (`:checked ~`), a Web Animations animation: each alone in its task (no DOM change, no
    event), to a picture already decoded, among 300 pictures near the viewport. The main-world
    hook announces each (shadow_hook.js); the pictures are read again before that paint."""
    page = open_switch_page(browser, feed_site, "quiet", name="switch-crowd")
    assert_flagged_exactly_the_harmful(wait_decided(page, lambda s: True, 90, "a verdict for every picture"))
    page.evaluate("window.__preload()")
    for kind in ("rule", "sheet", "checked", "waapi"):
        for second in (True, False):
            page.evaluate("([kind, second]) => new Promise((resolve) => requestAnimationFrame(() => {"
                          " window.__switchOnly(kind, second); resolve(); }))", [kind, second])
            assert_flagged_exactly_the_harmful(wait_verdicts_follow(page, (kind,), f"the {kind} switch ({second})"))
            assert page.evaluate(PAINT_VIOLATIONS) == {}, (kind, second, page.evaluate(PAINT_VIOLATIONS))
    page.close()


def test_a_custom_property_set_every_frame_to_a_length_costs_no_reading_and_a_url_still_does(browser, feed_site):
    """A scroll-linked `--scroll-y: <n>px` on <html> every frame (as many sites do) cannot change a
    picture: the content script reads nothing again for it. The page's own `--bg: url(...)` swap
    right after is still read again, and decided truly."""
    page = open_switch_page(browser, feed_site, "per-frame")
    wait_decided(page, lambda s: True, 60, "a verdict for every picture")
    tab = browser.tab_id(page.url)
    visits = lambda: browser.page_state(tab)["stats"]["inheritVisits"]  # noqa: E731
    # set once (a property set or removed may uncover a var() fallback: read again), then every frame
    page.evaluate("() => new Promise((resolve) => { document.documentElement.style.setProperty('--scroll-y', '0px'); "
                  "requestAnimationFrame(() => requestAnimationFrame(resolve)); })")
    wait_for(lambda: browser.page_state(tab)["stats"]["slicesPending"] == 0, 10, message="the first read done")
    before = visits()
    page.evaluate("""() => new Promise((resolve) => { let n = 1;
      const frame = () => { document.documentElement.style.setProperty('--scroll-y', (n * 7) + 'px');
        if (++n < 60) requestAnimationFrame(frame); else requestAnimationFrame(() => resolve()); };
      requestAnimationFrame(frame); })""")
    assert visits() == before, "a length in a custom property made the content script read the page again"
    page.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => { window.__switch(); resolve(); }))")
    wait_for(lambda: visits() > before, 10, message="the url() swap to be read again")
    states = wait_decided(page, lambda s: s["kind"] in ("var", "shadow-var"), 60, "the swapped pictures decided")
    assert_flagged_exactly_the_harmful([s for s in states if s["kind"] in ("var", "shadow-var")])
    assert page.evaluate(PAINT_VIOLATIONS) == {}
    page.close()


def test_a_picture_switched_back_and_forth_is_never_covered_by_the_other_ones_verdict(browser, feed_site):
    """A window narrowed and widened again: the <picture> and media-query elements go back to their
    first picture, and each shows the verdict of the picture it paints at every step."""
    page = open_switch_page(browser, feed_site, "switch-back")
    wait_decided(page, lambda s: True, 60, "a verdict for every picture at a wide window")
    for width in (NARROW_PX, WIDE_PX, NARROW_PX):
        page.set_viewport_size({"width": width, "height": 1400})
        page.wait_for_function("(w) => innerWidth === w", arg=width)
        states = wait_decided(page, lambda s: s["kind"] in MEDIA_KINDS, 60, f"verdicts at {width} px")
        assert_flagged_exactly_the_harmful([s for s in states if s["kind"] in MEDIA_KINDS])
    paint = page.evaluate("() => window.__paint")
    assert paint["violations"] == {}, paint["violations"]
    page.close()


def test_pictures_drawn_on_a_canvas_are_hidden_until_checked_and_judged_again_when_drawn_over(browser, feed_site):
    """Telegram-like viewer canvases drawn from the page's own pictures and from a blob:, then two
    drawn over (neutral then harmful, harmful then neutral); a flagged one shows its card; a
    tainted, a small and an animated canvas are shown (what stays out, docs/extension.md)."""
    page = browser.context.new_page()
    page.add_init_script(PAINT_MONITOR_JS)
    page.goto(feed_site.case_url("canvas", "canvas"))
    page.wait_for_function("() => window.__drawn", timeout=20_000)
    judged = lambda s: s["truth"] in ("harmful", "neutral")  # noqa: E731
    states = wait_decided(page, judged, 60, "a verdict for every canvas picture")
    assert {s["post"] for s in states if judged(s)} == {"viewer", "blob", "redraw-nh", "redraw-hn"}
    assert_flagged_exactly_the_harmful(states)
    assert all(s["card"] for s in states if s["pageState"] == "flagged"), states  # a card, as an <img>'s
    first_ids = {s["post"]: s["id"] for s in states}

    page.evaluate("() => window.__redraw()")
    page.wait_for_function("() => document.querySelector('[data-post=redraw-nh]').dataset.truth === 'harmful'")
    states = wait_decided(page, judged, 60, "a verdict for the canvases drawn over")
    assert_flagged_exactly_the_harmful(states)
    by_post = {s["post"]: s for s in states}
    for post in ("redraw-nh", "redraw-hn"):
        assert by_post[post]["id"] != first_ids[post], f"{post} kept the verdict of its first drawing"
    # what stays out is shown, never held back: tainted (unreadable), small, animated
    wait_for(lambda: all(s["pageState"] == "shown" for s in meme_states(page) if not judged(s)), 20,
             message="the tainted, small and animated canvases shown")
    paint = page.evaluate("() => window.__paint")
    delays = detection_delays(page, ("redraw",))
    print("canvas detection delay (ms from the drawing to hidden):", json.dumps(delays, sort_keys=True))
    assert paint["violations"] == {}, f"harmful drawings painted uncovered: {paint['violations']}"
    # the card is a button: a click on a flagged canvas shows its drawing, as on an <img>
    flagged = next(s["post"] for s in states if s["pageState"] == "flagged")
    page.click(f"canvas[data-post='{flagged}']")
    page.wait_for_function("(p) => document.querySelector(`canvas[data-post='${p}']`).dataset.simclip === 'revealed'"
                           " && getComputedStyle(document.querySelector(`canvas[data-post='${p}']`)).objectPosition"
                           " !== '-100000px -100000px'", arg=flagged, timeout=10_000)
    page.close()


# An element with no picture, then (in a later frame, to a picture already decoded) a rule
# inserted through the CSSOM, in the way `how` says, that gives it the harmful one: no DOM change.
GIVE_A_PICTURE_JS = """async ([url, post, how]) => {
  const img = new Image();
  img.src = url;
  await img.decode();
  const style = document.head.appendChild(document.createElement('style'));
  style.textContent = '@media all {} .unused-' + post + ' { background-image: url("' + url + '") }'
    + ' @media print { .' + post + ' { background-image: url("' + url + '") } }'; // switched on by 'media-text'
  const built = new CSSStyleSheet(); // a sheet built ahead (constructable stylesheets), adopted later
  built.replaceSync('.' + post + ' { background-image: url("' + url + '") }');
  const el = Object.assign(document.createElement('div'), { className: 'meme ' + post });
  Object.assign(el.dataset, { post, kind: 'insert', truth: 'neutral' });
  let shadowStyle = null;
  if (how === 'shadow-many') { // a web component's own styles: the document's rules do not reach in
    const root = document.body.insertBefore(document.createElement('div'), document.body.firstChild).attachShadow({ mode: 'open' });
    shadowStyle = root.appendChild(document.createElement('style'));
    el.style.cssText = 'display: block; width: 240px; height: 180px';
    root.appendChild(el);
    (window.__fixtureRoots ??= []).push(root);
    window.__paint?.observe?.(root);
  } else {
    document.body.prepend(el);
  }
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  await new Promise((resolve) => requestAnimationFrame(() => {
    const rule = '.' + post + ' { background-image: url("' + url + '") }';
    if (how === 'sheet') style.sheet.insertRule(rule, 1);
    else if (how === 'media') style.sheet.cssRules[0].insertRule(rule, 0); // inside @media
    else if (how === 'selector') style.sheet.cssRules[1].selectorText = '.' + post; // a rule moved onto it
    else if (how === 'media-text') [...style.sheet.cssRules].find((r) => r.media?.mediaText === 'print').media.mediaText = 'all';
    else if (how === 'adopted') document.adoptedStyleSheets = [...document.adoptedStyleSheets, built];
    else if (how === 'adopted-push') document.adoptedStyleSheets.push(built); // in place: no setter runs
    else { // 'many': a CSS-in-JS library's first styles, more than the hook lists (in the document or a shadow root)
      const sheet = shadowStyle ? shadowStyle.sheet : style.sheet;
      sheet.insertRule(rule, sheet.cssRules.length);
      for (let i = 0; i < 80; i += 1) sheet.insertRule('.unused-' + i + ' { background-image: url("' + url + '&u=' + i + '") }', 0);
    }
    el.dataset.truth = 'harmful';
    window.__harmful.push(url);
    resolve();
  }));
}"""


def test_an_element_a_cssom_rule_gives_its_first_picture_is_hidden_before_it_is_painted(browser, feed_site):
    """An element that showed no picture (so no record follows it) gets one from a rule a script
    inserts, into a sheet or inside its @media block, or moves onto it (`selectorText`), or in an
    @media block a script switches on (`mediaText`), or among
    80 more rules in one task (in the document, or in a shadow root's own sheet), or in a sheet
    built earlier and adopted (set anew, or pushed in place), among 300 pictures near the
    viewport. The
    main-world hook lists the selectors of rules given a picture, and the content script looks at
    their elements before that paint; without it the sweep found the picture up to a second later."""
    page = open_switch_page(browser, feed_site, "first-picture", name="switch-crowd")
    wait_decided(page, lambda s: True, 90, "a verdict for every picture")
    for how in ("sheet", "media", "selector", "many", "shadow-many", "media-text", "adopted", "adopted-push"):
        post = f"given-{how}"
        url = feed_site.case_url("x").split("/case/")[0] + f"/m/{feed_site.harmful[0]}.png?p={post}&s=first-picture"
        page.evaluate(GIVE_A_PICTURE_JS, [url, post, how])
        states = wait_decided(page, lambda s, post=post: s["post"] == post, 30, f"the verdict of {post}", posts={post})
        assert [s["state"] for s in states if s["post"] == post] == ["flagged"], post
    assert page.evaluate(PAINT_VIOLATIONS) == {}, page.evaluate(PAINT_VIOLATIONS)
    page.close()


# 60 frames, each calling element.animate() with `keyframes` on an element with no picture (a
# spinner a page animates from script, as animation libraries do), then two frames more.
ANIMATE_EVERY_FRAME_JS = """(keyframes) => new Promise((resolve) => {
  const spinner = document.body.appendChild(document.createElement('div'));
  let n = 0;
  const frame = () => {
    spinner.animate(keyframes, { duration: 16 });
    if (++n < 60) requestAnimationFrame(frame);
    else requestAnimationFrame(() => requestAnimationFrame(() => { spinner.remove(); resolve(); }));
  };
  requestAnimationFrame(frame);
})"""


def test_animations_that_cannot_change_a_picture_cost_no_reading(browser, feed_site):
    """A page calling `element.animate()` every frame for a spinner's transform makes the content
    script read nothing more than its once-a-second sweep; the same calls with a custom property
    (which may hold a picture) have every near picture read every frame. Counted in reads, one run
    against the other: it was the same cost before the main-world hook looked at the keyframes."""
    page = open_switch_page(browser, feed_site, "waapi-cost", name="switch-crowd")
    wait_decided(page, lambda s: True, 90, "a verdict for every picture")
    tab = browser.tab_id(page.url)
    reads = lambda: browser.page_state(tab)["stats"]["repaintReads"]  # noqa: E731

    def reads_during(keyframes):
        before = reads()
        page.evaluate(ANIMATE_EVERY_FRAME_JS, keyframes)
        return reads() - before

    spinner = reads_during([{"transform": "rotate(0deg)"}, {"transform": "rotate(360deg)"}])
    custom = reads_during([{"--spin": "0"}, {"--spin": "1"}])
    print(f"reads over 60 frames: spinner {spinner}, custom property {custom}")
    assert custom > 1000, custom  # hundreds of near pictures, read in most of the 60 frames
    assert spinner < custom / 4, (spinner, custom)
    page.close()
