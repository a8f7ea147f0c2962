"""Backend test support shared by tests/conftest.py and the server tests: the test token, a stub
classifier (API tests never load CLIP), an in-process waitress server and the real server process.

A plain module rather than conftest attributes: tests/ and tests/e2e/ each have a conftest.py,
and `from conftest import ...` would pick whichever was imported first.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

TEST_TOKEN = "T" * 43  # a well-formed pairing token, used by every backend test
TEST_PORT = 8478


class StubClassifier:
    """Stands in for simclip.Predictor: real safe decoding, fake encoders (score = mean red)."""

    mode = "zero-shot"
    device = "cpu"
    identity = "stub-identity"
    backbone = type("StubBackbone", (), {"info": type("Info", (), {"id": "stub/none"})()})()
    ocr = type("StubOCR", (), {"name": "none"})()

    def __init__(self):
        self.batches = []

    def list_categories(self):
        return [{"id": "harmful", "name": "Harmful", "description": "stub",
                 "default_threshold": 0.5}]

    def decode(self, data):
        from simclip import decode_image

        return decode_image(data)

    def read_text(self, image):
        return ""

    def classify(self, images, texts):
        self.batches.append(len(images))
        out = []
        for image, text in zip(images, texts):
            score = round(sum(image.resize((8, 8)).getdata(0)) / (64 * 255), 6)
            warnings = [{"id": "harmful", "name": "Harmful", "score": score, "threshold": 0.5}]
            out.append({"mode": self.mode, "scores": {"harmful": score},
                        "warnings": warnings if score >= 0.5 else [], "text": text,
                        "timings_ms": {"encode": 0.0, "head": 0.0}})
        return out


def _loopback_client_class():
    """The Flask test client, defaulting to a loopback Host with our port and the token."""
    from flask.testing import FlaskClient

    class _Client(FlaskClient):
        def open(self, *args, **kwargs):
            kwargs.setdefault("base_url", f"http://127.0.0.1:{TEST_PORT}")
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-Auth-Token", TEST_TOKEN)
            kwargs["headers"] = {k: v for k, v in headers.items() if v is not None}
            return super().open(*args, **kwargs)

    return _Client



class LiveServer:
    """An app served by waitress (our settings) on a free loopback port, in a thread."""

    def __init__(self, app, threads=8):
        from backend.serve import create_server

        self.app = app
        self.server = create_server(app, "127.0.0.1", 0, threads=threads)
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self.headers = {"X-Auth-Token": TEST_TOKEN}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        """waitress's loop, polled in short steps so the same thread can close every socket."""
        from waitress import wasyncore

        while not self._stop.is_set():
            wasyncore.loop(timeout=0.05, map=self.server._map, count=1)
        self.server.close()
        for channel in list(self.server._map.values()):
            channel.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.task_dispatcher.shutdown()



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
    """The real `simclip-server` in a subprocess, with its own config and cache dirs."""

    def __init__(self, root, *args):
        self.port = get_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_dir = root / "config" / "simclip"
        self.cache_dir = root / "cache"
        self.log_path = root / "server.log"
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(root / "config"),
                    "XDG_CACHE_HOME": str(root / "xdg-cache"), "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "backend.serve", "--model", "simclip-tiny", "--pretrained",
               "none", "--device", "cpu", "--ocr", "none", "--port", str(self.port),
               "--cache-dir", str(self.cache_dir), *args]
        self._log = open(self.log_path, "w")  # noqa: SIM115 (open for the process lifetime)
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=Path(__file__).resolve().parents[1])
        self._wait_ready()
        self.token = (self.config_dir / "token").read_text().strip()
        self.headers = {"X-Auth-Token": self.token}

    def _wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"simclip-server exited: {self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"simclip-server did not start: {self.log_path.read_text()}")

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        stop_process(self.proc)
        self._log.close()


