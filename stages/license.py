"""License: ScanCode evidence per repository and per file header, and the permissive decision.

Two halves, because a repository's license is known only once all its files were seen:
- `LicenseDetector` (file scope, inside the unit's task) turns license candidates (LICENSE*,
  COPYING*, NOTICE*, README's license section, package metadata) into evidence rows, and
  gives every other file its own header evidence: an `SPDX-License-Identifier:` line needs
  no ScanCode; a header that mentions a license goes to ScanCode. It also reads the
  copyright holders of those texts and of each file's header. License texts and generated
  package metadata are evidence, not training data: they leave here as `license_text` and
  `package_metadata`.
- `LicenseDecision` (corpus scope) resolves every directory's license from all the evidence
  of its repository, then gives every file that was read (its bytes, opted-out files aside)
  its license, whatever else dropped it, and drops what is not allowed: `no_license`,
  `license_not_allowed`, `license_conflict`, `license_unknown`. Where an earlier stage dropped
  a file that also fails the license, the license reason is recorded and the earlier one goes
  to `detail`. Precedence (`file_license`): evidence that refuses the file wins, the file's
  own header first; a permissive header counts only under a directory whose license passes,
  or where no directory has evidence (docs/FORMATS.md#licenses holds the rules).

ScanCode results are cached by content hash in `cache_dir/license-cache/` (or where
`execution.license_cache` says: a folder or an object store URL every node shares), one JSON
object per text, each written whole at once: safe with many Ray workers on many nodes, and
kept between builds. A worker keeps the results it read in memory too.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import posixpath
import re
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from corpus_core import reasons, schema
from corpus_core.locations import Store
from corpus_core.records import FileRecord, RepoRecord
from corpus_core.settings import Settings, setting
from corpus_core.spdx import (
    PERMISSIVE,
    any_of,
    canonical,
    combine,
    is_allowed,
    is_choice,
    normalize,
    symbols,
    together,
)
from corpus_core.stage import FileStage, StageContext

LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|unlicen[cs]e|copyright|mit-license)([-._].*)?$", re.IGNORECASE)
NOTICE_FILE = re.compile(r"^notice([-._].*)?$", re.IGNORECASE)
README_FILE = re.compile(r"^readme([-._].*)?$", re.IGNORECASE)
METADATA_FILES = frozenset({"package.json", "setup.cfg", "setup.py", "pyproject.toml", "PKG-INFO", "Cargo.toml",
                            "composer.json"})
# what packaging tools generate: metadata about a package, not its code
PACKAGE_METADATA_FILES = frozenset({"PKG-INFO", "SOURCES.txt"})
PACKAGE_METADATA_DIR = re.compile(r"(?:^|/)[^/]+\.(?:egg|dist)-info/")
# a license file named after the license it holds (LICENSE-MIT, LICENSE.APACHE, COPYING.GPL-2.0.txt):
# side by side, such files offer a choice
NAMED_LICENSE_FILE = re.compile(r"^(?:licen[cs]e|copying)[-._](?P<named>.+?)(?:\.(?:txt|md|markdown|rst|html?|adoc))?$",
                                re.IGNORECASE)
SPDX_LINE = re.compile(r"SPDX-License-Identifier:\s*([^\n*]+?)\s*(?:\*/|-->|#}|$)", re.MULTILINE)
MENTIONS_LICENSE = re.compile(r"licen[cs]|general public|permission is hereby granted|redistribution and use",
                              re.IGNORECASE)
COPYRIGHT = re.compile(r"copyright|\(c\)|©", re.IGNORECASE)
YEAR = re.compile(r"\b(?:19|20)\d\d\b")
DECLARATION = re.compile(r"licen[cs]e[\"']?\s*[=:]\s*[\"'{]?$", re.IGNORECASE)  # what precedes a declared value
UNKNOWN = "LicenseRef-scancode-unknown"  # prefix of ScanCode's "a license is mentioned" keys
# the expression of evidence that says a license applies but not which: a license file no detector
# identifies a license in, or could not read (ScanCode's key for an unidentified license)
UNKNOWN_LICENSE = UNKNOWN
UNKNOWN_SPDX = "LicenseRef-scancode-unknown-spdx"  # an SPDX line naming no license SPDX or ScanCode knows
# names that promise a license text (COPYRIGHT* may hold holders only, NOTICE* attributions)
PROMISES_LICENSE = re.compile(r"^(licen[cs]e|copying|unlicen[cs]e|mit-license)([-._].*)?$", re.IGNORECASE)
# a license file that only points at another (a docs page's `.. include:: ../../LICENSE`, "see the LICENSE
# file"): it defers to that file, it states no terms of its own
POINTER = re.compile(r"^\s*\.\. (?:literal)?include::|\{%-?\s*include\b|--8<--|(?:\.{1,2}/)+(?i:licen[cs]e|copying)|"
                     r"\b(?i:see|in|at)\s+(?i:the\s+)?[`'\"\[]?(?:LICEN[CS]E|COPYING)(?:[-.]\w+)?\b", re.MULTILINE)
# extensions a license document has; a file named so that could not be read at all is unknown evidence
LICENSE_DOCUMENT = re.compile(r"^[^.]*(?:\.(?:txt|text|md|markdown|rst|adoc|html?|pdf|rtf|docx?|odt))?$",
                              re.IGNORECASE)
# the drops of a file whose bytes this stage never got to read as text
# a license file never read here is unknown evidence for its directory, never no evidence (then a
# permissive header or a parent's license would stand in for terms nobody read): whatever kept its
# bytes from this stage, a link (even inside the repository: its target is scoped to another
# directory) or an opt-out of the file itself included
UNREAD = frozenset({reasons.BINARY, reasons.TOO_LARGE, reasons.NOT_TEXT, reasons.UNREADABLE, reasons.SPECIAL_FILE,
                    reasons.LINK_ESCAPE, reasons.SYMLINK, reasons.ARCHIVE_LIMIT, reasons.STAGE_ERROR,
                    reasons.OPTED_OUT})
# an SPDX line the way headers write one: after comment characters only, not inside code
SPDX_COMMENT = re.compile(r"^[^\w\n]*SPDX-License-Identifier:", re.MULTILINE)
# a header paragraph that says anything legal starts the notice; lines naming a license in words
# (not `license_key`) must be covered by ScanCode's exact matches, or its approximate matching runs
LEGAL = re.compile(MENTIONS_LICENSE.pattern + r"|\b(?:bsd|mit|gpl|lgpl|agpl|apache|mozilla|mpl|eclipse|epl|"
                   r"public domain|copyleft|warrant\w*|redistribut\w*|neither the names?|endorse|disclaim\w*|"
                   r"liabilit\w*|merchantab\w*|the above copyright notice)\b", re.IGNORECASE)
LICENSE_WORDS = re.compile(r"\blicen[cs](?:e[ds]?|ing|or|ee)?\b|general public|permission is hereby granted|"
                           r"redistribution and use", re.IGNORECASE)
# copyright and attribution lines: they differ from file to file while the notice is the same
ATTRIBUTION = re.compile(r"^[\W_]*(?::copyright:\s*)?(?:copyright\b|\(c\)|©)|^[\W_]*all rights reserved|"
                         r"^[\W_]*@?(?:(?:authors?|maintainers?|contributors?|translators?)\s*:|"
                         r"(?:written|created) by\b)|[\w.+-]+@[\w-]+\.[\w.]+|\b(?:19|20)\d\d\b", re.IGNORECASE)
ATTRIBUTION_LINE = "Copyright (c) holder"
LINE_COMMENT = re.compile(r"^\s*(?:#|//|--|;|%|\*|!|'|\.\.|rem\b|dnl\b)", re.IGNORECASE)
BLOCK_COMMENTS = (("/*", "*/"), ("<!--", "-->"), ('"""', '"""'), ("'''", "'''"), ("{-", "-}"), ("(*", "*)"))
# the version of what the cache holds per text: a new one when ScanCode's output is kept differently
CACHE_FORMAT = "2"

LICENSE_TEXT = reasons.register("license_text", "license", "a license or notice file (`LICENSE*`, `LICENCE*`, "
                                "`COPYING*`, `UNLICENSE*`, `COPYRIGHT*`, `MIT-LICENSE*`, `NOTICE*`; not a "
                                "programming language's file): evidence for its directory, not training data")
PACKAGE_METADATA = reasons.register("package_metadata", "license", "metadata a packaging tool generated "
                                    "(`PKG-INFO`, `SOURCES.txt`, any file in a `*.egg-info/` or `*.dist-info/` "
                                    "directory): evidence, not training data")
NO_LICENSE = reasons.register("no_license", "license_decision", "no license evidence for the file: no header, no "
                              "license file or metadata above it")
LICENSE_NOT_ALLOWED = reasons.register("license_not_allowed", "license_decision", "the file's expression fails the "
                                       "allowlist (OR: one side must pass; AND: all; `A WITH e`: as A)")
LICENSE_CONFLICT = reasons.register("license_conflict", "license_decision", "the evidence of the file's directory "
                                    "disagrees: its metadata declare licenses that disagree and no license file "
                                    "settles it, or its license files pass the allowlist while its metadata declare "
                                    "a license they do not name that fails it; `detail` names each file and "
                                    "expression")
LICENSE_UNKNOWN = reasons.register("license_unknown", "license_decision", "the evidence that applies says a license "
                                   "applies but not which: a license file (`LICENSE*`, `COPYING*`) in which ScanCode "
                                   "identifies no license or that could not be read, or an SPDX line naming no known "
                                   "license; `detail` names the file")

# the priority of evidence kinds when a directory's license is resolved
KINDS = ("license_file", "metadata", "dataset", "notice", "readme")

# what the file stage keeps per chunk: the license candidates' evidence, in stream order
EVIDENCE_TABLE = pa.schema([
    pa.field("repo", pa.string(), nullable=False),
    pa.field("dir", pa.string(), nullable=False),  # "" is the repository root
    pa.field("ordinal", pa.int64(), nullable=False),  # of the file in its unit
    pa.field("seq", pa.int32(), nullable=False),  # of the evidence in its file
    pa.field("file", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("expression", pa.string(), nullable=False),
    pa.field("score", pa.float64()),
    pa.field("rule", pa.string()),
    pa.field("start_line", pa.int32()),  # what ScanCode matched, in the file's lines
    pa.field("end_line", pa.int32()),
    pa.field("holders", pa.list_(pa.string())),
])

# what the corpus stage resolves: one expression per directory that has evidence, and the
# evidence each of its files shows (the first license file, or metadata, NOTICE, README)
LICENSE_TABLE = pa.schema([
    pa.field("repo", pa.string(), nullable=False),
    pa.field("dir", pa.string(), nullable=False),  # "" is the repository root
    pa.field("license", pa.string()),
    pa.field("license_source", pa.string()),
    pa.field("conflict", pa.string()),  # null, "resolved" (a license file or README won) or "unresolved"
    pa.field("kind", pa.string()),
    pa.field("file", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("rule", pa.string()),
    pa.field("start_line", pa.int32()),
    pa.field("end_line", pa.int32()),
    pa.field("holders", pa.list_(pa.string())),  # of every license, NOTICE and README text of the directory
    # the metadata the license disagrees with (Resolution.others)
    pa.field("others", pa.list_(pa.struct([("file", pa.string()), ("expression", pa.string())]))),
])

# what the decision gives every file it judges: its license columns (corpus_core/schema.py)
ANNOTATION_TABLE = pa.schema([pa.field("unit", pa.string()), pa.field("ordinal", pa.int64()),
                              *schema.LICENSE_COLUMNS])


@dataclass(frozen=True)
class LicenseConfig(Settings):
    section = "license"

    allowed: tuple[str, ...] = setting(PERMISSIVE, "SPDX ids a kept file's expression must satisfy "
                                       "(the default: see Licenses below)")
    header_lines: int = setting(40, "lines of each file read for its own license")
    max_header_bytes: int = setting(8192, "and at most these bytes (also a README's license section)")
    scan_headers: bool = setting(True, "ScanCode on headers that mention a license (SPDX lines always)")


@dataclass
class Evidence:
    file: str  # path in the repository
    kind: str  # one of KINDS, or "header"
    expression: str
    score: float | None = None
    rule: str | None = None  # ScanCode's rule identifier, "SPDX-License-Identifier" or the metadata field
    start_line: int | None = None  # the lines of the file the expression was read from (1-based)
    end_line: int | None = None
    holders: list[str] = field(default_factory=list)


# --- ScanCode, cached ------------------------------------------------------------------


SCANCODE_HOME = "scancode"  # under cache_dir/license-cache/: ScanCode's own temporary and cache folders


def keep_scancode_inside(cache_dir: str | Path) -> None:
    """Point ScanCode's folders into the cache dir, before its first import in this process.

    When first imported, ScanCode (`scancode_config`) makes a temporary folder for the life of
    the process in the system's temp dir, never removed (one per Ray worker per build), and a
    cache folder in the user's home. Both go under `cache_dir/license-cache/scancode/` instead:
    nothing is written outside the paths a build is given. Empty temporary folders of processes
    gone for an hour are removed here."""
    import sys

    base = Path(cache_dir) / "license-cache" / SCANCODE_HOME
    if "scancode_config" not in sys.modules:
        os.environ["SCANCODE_TEMP"] = str(base / "tmp")
        os.environ["SCANCODE_CACHE"] = str(base / "cache")
    stale = time.time() - 3600
    for folder in (base / "tmp").glob("scancode-tk-*") if (base / "tmp").is_dir() else ():
        try:
            if folder.stat().st_mtime < stale:
                folder.rmdir()  # only an empty one: ScanCode's API as used here writes nothing in it
        except OSError:
            pass


@functools.cache
def load_scancode_index() -> None:
    """ScanCode's license index, loaded once per process, with the garbage collector paused.
    Unpickling it makes millions of objects, none of them garbage; the collector's passes
    over them were over a third of the load (`get_cache`: 4.6 s of CPU, 2.6 without; a fresh
    process's first detection, imports included, 5.5 s and 4.3: medians of 3). An index not
    built yet is built with the collector on: building makes garbage."""
    from licensedcode.cache import LICENSE_INDEX_DIR, LICENSE_INDEX_FILENAME, get_cache
    from scancode_config import licensedcode_cache_dir

    collecting = gc.isenabled()
    if os.path.isfile(os.path.join(licensedcode_cache_dir, LICENSE_INDEX_DIR, LICENSE_INDEX_FILENAME)):
        gc.disable()
    try:
        get_cache()
    finally:
        if collecting:
            gc.enable()


_MEMOS: dict[str, dict[str, Any]] = {}  # a worker process's results in memory, per cache location


class LicenseScanner:
    """ScanCode's license and copyright detection on texts, cached by their sha256. The cache
    holds what ScanCode matched (each match's expression, lines, score and rule); the
    expression is made from it on reading, so the rules below can change without a rescan."""

    MEMO_ENTRIES = 4096  # results kept in memory: a notice seen again costs no read of the cache

    def __init__(self, cache_dir: str | Path, narrow: bool = True, quick_copyrights: bool = True,
                 as_text: bool = True, results: str | Path | None = None):
        keep_scancode_inside(cache_dir)
        self.cache_dir = Path(cache_dir) / "license-cache"  # local: ScanCode's scratch files and folders
        # the results: cache_dir/license-cache, or a folder or object store every node shares (execution.license_cache)
        self.results = Store(results or self.cache_dir)
        # shared by the scanners of a worker process (a task's stages are made anew for each chunk); read-only
        self.memo = _MEMOS.setdefault(str(results or self.cache_dir), {})
        self.narrow = narrow  # ScanCode's candidate ranking on the rules that can make its cut (narrow_candidates)
        # cluecode's copyright lexer remembering labels (MemoLexer), its grammar skipping rules that group nothing
        self.quick_copyrights = quick_copyrights
        self.as_text = as_text  # ScanCode told that the texts it reads are text (`told_plain_text`), libmagic unasked
        self.hits = self.misses = 0
        # ScanCode's runs per kind ("licenses", "notice:exact", "header:approximate", "holders", ...): [runs, CPU s]
        self.runs: dict[str, list] = {}

    def _count(self, kind: str, started: float) -> None:
        runs = self.runs.setdefault(kind, [0, 0.0])
        runs[0] += 1
        runs[1] += time.process_time() - started

    def _cached(self, kind: str, text: str, compute) -> Any:
        digest = hashlib.sha256(f"{kind}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()
        if digest in self.memo:
            self.hits += 1
            return self.memo[digest]
        name = f"{digest[:2]}/{digest}.json"
        stored = self.results.read_bytes(name)
        if stored is not None:
            self.hits += 1
            result = json.loads(stored)
        else:
            self.misses += 1
            result = compute(text)
            try:
                self.results.write_bytes(name, json.dumps(result).encode())  # whole or not at all, on any store
            except OSError:
                pass  # not cached this time: the result stands, a later build scans the text again
        if len(self.memo) >= self.MEMO_ENTRIES:
            self.memo.clear()
        self.memo[digest] = result
        return result

    def _on_file(self, text: str, function) -> Any:
        """ScanCode's API reads files: the text goes to a scratch file inside the cache."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.cache_dir, suffix=".txt", encoding="utf-8",
                                         errors="surrogatepass") as scratch:
            scratch.write(text)
            scratch.flush()
            with told_plain_text(scratch.name, text if self.as_text else None):
                return function(scratch.name)

    def licenses(self, text: str) -> dict[str, Any]:
        """{"expression": SPDX or None, "score", "rule", "start_line", "end_line"} (`summary`)."""
        def compute(body: str) -> dict[str, Any]:
            from scancode.api import get_licenses

            load_scancode_index()
            narrow_candidates(self.narrow)
            started = time.process_time()
            found = _matched(self._on_file(body, get_licenses))
            self._count("licenses", started)
            return found

        return summary(self._cached(f"licenses-{CACHE_FORMAT}", text, compute))

    def header_licenses(self, text: str, is_notice: bool) -> dict[str, Any]:
        """As `licenses`, for a file's notice (or header), exact matchers first: ScanCode's
        hash and Aho-Corasick matching take milliseconds, its approximate matching most of a
        second. The exact result stands when its matches name one license expression and cover
        every line of the notice and every line that names a license in words; otherwise
        ScanCode runs whole, as on any text. `matcher` says which."""
        def compute(body: str) -> dict[str, Any]:
            from scancode.api import get_licenses

            load_scancode_index()
            narrow_candidates(self.narrow)
            started = time.process_time()
            exact = self._on_file(body, lambda location: get_licenses(location, approximate=False))
            matches = [m for d in exact.get("license_detections", []) for m in d["matches"]]
            covered = {line for m in matches for line in range(m["start_line"], m["end_line"] + 1)}
            # several licenses found apart may be one longer notice to the approximate matcher
            if lines_to_cover(body, is_notice) <= covered and len({m["license_expression_spdx"] for m in matches}) <= 1:
                self._count(f"{kind}:exact", started)
                return {**_matched(exact), "matcher": "exact"}
            found = {**_matched(self._on_file(body, get_licenses)), "matcher": "approximate"}
            self._count(f"{kind}:approximate", started)  # the exact run before it included
            return found

        kind = "notice" if is_notice else "header"
        found = self._cached(f"{kind}-{CACHE_FORMAT}", text, compute)
        return {**summary(found), "matcher": found["matcher"]}

    def holders(self, text: str) -> list[str]:
        """The copyright holders ScanCode's copyright detection (cluecode) finds in `text`."""
        def compute(body: str) -> list[str]:
            from scancode.api import get_copyrights

            quicken_copyrights(self.quick_copyrights)
            started = time.process_time()
            found = self._on_file(body, get_copyrights)
            self._count("holders", started)
            return sorted({h["holder"] for h in found.get("holders", [])})

        return self._cached("holders", text, compute)


class CandidateCounts:
    """ScanCode's license index as an inverted index (token -> the rules whose token set holds it,
    two arrays), with what `compare_token_sets` reads of each rule: it scores all rules against a
    query at once, to find the few that can be among ScanCode's candidates."""

    def __init__(self, idx: Any):
        import numpy as np

        rids = sorted(idx.approx_matchable_rids)
        sets = [np.array(idx.sets_by_rid[rid].tolist(), dtype=np.int32) for rid in rids]
        tokens = np.concatenate(sets)
        self.rules = len(idx.rules_by_rid)
        self.vocabulary = int(tokens.max()) + 1
        self.postings = np.repeat(np.array(rids, dtype=np.int32), [len(s) for s in sets])[
            np.argsort(tokens, kind="stable")]
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(tokens, minlength=self.vocabulary))])
        never = np.iinfo(np.int64).max  # a rule approximate matching never considers
        self.min_tokens = np.full(self.rules, never, dtype=np.int64)
        self.min_legalese = np.full(self.rules, never, dtype=np.int64)
        self.length = np.ones(self.rules, dtype=np.int64)
        self.min_containment = np.zeros(self.rules, dtype=np.float64)
        for rid in rids:
            rule = idx.rules_by_rid[rid]
            self.min_tokens[rid] = rule.get_min_matched_length(True)
            # compare_token_sets also drops a rule that shares no legalese token, whatever its minimum
            self.min_legalese[rid] = max(1, rule.get_min_high_matched_length(True))
            self.length[rid] = rule.get_length(True)
            self.min_containment[rid] = rule._minimum_containment or 0.0
        self.len_legalese = idx.len_legalese

    def shared(self, tokens: list[int]) -> Any:
        """Per rule id: how many of `tokens` (distinct) its token set holds."""
        import numpy as np

        known = [t for t in tokens if t < self.vocabulary]
        if not known:
            return np.zeros(self.rules, dtype=np.int64)
        return np.bincount(np.concatenate([self.postings[self.starts[t]:self.starts[t + 1]] for t in known]),
                           minlength=self.rules)

    def possible(self, token_ids: Iterable[int], top: int, high_resemblance: bool, threshold: float) -> list[int]:
        """The rule ids that can be among the `top * 10` that `compute_candidates` ranks first on
        token sets (its step 1; step 2 reranks only those): every rule it keeps ranks below them."""
        import numpy as np

        distinct = sorted({t for t in token_ids if t != -1})  # -1: a token matched already
        legalese = [t for t in distinct if t < self.len_legalese]
        if not legalese:
            return []
        matched = self.shared(distinct)
        # what compare_token_sets keeps: enough legalese and tokens shared, enough of the rule contained
        kept = np.flatnonzero((self.shared(legalese) >= self.min_legalese) & (matched >= self.min_tokens))
        matched = matched[kept]
        containment = matched / self.length[kept]  # the same IEEE divisions as compare_token_sets'
        resemblance = matched / (len(distinct) + self.length[kept] - matched)
        contained = (self.min_containment[kept] == 0) | (containment >= self.min_containment[kept])
        kept, matched, containment, resemblance = (a[contained] for a in (kept, matched, containment, resemblance))
        if high_resemblance:  # only highly resemblant rules are ranked at all: few
            return kept[resemblance >= threshold].tolist()
        if len(kept) <= top * 10:
            return kept.tolist()
        # the rank is first by scores rounded to tenths (round(x, 1): the tenth below or above x), then
        # finer: a rule whose best possible rounded scores rank below the worst possible of top * 10
        # others is not among the top * 10
        low, high = [], []
        for value in (containment, resemblance ** 2):
            low.append(np.floor(value * 10 - 1e-6).clip(0))
            high.append(np.ceil(value * 10 + 1e-6))
        resemblant = (np.floor(resemblance * 10 - 1e-6) / 10 >= threshold,
                      np.ceil(resemblance * 10 + 1e-6) / 10 >= threshold)
        length_low, length_high = matched // 2, (matched + 1) // 2  # round(matched / 20, 1) in tenths
        scale = int(length_high.max()) + 1

        def key(resemblant, contains, resembles, length):
            return ((resemblant.astype(np.int64) * 12 + contains.astype(np.int64)) * 12
                    + resembles.astype(np.int64)) * scale + length

        lowest = key(resemblant[0], low[0], low[1], length_low)
        highest = key(resemblant[1], high[0], high[1], length_high)
        cutoff = np.partition(lowest, len(lowest) - top * 10)[len(lowest) - top * 10]  # the (top*10)th best
        return kept[highest >= cutoff].tolist()


