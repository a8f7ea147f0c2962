"""The user's path to real protection, walked through the popup (issue 15, "Done when"): a fresh
`simclip-server` (tiny backbone, zero-shot), the extension paired, then **Set up protection**
pressed in the popup. The server's setup job fetches Harm-C from a local HTTP mirror of real
memes in ../shared/data, embeds, trains, calibrates and checks, while the popup shows each stage
with its progress; at the end the popup shows the trained summary and the same server process
serves the trained head (/v1/health says trained, no restart).

Needs ../shared/data (skips without it, fails instead under SIMCLIP_REQUIRE_SHARED_DATA=1).
Every wait is bounded; the stages and progress the popup showed are written to
test-artifacts/e2e/setup-progress.json.
"""

import json
import os
import re
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler

import pytest
import requests
from http_fakes import serve_loopback

from e2e_support import (
    REPO,
    ExtensionBrowser,
    launch_with_extension,
    pair_through_options_page,
    wait_for,
    write_json,
)
from server_support import ServerProcess

SHARED_DATA = REPO.parent / "shared" / "data"
TRAIN_MEMES = int(os.environ.get("SIMCLIP_E2E_SETUP_TRAIN", "240"))  # of the 400 in harmeme-c-train-400
VAL_MEMES = int(os.environ.get("SIMCLIP_E2E_SETUP_VAL", "90"))  # of the 177 in harmeme-c-val
TEST_MEMES = 30  # the test split of the mirror: the val memes left over
SETUP_TIMEOUT_S = int(os.environ.get("SIMCLIP_E2E_SETUP_TIMEOUT", "900"))
STAGES = ["weights", "dataset", "embed", "train", "calibrate", "validate"]
STAGE_NAMES = {"weights": "Downloading the model", "dataset": "Fetching HarMeme",
               "embed": "Reading memes (embedding)", "train": "Training", "calibrate": "Calibrating",
               "validate": "Checking"}

# Runs in the popup: every render of the setup panel while the job runs, as the user saw it.
RECORD_PROGRESS_JS = """
() => {
  window.__setupSeen = [];
  const take = () => {
    const progress = document.getElementById('setup-progress');
    if (!progress || progress.hidden) return;
    const stage = document.getElementById('setup-stage');
    const bar = document.getElementById('setup-bar');
    window.__setupSeen.push({
      stage: stage.dataset.stage, name: stage.textContent,
      value: bar.hasAttribute('value') ? bar.value : null,
      amount: document.getElementById('setup-amount').textContent,
      eta: document.getElementById('setup-eta').textContent,
      step: document.getElementById('setup-step').textContent,
      stages: [...document.querySelectorAll('#setup-stages li')].map((li) => [li.dataset.stage, li.dataset.status]),
    });
  };
  new MutationObserver(take).observe(document.getElementById('setup'), {subtree: true, childList: true, characterData: true, attributes: true});
}
"""


