"""The CLIP weights download (`simclip.backbone.download_weights`), against a local stand-in for
the Hugging Face hub: progress with the file's total, a cut or a stall resumed with a Range
request, a corrupted body refused, the disk checked first, the weights loaded equal to the ones
served, a second load offline; and the real server showing the download in /v1/health."""

import collections
import hashlib
import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

import open_clip
import pytest
import requests
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from safetensors.torch import save_file

from server_support import REPO, get_free_port, stop_process
from simclip import load_backbone
from simclip.backbone import HF_SAFE_WEIGHTS_NAME, download_weights
from simclip.errors import BackboneUnavailableError, InsufficientDiskError, WeightsDownloadError

REPO_ID = "simclip-test/tiny-weights"
TAG = "test_hub"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FAST = {"stall_s": 1.0, "backoff_s": 0.05}  # the test's retry timings


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """(bytes, state_dict): simclip-tiny's seeded weights as open_clip_model.safetensors."""
    torch.manual_seed(11)
    state = {k: v.contiguous() for k, v in open_clip.create_model("simclip-tiny").state_dict().items()}
    path = tmp_path_factory.mktemp("weights") / HF_SAFE_WEIGHTS_NAME
    save_file(state, str(path))
    return path.read_bytes(), state


class Hub:
    """A thread serving one repo as the hub does: HEAD and GET /{repo}/resolve/{rev}/{file} with
    X-Repo-Commit, the LFS headers (X-Linked-Etag = the sha256, X-Linked-Size) and Range. The
    first GET misbehaves as `fault` says: "cut" (closes after `fault_at` bytes), "stall" (stops
    sending after `fault_at` bytes, socket open), "busy" (answers 503), "corrupt" (other bytes,
    same length, every GET), "slow" (every GET throttled)."""

    def __init__(self, body):
        self.body = body
        self.sha256 = hashlib.sha256(body).hexdigest()
        self.fault, self.fault_at = None, len(body) // 2
        self.requests = []  # (method, path, Range header)
        self.release = threading.Event()  # ends a stall
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(head=True)

            def do_GET(self):
                self._answer(head=False)

            def _answer(self, head):
                rng = self.headers.get("Range")
                hub.requests.append((self.command, self.path, rng))
                if self.path != f"/{REPO_ID}/resolve/main/{HF_SAFE_WEIGHTS_NAME}":
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not head and hub.fault == "busy":  # one 503, as an overloaded hub answers
                    hub.fault = None
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, start = hub.body, 0
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                self.send_response(206 if rng else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hub.sha256}"')
                self.send_header("X-Linked-Etag", f'"{hub.sha256}"')
                self.send_header("X-Linked-Size", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body) - start))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if head:
                    return
                fault = hub.fault
                if fault in ("cut", "stall"):
                    hub.fault = None  # only the first GET misbehaves
                if fault == "corrupt":
                    body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
                if fault == "slow":
                    for i in range(start, len(body), 256 * 1024):
                        self.wfile.write(body[i:i + 256 * 1024])
                        self.wfile.flush()
                        time.sleep(0.15)
                    return
                if fault in ("cut", "stall"):
                    self.wfile.write(body[start:hub.fault_at])
                    self.wfile.flush()
                    if fault == "stall":
                        hub.release.wait(30)
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def gets(self):
        """The GETs of the weights file (huggingface_hub asks its API for other things)."""
        return [r for r in self.requests if r[0] == "GET" and "/resolve/" in r[1]]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _register_tag(monkeypatch):
    """simclip-tiny gets a pretrained tag on the stand-in hub, as open_clip's registry has them."""
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "simclip-tiny",
                        {TAG: open_clip.pretrained._pcfg(hf_hub=f"{REPO_ID}/")})


