"""A stand-in for simclip-server that decides exactly `rate` memes a second, for the extension's
priority measurement (docs/bench.md, "What the user sees first").

It answers POST /v1/classify one request at a time, in arrival order, each after 1/rate s, with
the real server's answer for the same picture (found by its decoded pixels: the feed serves each
meme under many URLs and byte variants); every other request is forwarded to the real server, so
pairing and health checks are the real ones. A server slower than the page asks is the case
being measured; the real server's own speed would make the rate depend on the machine's load.
"""

import hashlib
import io
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler

import requests
from PIL import Image

from bench.timeline_site import serve_on_loopback, stop_serving


def pixel_key(data):
    """The identity of a picture that survives re-encoding: a hash of its decoded pixels."""
    with Image.open(io.BytesIO(data)) as img:
        return hashlib.sha256(img.convert("RGB").tobytes()).hexdigest()


class StandIn:
    """A stand-in for simclip-server on loopback: every request is forwarded to the real server
    (so pairing, health and CORS are the real ones), except those `answer` answers itself."""

    # the real server's answer headers the extension reads
    FORWARDED_HEADERS = ("content-type", "access-control-allow-origin", "vary", "retry-after",
                         "access-control-allow-headers", "access-control-allow-methods")

    def __init__(self, real_server):
        self.real = real_server
        self.server = None

    @property
    def token(self):
        """The real server's pairing token: the extension pairs with the stand-in as with it."""
        return self.real.token

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, handler, method, body):
        """Answer a request here (with `handler.reply`) and return True, or False to forward it."""
        return False

    def start(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body, headers):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_any(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if stand_in.answer(self, method, body):
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                r = requests.request(method, stand_in.real.url + self.path, data=body, headers=headers, timeout=60)
                keep = {k: v for k, v in r.headers.items() if k.lower() in StandIn.FORWARDED_HEADERS}
                self.reply(r.status_code, r.content, keep)

            def do_GET(self):
                self.handle_any("GET")

            def do_OPTIONS(self):
                self.handle_any("OPTIONS")

            def do_POST(self):
                self.handle_any("POST")

        self.server = serve_on_loopback(Handler)
        return self

    def stop(self):
        stop_serving(self.server)


class SlowServer(StandIn):
    def __init__(self, real_server, memes, rate=4.0):
        super().__init__(real_server)
        self.rate = rate
        self.answers = {}  # pixel key -> the real server's JSON answer
        for png, _ in memes:
            r = requests.post(f"{real_server.url}/v1/classify", data=png, timeout=60,
                              headers={"X-Auth-Token": real_server.token, "Content-Type": "image/png"})
            r.raise_for_status()
            self.answers[pixel_key(png)] = r.json()
        self.jobs = queue.Queue()
        self.served = []  # monotonic times of the answers

    def decide(self):
        """The one decision thread: 1/rate s per picture, first come first served."""
        while True:
            job = self.jobs.get()
            if job is None:
                return
            time.sleep(1 / self.rate)
            self.served.append(time.monotonic())
            job.set()

    def answer(self, handler, method, body):
        """A classify request: the real answer for its picture, after its turn in the queue."""
        if method != "POST" or handler.path != "/v1/classify" or handler.headers.get("X-Auth-Token") != self.real.token:
            return False
        answer = dict(self.answers[pixel_key(body)])
        answer["sha256"] = hashlib.sha256(body).hexdigest()
        answer["cached"] = False
        done = threading.Event()
        self.jobs.put(done)
        done.wait(120)
        handler.reply(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})
        return True

    def start(self):
        super().start()
        threading.Thread(target=self.decide, daemon=True).start()
        return self

    def stop(self):
        self.jobs.put(None)
        super().stop()
