"""What `simclip score` reads: each SOURCE argument becomes a stream of `Item`s.

    folder/            every image file below it (recursive), sorted
    'memes/*.png'      a glob (quote it; `**` recurses)
    list.txt           one path or http(s) URL a line (blank lines and '#' comments skipped)
    table.parquet/.csv a column (--column) of paths, URLs or image bytes
    shard.tar          a WebDataset shard: every image member, keyed 'shard.tar/member'

An `Item` is an id (the output's `path`) and where its bytes are: a file, a URL, a tar member
or the bytes themselves. Bytes are read by `read_item_bytes`, in the workers, so listing a
corpus of millions reads no image.
"""

from __future__ import annotations

import csv
import glob
import http.client
import os
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".avif", ".jfif"}
LIST_SUFFIXES = {".txt", ".lst", ".list", ".urls"}
TABLE_SUFFIXES = {".parquet", ".csv"}
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")  # tarfile opens each
URL_PREFIXES = ("http://", "https://")
FETCH_TIMEOUT_S = 30.0
FETCH_MAX_BYTES = 32 * 1024 * 1024  # larger answers are refused (fetch_failed)

# error codes of inputs that never reached the decoder (the decoder's are simclip.ImageError's)
FETCH_FAILED = "fetch_failed"  # an URL that could not be downloaded
UNREADABLE_FILE = "unreadable_file"  # a missing or unreadable file or tar member


class SourceError(Exception):
    """An input whose bytes could not be read; `code` is FETCH_FAILED or UNREADABLE_FILE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def printable_id(text: str) -> str:
    """`text` as valid UTF-8 for the output: a file name's undecodable bytes (Python keeps them
    as lone surrogates, 'caf\\udce9.png') are written as backslash escapes ('caf\\xe9.png')."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _fs(name: str | None) -> bytes | None:
    return None if name is None else os.fsencode(name)


def _unfs(name: bytes | str | None) -> str | None:
    return None if name is None else os.fsdecode(name)


@dataclass(frozen=True)
class Item:
    """One input: its id and where its bytes are (exactly one of path, url, tar+member, data),
    or `error`: a source that could not be listed (a corrupt shard), an error row of its own.
    The id is made valid UTF-8 (`printable_id`); the path keeps the file system's name."""

    id: str
    path: str | None = None
    url: str | None = None
    tar: str | None = None
    member: str | None = None
    data: bytes | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", printable_id(self.id))

    def to_record(self) -> dict[str, object]:
        """A flat dict (for Ray Data and process pools); names as file-system bytes."""
        return {"id": self.id, "path": _fs(self.path), "url": self.url, "tar": _fs(self.tar),
                "member": _fs(self.member), "data": self.data, "error": self.error}

    @classmethod
    def from_record(cls, row: dict[str, object]) -> Item:
        """The Item of a `to_record` dict."""
        return cls(str(row["id"]), path=_unfs(row["path"]), url=row["url"],  # type: ignore[arg-type]
                   tar=_unfs(row["tar"]), member=_unfs(row["member"]),  # type: ignore[arg-type]
                   data=row["data"], error=row.get("error"))  # type: ignore[arg-type]


def is_url(text: str) -> bool:
    """True for an http(s) URL."""
    return text.lower().startswith(URL_PREFIXES)


def _ref(text: str, base: Path | None = None) -> Item:
    """A path or URL as read from a list or a table; relative paths are taken from `base`."""
    text = text.strip()
    if is_url(text):
        return Item(text, url=text)
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = base / path  # the id too: 'a/list.txt' and 'b/list.txt' may both say 'x.png'
    name = os.path.normpath(path)  # 'sub/../m/x.png' and './m/x.png' are 'm/x.png'
    return Item(name, path=name)


def _walk_folder(folder: Path) -> Iterator[Item]:
    """Image files below `folder`, sorted; symlinked folders are not followed (a link loop
    would never end), a dangling or unreadable link is an input (its row says unreadable)."""
    files = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_file() or p.is_symlink()))
    for p in files:
        yield Item(str(p), path=str(p))


def _glob(pattern: str) -> list[str]:
    """The files matching `pattern`, sorted; `**` recurses without following symlinked folders
    (glob.glob follows them, and a link to a parent folder never ends)."""
    if "**" not in pattern:
        return sorted(glob.glob(pattern))
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    # Path() is '.', whose glob gives relative paths, as glob.glob does for a relative pattern
    return sorted(str(p) for p in Path(*parts[:fixed]).glob(str(Path(*parts[fixed:]))))


def _read_list(path: Path) -> Iterator[Item]:
    with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not text
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield _ref(line, path.parent)


def _read_table(path: Path, column: str | None) -> Iterator[Item]:
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:  # Excel writes a BOM
            reader = csv.DictReader(f)
            name = _pick_column(path, list(reader.fieldnames or ()), column)
            for i, row in enumerate(reader):
                value = row.get(name) or ""
                yield _ref(value, path.parent) if value.strip() else Item(f"{path}#{i}", data=b"")
        return
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise SystemExit(f"reading {path} needs pyarrow: pip install 'simclip[scale]'") from e
    pf = pq.ParquetFile(path)
    name = _pick_column(path, pf.schema_arrow.names, column)
    row = 0
    for batch in pf.iter_batches(columns=[name], batch_size=1024):
        for value in batch.column(0).to_pylist():
            if isinstance(value, dict):  # Hugging Face datasets' Image: {bytes, path}
                value = value.get("bytes") or value.get("path")
            if isinstance(value, (bytes, bytearray)):
                yield Item(f"{path}#{row}", data=bytes(value))
            elif value:
                yield _ref(str(value), path.parent)
            else:
                yield Item(f"{path}#{row}", data=b"")
            row += 1


