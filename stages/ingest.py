"""Ingest: one unit of sources in, one FileRecord per file out (kept as text, or dropped
with a reason), plus a RepoRecord per repository. Nothing read here is ever lost: a file
that cannot become text is a dropped record, a source that cannot be read at all is a
repository row with its error and one dropped record standing for it (path "").
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.json as pajson

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.records import FileRecord, RepoRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import Stage, StageContext
from stages import readers
from stages.readers import Entry, SourceError
from stages.sources import Unit, fetch_git, fetch_npm, fetch_pypi, verify_sha256

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_PREFERRED = {
    name: rank
    for rank, name in enumerate(("cp1252", "latin_1", "iso8859_15", "cp932", "shift_jis", "gb18030", "gbk",
                                 "big5", "euc_kr", "euc_jp", "cp1251", "koi8_r", "cp1250", "iso8859_2"))
}


def decode_text(data: bytes, max_chaos: float) -> tuple[str, str] | tuple[None, str]:
    """(text, encoding) for text, (None, reason) for binary or undecodable bytes."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                return None, reasons.NOT_TEXT
    if b"\x00" in data:
        return None, reasons.BINARY
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates = list(charset_normalizer.from_bytes(data, threshold=max_chaos))
    if not candidates:
        return None, reasons.NOT_TEXT
    # equally clean guesses (cp1250, cp1252, cp1257 often tie) go to the commonest in code
    best = min(candidates, key=lambda m: (m.chaos, -m.coherence, _PREFERRED.get(m.encoding, len(_PREFERRED))))
    return str(best), best.encoding


@dataclass(frozen=True)
class IngestConfig(Settings):
    section = "ingest"

    max_file_bytes: int = setting(10 * 1024 * 1024, "BigCode: files of this size or more are `too_large`, not read")
    max_archive_members: int = setting(200_000, "members past this count: `archive_limit`")
    max_archive_bytes: int = setting(2 * 1024**3, "uncompressed bytes read from one archive")
    max_compression_ratio: int = setting(200, "zip members over 1 MiB beyond this ratio are bombs: `archive_limit`")
    max_decode_chaos: float = setting(0.2, "non-UTF-8 text whose best charset guess is messier: `not_text`")

    def __post_init__(self) -> None:
        if self.max_file_bytes == 0:
            raise ConfigError("ingest.max_file_bytes = 0: every file would be too large")


