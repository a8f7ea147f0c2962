"""What `simclip score` reads: each SOURCE argument becomes a stream of `Item`s.

    folder/            every picture below it (recursive), a folder at a time
    'memes/*.png'      a glob (quote it; `**` recurses); its shards and tables are read as such
    list.txt           one path, http(s) URL or data: URI a line (blank lines, '#' comments
                       skipped); UTF-8, UTF-16 or Windows-1252 (`tables.iter_text_lines`)
    table.csv          a column (--column) of paths, URLs or data: URIs
    table.parquet      a column of image bytes, paths, URLs, data: URIs, Hugging Face
                       `Image` structs or lists of them (`tables`), a row group at a time
    shard.tar          a WebDataset shard: every member accounted for (`shards`)
    https://...        one picture

A run first plans its *units* (`plan_units`: a source, or one row group of a table; cheap and
small, what Ray's read tasks get), then streams each unit's inputs (`expand_unit`) with the
scoring stage pulling them (back-pressure): memory holds the inputs in flight, never the corpus.

An `Item` is an id (the output's `path`) and where its bytes are: a file or a URL (read by the
workers, `read_item_bytes`), or the bytes themselves (a table's cell, a shard's member). A
source that cannot be read (missing, unreadable, truncated, corrupt) is an `Item` with an
error: an error row of its own under the source's name, after the inputs read before the
damage; the run goes on. Ids are never made from image bytes.
"""

from __future__ import annotations

import base64
import binascii
import csv
import glob
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .shards import (
    NOT_AN_IMAGE,
    classify_name,
    count_shard_pictures,
    iter_shard,
    skip_reason,
    sniff_file,
)
from .tables import (
    COLUMN_GUESSES,
    ColumnError,
    csv_header,
    iter_csv_values,
    iter_list_refs,
    iter_row_group,
    open_parquet,
    pick_column,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".avif", ".jfif"}
LIST_SUFFIXES = {".txt", ".lst", ".list", ".urls"}
TABLE_SUFFIXES = {".parquet", ".csv"}
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")  # tarfile opens each
URL_PREFIXES = ("http://", "https://")
FETCH_TIMEOUT_S = 30.0
FETCH_MAX_BYTES = 32 * 1024 * 1024  # larger answers are refused (fetch_failed)

# error codes of inputs that never reached the decoder (the decoder's are simclip.ImageError's)
FETCH_FAILED = "fetch_failed"  # an URL that could not be downloaded
UNREADABLE_FILE = "unreadable_file"  # a missing or unreadable file, member or source
CORRUPT_IMAGE = "corrupt_image"  # simclip.errors' code, for a data: URI that does not decode
EMPTY_IMAGE = "empty_image"  # simclip.errors' code, for a cell that holds no picture at all



class SourceError(Exception):
    """An input whose bytes could not be read; `code` is FETCH_FAILED, UNREADABLE_FILE or
    (a data: URI that does not decode) CORRUPT_IMAGE."""

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
    """One input: its id and where its bytes are (exactly one of path, url, data), or `error`
    (with its `code`, UNREADABLE_FILE by default): a source or member that could not be read,
    an error row of its own. The id is made valid UTF-8 (`printable_id`); the path keeps the
    file system's name."""

    id: str
    path: str | None = None
    url: str | None = None
    data: bytes | None = None
    error: str | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", printable_id(self.id))

    def to_record(self) -> dict[str, object]:
        """A flat dict (for Ray Data and process pools); names as file-system bytes."""
        return {"id": self.id, "path": _fs(self.path), "url": self.url, "data": self.data,
                "error": self.error, "code": self.code}

    @classmethod
    def from_record(cls, row: dict[str, object]) -> Item:
        """The Item of a `to_record` dict."""
        return cls(str(row["id"]), path=_unfs(row["path"]), url=row["url"],  # type: ignore[arg-type]
                   data=row["data"], error=row.get("error"),  # type: ignore[arg-type]
                   code=row.get("code"))  # type: ignore[arg-type]


def is_url(text: str) -> bool:
    """True for an http(s) URL."""
    return text.lower().startswith(URL_PREFIXES)


def is_data_uri(text: str) -> bool:
    """True for a data: URI ('data:image/png;base64,...')."""
    return text[:5].lower() == "data:"