CANDIDATE_COUNTS: dict[int, CandidateCounts] = {}  # per ScanCode index (by id): built once per process


# the ScanCode versions whose `compute_candidates` internals CandidateCounts was checked against
NARROWED_SCANCODE = frozenset({"32.5.0"})


def narrow_candidates(on: bool = True) -> None:
    """Make ScanCode's approximate matching rank only the rules that can be its candidates (`on`
    False: ScanCode's own function again, for a benchmark's comparison).

    `licensedcode.match_set.compute_candidates` scores a query run's token set against each of
    30,050 rules in Python (most of a second per query), drops those that share too little with
    it (`compare_token_sets`), ranks the rest and keeps the best `top * 10` for a finer ranking.
    `CandidateCounts` does that first part for all rules at once, with bounds where the original
    rounds, and the original function runs on the rules that can make its cut: the same candidates
    in the same order, so the same matches (tests/stages/test_license_headers.py compares both)."""
    from importlib import metadata

    from licensedcode import match_set

    original = getattr(match_set.compute_candidates, "original", None)
    if not on and original is not None:
        match_set.compute_candidates = original
    if not on or original is not None:
        return
    if metadata.version("scancode-toolkit") not in NARROWED_SCANCODE:
        return  # the replacement reads ScanCode's internals: another version keeps its own function
    original = match_set.compute_candidates
    counts = CANDIDATE_COUNTS

    def compute_candidates(query_run, idx, matchable_rids, top=50, high_resemblance=False,
                           high_resemblance_threshold=0.8, _use_bigrams=False):
        options = {"top": top, "high_resemblance": high_resemblance,
                   "high_resemblance_threshold": high_resemblance_threshold, "_use_bigrams": _use_bigrams}
        if _use_bigrams:
            return original(query_run, idx, matchable_rids, **options)
        if id(idx) not in counts:
            counts[id(idx)] = CandidateCounts(idx)
        rids = [rid for rid in counts[id(idx)].possible(query_run.matchable_tokens(), top, high_resemblance,
                                                        high_resemblance_threshold) if rid in matchable_rids]
        # the original reads these four of the index; rule ids renumbered in order rank the same
        subset = SimpleNamespace(len_legalese=idx.len_legalese, rules_by_rid=[idx.rules_by_rid[r] for r in rids],
                                 sets_by_rid=[idx.sets_by_rid[r] for r in rids],
                                 msets_by_rid=[idx.msets_by_rid[r] for r in rids])
        return [(scores, rids[rid], rule, shared)
                for scores, rid, rule, shared in original(query_run, subset, range(len(rids)), **options)]

    compute_candidates.original = original
    match_set.compute_candidates = compute_candidates


