"""A unit's entries past its first chunk, kept by that chunk for the others.

A big unit runs as several chunks (pipeline/work.py), and a source is a stream: a tar.gz
has no index, git streams its blobs, a folder is walked. Read from the source, every chunk
would parse the whole unit again to find its own window (Python's tarfile parses a header
in ~0.1 ms: a 7,000-file sdist cut in four chunks cost 14 s where one read costs 3.5 s).
So the first chunk, which reads the whole unit anyway (it counts the records), writes the
raw entries past its window here, and each later chunk reads only its own window's row
groups. What a later chunk makes of its entries is what it would make of them from the
source: the same entries, in the same order, with the same ordinals; where the source broke
mid-stream, the error is in the stash's metadata and ends the unit at the same place. The
repository's metadata the first chunk read from the source (where it came from, its owner,
commit and sha256) is in the stash's metadata too: finding a package's owner can mean reading
a whole compressed archive for its PKG-INFO (about 1 s for numpy's sdist), which a later chunk
then does not do again.

The stash is a Parquet file in the build's `_work` (written under a temporary name, then
renamed: it exists whole or not at all). A later chunk that finds none reads the source as
before. The driver removes it once the unit's last chunk is done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from stages.readers import Entry

SCHEMA = pa.schema([
    ("ordinal", pa.int64()),
    ("path", pa.binary()),  # names may be surrogate-escaped (not UTF-8): kept as their bytes
    ("size", pa.int64()),
    ("data", pa.large_binary()),
    ("reason", pa.string()),
    ("detail", pa.binary()),
])
FLUSH_BYTES = 32 * 1024**2  # a row group holds at most about this much content (and never two windows)


def _raw(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", "surrogateescape")


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


class StashWriter:
    """Entries past the first window, appended in order; a row group never spans two windows
    of `window` records, so a chunk reads only its own. Nothing is written until the first
    entry (a unit that fits in one chunk leaves no stash)."""

    def __init__(self, path: Path, window: int):
        self.path = path
        self.window = window
        self._tmp = path.with_suffix(".tmp")
        self._writer: pq.ParquetWriter | None = None
        self._rows: list[tuple[int, Entry]] = []
        self._bytes = 0

    def add(self, ordinal: int, entry: Entry) -> None:
        if self._rows and (ordinal // self.window != self._rows[-1][0] // self.window or self._bytes >= FLUSH_BYTES):
            self._flush()
        self._rows.append((ordinal, entry))
        self._bytes += len(entry.data or b"")

    def _flush(self) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, SCHEMA, compression="zstd", compression_level=1)
        columns = {
            "ordinal": [o for o, _ in self._rows],
            "path": [_raw(e.path) for _, e in self._rows],
            "size": [e.size for _, e in self._rows],
            "data": [e.data for _, e in self._rows],
            "reason": [e.reason for _, e in self._rows],
            "detail": [_raw(e.detail) for _, e in self._rows],
        }
        self._writer.write_table(pa.table(columns, schema=SCHEMA))
        self._rows, self._bytes = [], 0

    def close(self, records: int, error: str | None, repo: dict[str, str | None] | None = None) -> None:
        """Publish the stash: the unit's record count, the error that ended its stream (None:
        it ended cleanly) and the repository's metadata read from the source go in its
        metadata."""
        if self._rows:
            self._flush()
        if self._writer is None:
            return
        self._writer.add_key_value_metadata({"stash": json.dumps({"records": records, "error": error, "repo": repo})})
        self._writer.close()
        self._writer = None
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        """Leave nothing behind (the chunk failed before the unit's end)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._tmp.unlink(missing_ok=True)


class StashSummary(NamedTuple):
    records: int  # of the unit
    error: str | None  # what ended its stream; None: it ended cleanly
    repo: dict[str, str | None] | None  # the repository's metadata from the source; None: not kept


def stash_summary(path: Path) -> StashSummary:
    meta = json.loads(pq.ParquetFile(path).metadata.metadata[b"stash"])
    return StashSummary(meta["records"], meta["error"], meta.get("repo"))


def read_stash(path: Path, start: int, stop: int | None) -> Iterator[tuple[int, Entry]]:
    """(ordinal, entry) for the stashed entries numbered `start` to `stop` (exclusive), in
    order, reading only the row groups that hold them."""
    file = pq.ParquetFile(path)
    for group in range(file.num_row_groups):
        stats = file.metadata.row_group(group).column(0).statistics
        if stats.max < start or (stop is not None and stats.min >= stop):
            continue
        for row in file.read_row_group(group).to_pylist():
            if row["ordinal"] >= start and (stop is None or row["ordinal"] < stop):
                yield row["ordinal"], Entry(_text(row["path"]), row["size"], row["data"], row["reason"],
                                            _text(row["detail"]))