def decode_data_uri(text: str) -> bytes:
    """The bytes of a data: URI (RFC 2397: base64 or percent-encoded).

    Raises:
        ValueError: no ',' or bad base64.
    """
    header, sep, payload = text[5:].partition(",")
    if not sep:
        raise ValueError("a data: URI without ','")
    if header.lower().endswith(";base64"):
        text = "".join(urllib.parse.unquote(payload).split())  # line breaks are allowed
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    return urllib.parse.unquote_to_bytes(payload)


def _ref(text: str, base: str | None, row_id: str, raw: bytes | None = None) -> Item:
    """A path, URL or data: URI as read from a list or a table; relative paths are taken from
    `base` (the list's folder). `row_id` names a data: URI's row (never its bytes); `raw`, a
    list line's own bytes, finds a file whose name is not UTF-8 on disk."""
    text = text.strip()
    if is_url(text):
        return Item(text, url=text)
    if is_data_uri(text):
        try:
            return Item(row_id, data=decode_data_uri(text))
        except (ValueError, binascii.Error, UnicodeEncodeError) as e:
            return Item(row_id, error=f"{row_id}: a data: URI that cannot be decoded: {e}",
                        code=CORRUPT_IMAGE)
    name = text
    if base is not None and not os.path.isabs(name):
        name = os.path.join(base, name)  # the id too: 'a/list.txt' and 'b/list.txt' may both say 'x.png'
    name = os.path.normpath(name)  # 'sub/../m/x.png' and './m/x.png' are 'm/x.png'
    if raw is not None and not os.path.lexists(name):
        own = os.fsdecode(raw)  # a cp1252 list naming a file whose name on disk is cp1252 too
        own = os.path.normpath(own if base is None or os.path.isabs(own)
                               else os.path.join(base, own))
        if os.path.lexists(own):
            name = own
    return Item(name, path=name)


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Unit:
    """One piece of a SOURCE that one reader expands into inputs: a folder, a file, a URL, a
    list, a CSV table, one row group of a Parquet table, a shard, or a glob's files; or a
    source that could not be opened (`kind` 'error'). Small and picklable: Ray's read tasks
    get these, never the inputs."""

    source: str  # the SOURCE argument it comes from (the summary's key)
    kind: str  # folder | file | url | list | csv | parquet | tar | glob | error
    name: str  # the path, URL or pattern
    column: str | None = None  # tables
    column_kind: str | None = None  # parquet: tables.column_kind
    row_group: int = 0  # parquet
    first_row: int = 0  # parquet: the row group's first row in the table
    code: str | None = None  # error: the row's code
    message: str | None = None  # error: what went wrong
    skip: int = 0  # a window of the unit (`expand_window`): its first `skip` inputs left out,
    take: int | None = None  # and at most `take` read after them (None: to the unit's end)


