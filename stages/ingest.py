"""Ingest: one unit of sources in, one FileRecord per file out (kept as text, or dropped
with a reason), plus a RepoRecord per repository. Nothing read here is ever lost: a file
that cannot become text is a dropped record, one a reader fails on in a way nobody foresaw
is an `unreadable` record naming the exception (a failure of our own decoding code is a
`stage_error`, counted against `execution.max_stage_error_share`), a source that cannot be read at all is a
repository row with its error and one dropped record standing for it (path "").
Names that are not UTF-8 are written as `corpus_core.names.printable_name` says.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.names import error_detail, printable_name
from corpus_core.records import FileRecord, RepoRecord, normalized_sha256
from corpus_core.settings import Settings, setting
from corpus_core.stage import Stage, StageContext, stage_error_detail
from stages import origin, readers
from stages.readers import Entry, SourceError
from stages.sources import Unit, fetch_git, fetch_npm, fetch_pypi, parse_git_url, verify_sha256
from stages.stash import StashSummary, StashWriter, read_stash, stash_summary

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


UTF8_REPLACED = "utf-8-replaced"  # the encoding of UTF-8 text read with its few bad bytes replaced
# what `_entries` learns of a repository from its source; a unit's later chunks take it from the stash
SOURCE_FIELDS = ("url", "owner", "commit", "sha256")
_MULTIBYTE_CHAR = re.compile("[^\x00-\x7f\udc80-\udcff]")  # a character UTF-8 spells in several bytes


def decode_text(data: bytes, max_chaos: float, max_utf8_errors: int = 16) -> tuple[str, str] | tuple[None, str]:
    """(text, encoding) for text, (None, reason) for binary or undecodable bytes.

    Text that is UTF-8 but for a few bad sequences (a character cut at a buffer's edge, one
    pasted from a Latin-1 editor) stays UTF-8, each bad sequence replaced by U+FFFD, with the
    encoding `utf-8-replaced`: read as a code page instead, every other non-ASCII character
    would turn to mojibake (or, with CJK text, the file would be dropped). "A few" is at most
    `max_utf8_errors`, and no more than the valid multi-byte characters beside them (or a
    UTF-8 byte-order mark): the file must look more like UTF-8 than not. ASCII with one stray
    high byte is as likely Latin-1 (`Copyright \\xa9 2020`) and goes to charset detection as
    before, as do Shift-JIS or GBK, whose bytes seldom form valid UTF-8 by chance. Only the
    bytes decide, so the same file always gets the same text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                if encoding == "utf-8-sig" and (text := _mostly_utf8(data[3:], max_utf8_errors, True)) is not None:
                    return text, UTF8_REPLACED
                return None, reasons.NOT_TEXT
    if b"\x00" in data:
        return None, reasons.BINARY
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if (text := _mostly_utf8(data, max_utf8_errors, False)) is not None:
        return text, UTF8_REPLACED
    candidates = list(charset_normalizer.from_bytes(data, threshold=max_chaos))
    if not candidates:
        return None, reasons.NOT_TEXT
    # equally clean guesses (cp1250, cp1252, cp1257 often tie) go to the commonest in code
    best = min(candidates, key=lambda m: (m.chaos, -m.coherence, _PREFERRED.get(m.encoding, len(_PREFERRED))))
    return str(best), best.encoding


def _mostly_utf8(data: bytes, max_errors: int, marked: bool) -> str | None:
    """The text with U+FFFD for each bad sequence when they are few enough (see decode_text)."""
    replaced = data.decode("utf-8", "replace")
    escaped = data.decode("utf-8", "surrogateescape")  # the same text, bad bytes kept apart
    errors = replaced.count("\ufffd") - escaped.count("\ufffd")  # a U+FFFD of the file's own is no error
    if errors > max_errors:
        return None
    if not marked:
        evidence = 0
        for _ in _MULTIBYTE_CHAR.finditer(escaped):
            evidence += 1
            if evidence >= errors:
                break
        if evidence < errors:
            return None
    return replaced


