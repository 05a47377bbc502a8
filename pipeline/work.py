"""The work directory: where passes hand off to each other, and what makes resume work.
It lies in OUT, or in `execution.work_dir` (always for an object store `--out`): a
filesystem every node sees.

    OUT/_work/<config fingerprint>/
        parts/<chunk>.files.parquet   every file of the chunk after the per-file stages
        parts/<chunk>.repos.parquet   the repository rows it saw
        parts/<chunk>.<table>.parquet a table a file stage keeps (license evidence)
        parts/<chunk>.done.json       completion marker with the chunk's stage stats
        parts/<first chunk>.entries.parquet
                                      a cut unit's entries past its first window (stages/stash.py),
                                      removed once the unit's last chunk is done
        staging/                      the writer's output before it is moved into OUT

A chunk is a window of a unit's records (the whole unit when `execution.chunk_files` is 0);
its key is the unit's key plus the chunk size and number. A chunk counts as done only once
its marker exists; the marker is written last, after an atomic rename of its parts, so a
killed task leaves nothing that a rerun would trust. A unit's first chunk records how many
records the unit has, so a rerun knows its other chunks without reading it again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core import schema
from corpus_core.records import FILE_FIELDS, FileRecord, RepoRecord
from corpus_core.storage import write_atomic
from corpus_core.urls import scrub_credentials
from pipeline.outdir import WORK, remove_work
from stages.sources import Unit

BATCH_ROWS = 512


@dataclass(frozen=True)
class Chunk:
    """A window of a unit's records: what one task ingests and runs the file stages on. A
    big repository is several chunks so that it keeps every worker busy; the records keep
    their ordinals in the unit, so the output is the same however the unit was cut."""

    unit: Unit
    number: int
    size: int  # records per chunk (execution.chunk_files); 0: the whole unit in one task

    @property
    def key(self) -> str:
        """Names the chunk's parts and marker; the chunk size is in it, so parts cut another
        way are never mixed in."""
        return self.unit.key if not self.size else f"{self.unit.key}.{self.size}-{self.number:05d}"

    @property
    def start(self) -> int:
        return self.number * self.size

    @property
    def stop(self) -> int | None:
        return self.start + self.size if self.size else None

    def all_of_unit(self, records: int) -> list[Chunk]:
        """Every chunk of this one's unit, once the unit is known to hold `records` records."""
        count = max(1, -(-records // self.size)) if self.size else 1
        return [Chunk(self.unit, number, self.size) for number in range(count)]


class WorkDir:
    def __init__(self, out_dir: Path, fingerprint: str):
        self.out_dir = out_dir
        self.root = out_dir / WORK
        self.path = self.root / fingerprint
        self.parts = self.path / "parts"
        self.staging = self.path / "staging"

    def prepare(self) -> None:
        """Create this build's work dir; drop work left by builds with another config."""
        remove_work(self.out_dir, keep=self.path.name)
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

    def stash(self, chunk: Chunk) -> Path | None:
        """Where a unit cut into chunks keeps its entries past the first window (stages/stash.py);
        None for a unit that is never cut."""
        return self.parts / f"{Chunk(chunk.unit, 0, chunk.size).key}.entries.parquet" if chunk.size else None

    def table_part(self, unit_key: str, table: str) -> Path:
        """A table a stage keeps per unit (e.g. `licenses`), read back as a DuckDB view."""
        return self.parts / f"{unit_key}.{table}.parquet"

    def unit_files(self, unit_key: str, first_key: str) -> list[Path]:
        """Every part and marker of a unit's chunks, to redo a unit whose source changed, in
        the order to delete them: the first chunk's marker last, so a kill midway leaves a
        unit that still reads as changed (never other chunks' old parts trusted)."""
        chunk = re.compile(re.escape(unit_key) + r"(?:\.\d+-\d{5})?\.[A-Za-z_]+\.(?:parquet|json|tmp)$")
        found = [p for p in self.parts.iterdir() if chunk.match(p.name)]
        return sorted(found, key=lambda p: p == self.done_marker(first_key))

    def remove(self) -> None:
        remove_work(self.out_dir)


def _file_rows(records: Iterable[FileRecord], unit_key: str) -> Iterable[pa.RecordBatch]:
    batch: list[FileRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH_ROWS:
            yield _file_batch(batch, unit_key)
            batch = []
    if batch:
        yield _file_batch(batch, unit_key)


def _file_batch(records: list[FileRecord], unit_key: str) -> pa.RecordBatch:
    columns: dict[str, list] = {name: [getattr(r, name) for r in records] for name in FILE_FIELDS}
    columns["detail"] = [scrub_credentials(detail) for detail in columns["detail"]]  # a fetch's error names its URL
    columns["id"] = [r.id for r in records]
    columns["unit"] = [unit_key] * len(records)
    columns["ordinal"] = [r.ordinal for r in records]  # given by ingest: the same in every chunking
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
    for row in rows:  # what reaches repos.parquet, NOTICE and the attribution table: no credentials
        for name in ("source", "url", "detail"):
            row[name] = scrub_credentials(row[name])
    write_atomic(pa.Table.from_pylist(rows, schema=schema.REPO_PART), work.repos_part(unit_key))
    for name, table in tables.items():
        write_atomic(table, work.table_part(unit_key, name))


def mark_done(work: WorkDir, unit_key: str, stats: dict[str, Any]) -> None:
    marker_tmp = work.done_marker(unit_key).with_suffix(".tmp")
    marker_tmp.write_text(json.dumps(stats, sort_keys=True))
    os.replace(marker_tmp, work.done_marker(unit_key))