class MemoLexer:
    """cluecode's copyright lexer, remembering each token's label. Its Lexer (pygmars) labels a
    token by trying 1,112 regular expressions in order on the token's text alone, first match
    wins: most of the time of ScanCode's copyright detection, and the same few thousand words
    ("Copyright", "(c)", years, names) in every header. The label depends on the text alone,
    so remembering it gives the same labels (tests/stages/test_license_headers.py compares the
    holders both ways on real headers). The 1,112 as alternatives of one expression would take
    the same first match, but run 3 times slower than the loop: Python's engine rejects a word
    early by each expression's first characters only when it runs alone."""

    LIMIT = 200_000  # texts remembered; past it the memory starts over

    def __init__(self, lexer: Any):
        self.lexer = lexer
        self.labels: dict[str, str | None] = {}

    def lex_tokens(self, tokens: Any, trace: bool = False) -> Iterator[Any]:
        if trace:
            yield from self.lexer.lex_tokens(tokens, trace=True)
            return
        labels, matchers = self.labels, self.lexer._matchers
        for token in tokens:
            value = token.value
            if value in labels:
                label = labels[value]
            else:
                label = next((label for matcher, label in matchers if matcher(value)), None)
                if len(labels) >= self.LIMIT:
                    labels.clear()
                labels[value] = label
            if label is not None:
                token.label = label
            yield token


