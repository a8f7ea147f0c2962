"""Setup through the HTTP API, as the extension's "Set up protection" runs it: the real server
(tiny backbone) fetches a local mirror of real Harm-C memes, embeds, trains, calibrates,
validates and swaps the head in without a restart; cancel, a kill mid-embed and the restart
that resumes it; the hot swap with a request in flight; download stall detection."""

import http.server
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests
from http_fakes import serve_loopback
from test_download import serving

from backend.cache import ResultCache
from backend.pipeline import Pipeline
from server_support import ServerProcess, StubClassifier
from shared_data import get_shared_data
from simclip import read_metadata
from simclip_train import download
from simclip_train.setup import STAGES, format_report

N_TRAIN, N_VAL, N_TEST = 160, 80, 10  # a few hundred real memes: about 30 s of setup on 2 CPUs


def make_harmeme_mirror(root):
    """A Harm-C-shaped mirror (annotations/ + images/) of the real memes in ../shared/data."""
    train_dir = get_shared_data("harmeme-c-train-400", "train400.jsonl")
    val_dir = get_shared_data("harmeme-c-val", "val.jsonl")
    train = (train_dir / "train400.jsonl").read_text().splitlines()[:N_TRAIN]
    val = (val_dir / "val.jsonl").read_text().splitlines()
    splits = {"train": (train, train_dir), "val": (val[:N_VAL], val_dir),
              "test": (val[N_VAL:N_VAL + N_TEST], val_dir)}
    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    for split, (rows, src) in splits.items():
        (root / "annotations" / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
        for line in rows:
            name = json.loads(line)["image"]
            if not (root / "images" / name).exists():
                os.symlink(src / "images" / name, root / "images" / name)
    return root


@pytest.fixture(scope="module")
def harmeme_mirror(tmp_path_factory):
    """The mirror over HTTP with Range support: its base URL."""
    root = make_harmeme_mirror(tmp_path_factory.mktemp("harmeme-mirror"))
    with serving(root) as url:
        yield url


def _server(tmp_path, mirror_url, port=None):
    return ServerProcess(tmp_path, port=port, env={"SIMCLIP_DATASETS_BASE_URL": mirror_url,
                                                   "SIMCLIP_SETUP_SHARD_SIZE": "32"})


_session = threading.local()


def _http():
    """One keep-alive session per thread (a new connection per poll would fill the server's
    connection limit)."""
    if not hasattr(_session, "s"):
        _session.s = requests.Session()
    return _session.s


def _get(server, path="/v1/setup"):
    r = _http().get(server.url + path, headers=server.headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _wait(server, predicate, timeout=240, seen=None):
    """Poll GET /v1/setup until predicate(body); every body goes to `seen`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = _get(server)
        if seen is not None:
            seen.append(body)
        if predicate(body):
            return body
        time.sleep(0.1)
    pytest.fail(f"setup did not get there in {timeout} s: {body}")


def _png(seed):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (seed % 256, (seed * 7) % 256, 90)).save(buf, "PNG")
    return buf.getvalue()


def _classify(server, data):
    return _http().post(server.url + "/v1/classify", data=data, timeout=60,
                         headers={**server.headers, "Content-Type": "image/png"})


def test_setup_through_the_api_trains_and_serves_the_new_head_without_a_restart(
        tmp_path, harmeme_mirror):
    server = _server(tmp_path, harmeme_mirror).start()
    try:
        health = _get(server, "/v1/health")
        assert health["mode"] == "zero-shot" and health["setup"] == {"state": "idle",
                                                                      "stage": None}
        pid = server.proc.pid
        r = requests.post(server.url + "/v1/setup", headers=server.headers, timeout=30)
        assert r.status_code == 202 and r.json()["state"] == "running"
        assert r.json()["stages"] == list(STAGES)
        # the plan comes with the 202, before any download: from the server's measured cost
        plan = r.json()["plan"]
        assert plan and plan["download_bytes"] > 0 and plan["estimate_s"] > 0, r.json()
        again = requests.post(server.url + "/v1/setup", headers=server.headers, timeout=30)
        assert again.status_code == 409 and again.json()["error"]["code"] == "setup_running"

        answers, stop = [], threading.Event()

        def keep_classifying():  # requests before, during and after the swap
            n = 0
            while not stop.wait(0.05):  # a browsing user's pace, not a flood
                n += 1
                answers.append(_classify(server, _png(n)))

        client = threading.Thread(target=keep_classifying)
        client.start()
        seen = []
        try:
            final = _wait(server, lambda b: b["state"] != "running", seen=seen)
        finally:
            stop.set()
            client.join(timeout=60)

        assert final["state"] == "done", final
        assert server.proc.pid == pid and server.proc.poll() is None  # no restart
        # progress moves forward: stages in order, done never goes back within a stage
        order = [(STAGES.index(b["stage"]), b["done"]) for b in seen if b["stage"]]
        assert order == sorted(order), order
        assert {STAGES[i] for i, _ in order} >= {"embed", "train", "validate"}
        embed = [b for b in seen if b["stage"] == "embed"]
        assert embed[-1]["unit"] == "memes" and embed[-1]["total"] == N_TRAIN + 2 * N_VAL
        assert any(b["eta_s"] is not None for b in embed)
        plan = final["plan"]
        assert plan["recipe"]["name"] == "cpu" and plan["recipe"]["augment"] == 0
        assert plan["device"] == "cpu" and plan["estimate_s"] > 0 and plan["store_bytes"] > 0
        harmful = final["summary"]["categories"][0]
        assert harmful["status"] == "trained" and harmful["examples"] == N_TRAIN
        assert harmful["text"].startswith(f"Harmful: trained on {N_TRAIN} HarMeme memes, "
                                          "validation macro-F1 0.")
        misogyny = next(c for c in final["summary"]["categories"] if c["id"] == "misogynous")
        assert misogyny["status"] == "zero-shot" and "simclip datasets info mami" in misogyny["text"]
        assert "Harmful: trained on" in "\n".join(format_report(final))

        # the server now serves the new head, and every request along the way was answered
        health = _get(server, "/v1/health")
        assert health["mode"] == "trained" and health["setup"]["state"] == "done"
        assert _classify(server, _png(10_001)).json()["mode"] == "trained"
        assert answers and all(a.status_code == 200 for a in answers), \
            [a.text for a in answers if a.status_code != 200][:3]
        assert read_metadata(final["head"])["training"]["recipe"]["name"] == "cpu"
    finally:
        server.stop()


def test_cancel_then_a_server_killed_mid_embed_resumes_from_its_shards_and_serves_the_head(
        tmp_path, harmeme_mirror):
    server = _server(tmp_path, harmeme_mirror).start()
    try:
        r = requests.delete(server.url + "/v1/setup", headers=server.headers, timeout=30)
        assert r.status_code == 409 and r.json()["error"]["code"] == "setup_not_running"
        assert requests.post(server.url + "/v1/setup", headers=server.headers,
                             timeout=30).status_code == 202
        _wait(server, lambda b: b["stage"] in ("dataset", "embed"))
        r = requests.delete(server.url + "/v1/setup", headers=server.headers, timeout=60)
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert _get(server)["state"] == "cancelled"

        assert requests.post(server.url + "/v1/setup", headers=server.headers,
                             timeout=30).status_code == 202
        _wait(server, lambda b: b["stage"] == "embed" and b["done"] >= 64)
        server.proc.send_signal(signal.SIGKILL)  # the server dies mid-embed
        server.proc.wait(timeout=10)
        server.proc = None
        server.stop()

        server.start()  # same port, token and cache: the setup resumes by itself
        final = _wait(server, lambda b: b["state"] != "running")
        assert final["state"] == "done", final
        total = N_TRAIN + 2 * N_VAL
        assert final["embedded"]["reused"] >= 32  # at least one shard written before the kill
        assert final["embedded"]["computed"] < total
        assert _get(server, "/v1/health")["mode"] == "trained"
        server.stop()

        server.start()  # a finished setup's head is served at start, no --checkpoint
        assert _get(server, "/v1/health")["mode"] == "trained"
    finally:
        server.stop()


def make_mami(root, n=120):
    """A MAMI-format dataset (training.csv, TSV, and training/) of `n` real memes from
    ../shared/data; the misogynous labels are seeded by id (the task is learnable: the caption
    names the label, as a transcription would)."""
    val_dir = get_shared_data("harmeme-c-val", "val.jsonl")
    rows = [json.loads(line) for line in (val_dir / "val.jsonl").read_text().splitlines()][:n]
    (root / "training").mkdir(parents=True)
    lines = ["file_name\tmisogynous\tshaming\tstereotype\tobjectification\tviolence\t"
             "Text Transcription"]
    for i, row in enumerate(rows):
        name = f"{i + 1}.png"
        os.symlink(val_dir / "images" / row["image"], root / "training" / name)
        label = i % 2
        caption = ("women belong in the kitchen " if label else "my cat on a monday ") + \
            " ".join(row["text"].split())[:60]
        lines.append(f"{name}\t{label}\t0\t{label}\t0\t0\t{caption}")
    (root / "training.csv").write_text("\n".join(lines) + "\n")
    return root


def test_setup_trains_on_every_dataset_the_user_has_and_names_a_broken_one(
        tmp_path, harmeme_mirror):
    """MAMI in the data folder: the head gets a Misogyny warning trained on it, beside Harm-C's;
    a Hateful Memes folder with a broken file is skipped with the reason, not a failed setup."""
    data_dir = tmp_path / "xdg-cache" / "simclip" / "data"
    make_mami(data_dir / "mami")
    hateful = data_dir / "hateful-memes"
    hateful.mkdir(parents=True)
    (hateful / "train.jsonl").write_text('{"id": 1, "img": "img/1.png", "label": 1, "text": "x"}\n'
                                         '{"id": 2, "img": broken\n')
    (hateful / "dev_seen.jsonl").write_text('{"id": 3, "img": "img/3.png", "label": 0, "text": "y"}\n')
    server = _server(tmp_path, harmeme_mirror).start()
    try:
        r = requests.post(server.url + "/v1/setup", headers=server.headers, timeout=30)
        assert r.status_code == 202
        assert r.json()["datasets"] == ["harmeme-c", "mami"]
        assert set(r.json()["plan"]["datasets"]) == {"harmeme-c", "mami"}
        final = _wait(server, lambda b: b["state"] != "running")
        assert final["state"] == "done", final
        by_id = {c["id"]: c for c in final["summary"]["categories"]}
        n_mami = final["plan"]["datasets"]["mami"]["train"]
        assert 90 <= n_mami < 120  # the held-out tenth is validation
        assert by_id["misogynous"]["status"] == "trained", by_id["misogynous"]
        assert by_id["misogynous"]["text"].startswith(f"Misogyny: trained on {n_mami} MAMI memes")
        assert by_id["harmful"]["examples"] == N_TRAIN
        assert "train.jsonl" in final["summary"]["skipped"]["hateful-memes"]
        assert "cannot be read" in by_id["hateful"]["how_to_improve"]
        assert str(data_dir / "multioff") in by_id["offensive"]["how_to_improve"]
        meta = read_metadata(final["head"])
        assert {w["category"] for w in meta["warnings"]} == {"harmful", "misogynous"}
        assert [d["name"] for d in meta["training"]["datasets"]] == ["harmeme-c:binary", "mami:a"]
        categories = requests.get(server.url + "/v1/labels", headers=server.headers,
                                  timeout=30).json()
        served = {c["id"]: c for c in categories["categories"]}
        assert served["misogynous"]["source"] == "trained", served
    finally:
        server.stop()


class _BlockingPredictor(StubClassifier):
    """A stub whose encoders wait for `release` (a request caught in flight)."""

    def __init__(self, mode, identity):
        super().__init__()
        self.mode, self.identity = mode, identity
        self.entered, self.release = threading.Event(), threading.Event()

    def classify(self, images, texts):
        self.entered.set()
        assert self.release.wait(30)
        return [dict(r, mode=self.mode) for r in super().classify(images, texts)]


def test_a_swap_answers_the_request_in_flight_with_the_old_model_and_new_ones_with_the_new():
    old, new = _BlockingPredictor("zero-shot", "old"), _BlockingPredictor("trained", "new")
    new.release.set()
    pipeline = Pipeline(old, ResultCache("old"), max_wait_ms=0)
    try:
        result = {}
        inflight = threading.Thread(target=lambda: result.update(pipeline.classify(_png(1))))
        inflight.start()
        assert old.entered.wait(10)
        pipeline.swap(new, ResultCache("new"))
        after = {}
        later = [threading.Thread(target=lambda n=n: after.update({n: pipeline.classify(_png(n))}))
                 for n in (1, 2)]  # 1: the same picture as the one in flight
        for t in later:
            t.start()
        old.release.set()
        for t in (inflight, *later):
            t.join(10)
        assert result["mode"] == "zero-shot"  # answered by the model it was admitted to
        assert after[1]["mode"] == after[2]["mode"] == "trained"
        assert pipeline.cache.get(result["sha256"])["mode"] == "trained"
    finally:
        old.release.set()
        pipeline.close()


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    """Sends half the body then stops (no byte, connection open); serves a Range request."""

    body = bytes(range(256)) * 64
    ranges: list = []
    hold = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        start = int(self.headers.get("Range", "bytes=0-")[6:].split("-")[0])
        _StallingHandler.ranges.append(start)
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(self.body) - 1}/{len(self.body)}")
        self.send_header("Content-Length", str(len(self.body) - start))
        self.end_headers()
        if start == 0:
            self.wfile.write(self.body[:len(self.body) // 2])
            self.wfile.flush()
            self.hold.wait(10)  # stalled: the client must give up on its own
            return
        self.wfile.write(self.body[start:])


def test_a_stalled_download_is_detected_from_the_byte_count_and_resumed_with_range(tmp_path):
    dest = tmp_path / "file.bin"
    with serve_loopback(_StallingHandler) as url:
        try:
            t0 = time.monotonic()
            download.download(f"{url}/f", dest, stall_s=0.5, backoff_s=0.05,
                              sha256=__import__("hashlib").sha256(
                                  _StallingHandler.body).hexdigest())
            assert time.monotonic() - t0 < 8  # the stall was cut, not waited out
        finally:
            _StallingHandler.hold.set()
    assert dest.read_bytes() == _StallingHandler.body
    assert _StallingHandler.ranges == [0, len(_StallingHandler.body) // 2]


def test_a_download_whose_checksum_differs_is_deleted_and_refused(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"meme bytes")
    with serving(tmp_path / "src") as url, pytest.raises(download.DownloadError, match="sha256"):
        download.download(url + "f", tmp_path / "f", sha256="0" * 64)
    assert not (tmp_path / "f").exists()


def test_the_setup_command_without_a_server_says_how_to_start_one(tmp_path, capsys):
    from server_support import get_free_port
    from simclip_train.setup import main

    (tmp_path / "token").write_text("T" * 43)
    assert main(["--status", "--port", str(get_free_port()), "--config-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no simclip-server answers" in err and "simclip-server" in err
    assert "simclip setup --port PORT" in err  # not the default port as if it were another


def test_setup_refuses_to_start_when_the_disk_is_short(tmp_path, monkeypatch):
    from simclip_train import setup

    plan = {"store_bytes": 10 ** 9}
    monkeypatch.setattr(setup.shutil, "disk_usage", lambda p: type("U", (), {"free": 10 ** 6})())
    with pytest.raises(setup.SetupError, match="needs about 1.2 GB free") as e:
        setup.check_disk(Path(tmp_path) / "data", plan)
    assert e.value.code == "insufficient_disk"


@pytest.mark.parametrize("status", [202, 409])
def test_the_setup_command_follows_the_setup_it_started_or_found(tmp_path, monkeypatch, capsys,
                                                                 status):
    """`simclip setup` follows the setup it started (202, whose body carries "error": null) or
    one that was already running (409) to its end, and ends with the random-weights warning when
    the backbone has random weights."""
    from simclip_train import setup as setup_cli

    (tmp_path / "simclip").mkdir()
    (tmp_path / "simclip" / "token").write_text("t" * 43 + "\n")
    running = {"state": "running", "stage": "weights", "error": None, "summary": None}
    done = {**running, "state": "done", "stage": None, "backbone": "simclip-tiny/random"}
    followed = []
    monkeypatch.setattr(setup_cli, "_request", lambda method, args, token: (
        status, running if status == 202 else {"error": {"code": "setup_running", "message": ""}}))
    monkeypatch.setattr(setup_cli, "follow", lambda args, token: followed.append(token) or done)
    assert setup_cli.main(["--config-dir", str(tmp_path / "simclip")]) == 0
    assert followed == ["t" * 43]
    assert "WARNING: simclip-tiny/random has RANDOM weights" in capsys.readouterr().err


def test_a_setup_folder_that_cannot_be_written_is_a_typed_503_and_the_model_stays(
        make_app, tiny_predictor, tmp_path):
    """POST /v1/setup with a user cache that cannot be written (NotADirectoryError) is a typed
    503, never a 500, and the served model stays."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    client = make_app(CLASSIFIER=tiny_predictor, SETUP_DIR=str(blocker / "setup")).test_client()
    r = client.post("/v1/setup")
    assert r.status_code == 503, r.get_data(as_text=True)
    error = r.get_json()["error"]
    assert error["code"] == "setup_storage_unavailable" and str(blocker) in error["message"]
    assert client.get("/v1/setup").get_json()["state"] == "idle"
    assert client.get("/v1/health").get_json()["state"] == "ready"
