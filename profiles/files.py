"""Uploaded files kept in the database in chunks, so any worker can read them back.

`store_chunks` streams an upload into chunk rows (never the whole file in memory);
`ChunkStream` reads them back, in order, as one byte stream that counts what it handed out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

CHUNK_BYTES = 1024 * 1024
# The csv module stops the whole file at a cell over its limit (131,072 characters by default).
# Readers get room for far larger cells, so that a long cell fails its row alone (importers check
# MAX_CSV_CELL_CHARS per row); a cell past the reader's limit is most likely an unclosed quote
# swallowing the rest of the file, and the read stops with csv.Error. The limit is process-wide.
MAX_CSV_CELL_CHARS = 128 * 1024
csv.field_size_limit(4 * 1024 * 1024)
# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV Injection").
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def store_chunks(first: bytes, upload, make_chunk: Callable[[int, bytes], object]) -> int:
    """Store `first` and the rest of `upload` as numbered chunks; returns the total size."""
    size, sequence, data = 0, 0, first
    while data:
        make_chunk(sequence, data)
        size += len(data)
        sequence += 1
        data = upload.read(CHUNK_BYTES)
    return size


class ChunkStream(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]):
        self.chunks = chunks
        self.buffer = b""
        self.bytes_read = 0

    def readable(self):
        return True

    def readinto(self, target):
        while not self.buffer:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.buffer = bytes(chunk)
        size = min(len(target), len(self.buffer))
        target[:size] = self.buffer[:size]
        self.buffer = self.buffer[size:]
        self.bytes_read += size
        return size


def text_reader(stream: ChunkStream) -> io.TextIOWrapper:
    """UTF-8 text (a BOM is skipped), universal newlines left to the csv module."""
    return io.TextIOWrapper(
        io.BufferedReader(stream, buffer_size=64 * 1024), encoding="utf-8-sig", newline=""
    )


def csv_safe_cell(value):
    """A text cell a spreadsheet would run as a formula gets a leading `'`, so it shows as text.
    Only text: numbers (row numbers, counts) are ours, and a negative one stays a number."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def csv_lines(header: list[str], rows, *, workspace_id: int) -> Iterator[str]:
    """A report as streamed CSV lines, every text cell passed through `csv_safe_cell` (cells hold
    what users uploaded). Streaming responses run after the view has returned (and its workspace
    context is gone), so the generator enters the workspace itself; `rows` is a lazy queryset of
    tuples."""
    from masivo.tenancy.context import workspace_scope

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_safe_cell(cell) for cell in header])
    yield buffer.getvalue()
    with workspace_scope(workspace_id):
        for row in rows.iterator(chunk_size=2000):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([csv_safe_cell(cell) for cell in row])
            yield buffer.getvalue()
