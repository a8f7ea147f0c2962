"""The rows `simclip score` writes, and the two output formats.

One row per input:

    path           the input's id: its path, URL, 'shard.tar/member' or 'table.parquet#row'
    sha256         of the image bytes (null when they could not be read)
    mode           'trained' or 'zero-shot'
    scores         one float per warning category (a struct in Parquet, an object in JSONL)
    warnings       the flagged categories' ids, highest score first
    text           the OCR text
    frames         frames judged (1 for a still image)
    calibrated     whether the scores' thresholds are calibrated
    model          backbone id and head (checkpoint sha256, or the zero-shot prompts digest)
    identity       the predictor identity (backbone, head, OCR settings): the result-cache key
    error          null, or a typed code: simclip's ImageError codes (corrupt_image,
                   unsupported_format, vector_svg, image_too_large, empty_image), fetch_failed,
                   unreadable_file, ocr_failed, internal_error
    error_message  what went wrong, for people

`--out NAME.jsonl` is one JSON object a line, appended as rows are done. Any other name is a
Parquet dataset: a folder of part files (written atomically by the local engine, by Ray's
writer for the Ray engine) that pyarrow, pandas, DuckDB, Spark and Ray read as one table
(`read_rows` here). Both can be resumed: `read_done` lists the ids already written.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

COLUMNS = ("path", "sha256", "mode", "scores", "warnings", "text", "frames", "calibrated",
           "model", "identity", "error", "error_message")
OCR_FAILED = "ocr_failed"  # the OCR engine raised (our problem, not the image's)
INTERNAL_ERROR = "internal_error"  # the encoders or the head raised
PART_ROWS = 4096  # rows per Parquet part file written by the local engine
PART_SECONDS = 60.0  # ...or fewer, once a minute


def is_jsonl(out: str | os.PathLike[str]) -> bool:
    """True when `--out` names a JSONL file (.jsonl or .ndjson), else it is Parquet."""
    return Path(out).suffix.lower() in (".jsonl", ".ndjson")


def result_row(item_id: str, sha256: str, result: dict[str, Any], model: str,
               identity: str) -> dict[str, Any]:
    """The row of a scored picture, from a server-format result (mode, scores, warnings...)."""
    return {"path": item_id, "sha256": sha256, "mode": result["mode"],
            "scores": {c: float(s) for c, s in result["scores"].items()},
            "warnings": [w["id"] for w in result["warnings"]], "text": result["text"],
            "frames": int(result.get("frames", 1)), "calibrated": bool(result["calibrated"]),
            "model": model, "identity": identity, "error": None, "error_message": None}


def error_row(item_id: str, sha256: str | None, code: str, message: str, model: str,
              identity: str) -> dict[str, Any]:
    """The row of an input that could not be scored."""
    return {"path": item_id, "sha256": sha256, "mode": None, "scores": None, "warnings": None,
            "text": None, "frames": None, "calibrated": None, "model": model,
            "identity": identity, "error": code, "error_message": message}


def arrow_schema(categories: list[str]) -> Any:
    """The Parquet schema: `scores` is a struct with one float64 field per category."""
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("sha256", pa.string()), ("mode", pa.string()),
        ("scores", pa.struct([(c, pa.float64()) for c in categories])),
        ("warnings", pa.list_(pa.string())), ("text", pa.string()), ("frames", pa.int32()),
        ("calibrated", pa.bool_()), ("model", pa.string()), ("identity", pa.string()),
        ("error", pa.string()), ("error_message", pa.string()),
    ])


def rows_to_table(rows: list[dict[str, Any]], categories: list[str]) -> Any:
    """Rows -> a pyarrow Table with `arrow_schema(categories)`."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=arrow_schema(categories))


OUT_MARKER = "_simclip_score.json"  # in a Parquet --out folder: the folder is ours ('_': not data)


