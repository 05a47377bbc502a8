"""The records that flow between stages: one `FileRecord` per input file, one `RepoRecord`
per repository, and the `SourceSpec` they come from. Dropped files stay in the stream
(decision='dropped', reason set) so that the manifest accounts for every input file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class SourceSpec:
    """One entry of the source list: a SOURCE string plus what is known about it."""

    source: str  # archive path, directory, git+URL[@REV], pypi:NAME==VER, npm:NAME@VER, dataset
    sha256: str | None = None  # expected sha256 of a fetched or local archive
    stars: int | None = None  # repository popularity, used by dedup tie-breaks
    name: str | None = None  # repository name override


KEPT = "kept"
DROPPED = "dropped"


def normalized_sha256(text: str) -> str:
    """sha256 of a text with what copying a file may change taken out: a leading byte-order
    mark, the line endings (CRLF and CR become LF; a browser's form sends CRLF), whitespace at
    the end of each line and blank lines at the end. A code owner's pasted file matches the
    file as ingested, whatever editor or form it went through."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    normalized = "\n".join(line.rstrip() for line in lines).rstrip("\n")
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()


def file_id(repo: str, path: str) -> str:
    """Stable id of a file: the same repository and path give the same id in every build."""
    return hashlib.sha256(f"{repo}\x00{path}".encode()).hexdigest()[:16]


@dataclass(slots=True)
class FileRecord:
    repo: str
    path: str  # POSIX path relative to the repository root
    size: int  # bytes as stored in the source
    owner: str | None = None  # its repository's owner (stages/origin.py); set by ingest before any file stage
    sha256: str | None = None  # of the raw bytes; None when the bytes were never read
    normalized_sha256: str | None = None  # of the decoded text, normalized (`normalized_sha256`); set by ingest
    content: str | None = None  # decoded text; None for dropped-at-ingest files
    encoding: str | None = None  # "utf-8" or what charset detection found
    language: str | None = None  # go-enry's language name; None when it has no guess
    language_type: str | None = None  # programming | data | markup | prose
    vendored: bool | None = None
    generated: bool | None = None
    documentation: bool | None = None
    configuration: bool | None = None
    license: str | None = None  # SPDX expression (license stage: the header's; license decision: the file's)
    license_source: str | None = None  # where that expression came from: header:<path> or file:<paths>
    license_kind: str | None = None  # the evidence shown: header, license_file, metadata, dataset, notice, readme
    license_path: str | None = None  # the file that evidence is in
    license_rule: str | None = None  # ScanCode's rule identifier (or "SPDX-License-Identifier", "SPDX value")
    license_score: float | None = None  # ScanCode's score of that match
    license_start_line: int | None = None  # the lines of license_path it matched (1-based)
    license_end_line: int | None = None
    copyright_holders: list[str] | None = None  # ScanCode's holders: the header's, then its directory's too
    max_line_length: int | None = None  # characters of the longest line (quality stage)
    mean_line_length: float | None = None  # characters per line
    alphanum_fraction: float | None = None  # letters and digits among all characters
    comment_ratio: float | None = None  # comment characters / all, non-whitespace (comments stage)
    comment_lexer: str | None = None  # the Pygments lexer that measured it; None: no lexer for the language
    pii_redactions: int | None = None  # replacements made (PII stage), all types
    pii_email: int | None = None  # of which <EMAIL>
    pii_ip_address: int | None = None  # IP addresses replaced
    pii_key: int | None = None  # <KEY>: tokens, keys, private key blocks
    pii_password: int | None = None  # <PASSWORD>
    decision: str = KEPT
    reason: str | None = None
    detail: str | None = None  # human words on the reason (an error message, a link target)
    dup_of: str | None = None  # id of the kept file this one duplicates
    notebook: str | None = None  # a structured notebook's markers, JSON (stages/notebooks.py); a part column only
    pii_findings: list | None = None  # (type, start, end) in the original content; for `inspect`, never written
    ordinal: int | None = None  # position in its unit's stream of records (ingest); written as a part column

    @property
    def id(self) -> str:
        return file_id(self.repo, self.path)

    @property
    def kept(self) -> bool:
        return self.decision == KEPT

    def drop(self, reason: str, detail: str | None = None) -> None:
        self.decision = DROPPED
        self.reason = reason
        self.detail = detail
        self.content = None


FILE_FIELDS = tuple(f.name for f in fields(FileRecord) if f.name not in ("pii_findings", "ordinal"))


@dataclass(slots=True)
class RepoRecord:
    repo: str
    source: str  # the SOURCE string it came from
    kind: str  # archive | git | directory | dataset | pypi | npm
    url: str | None = None
    owner: str | None = None  # the account its origin names (stages/origin.py); None when it names none
    commit: str | None = None  # git commit, or the package version for registry sources
    sha256: str | None = None  # of the archive the repository was read from
    stars: int | None = None
    error: str | None = None  # set when the whole source could not be read
    declared_license: str | None = None  # a dataset's `license` column
    license: str | None = None  # resolved SPDX expression of the root (license stage)
    license_source: str | None = None  # the files it was resolved from
    license_conflict: str | None = None  # "resolved" or "unresolved" when evidence disagreed
    license_evidence: str | None = None  # JSON list of every piece of evidence
    copyright_holders: list[str] | None = None  # from the root license and NOTICE files


REPO_FIELDS = tuple(f.name for f in fields(RepoRecord))