@pytest.fixture
def hub(weights_file, monkeypatch):
    """The stand-in hub, online: HF_ENDPOINT points at it (huggingface_hub reads it at import,
    hence its constants too); HF_HUB_OFFLINE is unset in this test only."""
    server = Hub(weights_file[0])
    _register_tag(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(hub_constants, "ENDPOINT", server.url)
    monkeypatch.setattr(hub_constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    yield server
    server.close()


def _cached(cache):
    return try_to_load_from_cache(REPO_ID, HF_SAFE_WEIGHTS_NAME, cache_dir=str(cache))


def test_progress_reports_the_bytes_done_of_the_files_total(hub, tmp_path):
    calls = []
    path = download_weights("simclip-tiny", TAG, tmp_path / "hub",
                            progress=lambda done, total: calls.append((done, total)))
    size = len(hub.body)
    assert Path(path).read_bytes() == hub.body and path == _cached(tmp_path / "hub")
    assert {total for _, total in calls} == {size}
    dones = [done for done, _ in calls]
    assert dones == sorted(dones) and dones[0] == 0 and dones[-1] == size
    assert len({d for d in dones if 0 < d < size}) >= 5  # about one report a MiB of 13 MiB
    assert len(hub.gets()) == 1 and hub.gets()[0][2] is None


def test_a_cut_download_resumes_with_a_range_request(hub, tmp_path):
    hub.fault = "cut"
    calls = []
    path = download_weights("simclip-tiny", TAG, tmp_path / "hub", **FAST,
                            progress=lambda done, total: calls.append(done))
    assert [r[2] for r in hub.gets()] == [None, f"bytes={hub.fault_at}-"]
    assert Path(path).read_bytes() == hub.body
    assert calls == sorted(calls)  # the resumed bytes are not counted twice


def test_a_stalled_download_is_detected_from_the_byte_count_and_resumed(hub, tmp_path):
    hub.fault = "stall"
    t0 = time.monotonic()
    path = download_weights("simclip-tiny", TAG, tmp_path / "hub", **FAST)
    assert time.monotonic() - t0 >= FAST["stall_s"]  # given up only after stall_s with no byte
    assert [r[2] for r in hub.gets()] == [None, f"bytes={hub.fault_at}-"]
    assert Path(path).read_bytes() == hub.body


def test_a_server_error_is_retried_after_a_backoff(hub, tmp_path):
    hub.fault = "busy"
    path = download_weights("simclip-tiny", TAG, tmp_path / "hub", **FAST)
    assert [r[2] for r in hub.gets()] == [None, None]
    assert Path(path).read_bytes() == hub.body


def test_a_download_cut_by_a_restart_continues_from_its_partial_file(hub, tmp_path):
    cache = tmp_path / "hub"
    part = cache / f"models--{REPO_ID.replace('/', '--')}" / "blobs" / f"{hub.sha256}.incomplete"
    part.parent.mkdir(parents=True)
    part.write_bytes(hub.body[:1_000_000])  # what a killed process left
    path = download_weights("simclip-tiny", TAG, cache)
    assert [r[2] for r in hub.gets()] == ["bytes=1000000-"]
    assert Path(path).read_bytes() == hub.body and not part.exists()


def test_a_corrupted_body_is_refused_and_not_cached(hub, tmp_path):
    hub.fault = "corrupt"
    cache = tmp_path / "hub"
    with pytest.raises(WeightsDownloadError, match=f"sha256 .*expected {hub.sha256}") as e:
        download_weights("simclip-tiny", TAG, cache, **FAST)
    assert e.value.code == "weights_download_failed"
    assert _cached(cache) is None
    blobs = cache / f"models--{REPO_ID.replace('/', '--')}" / "blobs"
    assert list(blobs.iterdir()) == []  # neither the blob nor a partial file
    hub.fault = None  # the next try fetches it anew
    assert Path(download_weights("simclip-tiny", TAG, cache)).read_bytes() == hub.body


def test_not_enough_disk_space_is_a_typed_error_before_any_byte(hub, tmp_path, monkeypatch):
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5000, 5000))
    cache = tmp_path / "hub"
    with pytest.raises(InsufficientDiskError) as e:
        download_weights("simclip-tiny", TAG, cache)
    assert e.value.code == "insufficient_disk" and e.value.free == 5000
    assert e.value.needed >= len(hub.body) and str(cache) in str(e.value)
    assert str(e.value.needed) in str(e.value)
    assert hub.gets() == []  # refused before the first byte


def test_the_loaded_backbone_has_the_served_weights_and_loads_offline_the_second_time(
        hub, weights_file, tmp_path, monkeypatch):
    cache = str(tmp_path / "hub")
    bb = load_backbone("simclip-tiny", TAG, device="cpu", precision="fp32", cache_dir=cache)
    assert bb.info.id == f"simclip-tiny/{TAG}" and not bb.info.random_weights
    loaded = bb.model.state_dict()
    for name, tensor in weights_file[1].items():
        assert torch.equal(loaded[name], tensor), name
    assert len(hub.gets()) == 1

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    seen = len(hub.requests)
    again = load_backbone("simclip-tiny", TAG, device="cpu", precision="fp32", cache_dir=cache)
    assert len(hub.requests) == seen  # nothing asked of the hub
    assert torch.equal(again.model.state_dict()["text_projection"], loaded["text_projection"])


def test_not_cached_while_offline_says_what_to_do(weights_file, tmp_path, monkeypatch):
    _register_tag(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailableError, match="HF_HUB_OFFLINE.*--pretrained PATH"):
        download_weights("simclip-tiny", TAG, tmp_path / "hub")


def test_the_server_shows_the_weights_download_in_health_then_serves(hub, tmp_path):
    """`simclip-server --pretrained <tag>` against a slow hub: /v1/health says loading, stage
    weights, the file's total and a growing byte count, then ready."""
    hub.fault = "slow"
    port = get_free_port()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url, "PATH": "/usr/bin:/bin",
           "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    token = subprocess.run([sys.executable, "-m", "backend.serve", "--print-token"], env=env,
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    # the server, with the test's tag in open_clip's registry (a real tag would be there)
    code = ("import sys, open_clip; open_clip.pretrained._PRETRAINED['simclip-tiny'] = "
            f"{{'{TAG}': open_clip.pretrained._pcfg(hf_hub='{REPO_ID}/')}}; "
            "from backend.serve import main; sys.exit(main(sys.argv[1:]))")
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-c", code, "--model", "simclip-tiny",
                             "--pretrained", TAG, "--device", "cpu", "--ocr", "none",
                             "--port", str(port), "--cache-dir", str(tmp_path / "results")],
                            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    seen, body = [], None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                body = requests.get(f"http://127.0.0.1:{port}/v1/health",
                                    headers={"X-Auth-Token": token}, timeout=2).json()
            except requests.ConnectionError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.05)
                continue
            if body["state"] != "loading":
                break
            if body["loading"]["stage"] == "weights":
                seen.append(body["loading"])
            time.sleep(0.05)
        assert body is not None and body["state"] == "ready", \
            (body, (tmp_path / "server.log").read_text()[-3000:])
        assert body["model"] == f"simclip-tiny/{TAG}" and body["random_weights"] is False
        size = len(hub.body)
        assert seen and all(s["total"] == size and s["unit"] == "bytes" for s in seen), seen
        dones = [s["done"] for s in seen]
        assert dones == sorted(dones) and len({d for d in dones if 0 < d < size}) >= 3, dones
    finally:
        stop_process(proc)
        log.close()