class QuickParser:
    """cluecode's copyright grammar (pygmars' Parser), rule by rule as pygmars applies it,
    without the work of a rule that groups nothing, and remembering the tree's shape for each
    sequence of labels. For each of the grammar's 413 rules, pygmars joins the labels of the
    tree's nodes into a string, substitutes the rule's pattern in it, and builds a new tree from
    the result; most rules group nothing in a given text, and then the new tree holds the same
    nodes as the old. Here the labels' string is joined again only after a rule grouped
    something, and the tree rebuilt only then, by pygmars' own ParseString: the same
    substitutions in the same order, so the same tree. The rules read labels alone, so a
    sequence of labels seen before (most copyright statements are "Copyright (c) YEAR NAME
    NAME") gets the shape it got then, with its own tokens as leaves, in order
    (tests/stages/test_license_headers.py compares the holders both ways)."""

    LIMIT = 50_000  # shapes remembered; past it the memory starts over

    def __init__(self, parser: Any):
        self.parser = parser
        self.rules = [(rule._transformer, rule.label) for rule in parser.rules]
        self.shapes: dict[str, tuple[str, list]] = {}
        self.remembered = 0  # parses that took a remembered shape

    def parse(self, tokens: Any) -> Any:
        """The tree pygmars' Parser makes of `tokens`, a sequence of tokens (cluecode's use);
        a tree, tracing, validation, several loops or nothing to parse go to pygmars itself."""
        from pygmars.parse import ParseString
        from pygmars.tree import Tree

        parser = self.parser
        if isinstance(tokens, Tree) or parser._trace or parser._validate or parser._loop != 1:
            return parser.parse(tokens)
        tokens = list(tokens)
        if not tokens or any(isinstance(token, Tree) for token in tokens):
            return parser.parse(tokens)  # pygmars' error for nothing to parse
        labels = "".join(f"<{token.label}>" for token in tokens)
        if labels in self.shapes:
            self.remembered += 1
            label, shape = self.shapes[labels]
            return Tree(label, _grown(shape, iter(tokens), Tree))
        seen, tree = labels, Tree(parser._root_label, tokens)
        for transform, label in self.rules:
            grouped = transform(labels).replace("{}", "")
            if grouped == labels:  # no group: pygmars' new tree would be this one's nodes again
                continue
            parsed = ParseString(tree)
            parsed._parse_string = grouped
            tree = parsed.to_tree(label)
            labels = "".join(f"<{node.label}>" for node in tree)
        if len(self.shapes) >= self.LIMIT:
            self.shapes.clear()
        self.shapes[seen] = (tree.label, _shape(tree, Tree))
        return tree


def _shape(tree: Any, tree_type: type) -> list:
    """A parse tree's shape: per node, None for a token, else (its label, its nodes' shape)."""
    return [(node.label, _shape(node, tree_type)) if isinstance(node, tree_type) else None for node in tree]


def _grown(shape: list, tokens: Iterator[Any], tree_type: type) -> list:
    """The nodes of a tree of `shape` whose tokens are `tokens`, in order."""
    return [next(tokens) if node is None else tree_type(node[0], _grown(node[1], tokens, tree_type)) for node in shape]