@dataclass
class SourceStats:
    """What one SOURCE gave: inputs listed, members or files skipped by reason, and the error
    rows of its own (a source or part of one that could not be read)."""

    source: str
    kind: str = ""
    inputs: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # the source's own error messages
    empty_reason: str = ""  # why it gave no inputs, when it gave none

    def merge(self, other: SourceStats) -> None:
        """Add another unit's counts of the same source."""
        self.kind = self.kind or other.kind
        self.inputs += other.inputs
        self.skipped.update(other.skipped)
        self.failures.extend(other.failures)
        self.empty_reason = self.empty_reason or other.empty_reason

    def describe(self, failures: int = 1) -> str:
        """What happened to the source, for a person: its first `failures` error messages (less
        the source's name that starts them: the caller names it), else why it gave no input."""
        if self.failures:
            return "; ".join(f.removeprefix(f"{self.source}: ") for f in self.failures[:failures])
        return self.empty_reason or "no input"

    def as_dict(self) -> dict[str, Any]:
        """Plain types (for Ray)."""
        return {"source": self.source, "kind": self.kind, "inputs": self.inputs,
                "skipped": dict(self.skipped), "failures": list(self.failures),
                "empty_reason": self.empty_reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceStats:
        """The inverse of `as_dict`."""
        return cls(d["source"], d["kind"], d["inputs"], Counter(d["skipped"]),
                   list(d["failures"]), d["empty_reason"])


def _source_kind(path: str) -> str | None:
    """'list', 'csv', 'parquet' or 'tar' by the file name, else None (an image file)."""
    lower = path.lower()
    suffix = os.path.splitext(lower)[1]
    if suffix in LIST_SUFFIXES:
        return "list"
    if suffix == ".csv":
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    return None


def _error_unit(source: str, name: str, code: str, message: str) -> Unit:
    return Unit(source, "error", name, code=code, message=message)


def _plan_parquet(source: str, path: str, column: str | None) -> list[Unit]:
    """One unit per row group (read apart, in parallel on Ray); the footer is read here.

    Raises:
        ColumnError: the column is missing or holds no pictures.
    """
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"reading {path} needs pyarrow: pip install 'simclip[scale]'") from e
    try:
        pf = open_parquet(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        return [_error_unit(source, path, UNREADABLE_FILE,
                            f"{path}: cannot read the table: {type(e).__name__}: {e}")]
    with pf:
        name, kind = pick_column(path, pf.schema_arrow, column)
        meta = pf.metadata
        units, first = [], 0
        for rg in range(meta.num_row_groups):
            units.append(Unit(source, "parquet", path, column=name, column_kind=kind,
                              row_group=rg, first_row=first))
            first += meta.row_group(rg).num_rows
    if not meta.num_rows:  # zero rows: a unit of its own, so that the summary says so
        units = [Unit(source, "parquet", path, column=name, column_kind=kind, row_group=-1)]
    return units


def _plan_csv(source: str, path: str, column: str | None) -> Unit:
    try:
        names = csv_header(path)
    except (OSError, csv.Error) as e:
        return _error_unit(source, path, UNREADABLE_FILE,
                           f"{path}: cannot read the table: {type(e).__name__}: {e}")
    if column:
        if column not in names:
            raise ColumnError(f"{path} has no column {column!r}; columns: {', '.join(names)}")
        name = column
    elif len(names) == 1:
        name = names[0]
    else:
        name = next((g for g in COLUMN_GUESSES if g in names), "")
        if not name:
            raise ColumnError(f"{path}: say which column holds the images with --column; "
                              f"columns: {', '.join(names) or '(none: an empty file)'}")
    return Unit(source, "csv", path, column=name)


def _plan_file(source: str, path: str, column: str | None, kind: str | None) -> list[Unit]:
    path = os.path.normpath(path)  # the ids' prefix: './t.parquet#3' and 't.parquet#3' are one input
    if kind == "parquet":
        return _plan_parquet(source, path, column)
    if kind == "csv":
        return [_plan_csv(source, path, column)]
    if kind in ("list", "tar"):
        return [Unit(source, kind, path)]
    return [Unit(source, "file", path)]


def plan_units(sources: Iterable[str], column: str | None = None) -> list[Unit]:
    """The units of the SOURCE arguments, in order: cheap (a table's footer, a glob's shards
    and tables), never the inputs themselves.

    A source that cannot be opened is an 'error' unit (its own error row); a glob's shards and
    Parquet tables are read as such, its other files as images.

    Raises:
        ColumnError (a SystemExit): a table without the column, or with a column that holds
            no pictures (the run is refused before it starts).
    """
    units: list[Unit] = []
    for source in sources:
        if is_url(source):
            units.append(Unit(source, "url", source))
        elif os.path.isdir(source):
            units.append(Unit(source, "folder", source))
        elif os.path.isfile(source):
            units.extend(_plan_file(source, source, column, _source_kind(source)))
        elif glob.has_magic(source):
            units.append(Unit(source, "glob", source))
            for match in _glob(source):
                kind = _source_kind(match)
                if kind in ("parquet", "tar") and os.path.isfile(match):
                    units.extend(_plan_file(source, match, column, kind))
        elif os.path.lexists(source):  # a dangling link: its row says unreadable
            units.append(Unit(source, "file", os.path.normpath(source)))
        else:
            units.append(_error_unit(source, source, UNREADABLE_FILE,
                                     f"{source}: no such file, folder or glob"))
    return units


# ---------------------------------------------------------------------------- the inputs


def _walk_folder(folder: str, stats: SourceStats) -> Iterator[Item]:
    """The pictures below `folder`, a folder at a time, each sorted by name (memory: one
    folder's entries). Image suffixes are pictures; others are sniffed by content unless
    their suffix is known data (.json, .txt...). Symlinked folders are not followed (a link
    loop would never end); a dangling link is an input (its row says unreadable); a folder
    that cannot be listed is an error row."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        stats.failures.append(f"{folder}: {e.strerror or e}")
        yield Item(os.path.normpath(folder), error=f"{folder}: cannot list the folder: "
                                                   f"{type(e).__name__}: {e}")
        return
    subfolders = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                subfolders.append(entry.path)
                continue
            if entry.is_symlink() and entry.is_dir():
                stats.skipped["symlinked folder (not followed)"] += 1
                continue
            regular = entry.is_file() or entry.is_symlink()
        except OSError:
            regular = True
        if not regular:
            stats.skipped["not a file (device, fifo, socket)"] += 1
            continue
        kind = "image" if os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES else \
            classify_name(entry.name)
        if kind == "skip":
            stats.skipped[skip_reason(entry.name)] += 1
            continue
        if kind == "sniff" and sniff_file(entry.path) is False:
            stats.skipped[f"{NOT_AN_IMAGE} (content)"] += 1
            continue
        stats.inputs += 1
        yield Item(os.path.normpath(entry.path), path=entry.path)  # './m/' and 'm' give one id
    for sub in subfolders:
        yield from _walk_folder(sub, stats)


def _no_picture(row_id: str, what: str) -> Item:
    """The empty_image error row of a cell that holds nothing: null, or an empty string."""
    return Item(row_id, error=f"{row_id}: the cell is {what}: no picture", code=EMPTY_IMAGE)


def _glob(pattern: str) -> list[str]:
    """The files matching `pattern`, sorted; `**` recurses without following symlinked folders
    (glob.glob follows them, and a link to a parent folder never ends)."""
    if "**" not in pattern:
        return sorted(glob.glob(pattern))
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    # Path() is '.', whose glob gives relative paths, as glob.glob does for a relative pattern
    return sorted(str(p) for p in Path(*parts[:fixed]).glob(str(Path(*parts[fixed:]))))


def _expand_glob(pattern: str, stats: SourceStats) -> Iterator[Item]:
    matched = False
    for match in _glob(pattern):
        matched = True
        if _source_kind(match) in ("parquet", "tar") and os.path.isfile(match):
            continue  # units of their own (plan_units)
        if os.path.isfile(match) or (os.path.islink(match) and not os.path.isdir(match)):
            stats.inputs += 1  # files, and dangling links (their rows say unreadable)
            yield Item(os.path.normpath(match), path=match)
        else:
            stats.skipped["folder (a glob does not recurse into it)"] += 1
    if not matched:
        stats.empty_reason = "no file matches the pattern"


def _expand_list(unit: Unit, stats: SourceStats) -> Iterator[Item]:
    base = os.path.dirname(unit.name)
    for number, text, raw in iter_list_refs(unit.name):
        stats.inputs += 1
        yield _ref(text, base, f"{unit.name}#{number}", raw)


def _expand_csv(unit: Unit, stats: SourceStats) -> Iterator[Item]:
    base = os.path.dirname(unit.name)
    for row, value in iter_csv_values(unit.name, unit.column or ""):
        stats.inputs += 1
        row_id = f"{unit.name}#{row}"
        yield _ref(value, base, row_id) if value.strip() else _no_picture(row_id, "empty")


def _table_value(value: Any, kind: str, base: str, row_id: str) -> Item:
    """One cell (or list element) of a Parquet column as an input."""
    if kind == "image" and isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data is not None:  # as Hugging Face's Image feature: bytes win, even empty ones
            return Item(row_id, data=bytes(data))
        value, kind = path, "text"
    if isinstance(value, (bytes, bytearray)):
        return Item(row_id, data=bytes(value))  # empty bytes: "the image is empty (0 bytes)"
    if isinstance(value, str) and value.strip():
        return _ref(value, base, row_id)
    return _no_picture(row_id, "null" if value is None else "empty")


def _expand_parquet(unit: Unit, stats: SourceStats) -> Iterator[Item]:
    if unit.row_group < 0:
        stats.empty_reason = "a table of 0 rows"
        return
    base = os.path.dirname(unit.name)
    kind = unit.column_kind or "bytes"
    inner = kind.split(":", 1)[1] if kind.startswith("list:") else None
    row = unit.first_row
    for value in iter_row_group(unit.name, unit.column or "", unit.row_group):
        row_id = f"{unit.name}#{row}"
        if inner is None:
            stats.inputs += 1
            yield _table_value(value, kind, base, row_id)
        elif not value:
            stats.skipped["table row with no picture (empty list)"] += 1
        else:
            for index, element in enumerate(value):
                stats.inputs += 1
                yield _table_value(element, inner, base, f"{row_id}/{index}")
        row += 1


def _expand_tar(unit: Unit, stats: SourceStats) -> Iterator[Item]:
    for member in iter_shard(unit.name):
        item_id = f"{unit.name}/{member.name}"
        if member.skipped:
            stats.skipped[member.skipped] += 1
        elif member.error:
            stats.inputs += 1
            yield Item(item_id, error=f"{item_id}: {member.error}")
        else:
            stats.inputs += 1
            yield Item(item_id, data=member.data)


_EXPANDERS = {"list": _expand_list, "csv": _expand_csv, "parquet": _expand_parquet,
              "tar": _expand_tar}
_WHAT = {"list": "list", "csv": "table", "parquet": "table", "tar": "WebDataset shard"}


def expand_unit(unit: Unit, stats: SourceStats) -> Iterator[Item]:
    """The inputs of one unit, streamed; counts go to `stats`. A unit that cannot be read to
    its end gives the inputs read before the damage, then one error row under the unit's name
    (a Parquet row group: 'table.parquet#row-group-N'). Never raises for the data."""
    stats.kind = stats.kind or unit.kind
    if unit.kind == "error":
        stats.failures.append(unit.message or "")
        yield Item(unit.name, error=unit.message, code=unit.code)
        return
    if unit.kind == "url":
        stats.inputs += 1
        yield Item(unit.name, url=unit.name)
        return
    if unit.kind == "file":
        stats.inputs += 1
        yield Item(unit.name, path=unit.name)
        return
    if unit.kind == "folder":
        yield from _walk_folder(unit.name, stats)
        if not stats.inputs and not stats.failures:
            stats.empty_reason = "no pictures in the folder" + (
                f" ({sum(stats.skipped.values())} other files)" if stats.skipped else "")
        return
    if unit.kind == "glob":
        yield from _expand_glob(unit.name, stats)
        return
    before = stats.inputs
    last = None
    try:
        for item in _EXPANDERS[unit.kind](unit, stats):
            last = item.id
            yield item
    except Exception as e:  # noqa: BLE001 (pyarrow, tarfile, zlib, csv: any damage is the source's)
        name = unit.name if unit.kind != "parquet" else f"{unit.name}#row-group-{unit.row_group}"
        where = f" after {last}" if last else ""
        message = f"{name}: unreadable {_WHAT[unit.kind]}{where}: {type(e).__name__}: {e}"
        stats.failures.append(message)
        yield Item(name, error=message)
        return
    if stats.inputs == before and not stats.empty_reason:
        skipped = sum(stats.skipped.values())
        stats.empty_reason = (f"no pictures among its {skipped} members" if unit.kind == "tar"
                              and skipped else f"an empty {_WHAT[unit.kind]}")


def expand_window(unit: Unit, stats: SourceStats) -> Iterator[Item]:
    """The inputs of a window of `unit` (`Unit.skip`, `Unit.take`): those of `expand_unit`
    from the skip-th on, at most `take` of them; counts go to `stats`.

    The unit is expanded from its start each time: the inputs before the window are listed
    again, not decoded (a folder's or a list's names; a shard's members and a row group's
    cells are read again). The counts of the unit's windows add up to `expand_unit`'s: skipped members
    and failures are split between two windows at the first input of the later one. A window
    that starts past the unit's end gives nothing and counts nothing. The windows of a unit
    see the same inputs only if the source does not change between them.
    """
    if not unit.skip and unit.take is None:
        yield from expand_unit(unit, stats)
        return
    stop = None if unit.take is None else unit.skip + unit.take
    counts = SourceStats(unit.source)
    start = None if unit.skip else SourceStats(unit.source)
    items = expand_unit(unit, counts)
    try:
        for index, item in enumerate(items):
            if index == unit.skip and unit.skip:
                start = SourceStats(unit.source, counts.kind, counts.inputs,
                                    Counter(counts.skipped), list(counts.failures))
            if index == stop:
                break
            if index >= unit.skip:
                yield item
    finally:
        items.close()
    stats.kind = stats.kind or unit.kind
    if start is not None:
        stats.merge(SourceStats(unit.source, counts.kind, counts.inputs - start.inputs,
                                counts.skipped - start.skipped,
                                counts.failures[len(start.failures):], counts.empty_reason))


COMPRESSED_SHARD_BYTES = 32 * 1024  # a compressed shard's bytes per picture, for its estimate


def estimate_inputs(unit: Unit, row_counts: dict[str, list[int]] | None = None) -> int:
    """About how many inputs `unit` gives, without reading a picture (the Ray engine's
    rounds): exact for files, URLs, names and lines (listed again here), a table's row group
    (its footer; `row_counts` caches the footers by path) and a plain shard's members (its
    headers); a compressed shard by its size (COMPRESSED_SHARD_BYTES a picture), a column of
    picture lists by its rows. A unit that cannot be read counts as 1 (its error row)."""
    if unit.kind == "parquet":
        return max(1, _row_group_rows(unit, {} if row_counts is None else row_counts))
    if unit.kind == "tar":
        return max(1, count_shard_pictures(unit.name, COMPRESSED_SHARD_BYTES))
    if unit.kind in ("error", "url", "file"):
        return 1
    return max(1, _count_listed(unit))


def _count_listed(unit: Unit) -> int:
    """The inputs a folder, list, CSV table, glob, file or URL unit lists (names and lines)."""
    return sum(1 for _ in expand_unit(unit, SourceStats(unit.source)))


def _row_group_rows(unit: Unit, row_counts: dict[str, list[int]]) -> int:
    """The rows of a Parquet unit's row group, from the table's footer (read once a table)."""
    if unit.row_group < 0:
        return 0
    if unit.name not in row_counts:
        try:
            with open_parquet(unit.name) as pf:
                meta = pf.metadata
                row_counts[unit.name] = [meta.row_group(i).num_rows
                                         for i in range(meta.num_row_groups)]
        except (OSError, ValueError):
            row_counts[unit.name] = []
    rows = row_counts[unit.name]
    return rows[unit.row_group] if unit.row_group < len(rows) else 0


def count_inputs(units: Iterable[Unit]) -> int | None:
    """How many inputs `units` give, from names, lines and table footers, without reading a
    picture (a progress bar's total); None when a unit's count needs its contents: a shard's
    members, or a table column of picture lists."""
    total = 0
    row_counts: dict[str, list[int]] = {}  # rows per row group of a table: its footer, once
    for unit in units:
        if unit.kind == "tar" or (unit.kind == "parquet"
                                  and (unit.column_kind or "").startswith("list:")):
            return None
        if unit.kind != "parquet":
            total += _count_listed(unit)
        else:
            total += _row_group_rows(unit, row_counts)
    return total


def iter_items(sources: Iterable[str], column: str | None = None,
               stats: dict[str, SourceStats] | None = None) -> Iterator[Item]:
    """Every input of the SOURCE arguments, in order (see the module docstring); `stats`, when
    given, gets each source's counts.

    Raises:
        ColumnError (a SystemExit): a table without the column or with no pictures in it.
    """
    stats = stats if stats is not None else {}
    for unit in plan_units(sources, column):
        yield from expand_unit(unit, stats.setdefault(unit.source, SourceStats(unit.source)))


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
    """The item's bytes. Raises SourceError (its code, FETCH_FAILED or UNREADABLE_FILE)."""
    if item.error is not None:
        raise SourceError(item.code or UNREADABLE_FILE, item.error)
    if item.data is not None:
        return item.data
    if item.url is not None:
        return fetch_url(item.url)
    try:
        with open(item.path or "", "rb") as f:
            return f.read()
    except OSError as e:
        raise SourceError(UNREADABLE_FILE, f"{item.id}: {type(e).__name__}: {e}") from e