class Ingest(Stage):
    name = "ingest"
    settings_class = IngestConfig

    def __init__(self, config: IngestConfig, cache_dir: str | Path):
        super().__init__(config)
        self.cache_dir = Path(cache_dir)
        self.repos: dict[str, RepoRecord] = {}  # filled while `run` is consumed

    @classmethod
    def from_settings(cls, settings: IngestConfig, context: StageContext) -> Ingest:
        return cls(settings, context.cache_dir)

    def run(self, unit: Unit, start: int = 0, stop: int | None = None) -> Iterator[FileRecord]:
        """The unit's records numbered `start` to `stop` (exclusive; None: to the end), each
        with its ordinal; `self.records` counts all the unit has. Records outside the window
        are read past, not decoded: a big unit runs as several tasks, one window each."""
        self.records = 0
        for ordinal, record in enumerate(self._records(unit, start, stop)):
            self.records = ordinal + 1
            if record is None:
                continue
            record.ordinal = ordinal
            self.stats.count(record)
            yield record

    def _records(self, unit: Unit, start: int = 0, stop: int | None = None) -> Iterator[FileRecord | None]:
        """Every record of the unit in order, None in place of those outside [start, stop)."""
        def inside(ordinal: int) -> bool:
            return start <= ordinal and (stop is None or ordinal < stop)

        repo = None
        if unit.repo is not None:
            repo = self.repos[unit.repo] = RepoRecord(
                repo=unit.repo, source=unit.spec.source, kind=unit.kind, stars=unit.spec.stars
            )
        ordinal = -1
        try:
            entries = self._dataset_entries(unit) if unit.kind == "dataset" else (
                (repo.repo, entry) for entry in self._entries(unit, repo))
            for ordinal, (repo_name, entry) in enumerate(entries):
                yield self.to_record(repo_name, entry) if inside(ordinal) else None
        except SourceError as err:
            name = unit.repo or Path(unit.location).name
            repo = self.repos.setdefault(name, RepoRecord(name, unit.spec.source, unit.kind))
            repo.error = str(err)
            yield self.unreadable_source(name, str(err)) if inside(ordinal + 1) else None

    @staticmethod
    def unreadable_source(repo: str, error: str) -> FileRecord:
        record = FileRecord(repo=repo, path="", size=0)
        record.drop(reasons.SOURCE_UNREADABLE, error)
        return record

    def _entries(self, unit: Unit, repo: RepoRecord) -> Iterator[Entry]:
        location = Path(unit.location)
        if unit.kind in ("pypi", "npm"):
            fetch = fetch_pypi if unit.kind == "pypi" else fetch_npm
            location = fetch(unit.location, self.cache_dir)
            repo.commit = unit.location.split("==" if unit.kind == "pypi" else "@")[-1]
        if unit.kind in ("pypi", "npm", "archive"):
            repo.sha256 = verify_sha256(location, unit.spec.sha256, unit.spec.source)
            return readers.read_archive(location, self.config)
        if unit.kind == "git_url":
            bare, repo.commit = fetch_git(unit.location, self.cache_dir)
            repo.url = unit.location.removeprefix("git+")
            return readers.read_git(bare, self.config, repo.commit)
        if unit.kind == "git":
            repo.commit = readers.git_head(location)
            repo.url = readers.git_remote_url(location)
            return readers.read_git(location, self.config, repo.commit)
        return readers.read_directory(location, self.config, top_level_only=unit.kind == "loose")

    def to_record(self, repo: str, entry: Entry) -> FileRecord:
        record = FileRecord(repo=repo, path=entry.path, size=entry.size)
        if entry.reason is not None:
            record.drop(entry.reason, entry.detail)
            return record
        data = entry.data
        record.size = len(data)
        record.sha256 = hashlib.sha256(data).hexdigest()
        if record.size >= self.config.max_file_bytes:
            record.drop(reasons.TOO_LARGE)
            return record
        text, encoding = decode_text(data, self.config.max_decode_chaos)
        if text is None:
            record.drop(encoding)
        else:
            record.content, record.encoding = text, encoding
        return record

    def _dataset_entries(self, unit: Unit) -> Iterator[tuple[str, Entry]]:
        """Rows of a file-level dataset as (repo, entry): repo, path, content (+ url, commit,
        stars, license if present); a row whose content is null is an unreadable entry."""
        for batch in _dataset_batches(Path(unit.location)):
            columns = batch.to_pydict()
            rows = zip(columns["repo"], columns["path"], columns["content"], strict=True)
            for index, (repo, path, content) in enumerate(rows):
                repo = str(repo)
                if repo not in self.repos:
                    self.repos[repo] = RepoRecord(
                        repo=repo,
                        source=unit.spec.source,
                        kind="dataset",
                        url=_optional(columns, "url", index),
                        commit=_optional(columns, "commit", index),
                        stars=_optional_int(columns, "stars", index),
                        declared_license=_optional(columns, "license", index),
                    )
                if content is None:
                    yield repo, Entry(str(path), 0, reason=reasons.UNREADABLE, detail="content is null")
                    continue
                data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else bytes(content)
                yield repo, Entry(str(path), len(data), data=data)


def _optional(columns: dict, name: str, index: int) -> str | None:
    value = columns.get(name, [None] * (index + 1))[index]
    return None if value is None else str(value)


def _optional_int(columns: dict, name: str, index: int) -> int | None:
    value = _optional(columns, name, index)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _dataset_batches(path: Path) -> Iterator[pa.RecordBatch]:
    try:
        if path.suffix.lower() == ".parquet":
            scanner = pads.dataset(path, format="parquet")
            names = scanner.schema.names
            batches = scanner.to_batches(batch_size=1024)
        else:
            reader = pajson.open_json(path)
            names = reader.schema.names
            batches = reader
        missing = {"repo", "path", "content"} - set(names)
        if missing:
            raise SourceError(f"dataset {path.name} lacks the columns {sorted(missing)}")
        yield from batches
    except (pa.ArrowInvalid, OSError) as err:
        raise SourceError(f"dataset {path.name} is not readable: {err}") from err