@dataclass(frozen=True)
class IngestConfig(Settings):
    section = "ingest"

    max_file_bytes: int = setting(10 * 1024 * 1024, "BigCode: files of this size or more are `too_large`, not read")
    max_archive_members: int = setting(200_000, "members past this count: `archive_limit`")
    max_archive_bytes: int = setting(2 * 1024**3, "uncompressed bytes read from one archive")
    max_compression_ratio: int = setting(200, "zip members over 1 MiB beyond this ratio are bombs: `archive_limit`")
    max_decode_chaos: float = setting(0.2, "non-UTF-8 text whose best charset guess is messier: `not_text`")
    max_utf8_errors: int = setting(16, "UTF-8 text with this many bad sequences at most (and more valid multi-byte "
                                   "characters) keeps UTF-8, U+FFFD in their place: `utf-8-replaced`; 0: never")

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
        self.records = 0
        self.stashed: int | None = None

    @classmethod
    def from_settings(cls, settings: IngestConfig, context: StageContext) -> Ingest:
        return cls(settings, context.cache_dir)

    def run(self, unit: Unit, start: int = 0, stop: int | None = None,
            stash: Path | None = None) -> Iterator[FileRecord]:
        """The unit's records numbered `start` to `stop` (exclusive; None: to the end), each
        with its ordinal; `self.records` counts all the unit has. Records outside the window
        are read past, not decoded: a big unit runs as several tasks, one window each.

        `stash` (stages/stash.py): the first chunk (start 0) writes the raw entries past its
        window there; a later chunk reads its window from it, if it exists, instead of the
        source."""
        self.records = 0
        for ordinal, record in enumerate(self._records(unit, start, stop, stash)):
            self.records = ordinal + 1
            if record is None:
                continue
            record.ordinal = ordinal
            self.stats.count(record)
            yield record
        if self.stashed is not None:
            self.records = self.stashed

    def _records(self, unit: Unit, start: int = 0, stop: int | None = None,
                 stash: Path | None = None) -> Iterator[FileRecord | None]:
        """Every record of the unit in order, None in place of those outside [start, stop)."""
        def inside(ordinal: int) -> bool:
            return start <= ordinal and (stop is None or ordinal < stop)

        self.stashed = None  # the unit's record count when the window came from a stash
        repo = None
        if unit.repo is not None:
            name = printable_name(unit.repo)
            repo = self.repos[name] = RepoRecord(
                repo=name, source=printable_name(unit.spec.source), kind=unit.kind, stars=unit.spec.stars
            )
        stashing = stash is not None and unit.kind != "dataset"
        if stashing and start == 0:
            stash.unlink(missing_ok=True)  # a killed earlier try's stash never stands for this one
        summary = _stash_summary(stash) if stashing and start > 0 else None  # None: read the source
        writer = StashWriter(stash, stop - start) if stashing and start == 0 and stop is not None else None
        ordinal, error, finished = -1, None, False
        try:
            if summary is not None and repo is not None:  # a later chunk: the source unread
                for name in SOURCE_FIELDS:  # the repository's metadata as the first chunk read it
                    setattr(repo, name, summary.repo.get(name))
                # a stash that breaks fails the task: never a lost window
                yield from self._stashed(unit, repo, stash, summary, start, stop)
                return
            try:
                entries = self._dataset_entries(unit, start, stop) if unit.kind == "dataset" else (
                    (repo.repo, entry) for entry in self._entries(unit, repo))  # fetches; sets the repo metadata
            except Exception as err:  # noqa: BLE001 - a SourceError, or a reader that broke: one row says so
                entries, error = iter(()), _source_error_text(err)
            source = enumerate(entries)
            while error is None:
                try:
                    ordinal, item = next(source)
                except StopIteration:
                    break
                except Exception as err:  # noqa: BLE001 - the stream broke mid-way: one row says so
                    error = _source_error_text(err)
                    break
                if item is not None and inside(ordinal):
                    yield self._owned(self._record(*item))
                else:
                    if writer is not None and item is not None:
                        writer.add(ordinal, item[1])  # a failure to write fails the task, never the source
                    yield None
            if error is not None:
                ordinal += 1
                yield self._source_error(unit, error, inside(ordinal))
            if writer is not None:
                writer.close(ordinal + 1, error, None if repo is None else
                             {name: getattr(repo, name) for name in SOURCE_FIELDS})
            finished = True
        finally:
            if writer is not None and not finished:
                writer.discard()

    def _source_error(self, unit: Unit, error: str, inside: bool) -> FileRecord | None:
        """The repository row says the source broke; one dropped record (if in the window) too."""
        name = printable_name(unit.repo or Path(unit.location).name)
        repo = self.repos.setdefault(name, RepoRecord(name, printable_name(unit.spec.source), unit.kind))
        repo.error = printable_name(error)
        return self._owned(self.unreadable_source(name, repo.error)) if inside else None

    def _stashed(self, unit: Unit, repo: RepoRecord, stash: Path, summary: StashSummary, start: int,
                 stop: int | None) -> Iterator[FileRecord | None]:
        """The window's records from the first chunk's stash (the repository's metadata as the
        first chunk read it from the source; its files are not read again)."""
        records, error = summary.records, summary.error
        self.stashed = records
        yield from (None for _ in range(start))
        for _, entry in read_stash(stash, start, stop):
            yield self._owned(self._record(repo.repo, entry))
        if error is not None:  # the stream broke: its last record says so, and the repository row in every chunk
            self._source_error(unit, error, False)
            if start <= records - 1 and (stop is None or records - 1 < stop):
                yield self._owned(self.unreadable_source(repo.repo, repo.error))

    def _owned(self, record: FileRecord) -> FileRecord:
        """The record with its repository's owner, which the opt-out filter matches."""
        repo = self.repos.get(record.repo)
        record.owner = repo.owner if repo is not None else None
        return record

    def _record(self, repo: str, entry: Entry) -> FileRecord:
        """`to_record`, with whatever it raises on this one entry made the entry's drop."""
        try:
            return self.to_record(repo, entry)
        except Exception as err:  # noqa: BLE001 - one file's failure is that file's drop, never the unit's
            record = FileRecord(repo=repo, path=printable_name(entry.path), size=entry.size)
            # not the input's fault but our code's: counted as a stage error, loud past the share
            record.drop(reasons.STAGE_ERROR, stage_error_detail(self.name, err))
            return record

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
        # the owner is known before the first file: the opt-out filter matches it on every file
        if unit.kind in ("pypi", "npm", "archive"):
            repo.sha256 = verify_sha256(location, unit.spec.sha256, unit.spec.source)
            return self._archive_entries(location, repo)
        if unit.kind == "git_url":
            bare, repo.commit = fetch_git(unit.location, self.cache_dir)
            repo.url = unit.location.removeprefix("git+")
            repo.owner = origin.owner_of_git(parse_git_url(unit.location)[0])
            return readers.read_git(bare, self.config, repo.commit)
        if unit.kind == "git":
            repo.commit = readers.git_head(location)
            repo.url = readers.git_remote_url(location)
            repo.owner = origin.owner_of_git(repo.url)
            return readers.read_git(location, self.config, repo.commit)
        if unit.kind == "directory":
            repo.owner = origin.owner_of_directory(location)
        return readers.read_directory(location, self.config, top_level_only=unit.kind == "loose")

    def _archive_entries(self, location: Path, repo: RepoRecord) -> Iterator[Entry]:
        """The archive's entries, its owner set before the first: from the metadata file a
        tar read in one pass held (`origin.TarMetadata`), else by reading the archive for it."""
        search = origin.TarMetadata()
        entries = readers.read_archive(location, self.config, search)
        try:
            first = next(entries, None)
        finally:  # a broken archive has its owner as well
            repo.owner = search.owner(location, self.config.max_archive_bytes)
        if first is not None:
            yield first
            yield from entries

    def to_record(self, repo: str, entry: Entry) -> FileRecord:
        path = printable_name(entry.path)
        record = FileRecord(repo=repo, path=path, size=entry.size)
        if entry.reason is not None:
            record.drop(entry.reason, None if entry.detail is None else printable_name(entry.detail))
            return record
        data = entry.data
        record.size = len(data)
        record.sha256 = hashlib.sha256(data).hexdigest()
        if record.size >= self.config.max_file_bytes:
            record.drop(reasons.TOO_LARGE)
            return record
        text, encoding = decode_text(data, self.config.max_decode_chaos, self.config.max_utf8_errors)
        if text is None:
            record.drop(encoding)
        else:
            record.content, record.encoding = text, encoding
            # here, before PII redaction changes the text: what a code owner pastes is the original
            record.normalized_sha256 = normalized_sha256(text)
        return record

    def _dataset_entries(self, unit: Unit, start: int, stop: int | None) -> Iterator[tuple[str, Entry] | None]:
        """Rows of a file-level dataset as (repo, entry), None for those past `stop`. The first
        row naming a repository gives its metadata (url, commit, stars, license); every chunk
        reads the rows before its window, so every chunk agrees on it."""
        source = printable_name(unit.spec.source)
        for row in readers.read_dataset(Path(unit.location), self.config, stop, start):
            if row is None:
                yield None
                continue
            if row.repo not in self.repos:
                self.repos[row.repo] = RepoRecord(repo=row.repo, source=source, kind="dataset", url=row.url,
                                                  owner=origin.owner_of_dataset_row(row.repo, row.url),
                                                  commit=row.commit, stars=row.stars, declared_license=row.license)
            yield row.repo, row.entry


def _source_error_text(err: Exception) -> str:
    return str(err) if isinstance(err, SourceError) else error_detail(err)


def _stash_summary(stash: Path) -> StashSummary | None:
    """The stash's summary, or None when there is none, it cannot be read, or it lacks the
    repository's metadata (older code's, found by a resumed build): its chunk then reads the
    source, as without a stash."""
    try:
        summary = stash_summary(stash) if stash.exists() else None
    except Exception:  # noqa: BLE001 - a torn or foreign file: the source is still there
        return None
    return summary if summary is not None and summary.repo is not None else None
