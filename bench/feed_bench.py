"""The extension's cost on an endless feed: an X-like virtualized timeline (bench/timeline_site.py)
scrolled in headless Chromium without and with the extension, in one run, and the ratios.

    python bench/feed_bench.py                  # 5,000 posts
    python bench/feed_bench.py --posts 1000     # a shorter run

A third of the posts are flagged (1 to 4 categories); every meme has bytes of its own, so no
cache helps. The server is simclip-server's app with a classifier that reads the verdict from
a marker in the pixels (MarkerClassifier): it costs almost nothing, so what is measured is the
browser's side. The page scrolls itself at --speed posts a second (requestAnimationFrame,
scrollTo) to the end; then, for each build:

- long-task time: the sum of PerformanceObserver "longtask" durations in the page (the content
  script runs on the page's main thread);
- dropped frames: animation frames missed while scrolling, in % of the frames the display
  would have drawn (60 Hz);
- worker RSS: the resident memory of the extension's process (Chromium runs the service worker
  in it; /proc, Linux), when idle before the feed, at its highest while scrolling, and at the end.
  Playwright inspects a service worker's network by default (CDP Network.enable on the worker),
  and DevTools then keeps the bodies of the worker's fetches (every picture) in that same
  process: the bench switches it off (PLAYWRIGHT_DISABLE_SERVICE_WORKER_NETWORK), as a user's
  browser has no inspector attached; --inspect-worker-network measures with it;
- removed posts released: the timeline keeps a WeakRef to each post it removes; one second after
  the last removal and a forced garbage collection (CDP HeapProfiler.collectGarbage), how many
  removed posts are still alive (nothing should hold them), and the document's DOM node count
  (CDP Memory.getDOMCounters);
- card rules: the rules of the extension's stylesheet that draw a card (one per distinct card).

Targets (issue 17): long-task time within 1.3x of without, dropped frames within 2 points,
worker RSS within 100 MiB of idle, removed posts released within 1 s. Not a test: the numbers
depend on the machine; docs/bench.md records runs. Linux only (/proc).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.timeline_site import HOST, POST_HEIGHT, MarkerServer, TimelineSite  # noqa: E402

EXTENSION = REPO / "extension"

# Main world, from document start: long tasks and animation frames.
METRICS_JS = r"""
window.__bench = { longTasks: 0, longTaskCount: 0, frames: 0, start: null, end: null };
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { __bench.longTasks += e.duration; __bench.longTaskCount += 1; }
  }).observe({ type: 'longtask', buffered: true });
} catch (e) {}
"""

# Scroll to the end at `pxPerMs`, one step per animation frame; then window.__scrolled holds the
# frame count, the time and the long tasks meanwhile.
SCROLL_JS = r"""
(pxPerMs) => {
  window.__scrolled = null;
  const end = document.documentElement.scrollHeight - innerHeight;
  const t0 = performance.now();
  let frames = 0;
  __bench.longTasks = 0; __bench.longTaskCount = 0;
  const step = (t) => {
    frames += 1;
    const y = Math.min(end, (t - t0) * pxPerMs);
    scrollTo(0, y);
    if (y < end) { requestAnimationFrame(step); return; }
    const { longTasks, longTaskCount } = __bench;
    __scrolled = { frames, ms: performance.now() - t0, longTasks, longTaskCount };
  };
  requestAnimationFrame(step);
}
"""

# Removed posts still alive, among those removed over `ageMs` ago.
ALIVE_JS = r"""
(ageMs) => {
  const now = performance.now();
  const old = __timeline.removed.filter((r) => now - r.t >= ageMs);
  return { removed: old.length, alive: old.filter((r) => r.ref.deref() !== undefined).length,
           inDocument: document.querySelectorAll('article').length };
}
"""

# The rules that draw a card, in the stylesheets the document adopted (the page can read them).
CARD_RULES_JS = r"""
() => {
  let n = 0;
  for (const sheet of document.adoptedStyleSheets) {
    for (const rule of sheet.cssRules) if (rule.cssText.includes('--simclip-card')) n += 1;
  }
  return n;
}
"""


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--posts", type=int, default=5000, help="posts in the timeline")
    p.add_argument("--speed", type=float, default=8.0, help="posts scrolled past a second")
    p.add_argument("--chromium", default=os.environ.get("SIMCLIP_E2E_CHROMIUM", "/usr/bin/chromium"))
    p.add_argument("--extension", default=str(EXTENSION), help="the unpacked extension to measure")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--inspect-worker-network", action="store_true",
                   help="leave Playwright's network inspection of the service worker on (it holds fetched bodies)")
    return p.parse_args(argv)


def list_descendants(pid):
    """Every process under `pid` (/proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def find_browser_pid(profile):
    """The Chromium browser process using `profile` (its --user-data-dir)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(b"--user-data-dir=") and a.endswith(str(profile).encode()) for a in cmd) \
                and not any(a.startswith(b"--type=") for a in cmd):
            return int(entry.name)
    return None


def extension_process_rss_mib(browser_pid):
    """The resident memory (MiB) of the browser's extension process (it runs the service worker)."""
    total = 0
    for pid in list_descendants(browser_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"--extension-process" not in cmd:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024 if total else None


def launch(driver, profile, chromium, extension):
    """Headless Chromium, with the unpacked `extension` or none."""
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--host-resolver-rules=MAP {HOST} 127.0.0.1"]
    if extension:
        args += [f"--disable-extensions-except={extension}", f"--load-extension={extension}"]
    context = driver.chromium.launch_persistent_context(
        str(profile), headless=True, executable_path=chromium, args=args,
        viewport={"width": 1200, "height": 1000}, timeout=60_000)
    context.set_default_timeout(30_000)
    return context


def pair(context, server):
    """Pair the extension with `server` as a user does (options page), and wait for a healthy worker."""
    workers = context.service_workers
    worker = workers[0] if workers else context.wait_for_event("serviceworker", timeout=30_000)
    ext_id = worker.url.split("/")[2]
    deadline = time.monotonic() + 30
    while not worker.evaluate("async () => Boolean((await chrome.storage.local.get('health')).health)"):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker's first health probe did not come")
        time.sleep(0.2)
    page = context.new_page()
    page.goto(f"chrome-extension://{ext_id}/options/options.html")
    page.wait_for_selector("body[data-ready='true']")
    page.fill("#server-url", server.url)
    page.fill("#token", server.token)
    page.click("#save-test")
    page.locator("#connection-status").filter(has_text="Connected").wait_for(timeout=30_000)
    page.close()
    for other in context.pages:  # the options page the extension opened on install
        if other.url.startswith("chrome-extension://"):
            other.close()
    return worker


def run_once(driver, site, server, args, with_extension):
    """Scroll the timeline once; the measurements of this build."""
    with tempfile.TemporaryDirectory(prefix="feed-bench-profile-") as profile:
        context = launch(driver, profile, args.chromium, args.extension if with_extension else None)
        try:
            browser_pid = find_browser_pid(profile)
            if with_extension:
                pair(context, server)
            page = context.pages[0] if context.pages else context.new_page()
            idle_rss = None
            if with_extension:
                page.goto("about:blank")
                time.sleep(3)
                idle_rss = extension_process_rss_mib(browser_pid)
            page.add_init_script(METRICS_JS)
            page.goto(site.url(args.posts, seed=f"{int(time.time())}-{int(with_extension)}"))
            page.wait_for_function("document.querySelectorAll('article').length > 0")
            page.wait_for_timeout(1500)
            cdp = context.new_cdp_session(page)
            peak = [idle_rss or 0]
            px_per_ms = args.speed * POST_HEIGHT / 1000
            page.evaluate(SCROLL_JS, px_per_ms)
            expected_s = args.posts / args.speed
            t0 = time.monotonic()
            result = None
            while result is None:
                if time.monotonic() - t0 > 2 * expected_s + 120:
                    raise RuntimeError("the scroll did not reach the end")
                if with_extension:
                    peak[0] = max(peak[0], extension_process_rss_mib(browser_pid) or 0)
                time.sleep(2)
                result = page.evaluate("window.__scrolled")
            page.wait_for_timeout(1000)  # the last post removed at least a second ago
            cdp.send("HeapProfiler.enable")
            cdp.send("HeapProfiler.collectGarbage")
            alive = page.evaluate(ALIVE_JS, 1000)
            nodes = cdp.send("Memory.getDOMCounters")["nodes"]
            cards = page.evaluate(CARD_RULES_JS)
            end_rss = extension_process_rss_mib(browser_pid) if with_extension else None
            expected_frames = result["ms"] / (1000 / 60)
            return {
                "extension": with_extension,
                "scroll_s": round(result["ms"] / 1000, 1),
                "long_task_ms": round(result["longTasks"]),
                "long_tasks": result["longTaskCount"],
                "dropped_frames_pct": round(max(0.0, 100 * (1 - result["frames"] / expected_frames)), 2),
                "removed_posts": alive["removed"], "removed_posts_alive_after_1s": alive["alive"],
                "posts_in_document": alive["inDocument"], "dom_nodes_after_gc": nodes,
                "card_rules": cards,
                "meme_requests": site.meme_requests,
                "worker_rss_mib": {"idle": idle_rss, "peak": peak[0] or None, "end": end_rss},
            }
        finally:
            context.close()


def main(argv=None):
    """Run both builds and print the table and the ratios."""
    args = parse_args(argv)
    if not args.inspect_worker_network:
        os.environ["PLAYWRIGHT_DISABLE_SERVICE_WORKER_NETWORK"] = "1"  # read when the driver starts, below
    from playwright.sync_api import sync_playwright

    site = TimelineSite().start()
    with tempfile.TemporaryDirectory(prefix="feed-bench-server-") as config_dir:
        server = MarkerServer(config_dir).start()
        try:
            with sync_playwright() as driver:
                without = run_once(driver, site, server, args, with_extension=False)
                print("without:", json.dumps(without), flush=True)
                site.meme_requests = 0
                with_ext = run_once(driver, site, server, args, with_extension=True)
                print("with:   ", json.dumps(with_ext), flush=True)
        finally:
            server.stop()
            site.stop()
    rss = with_ext["worker_rss_mib"]
    ratios = {
        "posts": args.posts, "speed_posts_per_s": args.speed,
        "long_task_ratio": round(with_ext["long_task_ms"] / max(without["long_task_ms"], 1), 2),
        "dropped_frames_points": round(with_ext["dropped_frames_pct"] - without["dropped_frames_pct"], 2),
        "worker_rss_growth_mib": round(max(rss["peak"] or 0, rss["end"] or 0) - rss["idle"], 1)
        if rss["idle"] else None,
        "removed_posts_alive_after_1s": with_ext["removed_posts_alive_after_1s"],
        "dom_nodes_with_minus_without": with_ext["dom_nodes_after_gc"] - without["dom_nodes_after_gc"],
        "card_rules": with_ext["card_rules"],
    }
    print("ratios: ", json.dumps(ratios), flush=True)
    print("| posts | long tasks without / with (ms) | ratio | dropped frames without / with "
          "| worker RSS idle / peak / end (MiB) | removed posts alive after 1 s | card rules |")
    print(f"| {args.posts} | {without['long_task_ms']} / {with_ext['long_task_ms']} | {ratios['long_task_ratio']} "
          f"| {without['dropped_frames_pct']}% / {with_ext['dropped_frames_pct']}% "
          f"| {rss['idle']:.0f} / {rss['peak']:.0f} / {rss['end']:.0f} "
          f"| {with_ext['removed_posts_alive_after_1s']} of {with_ext['removed_posts']} | {with_ext['card_rules']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"without": without, "with": with_ext, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
