"""HTTP stand-ins for tests: a fake `urllib.request.urlopen` response that misbehaves in one
exact way (a short body, a connection reset mid-file), and a real loopback server for a
handler."""

import contextlib
import http.server
import threading


class FakeResponse:
    """A response with `status` and `headers` whose body arrives as `chunks`, one per read,
    then `error` is raised (or the body ends)."""

    def __init__(self, chunks, headers, status=200, error=None):
        self.chunks, self.headers, self.status, self.error = list(chunks), headers, status, error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, n=-1):
        if self.chunks:
            return self.chunks.pop(0)
        if self.error is not None:
            raise self.error
        return b""

    read1 = read  # what arrived so far: the downloader reads with read1


@contextlib.contextmanager
def serve_loopback(handler):
    """An HTTP server on a free 127.0.0.1 port answering with `handler` (a
    BaseHTTPRequestHandler class or factory), in a thread; yields its base URL
    ("http://127.0.0.1:PORT", no trailing slash) and stops it at the end."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
