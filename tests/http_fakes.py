"""A stand-in for `urllib.request.urlopen`'s response, for download tests that need a server
which misbehaves in one exact way (a short body, a connection reset mid-file)."""


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