def _shared_data_or_skip():
    if (SHARED_DATA / "harmeme-c-train-400").is_dir() and (SHARED_DATA / "harmeme-c-val").is_dir():
        return SHARED_DATA
    if os.environ.get("SIMCLIP_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(f"{SHARED_DATA} is missing, and SIMCLIP_REQUIRE_SHARED_DATA=1")
    pytest.skip(f"needs the real memes in {SHARED_DATA}")


@pytest.fixture(scope="module")
def harmeme_mirror(tmp_path_factory):
    """A local HTTP mirror laid out as Harm-C's repository: annotations/{train,val,test}.jsonl and
    images/, holding a few hundred real memes (links to ../shared/data, nothing copied)."""
    data = _shared_data_or_skip()
    root = tmp_path_factory.mktemp("harmeme-mirror")
    (root / "annotations").mkdir()
    (root / "images").mkdir()
    train = (data / "harmeme-c-train-400" / "train400.jsonl").read_text().splitlines()[:TRAIN_MEMES]
    val_all = (data / "harmeme-c-val" / "val.jsonl").read_text().splitlines()
    splits = {"train": (train, data / "harmeme-c-train-400" / "images"),
              "val": (val_all[:VAL_MEMES], data / "harmeme-c-val" / "images"),
              "test": (val_all[VAL_MEMES:VAL_MEMES + TEST_MEMES], data / "harmeme-c-val" / "images")}
    for split, (rows, images) in splits.items():
        (root / "annotations" / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
        for row in rows:
            name = json.loads(row)["image"]
            link = root / "images" / name
            if not link.exists():
                link.symlink_to(images / name)
    held = json.loads(val_all[0])["image"]  # a page whose picture's check the test holds (HELD)
    (root / "page.html").write_text(f'<!doctype html><p>before</p><img id="meme" src="held/{held}" width="400" '
                                    f'height="300" alt="a meme"><p id="after">after</p>')
    handler = partial(_QuietHandler, directory=str(root))
    with serve_loopback(handler) as url:
        yield url + "/"
        HELD["release"].set()


MEMES_HOST = "memes.test"  # mapped to 127.0.0.1 in Chromium: the worker checks no loopback picture
HELD = {"release": threading.Event(), "asks": {}}  # /held/<name>: the browser's own load is served, later ones wait


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the server's log is the test's record, not stderr
        pass

    def do_GET(self):
        """/held/<image>: the page's own load at once; the worker's fetch (the next one) waits
        for HELD["release"], so the picture stays pending as long as the test wants."""
        if self.path.startswith("/held/"):
            name = self.path.removeprefix("/held/")
            n = HELD["asks"][name] = HELD["asks"].get(name, 0) + 1
            if n > 1:
                HELD["release"].wait(timeout=60)
            self.path = f"/images/{name}"
        super().do_GET()


@pytest.fixture(scope="module")
def zero_shot_server(tmp_path_factory, harmeme_mirror, artifacts_dir):
    """A fresh simclip-server as a new user starts it: no head (zero-shot), the tiny backbone."""
    server = ServerProcess(tmp_path_factory.mktemp("setup-server-home"), ocr="none", nice=10,
                           log_path=artifacts_dir / "setup-server.log",
                           env={"SIMCLIP_DATASETS_BASE_URL": harmeme_mirror})
    server.start(timeout=120)
    wait_for(lambda: _health(server).get("state", "ready") in ("ready", "failed"), 120,
             message="the server to load its model")
    assert _health(server).get("state", "ready") == "ready", _health(server)
    yield server
    server.stop()


def _health(server):
    return requests.get(f"{server.url}/v1/health", headers=server.headers, timeout=5).json()


@pytest.fixture(scope="module")
def setup_browser(tmp_path_factory, playwright_driver, chromium_path, zero_shot_server,
                  artifacts_dir):
    profile = tmp_path_factory.mktemp("setup-chromium-profile")
    with launch_with_extension(playwright_driver, profile, chromium_path, (MEMES_HOST,),
                               {"width": 420, "height": 900}) as (context, worker):
        b = ExtensionBrowser(context, worker)
        pair_through_options_page(b, zero_shot_server)
        yield b


def test_set_up_protection_in_the_popup_trains_and_serves_the_head_without_a_restart(
        setup_browser, zero_shot_server, artifacts_dir):
    server = zero_shot_server
    pid = server.proc.pid
    before = _health(server)
    assert before["mode"] == "zero-shot", before

    popup = setup_browser.context.new_page()
    popup.goto(setup_browser.ext_url("popup/popup.html"))
    # A zero-shot server: the popup offers setup instead of a command line.
    popup.locator("#setup:not([hidden]) #setup-start", has_text="Set up protection").wait_for(timeout=20_000)
    assert "simclip calibrate" not in popup.inner_text("body")
    popup.evaluate(RECORD_PROGRESS_JS)
    started = time.monotonic()
    popup.click("#setup-start")

    try:
        # Done, failed, or a request the worker could not make (the panel's error line).
        popup.locator("#setup[data-setup-state='done'], #setup[data-setup-state='failed'], "
                      "#setup[data-setup-state='idle'] #setup-error:not([hidden])").first.wait_for(
            timeout=SETUP_TIMEOUT_S * 1000)
    finally:
        seen = popup.evaluate("window.__setupSeen")
        write_json(artifacts_dir / "setup-progress.json", seen)
        popup.screenshot(path=str(artifacts_dir / "setup-popup-end.png"))
    elapsed_s = round(time.monotonic() - started, 1)
    state = popup.get_attribute("#setup", "data-setup-state")
    assert state == "done", f"setup {state}: {popup.inner_text('#setup-error')}\n{server.log()[-3000:]}"

    # Every stage was shown in order, with its name, as current and then done.
    assert seen, "the popup never showed the job running"
    order = [s["stage"] for s in seen if s["stage"]]
    shown = list(dict.fromkeys(order))
    assert shown == [st for st in STAGES if st in shown], f"stages out of order: {shown}"
    for s in seen:
        if s["stage"]:
            assert s["name"] == STAGE_NAMES[s["stage"]], s
            assert re.fullmatch(r"Step [1-6] of 6", s["step"]), s
            current = [st for st, status in s["stages"] if status == "current"]
            assert current == [s["stage"]], s
            done = [st for st, status in s["stages"] if status == "done"]
            assert done == STAGES[:STAGES.index(s["stage"])], s
    # Reading the memes is the long stage (the popup asks every second): seen live, with its progress.
    assert "embed" in shown, f"the embedding stage was never shown live: {shown}"
    with_amount = [s for s in seen if s["stage"] in ("dataset", "embed", "train") and s["amount"]]
    assert with_amount, f"no progress amount shown for dataset, embed or train: {seen[:5]}"
    for s in with_amount:
        assert re.fullmatch(r"[\d,.]+( of [\d,.]+)?( (MB|memes|epochs|files))?", s["amount"]), s
        assert s["value"] is None or 0 <= s["value"] <= 1, s
    assert any(s["eta"].endswith("left") for s in seen), "no time left shown"

    # The end: what the user now has, per category, and the server serves it, same process.
    summary = popup.locator("#setup-summary li").all_inner_texts()
    assert any(re.match(r"Harmful: trained on [\d,]+ HarMeme memes", t) for t in summary), summary
    after = _health(server)
    assert after["mode"] == "trained", after
    assert server.proc.pid == pid and server.proc.poll() is None, "the server restarted"
    popup.locator("#server-info", has_text="trained mode").wait_for(timeout=15_000)
    write_json(artifacts_dir / "setup-result.json",
               {"stages_seen_live": shown, "renders": len(seen), "summary": summary,
                "health_after": {k: after.get(k) for k in ("mode", "model", "calibrated", "cost")},
                "setup_seconds": elapsed_s})
    popup.close()


def test_a_picture_waiting_for_its_verdict_shows_a_quiet_checking_placeholder_in_its_own_box(
        setup_browser, harmeme_mirror, artifacts_dir):
    page = setup_browser.context.new_page()
    page.goto(harmeme_mirror.replace("127.0.0.1", MEMES_HOST) + "page.html")
    page.wait_for_function("() => document.getElementById('meme').getAttribute('data-simclip') === 'pending'")
    # While the worker's fetch is held: the placeholder, named for screen readers, in the picture's own box.
    pending = page.evaluate("""() => {
        const el = document.getElementById('meme'), cs = getComputedStyle(el);
        return {box: [el.offsetWidth, el.offsetHeight, document.getElementById('after').offsetTop],
                visibility: cs.visibility, objectPosition: cs.objectPosition, animation: cs.animationName,
                background: cs.backgroundImage, label: el.getAttribute('aria-label')};
    }""")
    assert page.get_by_role("img", name="Checking picture").count() == 1, pending
    page.screenshot(path=str(artifacts_dir / "checking-placeholder.png"))
    assert pending["objectPosition"] == "-100000px -100000px", pending  # the picture is out of its box
    assert pending["visibility"] == "visible" and pending["animation"] == "simclip-checking", pending
    assert "svg" in pending["background"], pending  # the "Checking..." label
    HELD["release"].set()
    page.wait_for_function("() => ['shown', 'flagged'].includes(document.getElementById('meme').getAttribute('data-simclip'))",
                           timeout=30_000)
    after = page.evaluate("""() => {
        const el = document.getElementById('meme');
        return {box: [el.offsetWidth, el.offsetHeight, document.getElementById('after').offsetTop],
                label: el.getAttribute('aria-label'), state: el.getAttribute('data-simclip')};
    }""")
    assert after["box"] == pending["box"], (pending, after)  # no layout shift
    assert after["label"] != "Checking picture", after  # the element's own name is back (or the warning's)
    page.close()