def _pick_column(path: Path, names: list[str], column: str | None) -> str:
    """--column, or the only column, or the first of path/url/image/bytes that exists."""
    if column:
        if column not in names:
            raise SystemExit(f"{path} has no column {column!r}; columns: {', '.join(names)}")
        return column
    if len(names) == 1:
        return names[0]
    for guess in ("path", "url", "image", "bytes", "file", "filename"):
        if guess in names:
            return guess
    raise SystemExit(f"{path}: say which column holds the images with --column; "
                     f"columns: {', '.join(names)}")


def _walk_tar(path: Path) -> Iterator[Item]:
    """The image members of a shard; a shard that cannot be read (corrupt, truncated, empty)
    is one error row under its own name, after the members read before the damage."""
    last = None
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                    last = member.name
                    yield Item(f"{path}/{member.name}", tar=str(path), member=member.name)
    except (tarfile.TarError, OSError, EOFError) as e:
        where = f" after member {last}" if last else ""
        yield Item(str(path), error=f"{path}: unreadable WebDataset shard{where}: "
                                    f"{type(e).__name__}: {e}")


def iter_items(sources: Iterable[str], column: str | None = None) -> Iterator[Item]:
    """Every input of the SOURCE arguments, in order (see the module docstring).

    Raises:
        SystemExit: a source that matches nothing, or a table without the column.
    """
    for source in sources:
        if is_url(source):
            yield Item(source, url=source)
            continue
        path = Path(source)
        suffix = path.suffix.lower()
        if path.is_dir():
            yield from _walk_folder(path)
        elif path.is_file() and suffix in LIST_SUFFIXES:
            yield from _read_list(path)
        elif path.is_file() and suffix in TABLE_SUFFIXES:
            try:
                yield from _read_table(path, column)
            except (OSError, ValueError, csv.Error) as e:  # pyarrow's errors are ValueErrors
                raise SystemExit(f"{path}: cannot read the table: {type(e).__name__}: {e}") from e
        elif path.is_file() and path.name.lower().endswith(TAR_SUFFIXES):
            yield from _walk_tar(path)
        elif path.is_file():
            yield Item(os.path.normpath(source), path=source)
        elif glob.has_magic(source):
            matches = _glob(source)
            if not matches:
                raise SystemExit(f"no file matches {source!r}")
            for match in matches:  # files, and dangling links (their rows say unreadable)
                if os.path.isfile(match) or (os.path.islink(match) and not os.path.isdir(match)):
                    yield Item(os.path.normpath(match), path=match)
        else:
            raise SystemExit(f"no such file, folder or glob: {source!r}")


class _TarCache:
    """Open shards and their member index, shared by the threads of a process (a shard's
    headers are read once); a member is read under the lock (one file position per shard)."""

    def __init__(self, max_open: int = 4) -> None:
        self.max_open = max_open
        self._lock = threading.Lock()
        self._shards: dict[str, tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]] = {}

    def read(self, shard: str, member: str) -> bytes:
        """The bytes of one member of a shard."""
        with self._lock:
            if shard not in self._shards:
                if len(self._shards) >= self.max_open:
                    self._shards.pop(next(iter(self._shards)))[0].close()
                tar = tarfile.open(shard)  # noqa: SIM115 (kept open for its next members)
                self._shards[shard] = (tar, {m.name: m for m in tar.getmembers()})
            tar, index = self._shards[shard]
            f = tar.extractfile(index[member])
            if f is None:
                raise KeyError(member)
            return f.read()

    def close(self) -> None:
        """Close every open shard."""
        with self._lock:
            for tar, _ in self._shards.values():
                tar.close()
            self._shards.clear()


_TARS = _TarCache()


def close_sources() -> None:
    """Close the shards this process keeps open (the end of a run)."""
    _TARS.close()


def quote_url(url: str) -> str:
    """`url` with spaces and non-ASCII characters percent-encoded, as a browser sends it
    (existing %XX escapes and the URL's delimiters are kept)."""
    return urllib.parse.quote(url, safe=":/?#[]@!$&'()*+,;=%~")


def fetch_url(url: str, timeout_s: float = FETCH_TIMEOUT_S,
              max_bytes: int = FETCH_MAX_BYTES) -> bytes:
    """The body of an http(s) URL, at most `max_bytes`; SourceError(FETCH_FAILED) otherwise,
    including a body cut short of its Content-Length (a partial download is never scored)."""
    request = urllib.request.Request(quote_url(url), headers={"User-Agent": "simclip-score"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            data = response.read(max_bytes + 1)
            length = response.headers.get("Content-Length")
            encoded = response.headers.get("Content-Encoding") not in (None, "identity")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        raise SourceError(FETCH_FAILED, f"{url}: {type(e).__name__}: {e}") from e
    if len(data) > max_bytes:
        raise SourceError(FETCH_FAILED, f"{url}: larger than {max_bytes} bytes")
    if length and length.isdigit() and not encoded and len(data) < int(length):
        raise SourceError(FETCH_FAILED, f"{url}: the connection closed after {len(data)} of "
                                        f"{length} bytes")
    return data


def read_item_bytes(item: Item) -> bytes:
    """The item's bytes. Raises SourceError (FETCH_FAILED or UNREADABLE_FILE)."""
    if item.error is not None:
        raise SourceError(UNREADABLE_FILE, item.error)
    if item.data is not None:
        return item.data
    if item.url is not None:
        return fetch_url(item.url)
    try:
        if item.tar is not None:
            return _TARS.read(item.tar, item.member or "")
        with open(item.path or "", "rb") as f:
            return f.read()
    except (OSError, KeyError, tarfile.TarError) as e:
        raise SourceError(UNREADABLE_FILE, f"{item.id}: {type(e).__name__}: {e}") from e
