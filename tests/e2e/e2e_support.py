"""Helpers shared by the e2e conftest and tests (a plain module: `conftest` is not importable by name)."""

import json
import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# SIMCLIP_E2E_EXTENSION loads another copy of the extension (e.g. an older commit's, for a before/after measurement).
EXTENSION_DIR = Path(os.environ.get("SIMCLIP_E2E_EXTENSION") or REPO / "extension")

# Runs in the page (main world) from document start: records every frame in which a harmful meme
# is visible without a verdict, and the page's long tasks.
MONITOR_JS = r"""
window.__shield = { violations: {}, longTasks: [] };
try {
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__shield.longTasks.push(Math.round(e.duration)); })
    .observe({ type: 'longtask', buffered: true });
} catch (e) {}
const checkFrame = () => {
  for (const el of document.querySelectorAll('[data-truth="harmful"]')) {
    const state = el.getAttribute('data-simclip');
    if (state === 'flagged' || state === 'revealed') continue;
    const cs = getComputedStyle(el);
    if (cs.filter.includes('blur') || cs.visibility !== 'visible' || el.getClientRects().length === 0) continue;
    // a meme (not a 1 px lazy placeholder): a /m/ URL, or a data: or blob: copy of one
    const showing = el.tagName === 'IMG'
      ? el.complete && el.naturalWidth > 1 && /\/m\/|^data:image\/png|^blob:/.test(el.currentSrc || el.src)
      : /\/m\/|data:image\/png|blob:/.test(cs.backgroundImage);
    if (showing) {
      const key = el.dataset.post;
      window.__shield.violations[key] ??= { post: key, kind: el.dataset.kind, state, t: Math.round(performance.now()) };
    }
  }
  requestAnimationFrame(checkFrame);
};
requestAnimationFrame(checkFrame);
"""

MEME_STATES_JS = """
() => Array.from(document.querySelectorAll('[data-truth]'), (el) => ({
  post: el.dataset.post, truth: el.dataset.truth, kind: el.dataset.kind, state: el.getAttribute('data-simclip'),
  src: el.currentSrc ?? null, top: Math.round(el.getBoundingClientRect().top + scrollY),
  id: el.getAttribute('data-simclip-id'),
  box: el.getAttribute('data-simclip-id')
    ? document.querySelector('simclip-shield-layer')?.shadowRoot
        ?.querySelector(`.box[data-target="${el.getAttribute('data-simclip-id')}"]`)?.textContent ?? null
    : null,
}))
"""

DECIDED = {"flagged", "clean", "revealed"}


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


def write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True))


def meme_states(page):
    return page.evaluate(MEME_STATES_JS)


def summarize(states):
    """{"truth/state": count} for a list of meme states."""
    out = {}
    for s in states:
        key = f"{s['truth']}/{s['state']}"
        out[key] = out.get(key, 0) + 1
    return out


def wait_decided(page, predicate_states, timeout_s, message):
    """Wait until every meme element passing `predicate_states` has a final state."""
    last = {}

    def check():
        states = meme_states(page)
        last["s"] = states
        return all(s["state"] in DECIDED for s in states if predicate_states(s))

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