def check_out(out: str | os.PathLike[str]) -> None:
    """Refuse, before any work, an `--out` that is not a simclip score output or cannot be one.

    A JSONL --out must be absent, empty, or begin with a row of ours; a Parquet --out folder
    must be absent, empty, or ours (marked by OUT_MARKER, or only part files with our columns).
    The folder (and the marker) or the file's parent are created here, so an unwritable place
    is found now, not after the model has loaded. Nothing of the user's is renamed or changed.

    Raises:
        SystemExit: with what is wrong and what to do.
    """
    path = Path(out)
    if is_jsonl(path):
        if path.is_dir():
            raise SystemExit(f"--out {out} is a folder; name a .jsonl file")
        _make_folder(path.parent, out)
        if path.exists() and path.stat().st_size:
            with open(path, encoding="utf-8", errors="replace") as f:
                first = f.readline()
            try:
                row = json.loads(first)
            except ValueError:
                row = None
            if not (isinstance(row, dict) and "path" in row and "identity" in row):
                raise SystemExit(f"--out {out} exists and is not a simclip score output (its "
                                 "first line is not one of our rows); name a new file")
        try:
            open(path, "a").close()  # noqa: SIM115 (only: can it be written?)
        except OSError as e:
            raise SystemExit(f"--out {out} cannot be written: {e.strerror or e}") from e
        return
    if path.exists() and not path.is_dir():
        raise SystemExit(f"--out {out} is a file; Parquet output is a folder of part files "
                         "(name a new folder, or NAME.jsonl)")
    if path.is_dir() and not (path / OUT_MARKER).exists():
        foreign = next((f for f in sorted(path.iterdir()) if not _is_our_file(f)), None)
        if foreign is not None:
            raise SystemExit(f"--out {out} is a folder that is not a simclip score output (it "
                             f"holds {foreign.name}); name a new or empty folder")
    _make_folder(path, out)
    try:
        (path / OUT_MARKER).write_text(json.dumps({"written_by": "simclip score"}) + "\n")
    except OSError as e:
        raise SystemExit(f"--out {out} cannot be written: {e.strerror or e}") from e


def remove_unwritten_out(out: str | os.PathLike[str], lock_file: str | os.PathLike[str]) -> bool:
    """Remove an `--out` this run created (check_out) and wrote no row to: an empty JSONL file,
    or a Parquet folder holding only the marker (and the run's lock), with the lock file; a run
    refused or stopped before its first row leaves nothing behind. Something else in it (a row,
    a part file, a file of the user's) keeps it whole.

    Returns:
        True when it was removed.
    """
    path, lock = Path(out), Path(lock_file)
    try:
        if is_jsonl(path):
            if not path.is_file() or path.stat().st_size:
                return False
            path.unlink()
            lock.unlink(missing_ok=True)
            return True
        if not path.is_dir() or {f.name for f in path.iterdir()} - {OUT_MARKER, lock.name}:
            return False
        (path / OUT_MARKER).unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        path.rmdir()
        return True
    except OSError:  # left as it is: a later run reads it as ours
        return False


def _make_folder(folder: Path, out: str | os.PathLike[str]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"--out {out}: cannot make the folder {folder}: {e.strerror or e}") from e


def _is_our_file(path: Path) -> bool:
    """A file a simclip score run (or Ray's writer for it) may have left in its --out folder."""
    if path.name.startswith((".", "_")):
        return True
    if path.suffix != ".parquet" or not path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except Exception:  # unreadable: not provably ours
        return False
    return {"path", "identity", "scores", "error"} <= names


def _parquet_files(folder: Path) -> list[Path]:
    """The part files of a Parquet dataset folder (names starting '.' or '_' are not data)."""
    return sorted(p for p in folder.rglob("*.parquet")
                  if not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts))


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(line, row) for each line of a JSONL file; row None for a line that is not a row (one
    cut by a crash: JsonlWriter trims it on resume)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            yield line, row if isinstance(row, dict) else None


def read_rows(out: str | os.PathLike[str], columns: list[str] | None = None,
              shas: set[str] | None = None) -> list[dict[str, Any]]:
    """Every row written to `out` (JSONL or a Parquet dataset folder); [] when absent.
    `shas`: only the rows with one of these sha256."""
    return list(iter_rows(out, columns, shas))