def quicken_copyrights(on: bool = True) -> None:
    """Put a MemoLexer and a QuickParser in place of cluecode's copyright lexer and parser
    (`on` False: the originals again, for a benchmark's comparison)."""
    from cluecode import copyrights

    if copyrights.DETECTOR is None:
        copyrights.DETECTOR = copyrights.CopyrightDetector()
    detector = copyrights.DETECTOR
    if on and not isinstance(detector.lexer, MemoLexer):
        detector.lexer = MemoLexer(detector.lexer)
    elif not on and isinstance(detector.lexer, MemoLexer):
        detector.lexer = detector.lexer.lexer
    if on and not isinstance(detector.parser, QuickParser):
        detector.parser = QuickParser(detector.parser)
    elif not on and isinstance(detector.parser, QuickParser):
        detector.parser = detector.parser.parser


LONGEST_PLAIN_LINE = 200  # characters, its line ending counted: ScanCode breaks no shorter line, whatever libmagic says


@contextmanager
def told_plain_text(location: str, text: str | None) -> Iterator[None]:
    """ScanCode's reading of the scratch file at `location`, told beforehand that it holds
    plain text: no call of libmagic (two per text, about 3 ms each, a third of ScanCode's time
    on headers and copyrights). ScanCode asks libmagic the file type and MIME type of every
    file it reads (typecode's `Type`, kept per path) and reads a text file by the answers:
    - nothing at all where libmagic names media (an image, audio, video: "/* XPM */" opening a
      C comment makes it an image) or, for bytes ScanCode's own sniff takes for binary, a
      compressed file; a PDF with text by a PDF reader; a font database by its own reader;
    - lines over 200 characters (their line ending counted) broken into pieces where libmagic
      says "with very long lines" (a line over 300 characters) or "data".
    Every text given here is text a stage read, so it is read as text. Where a line with its
    line ending reaches LONGEST_PLAIN_LINE bytes (or `text` is None), libmagic is asked as
    always, since its answer could break that line. What ScanCode computes itself (whether
    the bytes look binary, the size) it still computes. The Type is dropped afterwards:
    typecode keeps one per path for the life of the process, and every scratch file has a new
    path."""
    from typecode import contenttype

    location = os.path.abspath(location)
    # a line ScanCode reads has at most the characters of the bytes before a "\n", and the "\n"
    if text is not None and all(len(line) < LONGEST_PLAIN_LINE
                                for line in text.encode("utf-8", "surrogatepass").split(b"\n")):
        told = contenttype.Type(location)
        told._filetype_file, told._mimetype_file = "ASCII text", "text/plain"
        contenttype._registry[location] = told
    try:
        yield
    finally:
        contenttype._registry.pop(location, None)


def _matched(found: dict[str, Any]) -> dict[str, Any]:
    """What the cache keeps of ScanCode's answer: its expression and every match."""
    return {"detected": found.get("detected_license_expression_spdx"),
            "matches": [{key: m[key] for key in ("license_expression_spdx", "start_line", "end_line", "score",
                                                 "matched_length", "rule_identifier")}
                        for d in found.get("license_detections", []) for m in d["matches"]]}


def summary(found: dict[str, Any]) -> dict[str, Any]:
    """The expression of ScanCode's matches (mentions of unknown licenses left out when a known
    one is there; a choice that names every license of the others is the choice: `together`),
    canonical; the score and rule of the best-supported match that says the expression by itself
    (a choice's statement) and the lines such matches span (where none does: of all matches).
    Where only unknown licenses matched, the expression is None, the rest of the best of them."""
    known = [m for m in found["matches"] if not m["license_expression_spdx"].startswith(UNKNOWN)]
    if not known:
        unknown = max(found["matches"], key=lambda m: (m["score"], m["matched_length"]), default=None)
        if unknown is None:
            return {"expression": None, "score": None, "rule": None, "start_line": None, "end_line": None}
        return {"expression": None, "score": unknown["score"], "rule": unknown["rule_identifier"],
                "start_line": unknown["start_line"], "end_line": unknown["end_line"]}
    parts = [m["license_expression_spdx"] for m in known]
    detected = found["detected"]
    if any(is_choice(part) for part in parts) or not detected or any(
            s.startswith(UNKNOWN) for s in symbols(detected)):
        expression = together(parts)
    else:
        expression = canonical(detected)
    # the evidence shown: the matches that say the expression by themselves (a choice's statement), else all
    shown = [m for m in known if canonical(m["license_expression_spdx"]) == expression] or known
    best = max(shown, key=lambda m: (m["score"], m["matched_length"]))
    return {"expression": expression, "score": best["score"], "rule": best["rule_identifier"],
            "start_line": min(m["start_line"] for m in shown), "end_line": max(m["end_line"] for m in shown)}


# --- file headers ---------------------------------------------------------------------


def leading_comments(lines: list[str]) -> tuple[list[list[int]], int]:
    """The comments before a header's first line of code, each a list of line indexes (a run
    of line comments, a block comment, a module docstring), and the index of that line."""
    comments: list[list[int]] = []
    closing: str | None = None
    in_line_comment = False
    for number, line in enumerate(lines):
        stripped = line.strip()
        if closing is not None:
            comments[-1].append(number)
            if closing in stripped:
                closing = None
            continue
        if not stripped or (number == 0 and stripped.startswith("#!")):
            in_line_comment = False
            continue
        if LINE_COMMENT.match(line):
            if not in_line_comment:
                comments.append([])
            comments[-1].append(number)
            in_line_comment = True
            continue
        opened = next((pair for pair in BLOCK_COMMENTS if stripped.lstrip("rRbBuU").startswith(pair[0])), None)
        if opened is None:
            return comments, number
        comments.append([number])
        in_line_comment = False
        closing = None if opened[1] in stripped.lstrip("rRbBuU")[len(opened[0]):] else opened[1]
    return comments, len(lines)


def notice_lines(lines: list[str]) -> list[int]:
    """Indexes of the lines of a header's notice: in each leading comment that says anything
    legal, the paragraphs from the first legal one to the last (a paragraph break is a line
    without a word character, kept too). A description before or after is not the notice."""
    comments, _ = leading_comments(lines)
    found: list[int] = []
    for comment in comments:
        paragraphs: list[list[int]] = [[]]
        for number in comment:
            paragraphs[-1].append(number)
            if not re.sub(r"[\W_]", "", lines[number]):
                paragraphs.append([])
        legal = [i for i, p in enumerate(paragraphs) if any(LEGAL.search(lines[n]) for n in p)]
        if legal:
            found += [n for p in paragraphs[legal[0]:legal[-1] + 1] for n in p]
    return found


def is_attribution(line: str) -> bool:
    """A copyright statement or an author, maintainer or contact line that says nothing legal."""
    return bool(ATTRIBUTION.search(line)) and not LEGAL.search(line)


def license_notice(header: str) -> str | None:
    """The license notice of a header: its `notice_lines`, each run of copyright or attribution
    lines (holders, years, e-mails, authors) made one constant line, so that ScanCode still sees a
    line there but the files of one project share the notice while their headers all differ.
    None when the code after the comments names a license too, or there is no notice: then
    the whole header is what ScanCode reads."""
    found = notice_and_lines(header)
    return found[0] if found else None


def notice_and_lines(header: str) -> tuple[str, list[tuple[int, int]]] | None:
    """`license_notice` and, per line of it, the lines of the header it stands for (1-based,
    first and last: a run of attribution lines is one line of the notice)."""
    lines = header.split("\n")
    _, code = leading_comments(lines)
    if any(LICENSE_WORDS.search(line) for line in lines[code:]):
        return None
    kept: list[str] = []
    origins: list[tuple[int, int]] = []
    for n in notice_lines(lines):
        line = ATTRIBUTION_LINE if is_attribution(lines[n]) else lines[n].rstrip()
        if line == ATTRIBUTION_LINE and kept and kept[-1] == ATTRIBUTION_LINE:  # a list of holders: one line
            origins[-1] = (origins[-1][0], n + 1)
            continue
        kept.append(line)
        origins.append((n + 1, n + 1))
    while kept and not kept[0]:  # what strip("\n") of the joined lines removes
        del kept[0], origins[0]
    while kept and not kept[-1]:
        del kept[-1], origins[-1]
    return ("\n".join(kept), origins) if kept else None


