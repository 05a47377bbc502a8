"""File helpers every layer uses: content hashes, atomic Parquet writes, paths in SQL."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sql_path(path: Path) -> str:
    """A path as a DuckDB string literal (globs allowed)."""
    return "'" + str(path).replace("'", "''") + "'"


def sql_list(paths: list[Path] | list[str]) -> str:
    """Paths as a DuckDB list literal, for read_parquet of several files in their order."""
    return "[" + ", ".join(sql_path(path) for path in paths) + "]"


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file under a temporary name and rename it: readers never see half of it."""
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
