"""Admission of classify requests: a bound on how many wait, and the 503 `busy` contract.

Every classify request that passed the caller checks is counted from the moment waitress has
read it (headers and body, in its I/O thread) until its answer is written: while it waits in
waitress's task queue for a thread, while it reads its body into Flask, while it waits in the
pipeline and while it is classified. Beyond `limit` such requests a new one is not queued: it
is answered 503 `busy` at once, in the I/O thread (`backend.transport`), with the time after
which the requests ahead of it should have been answered:

    503, Retry-After: <delta-seconds>,
    {"error": {"code": "busy", "message": ..., "retry_after_ms": <milliseconds>}}

Retry-After is HTTP's delta-seconds (RFC 9110 10.2.3), an integer, so it is the milliseconds
rounded up to whole seconds (at least 1); `retry_after_ms` is the same estimate in
milliseconds. The estimate is the requests admitted now divided by the rate at which admitted
requests were answered over the last `RATE_WINDOW_S` seconds, clamped to
[RETRY_AFTER_MIN_MS, RETRY_AFTER_MAX_MS]; with no answer in that window it is the configured
default.
"""

import collections
import math
import threading
import time

from flask import current_app, jsonify

from .config import DEFAULT_CONFIG

EXTENSION_KEY = "simclip_admission"
BUSY_CODE = "busy"
RATE_WINDOW_S = 10.0  # answers counted for the drain-rate estimate
RETRY_AFTER_MIN_MS = 100
RETRY_AFTER_MAX_MS = 30_000


class Admission:
    """Counts classify requests admitted and not answered yet; refuses beyond `limit`.

    Thread-safe: waitress's I/O thread admits, request threads release.

    Args:
        limit: classify requests that may wait or run at once (>= 1).
        default_retry_after_ms: the hint before any answer was measured.
    """

    def __init__(self, limit=DEFAULT_CONFIG["MAX_ADMITTED"],
                 default_retry_after_ms=DEFAULT_CONFIG["RETRY_AFTER_S"] * 1000):
        if limit < 1:
            raise ValueError(f"the admission limit must be >= 1, not {limit}")
        self.limit = limit
        self.default_retry_after_ms = int(default_retry_after_ms)
        self.admitted = 0  # admitted now, not answered yet
        self.admitted_total = 0
        self.shed_total = 0
        self._done = collections.deque()  # monotonic times of recent answers
        self._shed_s = collections.deque(maxlen=1000)  # first byte -> 503 written, recent sheds
        self._lock = threading.Lock()

    def try_admit(self):
        """Count one more request and return True, or count a shed and return False."""
        with self._lock:
            if self.admitted >= self.limit:
                self.shed_total += 1
                return False
            self.admitted += 1
            self.admitted_total += 1
            return True

    def release(self):
        """One admitted request was answered (or its client left)."""
        now = time.monotonic()
        with self._lock:
            self.admitted -= 1
            self._done.append(now)
            self._forget_before(now - RATE_WINDOW_S)

    def _forget_before(self, cutoff):
        while self._done and self._done[0] < cutoff:
            self._done.popleft()

    def retry_after_ms(self):
        """Milliseconds until the requests admitted now should have been answered (estimate)."""
        now = time.monotonic()
        with self._lock:
            self._forget_before(now - RATE_WINDOW_S)
            answered, waiting = len(self._done), self.admitted
            span = now - self._done[0] if self._done else 0.0
        if answered == 0:
            return self.default_retry_after_ms
        rate = answered / max(span, 1.0)  # answers per second
        estimate = 1000.0 * max(waiting, 1) / rate
        return int(min(max(estimate, RETRY_AFTER_MIN_MS), RETRY_AFTER_MAX_MS))

    def record_shed(self, seconds):
        """How long a shed request took from its first byte read to its 503 written."""
        self._shed_s.append(seconds)

    def as_dict(self):
        """/v1/health `admission`: limit, admitted now, totals since start, and the server-side
        time of the last 1,000 shed answers (ms from the request's first byte to the 503)."""
        with self._lock:
            shed = sorted(self._shed_s)
            return {"limit": self.limit, "admitted": self.admitted,
                    "admitted_total": self.admitted_total, "shed_total": self.shed_total,
                    "shed_ms": {"p50": _ms(shed[len(shed) // 2]), "max": _ms(shed[-1])}
                    if shed else None}


def _ms(seconds):
    return round(seconds * 1000.0, 2)


def get_admission(app=None):
    """The app's Admission, created from MAX_ADMITTED and RETRY_AFTER_S on first use."""
    app = app or current_app
    admission = app.extensions.get(EXTENSION_KEY)
    if admission is None:
        admission = app.extensions.setdefault(EXTENSION_KEY, Admission(
            app.config["MAX_ADMITTED"], app.config["RETRY_AFTER_S"] * 1000))
    return admission


def retry_after_seconds(retry_after_ms):
    """HTTP Retry-After delta-seconds for a hint in milliseconds: rounded up, at least 1."""
    return max(1, math.ceil(retry_after_ms / 1000))


def busy_error(message, retry_after_ms):
    """(headers, JSON body) of a 503 `busy` answer (the contract in the module docstring)."""
    headers = {"Retry-After": str(retry_after_seconds(retry_after_ms))}
    body = {"error": {"code": BUSY_CODE, "message": message,
                      "retry_after_ms": int(retry_after_ms)}}
    return headers, body


def busy_response(message, retry_after_ms):
    """The Flask response of a 503 `busy` answer."""
    headers, body = busy_error(message, retry_after_ms)
    response = jsonify(body)
    response.status_code = 503
    response.headers.update(headers)
    return response