def copyright_statements(header: str) -> str | None:
    """The lines of a header that state a copyright, each with the line after it (a holder's
    name often wraps): what ScanCode's copyright detection reads of a file, not the whole file.
    Years are made one year, so that a project's files share the text (and its cached holders)."""
    lines = header.split("\n")
    picked = sorted({n for i, line in enumerate(lines) if COPYRIGHT.search(line) for n in (i, i + 1)
                     if n < len(lines)})
    return YEAR.sub("2000", "\n".join(lines[n] for n in picked)) or None


def lines_to_cover(text: str, is_notice: bool) -> set[int]:
    """Line numbers (1-based) ScanCode's exact matches must cover for their result to stand:
    every line of a notice that has words (attribution lines aside); in a whole header, the
    lines of its notice, and every line that names a license in words."""
    lines = text.split("\n")
    candidates = range(len(lines)) if is_notice else notice_lines(lines)
    needed = {n + 1 for n in candidates if re.sub(r"[\W_]", "", lines[n]) and not is_attribution(lines[n])}
    return needed | {n for n, line in enumerate(lines, 1) if LICENSE_WORDS.search(line)}



# --- metadata ---------------------------------------------------------------------------


def declared_licenses(name: str, text: str) -> list[str]:
    """The license strings package metadata declares (not yet normalized)."""
    try:
        if name in ("package.json", "composer.json"):
            data = json.loads(text)
            value = data.get("license") or data.get("licenses")
            if isinstance(value, dict):
                value = value.get("type")
            if isinstance(value, list):
                items = [v.get("type") if isinstance(v, dict) else v for v in value]
                return [" OR ".join(str(v) for v in items if v)] if items else []
            if isinstance(value, str) and not value.upper().startswith("SEE LICEN"):
                return ["LicenseRef-npm-UNLICENSED" if value.upper() == "UNLICENSED" else value]
            return []
        if name in ("pyproject.toml", "Cargo.toml"):
            data = tomllib.loads(text)
            table = data.get("project") or data.get("package") or {}
            value = table.get("license")
            if isinstance(value, dict):
                value = value.get("text")
            found = [value] if isinstance(value, str) and value.strip() else []
            return found or [c for c in table.get("classifiers", []) if c.startswith("License ::")]
        if name == "PKG-INFO":
            headers = text.split("\n\n", 1)[0]
            expression = re.findall(r"^License-Expression:[ \t]*(.+)$", headers, re.MULTILINE)
            plain = [v for v in re.findall(r"^License:[ \t]*(.+)$", headers, re.MULTILINE) if v.strip() != "UNKNOWN"]
            classifiers = re.findall(r"^Classifier:[ \t]*(License ::.+)$", headers, re.MULTILINE)
            return expression or plain or classifiers
        if name == "setup.cfg":
            value = re.findall(r"^license[ \t]*=[ \t]*(.+)$", text, re.MULTILINE)
            return value or re.findall(r"^[ \t]*(License ::.+)$", text, re.MULTILINE)
        if name == "setup.py":
            return re.findall(r"""\blicense\s*=\s*["']([^"']+)["']""", text)
    except (ValueError, tomllib.TOMLDecodeError, AttributeError):
        return []
    return []

# --- resolution -------------------------------------------------------------------------


@dataclass
class Resolution:
    license: str | None
    source: str | None  # a directory's evidence files; a file's `header:<path>` or `file:<files>`
    conflict: str | None = None  # None, "resolved", "unresolved"
    evidence: Evidence | None = None  # what a file shows of it: kind, path, rule, score, lines
    holders: tuple[str, ...] = ()  # copyright holders of the directory's license, NOTICE and README texts
    # (file, expression) of the directory's metadata the license disagrees with: every declaration when
    # they disagree among themselves or the license is unknown, else those naming a license it does not
    others: tuple[tuple[str, str], ...] = ()
    over: str | None = None  # a file's other evidence, which this one won over: `<its source> (<its expression>)`

    @property
    def shown_source(self) -> str | None:
        """The file's `license_source`: its source, and what it won over where that said otherwise."""
        return self.source if self.over is None else f"{self.source} over {self.over}"


def names_its_license(evidence: Evidence) -> bool:
    """A license file named after the one license it holds: LICENSE-MIT holding MIT,
    LICENSE.APACHE holding Apache-2.0 (a name that is a prefix of the id, or the id of the name)."""
    named = NAMED_LICENSE_FILE.match(posixpath.basename(evidence.file))
    if named is None or len(symbols(evidence.expression)) != 1:
        return False
    name = re.sub(r"[^a-z0-9]", "", named["named"].lower())
    key = re.sub(r"[^a-z0-9]", "", evidence.expression.lower())
    return bool(name) and (key.startswith(name) or name.startswith(key))


def license_files_expression(files: list[Evidence]) -> str:
    """What a directory's license files say together. Files named after the license each
    holds, side by side (LICENSE-MIT, LICENSE-APACHE), offer a choice: OR; a license file
    that states a choice among some of the same licenses ("either LICENSE.APACHE or
    LICENSE.BSD") is that choice's statement. Other files apply too (AND), except where one
    states a choice naming every license the others name (`together`)."""
    named = [e for e in files if names_its_license(e)]
    if len({e.expression for e in named}) < 2:
        return together(e.expression for e in files)
    choice = any_of(e.expression for e in named)
    others = [e.expression for e in files if e not in named
              and not (is_choice(e.expression) and symbols(e.expression) & symbols(choice))]
    return combine([choice, *others])


def is_unknown(expression: str) -> bool:
    """Evidence that a license applies without saying which (`UNKNOWN_LICENSE`, `UNKNOWN_SPDX`)."""
    return any(key.startswith(UNKNOWN) for key in symbols(expression))


def resolve(evidence: list[Evidence]) -> Resolution:
    """One expression from a directory's evidence. License files win; a declaration that names
    every license they name (metadata, else a choice a README's license section states) lends
    its structure (`LICENSE-MIT` plus Cargo's `MIT OR Apache-2.0`); declarations naming other
    licenses are kept in `others` (the decision drops on them when they fail the allowlist and
    the license files pass). A license file nobody can read or identify counts where no other
    license file of the directory says a license: then the directory's license is unknown.
    Metadata alone must agree with itself."""
    by_kind = {kind: [e for e in evidence if e.kind == kind] for kind in KINDS}
    metadata = by_kind["metadata"] + by_kind["dataset"]
    files = [e for e in by_kind["license_file"] if not is_unknown(e.expression)]
    unreadable = [e for e in by_kind["license_file"] if is_unknown(e.expression)]
    declared = sorted({e.expression for e in metadata})
    holders = tuple(sorted({h for e in evidence for h in e.holders}))

    def disagreeing(expression: str | None) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({(e.file, e.expression) for e in metadata
                             if expression is None or not symbols(e.expression) <= symbols(expression)}))

    if files:
        found = license_files_expression(files)
        choices = [e for e in by_kind["readme"] if is_choice(e.expression)]  # a README lends only a choice
        for statements, conflict in ((metadata, None), (choices, "resolved" if declared else None)):
            for expression in sorted({e.expression for e in statements}):
                if symbols(found) <= symbols(expression):
                    lent = [e for e in statements if e.expression == expression]
                    return Resolution(expression, _sources(files + lent), conflict, files[0], holders,
                                      disagreeing(expression))
        return Resolution(found, _sources(files), "resolved" if declared else None, files[0], holders,
                          disagreeing(found))
    if unreadable:
        return Resolution(UNKNOWN_LICENSE, _sources(unreadable), None, unreadable[0], holders, disagreeing(None))
    if declared:
        if len({symbols(e) for e in declared}) == 1:
            return Resolution(declared[0], _sources(metadata), None, metadata[0], holders)
        return Resolution(combine(declared), _sources(metadata), "unresolved", metadata[0], holders,
                          disagreeing(None))
    for kind in ("notice", "readme"):
        if by_kind[kind]:
            return Resolution(together(e.expression for e in by_kind[kind]), _sources(by_kind[kind]), None,
                              by_kind[kind][0], holders)
    return Resolution(None, None, None, None, holders)


