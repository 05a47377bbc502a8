"""The stage contract. A stage's body holds only its logic; the base classes count what
went in, what was kept and dropped (by reason), the bytes seen and the time spent.

- `FileStage.process(record)` looks at one kept record and may change or drop it.
- `Filter.keep(record)` is a pure predicate: `True` or `(False, reason)` (or
  `(False, reason, detail)`).
- `CorpusStage.drops(db, context)` sees every file at once and returns the SQL of its drops.

Every stage declares its settings class (its TOML section) and the DuckDB tables it reads
and writes; pipeline/flow.py checks at import time that each table a stage reads is
written by the runner or by a stage before it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from corpus_core import reasons
from corpus_core.names import error_detail
from corpus_core.partitions import PartitionPlan
from corpus_core.records import FileRecord, RepoRecord
from corpus_core.settings import Settings


@dataclass
class StageStats:
    files_in: int = 0
    bytes_in: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)  # a stage's own figures (e.g. near dedup's clusters)

    def count(self, record: FileRecord) -> None:
        """Count one record that entered the stage, by the decision it left with."""
        self.files_in += 1
        self.bytes_in += record.size
        if record.kept:
            self.kept += 1
        else:
            self.dropped[record.reason or "unknown"] += 1

    def merge(self, other: StageStats) -> None:
        self.files_in += other.files_in
        self.bytes_in += other.bytes_in
        self.kept += other.kept
        self.dropped.update(other.dropped)
        self.seconds += other.seconds
        self.notes = _merge_notes(self.notes, other.notes)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "files_in": self.files_in,
            "bytes_in": self.bytes_in,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "seconds": round(self.seconds, 3),
        }
        return {**data, "notes": self.notes} if self.notes else data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageStats:
        return cls(
            files_in=data["files_in"],
            bytes_in=data["bytes_in"],
            kept=data["kept"],
            dropped=Counter(data["dropped"]),
            seconds=data["seconds"],
            notes=data.get("notes", {}),
        )


def _merge_notes(mine: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Counts add up (also inside nested tables, e.g. files without a lexer per language);
    anything else takes the other's value."""
    merged = dict(mine)
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_notes(merged[key], value)
        elif isinstance(value, int) and not isinstance(value, bool) and isinstance(merged.get(key), int):
            merged[key] = merged[key] + value
        else:
            merged[key] = value
    return merged


# what the runner itself provides to corpus stages: the current decision of every file
# (`files`, with its repository's stars) and the repository rows (`repos`)
RUNNER_TABLES = ("files", "repos")


@dataclass(frozen=True)
class StageContext:
    """What a stage may need of the build besides its own settings."""

    cache_dir: str  # fetched packages, clones, the license cache; shared between builds
    license_cache: str = ""  # ScanCode's results when not in cache_dir: a folder or an object store URL


class Stage:
    """A named step with its settings (its own `Settings` section) and its stats."""

    name = "stage"
    settings_class: ClassVar[type[Settings] | None] = None  # None: the stage has no settings
    reads: ClassVar[tuple[str, ...]] = ()  # DuckDB tables it reads (corpus and output stages)
    writes: ClassVar[tuple[str, ...]] = ()  # tables it leaves for the stages after it

    def __init__(self, config: Any = None):
        self.config = config
        self.stats = StageStats()

    @classmethod
    def from_settings(cls, settings: Settings | None, context: StageContext) -> Stage:
        """The stage as the flow builds it: its own section of the build config."""
        return cls(settings) if cls.settings_class is not None else cls()


class FileStage(Stage):
    """A per-file step. Records dropped upstream pass through untouched and uncounted.

    One file's failure is that file's drop, never a lost unit: an exception from `process`
    drops the record as `stage_error` (the stage and the exception's class in `detail`). A
    bug stays loud: the build fails when a stage's share of such drops passes
    `execution.max_stage_error_share` (pipeline/run.py)."""

    def process(self, record: FileRecord) -> None:
        raise NotImplementedError

    def run(self, records: Iterable[FileRecord]) -> Iterator[FileRecord]:
        for record in records:
            if record.kept:
                started = time.perf_counter()
                try:
                    self.process(record)
                except Exception as err:  # noqa: BLE001 - any failure on one file is that file's drop
                    record.drop(reasons.STAGE_ERROR, stage_error_detail(self.name, err))
                self.stats.seconds += time.perf_counter() - started
                self.stats.count(record)
            yield record


    def finish_unit(self, repos: dict[str, RepoRecord]) -> dict[str, Any]:
        """Called once a unit's records are all through: may fill repository fields and
        return the tables it `writes` (name -> pyarrow Table), kept per unit and read back
        as DuckDB tables of that name."""
        return {}


def stage_error_detail(stage: str, err: BaseException) -> str:
    """`stage: ExceptionClass: message`, as `names.error_detail` writes the exception."""
    return f"{stage}: {error_detail(err)}"


class Filter(FileStage):
    """A per-file predicate; the base class routes a `(False, reason)` to the manifest."""

    def keep(self, record: FileRecord) -> bool | tuple[bool, str] | tuple[bool, str, str]:
        raise NotImplementedError

    def process(self, record: FileRecord) -> None:
        verdict = self.keep(record)
        if verdict is not True:
            record.drop(*verdict[1:])


# the columns of every corpus stage's drops, in this order
DROP_COLUMNS = ("unit", "ordinal", "reason", "detail", "dup_of")
NO_DROPS = ("SELECT NULL::VARCHAR AS unit, NULL::BIGINT AS ordinal, NULL::VARCHAR AS reason, "
            "NULL::VARCHAR AS detail, NULL::VARCHAR AS dup_of LIMIT 0")


@dataclass
class CorpusContext:
    """What a corpus stage may use besides the database."""

    scratch: Path  # the build's work directory; a stage keeps its files in a folder named after it
    executor: Any  # maps a function over items, in-process or as Ray tasks (pipeline/executor.py)
    progress: Any  # reports phases (pipeline/progress.py)
    partitions: PartitionPlan = PartitionPlan()  # how partitioned work is cut (corpus_core/partitions.py)
    # `unit` as in `files` (a chunk's key) -> the Parquet file of its records after the file
    # stages (`ordinal`, `content`: a kept file's content is final there), so that a task reads
    # content itself instead of the driver handing it over
    parts: dict[str, str] = field(default_factory=dict)


class CorpusStage(Stage):
    """A step that needs every file at once (license decision, exact and near dedup,
    tokenization). It reads the DuckDB view `files` (the current decision of every file,
    with its repository's stars) and the tables it declares, and returns a SQL query of the
    files it drops: DROP_COLUMNS. Heavy work may go to `context.executor`; what it hands
    between passes goes under `context.scratch`."""

    reads = ("files",)

    def drops(self, db: Any, context: CorpusContext) -> str:
        raise NotImplementedError
