"""Helpers shared by the e2e conftest and tests (a plain module: `conftest` is not importable by name)."""

import json
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXTENSION_DIR = REPO / "extension"

# Runs in the page (main world) from document start: records every frame in which a harmful meme
# is visible without a verdict, and the page's long tasks.
MONITOR_JS = """
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
    if (cs.filter.includes('blur') || cs.visibility !== 'visible') continue;
    const showing = el.tagName === 'IMG'
      ? el.complete && el.naturalWidth > 1 && (el.currentSrc || el.src).includes('/m/')
      : cs.backgroundImage.includes('/m/');
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
