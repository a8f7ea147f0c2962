"""The extension in Firefox: Debian's firefox-esr + the unpacked extension as a temporary add-on,
driven over WebDriver BiDi by extension/test/firefox/run_feed.mjs (puppeteer-core), against the
same real simclip-server and feed site as the Chromium tests.

It checks what differs between the browsers: the manifest installs (background scripts rather than
a service worker, the gecko id), pairing through the options page works from a moz-extension://
origin, the background fetches the images (Firefox's default extension CSP would upgrade them to
https), and the overlay flags exactly the abusive memes with nothing shown before its verdict.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from e2e_support import DECIDED, EXTENSION_DIR, MEME_STATES_JS, MONITOR_JS, write_json
from feed_site import FEED_HOST

DRIVER = EXTENSION_DIR / "test" / "firefox" / "run_feed.mjs"
FIREFOX_CANDIDATES = ("/usr/bin/firefox-esr", "/usr/bin/firefox")
N_MEMES = 12  # the first posts of the feed, all in the first screens


@pytest.fixture(scope="module")
def firefox_path():
    path = os.environ.get("SIMCLIP_E2E_FIREFOX") or next((p for p in FIREFOX_CANDIDATES if Path(p).exists()), None)
    if not path or not Path(path).exists():
        pytest.fail("Firefox not found: install the Debian 'firefox-esr' package (>= 142) or set SIMCLIP_E2E_FIREFOX")
    if not (EXTENSION_DIR / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("puppeteer-core is missing: run `npm ci` in extension/")
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH")
    return path


def run_firefox_feed(firefox, server, feed_url, artifacts, tmp_path):
    config = {
        "firefox": firefox,
        "extension": str(EXTENSION_DIR),
        "serverUrl": server.url,
        "token": server.token,
        "feedUrl": feed_url,
        "feedHost": FEED_HOST,
        "initScript": MONITOR_JS,
        "statesScript": MEME_STATES_JS.strip(),
        "decided": sorted(DECIDED),
        "memes": N_MEMES,
        "timeoutMs": 90_000,
        "revealAfterSeconds": 60,  # a slow CI machine must not reveal by the time limit
        "screenshot": str(artifacts / "firefox-feed.png"),
    }
    config_path = tmp_path / "firefox-config.json"
    config_path.write_text(json.dumps(config))
    proc = subprocess.run(["node", str(DRIVER), str(config_path)], cwd=EXTENSION_DIR, capture_output=True,
                          text=True, timeout=240)
    (artifacts / "firefox.log").write_text(proc.stderr)
    if proc.returncode != 0:
        pytest.fail(f"the Firefox driver failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_firefox_pairs_and_flags_exactly_the_abusive_memes(firefox_path, simclip_server, feed_site,
                                                           artifacts_dir, tmp_path):
    report = run_firefox_feed(firefox_path, simclip_server, f"{feed_site.url}?s=firefox", artifacts_dir, tmp_path)
    write_json(artifacts_dir / "firefox-report.json", {k: v for k, v in report.items() if k != "states"})

    assert report["browser"].startswith("firefox/"), report["browser"]
    assert report["connection"].startswith("Connected"), report["connection"]
    memes = [s for s in report["states"] if s["truth"] in ("harmful", "neutral")][:N_MEMES]
    assert len(memes) == N_MEMES
    assert report["decidedInMs"] is not None, f"not every meme was decided: {memes}"
    assert {s["truth"] for s in memes} == {"harmful", "neutral"}
    for s in memes:
        if s["truth"] == "harmful":
            assert s["state"] == "flagged" and s["box"] is not None and "Harmful" in s["box"], s
        else:
            assert s["state"] == "clean" and s["box"] is None, s
    assert report["shield"]["violations"] == {}, f"harmful memes visible before their verdict: {report['shield']}"
