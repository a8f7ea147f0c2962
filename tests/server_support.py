"""Backend test support shared by tests/conftest.py and the server tests: the test token, a stub
classifier (API tests never load CLIP), an in-process waitress server and the real server process
(used by the e2e tests too).

A plain module rather than conftest attributes: tests/ and tests/e2e/ each have a conftest.py,
and `from conftest import ...` would pick whichever was imported first.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from backend.serve import ServerThread
from tiny import TINY

REPO = Path(__file__).resolve().parents[1]
TEST_TOKEN = "T" * 43  # a well-formed pairing token, used by every backend test
TEST_PORT = 8478


class StubClassifier:
    """Stands in for simclip.Predictor: real safe decoding, fake encoders (score = mean red)."""

    mode = "zero-shot"
    calibrated = False
    device = "cpu"
    identity = "stub-identity"
    backbone = type("StubBackbone", (), {"info": type("Info", (), {"id": "stub/none",
                                                                    "precision": "fp32",
                                                                    "random_weights": False})()})()
    metadata = {}
    cost = None
    ocr = type("StubOCR", (), {"name": "none"})()

    def __init__(self):
        self.batches = []

    def list_categories(self):
        return [{"id": "harmful", "name": "Harmful", "description": "stub",
                 "default_threshold": 0.5, "calibrated": False}]

    def decode(self, data, exif_formats=None, display_rules=()):
        from simclip import decode_image

        return decode_image(data, exif_formats=exif_formats, display_rules=display_rules)

    def read_text(self, image):
        return ""

    def classify(self, images, texts):
        self.batches.append(len(images))
        out = []
        for image, text in zip(images, texts):
            score = round(sum(image.resize((8, 8)).getchannel(0).tobytes()) / (64 * 255), 6)
            warnings = [{"id": "harmful", "name": "Harmful", "score": score, "threshold": 0.5}]
            out.append({"mode": self.mode, "scores": {"harmful": score},
                        "warnings": warnings if score >= 0.5 else [], "text": text,
                        "calibrated": False, "frames": 1,
                        "timings_ms": {"encode": 0.0, "head": 0.0}})
        return out


def _loopback_client_class():
    """The Flask test client, defaulting to a loopback Host with our port and the token."""
    from flask.testing import FlaskClient

    class _Client(FlaskClient):
        def open(self, *args, **kwargs):
            kwargs.setdefault("base_url", f"http://127.0.0.1:{TEST_PORT}")
            given = kwargs.pop("headers", None) or {}
            fields = list(given.items() if hasattr(given, "items") else given)  # repeats kept
            if not any(k.lower() == "x-auth-token" for k, _ in fields):
                fields.append(("X-Auth-Token", TEST_TOKEN))
            kwargs["headers"] = [(k, v) for k, v in fields if v is not None]
            return super().open(*args, **kwargs)

    return _Client



class LiveServer(ServerThread):
    """An app served by waitress (our settings) on a free loopback port, in a thread, started."""

    def __init__(self, app, threads=8):
        super().__init__(app, "127.0.0.1", 0, threads=threads)
        self.host = f"127.0.0.1:{self.port}"
        self.headers = {"X-Auth-Token": TEST_TOKEN}
        self.start()


def stop_process(proc, sig=signal.SIGINT, timeout=15):
    """Ask a server process to stop with `sig`, kill it if it does not within `timeout` s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def get_free_port():
    """A free loopback TCP port (free when asked; good enough for tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """The real `simclip-server` (tiny backbone, CPU) in a subprocess on a loopback port, with its
    own config and cache dirs under `root`; `start()` waits until it answers /v1/health, and it can
    be stopped and started again on the same port, token and result cache.

    Args:
        root: a folder for its config (token), caches and, by default, its log.
        checkpoint: a trained head; None serves zero-shot.
        ocr: the OCR engine ("none" keeps the backend tests fast).
        port: None picks a free one.
        nice: added to the process's niceness, to keep it below a browser under test.
        log_path: where stdout and stderr go (appended across restarts).
        env: extra environment variables.
        args: more simclip-server options.
        stop_signal: SIGINT stops it as Ctrl-C does; SIGTERM ends it at once, like a crash.
    """

    def __init__(self, root, *, checkpoint=None, ocr="none", port=None, nice=0, log_path=None,
                 env=None, args=(), stop_signal=signal.SIGINT):
        root = Path(root)
        self.port = port or get_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_dir = root / "config" / "simclip"
        self.cache_dir = root / "cache"
        self.log_path = Path(log_path or root / "server.log")
        self.nice = nice
        self.stop_signal = stop_signal
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(root / "config"),
                    "XDG_CACHE_HOME": str(root / "xdg-cache"), "HF_HUB_OFFLINE": "1", **(env or {})}
        command = [sys.executable, "-m", "backend.serve"]  # this checkout's code, from the repo
        self.argv = [*command, *TINY, "--ocr", ocr, "--port", str(self.port),
                     "--cache-dir", str(self.cache_dir), *args]
        if checkpoint is not None:
            self.argv += ["--checkpoint", str(checkpoint)]
        self.proc = None
        self._log = None
        self.log_path.write_bytes(b"")
        # Pair as a user does: --print-token creates the token file on first use.
        self.token = subprocess.run([*command, "--print-token"], env=self.env, cwd=REPO,
                                    capture_output=True, text=True, timeout=60,
                                    check=True).stdout.strip()
        assert (self.config_dir / "token").read_text().strip() == self.token
        self.headers = {"X-Auth-Token": self.token}

    def is_healthy(self):
        """True when /v1/health answers 200 to the token with the model loaded (state ready;
        the server answers "loading" while it loads)."""
        try:
            r = requests.get(f"{self.url}/v1/health", headers=self.headers, timeout=2)
            return r.status_code == 200 and r.json().get("state", "ready") == "ready"
        except (requests.RequestException, ValueError):
            return False

    def start(self, timeout=120):
        """Start the process and wait until it is healthy; returns self."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (held until stop())
        preexec = (lambda: os.nice(self.nice)) if self.nice else None
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=REPO, preexec_fn=preexec)
        deadline = time.monotonic() + timeout
        while not self.is_healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"simclip-server did not become healthy on port {self.port}:\n"
                            f"{self.log()[-3000:]}")
            time.sleep(0.2)
        return self

    def log(self):
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """Stop the process with `stop_signal` (idempotent)."""
        if self.proc is not None:
            stop_process(self.proc, self.stop_signal)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
