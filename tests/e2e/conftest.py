"""Fixtures for the extension's end-to-end tests: a head trained here on synthetic memes, the real
`simclip-server` as a subprocess, the feed fixture site, and Debian's Chromium with the unpacked
extension loaded (Playwright, persistent context, headless), paired through the options page.

Every wait is bounded. Screenshots and logs go to test-artifacts/e2e/ (gitignored).
"""

import io
import json
import os
import random
import signal
from pathlib import Path

import pytest
import requests

from e2e_support import REPO, ExtensionBrowser, launch_with_extension, pair_through_options_page
from feed_site import EMBED_HOST, FEED_HOST, PUBLIC_HOST, FeedSite
from server_support import ServerProcess
from tiny import TINY

ARTIFACTS = REPO / "test-artifacts" / "e2e"
CHROMIUM = os.environ.get("SIMCLIP_E2E_CHROMIUM", "/usr/bin/chromium")
N_HARMFUL, N_NEUTRAL = 8, 16  # unique memes (every third is harmful); the feed repeats them under distinct URLs
SERVER_START_TIMEOUT_S = 120


def pytest_collection_modifyitems(items):
    """Every test in this folder is an e2e test."""
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def artifacts_dir():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def playwright_driver():
    """The session's one Playwright driver: its sync API allows one per thread, and the feed's
    browser (session-scoped) is still open when the setup test starts its own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium_path():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install the Debian 'chromium' package "
                    "or set SIMCLIP_E2E_CHROMIUM")
    return CHROMIUM


@pytest.fixture(scope="session")
def synthetic_memes():
    """(png_bytes, truth) for N_HARMFUL abusive-caption and N_NEUTRAL neutral-caption memes."""
    from simclip_train.synthetic import make_caption, render_meme

    rng = random.Random(5)
    memes = []
    for k in range(N_HARMFUL + N_NEUTRAL):
        harmful = k % 3 == 0  # every third meme, so each feed row mixes both
        img = render_meme(make_caption(rng, harmful), background_seed=7000 + k, size=(480, 360))
        buf = io.BytesIO()
        img.save(buf, "PNG", optimize=True)
        memes.append((buf.getvalue(), "harmful" if harmful else "neutral"))
    return memes


@pytest.fixture(scope="session")
def ocr_engine():
    """The OCR engine both the head training and the server use (their texts must agree)."""
    from simclip import get_ocr_engine

    return get_ocr_engine("auto").name


@pytest.fixture(scope="session")
def head_checkpoint(tmp_path_factory, synthetic_memes, ocr_engine):
    """A SimCLIP head on the tiny backbone that flags the abusive memes as 'harmful'.

    `simclip train` learns it from the feed's own memes, written as a Harm-C dataset and read
    through the same OCR engine as the server, so the verdicts in the browser are known.
    """
    from simclip_train import train

    data_dir = tmp_path_factory.mktemp("synthetic-data")
    root = data_dir / "harmeme-c"
    (root / "images").mkdir(parents=True)
    rows = []
    for k, (png, truth) in enumerate(synthetic_memes):
        (root / "images" / f"meme_{k:02d}.png").write_bytes(png)
        labels = ["very harmful", "individual"] if truth == "harmful" else ["not harmful"]
        rows.append(json.dumps({"id": f"meme_{k:02d}", "image": f"meme_{k:02d}.png", "labels": labels, "text": ""}))
    for split in ("train", "val"):  # the threshold is tuned on val: the same memes
        (root / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    out = data_dir / "e2e-head.safetensors"
    rc = train.main(["--dataset", "harmeme-c", "--data-dir", str(data_dir), "--cache-dir", str(data_dir / "cache"),
                     "--text", "ocr", "--ocr", ocr_engine, *TINY, "--out", str(out),
                     "--epochs", "60", "--patience", "60", "--lr", "3e-3", "--proj-dim", "64", "--hidden-dim", "128", "--depth", "1", "--dropout", "0"])
    assert rc == 0 and out.is_file(), "simclip train failed"
    return out


@pytest.fixture(scope="session")
def simclip_server(tmp_path_factory, head_checkpoint, ocr_engine, artifacts_dir, synthetic_memes):
    # Below the browser's priority: the feed test measures the content script's main-thread
    # tasks, and on a 2-core machine the server's OCR threads would otherwise preempt the page.
    # SIGTERM ends it at once, without draining its queue: the tests that stop it see it gone at once.
    # The feed's labels are the head's category; on the tiny random backbone the zero-shot
    # fallback categories (on by default) would only add noise to the counts.
    # The head reads the memes' text: on a loaded 2-core machine OCR can overrun the default 3 s
    # budget, and a meme judged on its image alone may come back clean. The budget is the
    # server's own concern (tests/test_server_*); here the verdicts must be the head's.
    server = ServerProcess(tmp_path_factory.mktemp("server-home"), checkpoint=head_checkpoint, ocr=ocr_engine,
                           nice=10, log_path=artifacts_dir / "server.log", stop_signal=signal.SIGTERM,
                           args=("--no-zero-shot-fallback", "--ocr-budget", "60"))
    server.start(timeout=SERVER_START_TIMEOUT_S)
    wrong = []
    for k, (png, truth) in enumerate(synthetic_memes):
        r = requests.post(f"{server.url}/v1/classify", data=png, timeout=60,
                          headers={"X-Auth-Token": server.token, "Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        flagged = any(w["id"] == "harmful" for w in r.json()["warnings"])
        if flagged != (truth == "harmful"):
            wrong.append((k, truth, r.json()["scores"], r.json()["text"]))
    if wrong:
        server.stop()
        pytest.fail(f"the trained head gets these memes wrong on the server, the browser tests would be moot: {wrong}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def feed_site(synthetic_memes):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (120, 90, 200)).save(buf, "PNG")
    site = FeedSite(synthetic_memes, buf.getvalue()).start()
    yield site
    site.stop()


class Browser(ExtensionBrowser):
    """A Chromium persistent context with the extension, and helpers that talk to it."""

    def __init__(self, context, worker, artifacts):
        super().__init__(context, worker)
        self.artifacts = artifacts

    def tab_id(self, url_pattern):
        return self.sw_eval("async (p) => (await chrome.tabs.query({url: p}))[0]?.id ?? null", url_pattern)

    def page_state(self, tab_id):
        return self.sw_eval("(id) => chrome.tabs.sendMessage(id, {type: 'simclip/get-page-state'}, {frameId: 0})", tab_id)


@pytest.fixture(scope="session")
def browser(tmp_path_factory, playwright_driver, chromium_path, feed_site, simclip_server,
            artifacts_dir):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with launch_with_extension(playwright_driver, profile, chromium_path, (FEED_HOST, EMBED_HOST, PUBLIC_HOST),
                               {"width": 1200, "height": 1600}) as (context, worker):
        try:
            b = Browser(context, worker, artifacts_dir)
            pair_through_options_page(b, simclip_server)
            yield b
        finally:
            for i, pg in enumerate(context.pages):
                if not pg.is_closed() and not pg.url.startswith("about:"):
                    pg.screenshot(path=str(artifacts_dir / f"final-page-{i}.png"))


@pytest.fixture(scope="session")
def stream_site(feed_site):
    """stream_pages.py's streamed page, its pictures from the feed site."""
    from stream_pages import StreamSite

    site = StreamSite(feed_site).start()
    yield site
    site.stop()
