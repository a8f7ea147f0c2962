"""waitress for a server that must stay responsive under load: admission, two thread pools,
request deadlines and connection eviction, all decided in waitress's I/O thread.

waitress reads every request in one I/O thread and queues it for a pool of request threads,
without a bound on that queue; 400 pictures at once all wait there, and /v1/health waits behind
them. Here, when waitress has read a whole request (`GuardedServer.add_task`):

- a POST /v1/classify that passes the caller checks (`security.check_caller`, `check_token`:
  the same functions the Flask guard runs) is admitted (`admission.Admission`) and queued for
  the classify pool, or, beyond the bound, answered 503 `busy` with Retry-After right there in
  the I/O thread (`ShedTask`): no request thread, no body handed to Flask, a few hundred
  microseconds;
- everything else (health, labels, setup, the OpenAPI document, every refusal) goes to a small
  control pool that classify requests never occupy, so health never waits behind them.

Slow clients (THREATS.md T8): a request's headers must arrive within HEADER_TIMEOUT_S of its
first byte and the whole request within REQUEST_TIMEOUT_S, else its connection is closed; and
when a new connection arrives at `connection_limit`, the stalest connection that has no request
being served and has been idle or reading for over EVICT_AFTER_S (idle keep-alive, or still
trickling its request) is closed to make room, instead of waitress's default of accepting no one
until one leaves.
"""

import json
import logging
import threading
import time

from waitress.adjustments import Adjustments
from waitress.server import TcpWSGIServer
from waitress.task import Task, ThreadedTaskDispatcher, WSGITask

from .admission import busy_error, get_admission
from .errors import SECURITY_HEADERS, ApiError, JSONErrorChannel
from .security import TOKEN_HEADER, check_caller, check_token

logger = logging.getLogger(__name__)

CLASSIFY_METHOD, CLASSIFY_PATH = "POST", "/v1/classify"
DEADLINE_CHECK_S = 0.5  # how often the I/O thread looks for requests past their deadline
EVICT_AFTER_S = 2.0  # a connection idle or reading for this long may be closed for a new one


class ShedTask(Task):
    """The 503 `busy` answer to a shed request, written in the I/O thread (no request thread).

    The request was read whole, so the connection stays usable (keep-alive).
    """

    complete = True  # no start_response: the status and headers are set in execute()

    def execute(self):
        retry_after_ms = self.request.shed_retry_after_ms
        admission = self.channel.server.admission
        headers, body = busy_error(
            f"the server is busy: {admission.admitted} requests are waiting; retry after "
            f"{retry_after_ms} ms", retry_after_ms)
        data = json.dumps(body).encode()
        self.status = "503 Service Unavailable"
        self.response_headers.extend([("Content-Type", "application/json"), ("Vary", "Origin"),
                                      *SECURITY_HEADERS.items(), *headers.items()])
        origin = self.request.headers.get("ORIGIN")
        if origin is not None:  # only an allowed origin gets this far (check_caller)
            self.response_headers.extend([("Access-Control-Allow-Origin", origin),
                                          ("Access-Control-Expose-Headers", "Retry-After")])
        self.content_length = len(data)
        self.write(data)
        if self.request.started is not None:
            admission.record_shed(time.time() - self.request.started)


def _create_task(channel, request):
    """waitress's task for `request`: the shed answer, or the WSGI app."""
    if getattr(request, "shed_retry_after_ms", None) is not None:
        return ShedTask(channel, request)
    return WSGITask(channel, request)


class GuardedChannel(JSONErrorChannel):
    """A connection: JSON protocol errors, shed answers written inline, deadline bookkeeping."""

    task_class = staticmethod(_create_task)  # waitress calls self.task_class(self, request)
    request_started = None  # time.time() of the first byte of the request being read
    shed_pending = False  # a shed request waits to be answered by the I/O thread
    io_thread = None

    def received(self, data):
        if self.request is None and data:
            self.request_started = time.time()
        self.io_thread = threading.current_thread()
        result = super().received(data)
        if self.request is None:
            self.request_started = None
        # waitress queued nothing for a shed request (`GuardedServer.add_task`): answer it
        # here, now that received() has released requests_lock, which service() takes.
        while self.shed_pending:
            self.shed_pending = False
            self.service()
        return result

    def service(self):
        request = self.requests[0]
        try:
            super().service()
        finally:
            if getattr(request, "admitted", False):
                request.admitted = False
                self.server.admission.release()

    def is_past_deadline(self, now, header_timeout_s, request_timeout_s):
        """True when the request being read is late: headers, or the whole request."""
        if self.request is None or self.requests or self.request_started is None:
            return False
        elapsed = now - self.request_started
        return elapsed > request_timeout_s or (
            not self.request.headers_finished and elapsed > header_timeout_s)

    def is_evictable(self, now):
        """True when no request of this connection is queued or served and it has been idle,
        or reading its request, for EVICT_AFTER_S: a client on loopback sends its request
        within milliseconds of connecting, so a burst of new clients evicts none of them."""
        if self.requests or self.will_close or self.close_when_flushed:
            return False
        return now - (self.request_started or self.last_activity) > EVICT_AFTER_S