def _sources(evidence: list[Evidence]) -> str:
    return ",".join(sorted({e.file for e in evidence}))


def decide(found: Resolution, allowed: frozenset[str]) -> tuple[str | None, str | None]:
    """(reason, detail) for a file under `found`: (None, None) when it may be kept."""
    def listed(pairs: Iterable[tuple[str, str]]) -> str:
        return "; ".join(f"{file}: {expression}" for file, expression in pairs)

    if found.license is None:
        return NO_LICENSE, None
    if found.conflict == "unresolved":
        return LICENSE_CONFLICT, f"repository metadata disagree: {listed(found.others)}"
    shown = found.evidence
    if is_unknown(found.license):
        if shown.kind == "header":
            what = f"{shown.file}: line {shown.start_line} has an SPDX-License-Identifier naming no known license"
        elif shown.rule and shown.rule.startswith("not read: "):
            what = f"{shown.file}: a license file {shown.rule}"
        else:
            what = f"{shown.file}: no license ScanCode identifies"
        return LICENSE_UNKNOWN, "; ".join([what, *(f"{f}: {e}" for f, e in found.others)])
    if not is_allowed(found.license, allowed):
        return LICENSE_NOT_ALLOWED, "not allowed: " + ", ".join(sorted(symbols(found.license) - allowed))
    refused = [(file, expression) for file, expression in found.others if not is_allowed(expression, allowed)]
    if refused:
        files = found.source.removeprefix("file:")
        return LICENSE_CONFLICT, f"license files and metadata disagree: {files}: {found.license}; {listed(refused)}"
    return None, None


def file_license(path: str, header: Evidence | None, scopes: dict[str, Resolution],
                 allowed: frozenset[str]) -> Resolution:
    """A file's license, by precedence: its own header when that refuses the file (fails the
    allowlist, or names an unknown license); else its nearest directory's when that refuses it
    (fails, unknown, in conflict: a permissive header never overrides it); else its header,
    else its nearest directory's, else none. Where the header and the directory say different
    things, `over` names the other, with its expression. The holders are its directory's."""
    scope = most_specific(path, scopes)
    own = None if header is None else Resolution(header.expression, f"header:{header.file}", None, header)
    if scope is None or scope.license is None:
        return own or Resolution(None, None)
    inherited = Resolution(scope.license, f"file:{scope.source}", scope.conflict, scope.evidence, scope.holders,
                           scope.others)
    if own is None:
        return inherited
    header_wins = decide(own, allowed)[0] is not None or decide(inherited, allowed)[0] is None
    used, other = (own, inherited) if header_wins else (inherited, own)
    over = None if used.license == other.license else f"{other.source} ({other.license})"
    return replace(used, holders=scope.holders, over=over)


def scopes_of(rows: list[dict[str, Any]]) -> dict[str, dict[str, Resolution]]:
    """repo -> directory -> resolution, from rows of the `licenses` table."""
    scopes: dict[str, dict[str, Resolution]] = {}
    for row in rows:
        evidence = None if row["kind"] is None else Evidence(  # what its files show: the expression is the directory's
            row["file"], row["kind"], row["license"], row["score"], row["rule"], row["start_line"], row["end_line"])
        scopes.setdefault(row["repo"], {})[row["dir"]] = Resolution(
            row["license"], row["license_source"], row["conflict"], evidence, tuple(row["holders"] or ()),
            tuple((other["file"], other["expression"]) for other in row["others"] or ()))
    return scopes


def most_specific(path: str, scopes: dict[str, Resolution]) -> Resolution | None:
    """The resolution of the deepest directory above `path` that has one."""
    directory = posixpath.dirname(path)
    while True:
        if directory in scopes:
            return scopes[directory]
        parent = posixpath.dirname(directory)
        if parent == directory:  # "" or "/": nothing above
            return scopes.get("")
        directory = parent


def is_package_metadata(path: str) -> bool:
    return posixpath.basename(path) in PACKAGE_METADATA_FILES or bool(PACKAGE_METADATA_DIR.search(path))


def promises_license(record: FileRecord) -> bool:
    """A license file whose name promises a license text and that is plain text (not a data or
    markup file that happens to be called license.json): if no license is found in it, its
    directory's license is unknown."""
    return bool(PROMISES_LICENSE.match(posixpath.basename(record.path))) and record.language_type in (None, "prose")


def is_unread_license_file(path: str) -> bool:
    """A path that names a license document (LICENSE, COPYING.txt, LICENSE.pdf; not license.png)."""
    name = posixpath.basename(path)
    return bool(PROMISES_LICENSE.match(name) and LICENSE_DOCUMENT.match(name))


def _line_of(text: str, value: str) -> int | None:
    """The line a metadata value is declared on: where it follows `license =` or `License:`,
    else where it first occurs (a classifier). Each occurrence looks back at most 40
    characters on its own line, so a file of many occurrences costs linear time."""
    at = None
    for found in re.finditer(re.escape(value), text):
        before = text[max(0, found.start() - 40): found.start()]
        if DECLARATION.search(before[before.rfind("\n") + 1:]):
            at = found.start()
            break
        at = found.start() if at is None else at
    return None if at is None else text.count("\n", 0, at) + 1


# --- the stages -------------------------------------------------------------------------


