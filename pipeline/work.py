"""The work directory: where passes hand off to each other, and what makes resume work.

    OUT/_work/<config fingerprint>/
        parts/<unit>.files.parquet   every file of the unit after the per-file stages
        parts/<unit>.repos.parquet   the unit's repository rows
        parts/<unit>.done.json       completion marker with the unit's stage stats
        staging/                     the writer's output before it is moved into OUT

A unit counts as done only once its marker exists; the marker is written last, after an
atomic rename of both parts, so a killed task leaves nothing that a rerun would trust.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core import schema
from corpus_core.records import FILE_FIELDS, FileRecord, RepoRecord
from corpus_core.storage import write_atomic

BATCH_ROWS = 512


class WorkDir:
    def __init__(self, out_dir: Path, fingerprint: str):
        self.root = out_dir / "_work"
        self.path = self.root / fingerprint
        self.parts = self.path / "parts"
        self.staging = self.path / "staging"

    def prepare(self) -> None:
        """Create this build's work dir; drop work left by builds with another config."""
        if self.root.exists():
            for other in self.root.iterdir():
                if other != self.path:
                    shutil.rmtree(other, ignore_errors=True)
        self.parts.mkdir(parents=True, exist_ok=True)

    def done_marker(self, unit_key: str) -> Path:
        return self.parts / f"{unit_key}.done.json"

    def is_done(self, unit_key: str) -> bool:
        return self.done_marker(unit_key).exists()

    def read_marker(self, unit_key: str) -> dict[str, Any]:
        return json.loads(self.done_marker(unit_key).read_text())

    def files_part(self, unit_key: str) -> Path:
        return self.parts / f"{unit_key}.files.parquet"

    def repos_part(self, unit_key: str) -> Path:
        return self.parts / f"{unit_key}.repos.parquet"

    def table_part(self, unit_key: str, table: str) -> Path:
        """A table a stage keeps per unit (e.g. `licenses`), read back as a DuckDB view."""
        return self.parts / f"{unit_key}.{table}.parquet"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _file_rows(records: Iterable[FileRecord], unit_key: str) -> Iterable[pa.RecordBatch]:
    batch: list[FileRecord] = []
    ordinal = 0
    for record in records:
        batch.append(record)
        if len(batch) == BATCH_ROWS:
            yield _file_batch(batch, unit_key, ordinal)
            ordinal += len(batch)
            batch = []
    if batch:
        yield _file_batch(batch, unit_key, ordinal)


def _file_batch(records: list[FileRecord], unit_key: str, first_ordinal: int) -> pa.RecordBatch:
    columns: dict[str, list] = {name: [getattr(r, name) for r in records] for name in FILE_FIELDS}
    columns["id"] = [r.id for r in records]
    columns["unit"] = [unit_key] * len(records)
    columns["ordinal"] = list(range(first_ordinal, first_ordinal + len(records)))
    return pa.RecordBatch.from_pydict(columns, schema=schema.PART)


def write_files_part(work: WorkDir, unit_key: str, records: Iterable[FileRecord]) -> None:
    """Stream a unit's records to its files part."""
    files_tmp = work.files_part(unit_key).with_suffix(".tmp")
    with pq.ParquetWriter(files_tmp, schema.PART, compression="zstd") as writer:
        for batch in _file_rows(records, unit_key):
            writer.write_batch(batch)
    os.replace(files_tmp, work.files_part(unit_key))


def write_repos_part(work: WorkDir, unit_key: str, repos: Iterable[RepoRecord], tables: dict[str, pa.Table]) -> None:
    """The unit's repository rows and the stages' per-unit tables (after its files part)."""
    rows = [{**{name: getattr(r, name) for name in schema.REPO_PART.names if name != "detail"}, "detail": r.error}
            for r in repos]
    write_atomic(pa.Table.from_pylist(rows, schema=schema.REPO_PART), work.repos_part(unit_key))
    for name, table in tables.items():
        write_atomic(table, work.table_part(unit_key, name))


def mark_done(work: WorkDir, unit_key: str, stats: dict[str, Any]) -> None:
    marker_tmp = work.done_marker(unit_key).with_suffix(".tmp")
    marker_tmp.write_text(json.dumps(stats, sort_keys=True))
    os.replace(marker_tmp, work.done_marker(unit_key))