class RoutingDispatcher:
    """Two waitress thread pools: `classify` for admitted classify requests, `control` for
    everything else. Stands in for waitress's ThreadedTaskDispatcher."""

    def __init__(self, classify_threads, control_threads):
        self.classify = ThreadedTaskDispatcher()
        self.classify.set_thread_count(classify_threads)
        self.control = ThreadedTaskDispatcher()
        self.control.set_thread_count(control_threads)

    def add_task(self, channel):
        pool = self.classify if getattr(channel.requests[0], "admitted", False) else self.control
        pool.add_task(channel)

    def set_thread_count(self, count):
        self.classify.set_thread_count(count)

    def shutdown(self, cancel_pending=True, timeout=5):
        done = self.classify.shutdown(cancel_pending, timeout)
        return self.control.shutdown(cancel_pending, timeout) and done


class GuardedServer(TcpWSGIServer):
    """waitress's TCP server with admission, routing, deadlines and eviction (module docstring).

    Args (beyond TcpWSGIServer's):
        flask_app: the Flask app (its config: caller checks, MAX_ADMITTED, the timeouts).
    """

    channel_class = GuardedChannel

    def __init__(self, flask_app, sock, adj, dispatcher):
        self.flask_app = flask_app
        self.admission = get_admission(flask_app)
        self.next_deadline_check = 0.0
        sockinfo = (sock.family, sock.type, sock.proto, sock.getsockname())
        super().__init__(flask_app, None, True, sock, dispatcher=dispatcher, adj=adj,
                         bind_socket=False, sockinfo=sockinfo)

    # --- admission and routing ------------------------------------------------------------

    def add_task(self, channel):
        """A request was read whole: admit, shed or route it (waitress's I/O thread)."""
        request = channel.requests[0]
        if self._is_checked_classify(request):
            if self.admission.try_admit():
                request.admitted = True
            else:
                request.shed_retry_after_ms = self.admission.retry_after_ms()
                request.started = channel.request_started
                if threading.current_thread() is channel.io_thread:
                    channel.shed_pending = True  # answered by GuardedChannel.received
                    return
        self.task_dispatcher.add_task(channel)

    def _is_checked_classify(self, request):
        """A classify request whose caller the Flask guard would let through."""
        path = request.path if not request.path.startswith("/") \
            else "/" + request.path.lstrip("/")  # as waitress builds PATH_INFO
        if request.error or request.command != CLASSIFY_METHOD or path != CLASSIFY_PATH:
            return False
        headers, cfg = request.headers, self.flask_app.config
        try:
            check_caller(cfg, headers.get("HOST"), headers.get("ORIGIN"),
                         headers.get("SEC_FETCH_SITE"), request.request_uri)
            check_token(cfg, headers.get(TOKEN_HEADER.upper().replace("-", "_"), ""))
        except ApiError:
            return False  # refused by the Flask guard in the control pool, identically
        return True

    # --- slow clients and the connection limit ----------------------------------------------

    def readable(self):
        """Accept while below the limit, or while a connection could be evicted for a new one;
        close connections whose request is past its deadline."""
        now = time.time()
        if now >= self.next_deadline_check:
            self.next_deadline_check = now + DEADLINE_CHECK_S
            self._close_late_requests(now)
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        if not self.accepting:
            return False
        at_limit = len(self._map) >= self.adj.connection_limit
        return not at_limit or self._find_stalest(now) is not None

    def handle_accept(self):
        """Accept, then close the stalest idle or reading connection if over the limit."""
        before = set(self.active_channels)
        super().handle_accept()
        if len(self._map) > self.adj.connection_limit:
            victim = self._find_stalest(time.time(), set(self.active_channels) - before)
            if victim is not None:
                logger.info("connection limit reached: closing the stalest connection "
                            "(no request being served) for a new one")
                victim.will_close = True

    def _find_stalest(self, now, exclude=()):
        """The evictable connection whose request began (or activity ended) longest ago."""
        candidates = [c for fd, c in self.active_channels.items()
                      if fd not in exclude and c.is_evictable(now)]
        return min(candidates, key=lambda c: c.request_started or c.last_activity, default=None)

    def _close_late_requests(self, now):
        cfg = self.flask_app.config
        for channel in list(self.active_channels.values()):
            if channel.is_past_deadline(now, cfg["HEADER_TIMEOUT_S"], cfg["REQUEST_TIMEOUT_S"]):
                logger.info("closing a connection whose request is past its deadline")
                channel.will_close = True


def create_guarded_server(app, sock, threads, control_threads, **settings):
    """A GuardedServer for the Flask `app` on the bound socket `sock`.

    Args:
        threads: request threads for admitted classify requests.
        control_threads: request threads for every other request.
        settings: waitress adjustments (backend.serve.WAITRESS_SETTINGS).
    """
    adj = Adjustments(sockets=[sock], threads=threads, **settings)
    dispatcher = RoutingDispatcher(threads, control_threads)
    return GuardedServer(app, sock, adj, dispatcher)