def iter_rows(out: str | os.PathLike[str], columns: list[str] | None = None,
              shas: set[str] | None = None) -> Iterator[dict[str, Any]]:
    """The rows of `out`, a line or a part file at a time (see `read_rows`)."""
    out = Path(out)
    if not out.exists():
        return
    if is_jsonl(out):
        for _, row in _jsonl_rows(out):
            if row is not None and (shas is None or row.get("sha256") in shas):
                yield {k: row.get(k) for k in columns} if columns else row
        return
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for path in _parquet_files(out) if out.is_dir() else [out]:
        try:
            table = pq.read_table(path, columns=columns if shas is None else None)
        except Exception as e:  # a part cut by a crash (Ray writes parts in place)
            broken = path.with_name("_broken-" + path.name)
            logger.warning("%s is unreadable (%s): renamed to %s, its rows are scored again",
                           path, e, broken.name)
            path.rename(broken)
            continue
        if shas is not None:
            table = table.filter(pc.fill_null(pc.is_in(
                table["sha256"], value_set=pa.array(sorted(shas), pa.string())), False))
            if columns:
                table = table.select(columns)
        yield from table.to_pylist()


# errors of the moment, not of the image: `--retry-errors` scores these rows again
RETRYABLE = ("fetch_failed", "unreadable_file", "ocr_failed", "internal_error")


def drop_error_rows(out: str | os.PathLike[str], codes: Iterable[str], ids: set[str]) -> int:
    """Remove from `out` the rows of the inputs `ids` whose error is one of `codes`, so that a
    rerun scores them again; returns how many went. Every other row stays (other inputs' rows
    too: an --out shared by several runs keeps theirs). Each file is rewritten atomically
    (temp + rename): a crash leaves the old file or the new one, never half.
    """
    codes = set(codes)
    path = Path(out)
    dropped = 0
    if is_jsonl(path):
        if not path.exists():
            return 0
        kept = []
        for line, row in _jsonl_rows(path):
            if row is not None and row.get("error") in codes and row.get("path") in ids:
                dropped += 1
            else:
                kept.append(line)
        if dropped:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, path)
        return dropped
    if not path.is_dir():
        return 0
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for part in _parquet_files(path):
        try:
            table = pq.read_table(part)
        except Exception:  # a part cut by a crash: read_rows sets it aside
            continue
        retry = pc.fill_null(pc.and_(
            pc.is_in(table["error"], value_set=pa.array(sorted(codes), pa.string())),
            pc.is_in(table["path"], value_set=pa.array(sorted(ids), pa.string()))), False)
        n = pc.sum(retry).as_py() or 0
        if n:
            tmp = part.with_name(f".{part.name}.tmp")
            pq.write_table(table.filter(pc.invert(retry)), tmp)
            os.replace(tmp, part)
            dropped += n
    return dropped


def read_done(out: str | os.PathLike[str], identity: str) -> set[str]:
    """The ids already written to `out` (resume).

    Raises:
        SystemExit: `out` holds rows of another model or OCR (another `identity`).
    """
    done, others = set(), set()
    for row in iter_rows(out, ["path", "identity"]):
        done.add(row["path"])
        if row["identity"] != identity:
            others.add(row["identity"])
    if others:
        raise SystemExit(f"{out} holds rows scored with another model or OCR settings "
                         f"(identity {sorted(others)[0]}, now {identity}); write to a new --out")
    return done


class JsonlWriter:
    """Appends rows to a JSONL file, one flush per call; a line cut by a crash is trimmed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._trim_cut_line()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def _trim_cut_line(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows and flush."""
        for row in rows:
            self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class ParquetPartWriter:
    """Writes rows as part files of a Parquet dataset folder, each atomically (temp + rename)."""

    def __init__(self, folder: str | os.PathLike[str], categories: list[str],
                 part_rows: int = PART_ROWS) -> None:
        self.folder = Path(folder)
        if self.folder.is_file():
            raise SystemExit(f"{folder} is a file; Parquet output is a folder of part files "
                             "(name another --out, or use .jsonl)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.categories = categories
        self.part_rows = part_rows
        self._run = uuid.uuid4().hex[:8]
        self._parts = 0
        self._rows: list[dict[str, Any]] = []
        self._last = time.monotonic()

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Buffer rows; write a part when `part_rows` are buffered or PART_SECONDS have passed
        since the last (a killed run loses at most that much work)."""
        self._rows.extend(rows)
        if len(self._rows) >= self.part_rows or time.monotonic() - self._last >= PART_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one part file."""
        if not self._rows:
            return
        import pyarrow.parquet as pq

        name = f"part-{self._run}-{self._parts:05d}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(rows_to_table(self._rows, self.categories), tmp)
        os.replace(tmp, self.folder / name)
        self._parts += 1
        self._rows = []
        self._last = time.monotonic()

    def close(self) -> None:
        """Write what is buffered."""
        self.flush()
