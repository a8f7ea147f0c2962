"""Lists and tables as the ecosystem writes them: text encodings, CSV, Parquet column types.

Text (a .txt list, a .csv table) is read a line at a time as bytes and decoded line by line:
UTF-8 (a byte-order mark skipped), else Windows-1252 (what Excel and Notepad write on Western
Windows: 'café.png' saved in cp1252), else Latin-1; a UTF-16 file (a byte-order mark) is
decoded whole, as Excel's "Unicode text" is.

A Parquet column may be:

    binary, large_binary, binary_view          image bytes: one picture a row, id 'table#row'
    string, large_string, string_view          a path, an http(s) URL or a data: URI
    struct<bytes, path>                        a Hugging Face `Image` (bytes, else the path)
    list / large_list / fixed_size_list of one of these   a Hugging Face `Sequence(Image)`:
                                               one picture an element, id 'table#row/index'
    dictionary<one of these>                   pandas' `category` column: read as its values

Anything else is refused before the run, with the column's type named (`ColumnError`).
A table is read one row group at a time, in record batches of BATCH_ROWS rows, so memory holds
a few rows' pictures, never the table.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from typing import Any

BATCH_ROWS = 16  # rows per record batch read from a Parquet row group
PARQUET_BUFFER = 1 << 20  # buffered column-chunk reads: pages, not whole column chunks
# a CSV cell may be a data: URI of a whole picture (base64 of up to sources.FETCH_MAX_BYTES, 32
# MiB); the csv module refuses a field over 128 KiB by default, which is a 96 KiB meme
CSV_FIELD_LIMIT = 64 * 1024 * 1024
COLUMN_GUESSES = ("path", "url", "image", "img", "images", "bytes", "file", "filename",
                  "image_path", "image_url", "jpg", "png", "picture")


class ColumnError(SystemExit):
    """A table without the column, or with a column of a type that holds no pictures: the run
    is refused before it starts (exit 2)."""


# ---------------------------------------------------------------------------- text


def decode_line(raw: bytes) -> str:
    """One line of a list or CSV: UTF-8, else Windows-1252, else Latin-1 (never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def iter_text_lines(path: str) -> Iterator[tuple[str, bytes]]:
    """(decoded line, raw bytes) for each line of a text file, newline kept; the raw bytes let a
    path that is not UTF-8 on disk be found under its own bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = codecs.getreader("utf-16")(f)
            for line in text:
                yield line, line.encode("utf-8", "surrogateescape")
            return
        first = True
        for raw in f:
            if first and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            first = False
            yield decode_line(raw), raw


def iter_list_refs(path: str) -> Iterator[tuple[int, str, bytes]]:
    """(line number from 1, text, raw bytes) of each entry of a list: blank lines and '#'
    comments are skipped."""
    for number, (line, raw) in enumerate(iter_text_lines(path), 1):
        text = line.strip()
        if text and not text.startswith("#"):
            yield number, text, raw.strip()


def _csv_reader(path: str) -> Any:
    """A csv reader over the decoded lines of `path`, taking fields of up to CSV_FIELD_LIMIT."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:  # the limit is the csv module's, process-wide
        csv.field_size_limit(CSV_FIELD_LIMIT)
    return csv.reader(line for line, _ in iter_text_lines(path))


def csv_header(path: str) -> list[str]:
    """The column names of a CSV file (its first record)."""
    return next(_csv_reader(path), [])


def iter_csv_values(path: str, column: str) -> Iterator[tuple[int, str]]:
    """(row number from 0, value) of one column of a CSV file, streamed."""
    reader = _csv_reader(path)
    names = next(reader, [])
    index = names.index(column)
    for row, record in enumerate(reader):
        yield row, record[index] if index < len(record) else ""


# ---------------------------------------------------------------------------- Parquet


def column_kind(dtype: Any) -> str | None:
    """'bytes', 'text', 'image' (struct<bytes, path>), 'list:<kind>', or None for a type that
    holds no pictures."""
    import pyarrow.types as t

    if t.is_dictionary(dtype):  # pandas' `category`: read as its values
        return column_kind(dtype.value_type)
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_fixed_size_binary(dtype) or (
            hasattr(t, "is_binary_view") and t.is_binary_view(dtype)):
        return "bytes"
    if t.is_string(dtype) or t.is_large_string(dtype) or (
            hasattr(t, "is_string_view") and t.is_string_view(dtype)):
        return "text"
    if t.is_struct(dtype):
        names = {dtype.field(i).name for i in range(dtype.num_fields)}
        if "bytes" in names and column_kind(dtype.field("bytes").type) == "bytes":
            return "image"
        return None
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype) or (
            hasattr(t, "is_list_view") and t.is_list_view(dtype)):
        inner = column_kind(dtype.value_type)
        return f"list:{inner}" if inner and not inner.startswith("list") else None
    return None


ACCEPTED = ("binary, large_binary, string (paths, URLs, data: URIs), struct<bytes, path> (a "
            "Hugging Face Image) or a list of those (Sequence(Image))")


def pick_column(path: str, schema: Any, column: str | None) -> tuple[str, str]:
    """(column name, kind) of a Parquet schema: --column, else the only column, else the first
    of COLUMN_GUESSES, else the only column that holds pictures.

    Raises:
        ColumnError: no such column, no way to choose, or a type that holds no pictures.
    """
    names = list(schema.names)
    if column is None:
        column = names[0] if len(names) == 1 else next((g for g in COLUMN_GUESSES if g in names),
                                                       None)
        if column is None:
            usable = [n for n in names if column_kind(schema.field(n).type) in
                      ("bytes", "image", "list:bytes", "list:image")]
            if len(usable) != 1:
                raise ColumnError(f"{path}: say which column holds the images with --column; "
                                  f"columns: {', '.join(names)}")
            column = usable[0]
    elif column not in names:
        raise ColumnError(f"{path} has no column {column!r}; columns: {', '.join(names)}")
    dtype = schema.field(column).type
    kind = column_kind(dtype)
    if kind is None:
        raise ColumnError(f"{path}: column {column!r} is {dtype}, which holds no pictures; "
                          f"simclip score reads {ACCEPTED}")
    return column, kind


def open_parquet(path: str) -> Any:
    """A pyarrow ParquetFile whose column chunks are read page by page (PARQUET_BUFFER)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, buffer_size=PARQUET_BUFFER, pre_buffer=False)


def iter_row_group(path: str, column: str, row_group: int) -> Iterator[Any]:
    """The values (Python objects) of one column of one row group, a record batch at a time."""
    pf = open_parquet(path)
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[row_group],
                                     columns=[column], use_threads=False):
            yield from batch.column(0).to_pylist()
    finally:
        pf.close()