class LicenseDetector(FileStage):
    name = "license"
    settings_class = LicenseConfig
    writes = ("license_evidence",)  # per chunk: what its license files, notices, READMEs and metadata say
    config: LicenseConfig

    def __init__(self, config: LicenseConfig, cache_dir: str | Path, license_cache: str = ""):
        super().__init__(config)
        self.scanner = LicenseScanner(cache_dir, results=license_cache or None)
        self.evidence: list[dict[str, Any]] = []  # rows of EVIDENCE_TABLE

    @classmethod
    def from_settings(cls, settings: LicenseConfig, context: StageContext) -> LicenseDetector:
        return cls(settings, context.cache_dir, context.license_cache)

    def process(self, record: FileRecord) -> None:
        directory, name = posixpath.split(record.path)
        kind = self._candidate_kind(record, name)
        if kind is not None and not PACKAGE_METADATA_DIR.search(record.path):  # generated copies: not evidence
            for seq, evidence in enumerate(self._candidate_evidence(record, kind)):
                self.evidence.append({"repo": record.repo, "dir": directory, "ordinal": record.ordinal or 0,
                                      "seq": seq, **asdict(evidence)})
        if is_package_metadata(record.path):
            record.drop(PACKAGE_METADATA)
        elif kind in ("license_file", "notice"):
            record.drop(LICENSE_TEXT)
        elif kind is None:  # metadata and READMEs are licensed as their directory; what they name is evidence
            self._own_header(record)

    def _own_header(self, record: FileRecord) -> None:
        header = "\n".join(record.content[: self.config.max_header_bytes].splitlines()[: self.config.header_lines])
        statements = copyright_statements(header)
        if statements:
            record.copyright_holders = self.scanner.holders(statements)
        found = self.header_license(header)
        if found is not None:
            record.license, record.license_source = found.expression, f"header:{record.path}"
            record.license_kind, record.license_path = found.kind, record.path
            record.license_rule, record.license_score = found.rule, found.score
            record.license_start_line, record.license_end_line = found.start_line, found.end_line

    @staticmethod
    def _candidate_kind(record: FileRecord, name: str) -> str | None:
        if name in METADATA_FILES or name.endswith(".gemspec"):
            return "metadata"
        if record.language_type == "programming":  # license.py, notice.js: code, whatever its name
            return None
        if LICENSE_FILE.match(name):
            return "license_file"
        if NOTICE_FILE.match(name):
            return "notice"
        if README_FILE.match(name):
            return "readme"
        return None

    def run(self, records: Iterable[FileRecord]) -> Iterator[FileRecord]:
        """As every file stage, and a license file that was never read as text (binary, too
        large, undecodable, a link, opted out, this stage's own error) is evidence of an
        unknown license for its directory: its terms apply, and nobody read them."""
        for record in super().run(records):
            if record.reason in UNREAD and is_unread_license_file(record.path):
                unread = Evidence(record.path, "license_file", UNKNOWN_LICENSE, rule=f"not read: {record.reason}")
                self.evidence.append({"repo": record.repo, "dir": posixpath.dirname(record.path),
                                      "ordinal": record.ordinal or 0, "seq": 0, **asdict(unread)})
            yield record

    def _candidate_evidence(self, record: FileRecord, kind: str) -> list[Evidence]:
        text = record.content
        if kind == "metadata":
            found = []
            for value in declared_licenses(posixpath.basename(record.path), text):
                line = _line_of(text, value)
                expression = normalize(value)
                if expression:
                    found.append(Evidence(record.path, kind, expression, None, "SPDX value", line, line))
                    continue
                detected = self.scanner.licenses(f"License: {value}")
                if detected["expression"]:
                    found.append(Evidence(record.path, kind, detected["expression"], detected["score"],
                                          detected["rule"], line, line))
            return found
        offset = 0
        if kind == "readme":
            at = re.search(r"^#*[ \t]*licen[cs]e\b.*$", text, re.IGNORECASE | re.MULTILINE)
            if at is None:
                return []
            offset = text.count("\n", 0, at.start())
            text = text[at.start(): at.start() + self.config.max_header_bytes]
        detected = self.scanner.licenses(text)
        if detected["expression"] is None:
            if kind != "license_file" or not promises_license(record) or POINTER.search(text):
                return []
            detected = {**detected, "expression": UNKNOWN_LICENSE}  # a license applies; nobody can say which
        if kind == "readme":
            statements = copyright_statements(text)
            holders = self.scanner.holders(statements) if statements else []
        else:
            holders = self.scanner.holders(text)
        start, end = (None, None) if detected["start_line"] is None else (detected["start_line"] + offset,
                                                                         detected["end_line"] + offset)
        return [Evidence(record.path, kind, detected["expression"], detected["score"], detected["rule"], start, end,
                         holders)]

    def header_license(self, header: str) -> Evidence | None:
        """A file's own license from its header: an SPDX line, else ScanCode on its notice (or
        the whole header) when it mentions a license. Lines are the header's."""
        spdx = SPDX_LINE.search(header)
        if spdx:
            expression = normalize(spdx.group(1))
            line = header.count("\n", 0, spdx.start()) + 1
            if expression:
                return Evidence("", "header", expression, 100.0, "SPDX-License-Identifier", line, line)
        # an SPDX line in a comment that is no SPDX expression (`MIT/X11`, `LicenseRef-Foo`): ScanCode may still
        # read it; if it cannot, the file declares a license nobody can name
        declared = None
        if spdx and SPDX_COMMENT.search(header[header.rfind("\n", 0, spdx.start()) + 1: spdx.end()]):
            declared = Evidence("", "header", UNKNOWN_SPDX, None, "SPDX-License-Identifier", line, line)
        if not self.config.scan_headers or not MENTIONS_LICENSE.search(header):
            return declared
        notice = notice_and_lines(header)
        detected = self.scanner.header_licenses(notice[0] if notice else header, is_notice=notice is not None)
        if detected["expression"] is None:
            return declared
        start, end = detected["start_line"], detected["end_line"]
        if notice:  # lines of the notice -> lines of the header
            start, end = notice[1][start - 1][0], notice[1][end - 1][1]
        return Evidence("", "header", detected["expression"], detected["score"], detected["rule"], start, end)

    def finish_unit(self, repos: dict[str, RepoRecord]) -> dict[str, pa.Table]:
        """The evidence of this chunk's license candidates; directories are resolved at the
        corpus scope, where every chunk of a repository has been seen."""
        return {"license_evidence": pa.Table.from_pylist(self.evidence, schema=EVIDENCE_TABLE)}


def resolve_repositories(evidence: list[dict[str, Any]], declared: dict[str, str],
                         repos: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows of LICENSE_TABLE, each repository's license fields) from the evidence rows in
    stream order and the licenses datasets declare. A directory's license is resolved from
    all its evidence; the root's is the repository's."""
    by_repo: dict[str, dict[str, list[Evidence]]] = {}
    for row in sorted(evidence, key=lambda r: (r["repo"], r["dir"], r["ordinal"], r["seq"])):
        fields = {name: row[name] for name in ("file", "kind", "expression", "score", "rule", "start_line",
                                               "end_line")}
        item = Evidence(**fields, holders=list(row["holders"] or []))
        by_repo.setdefault(row["repo"], {}).setdefault(row["dir"], []).append(item)
    licenses, repositories = [], []
    for name in sorted(repos):
        directories = by_repo.get(name, {})
        if declared.get(name):
            expression = normalize(declared[name])
            if expression:
                directories.setdefault("", []).append(Evidence("(dataset)", "dataset", expression))
        fields: dict[str, Any] = {"repo": name, "license": None, "license_source": None, "license_conflict": None,
                                  "copyright_holders": []}
        for directory, found in sorted(directories.items()):
            resolution = resolve(found)
            if directory == "":
                fields["copyright_holders"] = list(resolution.holders)
            if resolution.license is None:
                continue
            shown = resolution.evidence
            licenses.append({"repo": name, "dir": directory, "license": resolution.license,
                             "license_source": resolution.source, "conflict": resolution.conflict,
                             "kind": shown.kind, "file": shown.file, "score": shown.score, "rule": shown.rule,
                             "start_line": shown.start_line, "end_line": shown.end_line,
                             "holders": list(resolution.holders),
                             "others": [{"file": f, "expression": e} for f, e in resolution.others]})
            if directory == "":
                fields.update(license=resolution.license, license_source=resolution.source,
                              license_conflict=resolution.conflict)
        fields["license_evidence"] = json.dumps([asdict(e) for d in sorted(directories) for e in directories[d]],
                                                sort_keys=True)
        repositories.append(fields)
    return licenses, repositories


REPO_LICENSE = pa.schema([
    ("repo", pa.string()), ("license", pa.string()), ("license_source", pa.string()),
    ("license_conflict", pa.string()), ("license_evidence", pa.string()), ("copyright_holders", pa.list_(pa.string())),
])
# the columns that show the evidence a file's license rests on
SHOWN = ("license_kind", "license_path", "license_rule", "license_score", "license_start_line", "license_end_line")


def _header_of(row: dict[str, Any]) -> Evidence | None:
    if row["license_kind"] != "header":
        return None
    return Evidence(row["license_path"], "header", row["license"], row["license_score"], row["license_rule"],
                    row["license_start_line"], row["license_end_line"])


def judge(row: dict[str, Any], scopes: dict[str, Resolution], allowed: frozenset[str]
          ) -> tuple[dict[str, Any], str | None, str | None]:
    """(license columns, reason, detail) of one file (a row of `files` with the columns the
    license stage gave it): its license whatever else dropped it, and its license reason if it
    fails. An earlier drop that the license reason replaces is named in `detail`."""
    found = file_license(row["path"], _header_of(row), scopes, allowed)
    shown = found.evidence
    columns = {"license": found.license, "license_source": found.shown_source,
               **(dict.fromkeys(SHOWN) if shown is None else dict(zip(SHOWN, (
                   shown.kind, shown.file, shown.rule, shown.score, shown.start_line, shown.end_line), strict=True))),
               "copyright_holders": sorted(set(row["copyright_holders"] or ()) | set(found.holders))}
    reason, detail = decide(found, allowed)
    if reason is None:
        return columns, None, None
    if row["decision"] != "kept":
        earlier = row["reason"] + (f": {row['detail']}" if row["detail"] else "")
        detail = f"{detail}; also {earlier}" if detail else f"also {earlier}"
    return columns, reason, detail
