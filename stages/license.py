"""License: ScanCode evidence per repository and per file header, and the permissive decision.

Two halves, because a repository's license is known only once all its files were seen:
- `LicenseDetector` (file scope, inside the unit's task) scans license candidates (LICENSE*,
  COPYING*, NOTICE*, README*, package metadata) and each file's header: an
  `SPDX-License-Identifier:` line needs no ScanCode; a header that mentions a license goes
  to ScanCode. At the end of the unit it resolves one expression per directory that holds
  license evidence (the root's is the repository's) and writes them as the unit's
  `licenses` table.
- `LicenseDecision` (corpus scope) gives each kept file its most specific evidence (its own
  header, else the nearest directory's license, else the root's) and drops what is not
  allowed: `no_license`, `license_not_allowed`, `license_conflict`.

ScanCode results are cached by content hash in `cache_dir/license-cache/`, one JSON file per
text, written atomically: safe with many Ray workers, and kept between builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tempfile
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from corpus_core import reasons
from corpus_core.records import FileRecord, RepoRecord
from corpus_core.settings import Settings, setting
from corpus_core.spdx import PERMISSIVE, is_allowed, normalize, symbols
from corpus_core.stage import CorpusContext, CorpusStage, FileStage, StageContext

LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|unlicen[cs]e|copyright|mit-license)([-._].*)?$", re.IGNORECASE)
NOTICE_FILE = re.compile(r"^notice([-._].*)?$", re.IGNORECASE)
README_FILE = re.compile(r"^readme([-._].*)?$", re.IGNORECASE)
METADATA_FILES = frozenset({"package.json", "setup.cfg", "setup.py", "pyproject.toml", "PKG-INFO", "Cargo.toml",
                            "composer.json"})
SPDX_LINE = re.compile(r"SPDX-License-Identifier:\s*([^\n*]+?)\s*(?:\*/|-->|#}|$)", re.MULTILINE)
MENTIONS_LICENSE = re.compile(r"licen[cs]|general public|permission is hereby granted|redistribution and use",
                              re.IGNORECASE)
UNKNOWN = "LicenseRef-scancode-unknown"  # prefix of ScanCode's "a license is mentioned" keys
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

NO_LICENSE = reasons.register("no_license", "license_decision", "no license evidence for the file: no header, no "
                              "license file or metadata above it")
LICENSE_NOT_ALLOWED = reasons.register("license_not_allowed", "license_decision", "the file's expression fails the "
                                       "allowlist (OR: one side must pass; AND: all; `A WITH e`: as A)")
LICENSE_CONFLICT = reasons.register("license_conflict", "license_decision", "the repository's metadata declare "
                                    "licenses that disagree and no license file settles it")

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
    pa.field("holders", pa.list_(pa.string())),
])

# what the corpus stage resolves: one expression per directory that has evidence
LICENSE_TABLE = pa.schema([
    pa.field("repo", pa.string(), nullable=False),
    pa.field("dir", pa.string(), nullable=False),  # "" is the repository root
    pa.field("license", pa.string()),
    pa.field("license_source", pa.string()),
    pa.field("conflict", pa.string()),  # null, "resolved" (root license file won) or "unresolved"
])


@dataclass(frozen=True)
class LicenseConfig(Settings):
    section = "license"

    allowed: tuple[str, ...] = setting(PERMISSIVE, "SPDX ids a kept file's expression must satisfy "
                                       "(the default: see Licenses below)")
    header_lines: int = setting(40, "lines of each file read for its own license")
    max_header_bytes: int = setting(8192, "and at most these bytes (also a README's license section)")
    scan_headers: bool = setting(True, "ScanCode on headers that mention a license (SPDX lines always)")


def verdict_detail(reason: str | None, expression: str | None, allowed: frozenset[str]) -> str | None:
    """Words for the manifest's `detail`: which licenses failed the allowlist."""
    if reason == LICENSE_NOT_ALLOWED:
        return "not allowed: " + ", ".join(sorted(symbols(expression) - allowed))
    if reason == LICENSE_CONFLICT:
        return f"repository metadata disagree: {expression}"
    return None


def verdict(expression: str | None, conflict: str | None, allowed: frozenset[str]) -> str | None:
    """The drop reason for a file under `expression`, or None when it may be kept."""
    if expression is None:
        return NO_LICENSE
    if conflict == "unresolved":
        return LICENSE_CONFLICT
    return None if is_allowed(expression, allowed) else LICENSE_NOT_ALLOWED


@dataclass
class Evidence:
    file: str  # path in the repository
    kind: str  # one of KINDS, or "header"
    expression: str
    score: float | None = None
    rule: str | None = None
    holders: list[str] = field(default_factory=list)


# --- ScanCode, cached ------------------------------------------------------------------


class LicenseScanner:
    """ScanCode's license and copyright detection on texts, cached by their sha256."""

    def __init__(self, cache_dir: str | Path):
        self.cache_dir = Path(cache_dir) / "license-cache"
        self.hits = self.misses = 0

    def _cached(self, kind: str, text: str, compute) -> Any:
        digest = hashlib.sha256(f"{kind}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()
        path = self.cache_dir / digest[:2] / f"{digest}.json"
        if path.exists():
            self.hits += 1
            return json.loads(path.read_text())
        self.misses += 1
        result = compute(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            json.dump(result, out)
        os.replace(tmp, path)
        return result

    def _on_file(self, text: str, function) -> Any:
        """ScanCode's API reads files: the text goes to a scratch file inside the cache."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.cache_dir, suffix=".txt", encoding="utf-8",
                                         errors="surrogatepass") as scratch:
            scratch.write(text)
            scratch.flush()
            return function(scratch.name)

    def licenses(self, text: str) -> dict[str, Any]:
        """{"expression": SPDX or None, "score", "rule"} for the best-supported detection."""
        def compute(body: str) -> dict[str, Any]:
            from scancode.api import get_licenses

            return _summary(self._on_file(body, get_licenses))

        return self._cached("licenses", text, compute)

    def header_licenses(self, text: str, is_notice: bool) -> dict[str, Any]:
        """As `licenses`, for a file's notice (or header), exact matchers first: ScanCode's
        hash and Aho-Corasick matching take milliseconds, its approximate matching most of a
        second. The exact result stands when its matches name one license expression and cover
        every line of the notice and every line that names a license in words; otherwise
        ScanCode runs whole, as on any text. `matcher` says which."""
        def compute(body: str) -> dict[str, Any]:
            from scancode.api import get_licenses

            exact = self._on_file(body, lambda location: get_licenses(location, approximate=False))
            matches = [m for d in exact.get("license_detections", []) for m in d["matches"]]
            covered = {line for m in matches for line in range(m["start_line"], m["end_line"] + 1)}
            # several licenses found apart may be one longer notice to the approximate matcher
            if lines_to_cover(body, is_notice) <= covered and len({m["license_expression_spdx"] for m in matches}) <= 1:
                return {**_summary(exact), "matcher": "exact"}
            return {**_summary(self._on_file(body, get_licenses)), "matcher": "approximate"}

        return self._cached("notice" if is_notice else "header", text, compute)

    def holders(self, text: str) -> list[str]:
        def compute(body: str) -> list[str]:
            from scancode.api import get_copyrights

            found = self._on_file(body, get_copyrights)
            return sorted({h["holder"] for h in found.get("holders", [])})

        return self._cached("holders", text, compute)


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
    lines = header.split("\n")
    _, code = leading_comments(lines)
    if any(LICENSE_WORDS.search(line) for line in lines[code:]):
        return None
    kept: list[str] = []
    for n in notice_lines(lines):
        line = ATTRIBUTION_LINE if is_attribution(lines[n]) else lines[n].rstrip()
        if not (line == ATTRIBUTION_LINE and kept and kept[-1] == ATTRIBUTION_LINE):  # a list of holders: one line
            kept.append(line)
    return "\n".join(kept).strip("\n") or None


def lines_to_cover(text: str, is_notice: bool) -> set[int]:
    """Line numbers (1-based) ScanCode's exact matches must cover for their result to stand:
    every line of a notice that has words (attribution lines aside); in a whole header, the
    lines of its notice, and every line that names a license in words."""
    lines = text.split("\n")
    candidates = range(len(lines)) if is_notice else notice_lines(lines)
    needed = {n + 1 for n in candidates if re.sub(r"[\W_]", "", lines[n]) and not is_attribution(lines[n])}
    return needed | {n for n, line in enumerate(lines, 1) if LICENSE_WORDS.search(line)}


def _summary(found: dict[str, Any]) -> dict[str, Any]:
    """The expression of ScanCode's detections (mentions of unknown licenses left out when a
    known one is there) and the score and rule of the best-supported match."""
    matches = [m for d in found.get("license_detections", []) for m in d["matches"]]
    known = [m for m in matches if not m["license_expression_spdx"].startswith(UNKNOWN)]
    expression = found.get("detected_license_expression_spdx") if known else None
    if expression and any(s.startswith(UNKNOWN) for s in symbols(expression)):
        parts = {m["license_expression_spdx"] for m in known}
        expression = " AND ".join(sorted(f"({p})" if " " in p else p for p in parts))
    best = max(known, key=lambda m: (m["score"], m["matched_length"]), default=None)
    return {"expression": expression, "score": best["score"] if best else None,
            "rule": best["rule_identifier"] if best else None}


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
            expression = re.findall(r"^License-Expression:\s*(.+)$", headers, re.MULTILINE)
            plain = [v for v in re.findall(r"^License:\s*(.+)$", headers, re.MULTILINE) if v.strip() != "UNKNOWN"]
            classifiers = re.findall(r"^Classifier:\s*(License ::.+)$", headers, re.MULTILINE)
            return expression or plain or classifiers
        if name == "setup.cfg":
            value = re.findall(r"^license\s*=\s*(.+)$", text, re.MULTILINE)
            return value or re.findall(r"^\s*(License ::.+)$", text, re.MULTILINE)
        if name == "setup.py":
            return re.findall(r"""\blicense\s*=\s*["']([^"']+)["']""", text)
    except (ValueError, tomllib.TOMLDecodeError, AttributeError):
        return []
    return []


# --- resolution -------------------------------------------------------------------------


@dataclass
class Resolution:
    license: str | None
    source: str | None
    conflict: str | None  # None, "resolved", "unresolved"


def _and(expressions: list[str]) -> str:
    unique = sorted(set(expressions))
    return unique[0] if len(unique) == 1 else " AND ".join(f"({e})" if " " in e else e for e in unique)


def resolve(evidence: list[Evidence]) -> Resolution:
    """One expression from a directory's evidence. A license file wins; metadata that agrees
    with it lends its structure (`MIT OR Apache-2.0`); metadata alone must agree with itself."""
    by_kind = {kind: [e for e in evidence if e.kind == kind] for kind in KINDS}
    files, metadata = by_kind["license_file"], by_kind["metadata"] + by_kind["dataset"]
    declared = sorted({e.expression for e in metadata})
    if files:
        found = _and([e.expression for e in files])
        for expression in declared:
            if symbols(found) <= symbols(expression):
                return Resolution(expression, _sources(files + [e for e in metadata if e.expression == expression]),
                                  None)
        return Resolution(found, _sources(files), "resolved" if declared else None)
    if declared:
        if len({frozenset(symbols(e)) for e in declared}) == 1:
            return Resolution(declared[0], _sources(metadata), None)
        return Resolution(_and(declared), _sources(metadata), "unresolved")
    for kind in ("notice", "readme"):
        if by_kind[kind]:
            return Resolution(_and([e.expression for e in by_kind[kind]]), _sources(by_kind[kind]), None)
    return Resolution(None, None, None)


def _sources(evidence: list[Evidence]) -> str:
    return ",".join(sorted({e.file for e in evidence}))


def effective_license(path: str, header: str | None, header_source: str | None,
                      scopes: dict[str, Resolution]) -> Resolution:
    """A file's license: its own header's, else its nearest directory's, else none."""
    if header is not None:
        return Resolution(header, header_source, None)
    scope = most_specific(path, scopes)
    if scope is None:
        return Resolution(None, None, None)
    return Resolution(scope.license, f"file:{scope.source}", scope.conflict)


def scopes_of(rows: list[dict[str, Any]]) -> dict[str, dict[str, Resolution]]:
    """repo -> directory -> resolution, from rows of the `licenses` table."""
    scopes: dict[str, dict[str, Resolution]] = {}
    for row in rows:
        scopes.setdefault(row["repo"], {})[row["dir"]] = Resolution(
            row["license"], row["license_source"], row["conflict"]
        )
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


# --- the stages -------------------------------------------------------------------------


class LicenseDetector(FileStage):
    name = "license"
    settings_class = LicenseConfig
    writes = ("license_evidence",)  # per chunk: what its license files, notices, READMEs and metadata say
    config: LicenseConfig

    def __init__(self, config: LicenseConfig, cache_dir: str | Path):
        super().__init__(config)
        self.scanner = LicenseScanner(cache_dir)
        self.evidence: list[dict[str, Any]] = []  # rows of EVIDENCE_TABLE

    @classmethod
    def from_settings(cls, settings: LicenseConfig, context: StageContext) -> LicenseDetector:
        return cls(settings, context.cache_dir)

    def process(self, record: FileRecord) -> None:
        directory, name = posixpath.split(record.path)
        kind = self._candidate_kind(name)
        if kind is not None:
            for seq, evidence in enumerate(self._candidate_evidence(record, kind)):
                self.evidence.append({"repo": record.repo, "dir": directory, "ordinal": record.ordinal or 0,
                                      "seq": seq, **asdict(evidence)})
            if kind != "metadata":
                return  # a license file is licensed as its directory; its header is the license itself
        header = self.header_license(record.content)
        if header is not None:
            record.license, record.license_source = header.expression, f"header:{record.path}"

    @staticmethod
    def _candidate_kind(name: str) -> str | None:
        if LICENSE_FILE.match(name):
            return "license_file"
        if NOTICE_FILE.match(name):
            return "notice"
        if README_FILE.match(name):
            return "readme"
        if name in METADATA_FILES or name.endswith(".gemspec"):
            return "metadata"
        return None

    def _candidate_evidence(self, record: FileRecord, kind: str) -> list[Evidence]:
        text = record.content
        if kind == "metadata":
            found = []
            for value in declared_licenses(posixpath.basename(record.path), text):
                expression = normalize(value)
                detected = None if expression else self.scanner.licenses(f"License: {value}")
                expression = expression or detected["expression"]
                if expression:
                    found.append(Evidence(record.path, kind, expression, detected and detected["score"],
                                          detected and detected["rule"]))
            return found
        if kind == "readme":
            at = re.search(r"^#*\s*licen[cs]e\b.*$", text, re.IGNORECASE | re.MULTILINE)
            if at is None:
                return []
            text = text[at.start(): at.start() + self.config.max_header_bytes]
        detected = self.scanner.licenses(text)
        if detected["expression"] is None:
            return []
        holders = self.scanner.holders(text) if kind in ("license_file", "notice") else []
        return [Evidence(record.path, kind, detected["expression"], detected["score"], detected["rule"], holders)]

    def header_license(self, content: str) -> Evidence | None:
        """A file's own license: an SPDX line, else ScanCode on a header that mentions one."""
        header = "\n".join(content[: self.config.max_header_bytes].splitlines()[: self.config.header_lines])
        spdx = SPDX_LINE.search(header)
        if spdx:
            expression = normalize(spdx.group(1))
            if expression:
                return Evidence("", "header", expression, 100.0, "SPDX-License-Identifier")
        if not self.config.scan_headers or not MENTIONS_LICENSE.search(header):
            return None
        notice = license_notice(header)
        detected = self.scanner.header_licenses(notice or header, is_notice=notice is not None)
        if detected["expression"] is None:
            return None
        return Evidence("", "header", detected["expression"], detected["score"], detected["rule"])

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
        fields = {name: row[name] for name in ("file", "kind", "expression", "score", "rule")}
        item = Evidence(**fields, holders=list(row["holders"] or []))
        by_repo.setdefault(row["repo"], {}).setdefault(row["dir"], []).append(item)
    licenses, repositories = [], []
    for name in sorted(repos):
        directories = by_repo.get(name, {})
        if declared.get(name):
            expression = normalize(declared[name])
            if expression:
                directories.setdefault("", []).append(Evidence("(dataset)", "dataset", expression))
        fields: dict[str, Any] = {"repo": name, "license": None, "license_source": None, "license_conflict": None}
        for directory, found in sorted(directories.items()):
            resolution = resolve(found)
            if resolution.license is None:
                continue
            licenses.append({"repo": name, "dir": directory, "license": resolution.license,
                             "license_source": resolution.source, "conflict": resolution.conflict})
            if directory == "":
                fields.update(license=resolution.license, license_source=resolution.source,
                              license_conflict=resolution.conflict)
        fields["license_evidence"] = json.dumps([asdict(e) for d in sorted(directories) for e in directories[d]],
                                                sort_keys=True)
        root_files = [e for e in directories.get("", []) if e.kind in ("license_file", "notice")]
        fields["copyright_holders"] = sorted({h for e in root_files for h in e.holders})
        repositories.append(fields)
    return licenses, repositories


REPO_LICENSE = pa.schema([
    ("repo", pa.string()), ("license", pa.string()), ("license_source", pa.string()),
    ("license_conflict", pa.string()), ("license_evidence", pa.string()), ("copyright_holders", pa.list_(pa.string())),
])


class LicenseDecision(CorpusStage):
    name = "license_decision"
    settings_class = LicenseConfig
    reads = ("files", "repos", "license_evidence")
    writes = ("licenses", "annotations")  # per directory; the license each kept file ends up with
    config: LicenseConfig

    def drops(self, db: Any, context: CorpusContext) -> str:
        """Resolve every directory's license from its repository's evidence (filling the
        repositories' license fields), give kept files their most specific license (table
        `annotations`), drop the rest."""
        evidence = db.sql("SELECT * FROM license_evidence").to_arrow_table().to_pylist()
        declared = dict(db.sql("SELECT repo, declared_license FROM repos WHERE declared_license IS NOT NULL"
                               ).fetchall())
        repos = [row[0] for row in db.sql("SELECT repo FROM repos").fetchall()]
        licenses, repositories = resolve_repositories(evidence, declared, repos)
        db.register("licenses_arrow", pa.Table.from_pylist(licenses, schema=LICENSE_TABLE))
        db.execute("CREATE OR REPLACE TABLE licenses AS SELECT * FROM licenses_arrow")
        db.unregister("licenses_arrow")
        db.register("repo_licenses", pa.Table.from_pylist(repositories, schema=REPO_LICENSE))
        db.execute("""UPDATE repos SET license = r.license, license_source = r.license_source,
                          license_conflict = r.license_conflict, license_evidence = r.license_evidence,
                          copyright_holders = r.copyright_holders
                      FROM repo_licenses r WHERE repos.repo = r.repo""")
        db.unregister("repo_licenses")
        scopes = scopes_of(licenses)
        allowed = frozenset(self.config.allowed)
        rows: dict[str, list] = {"unit": [], "ordinal": [], "license": [], "license_source": [], "reason": [],
                                 "detail": []}
        reader = db.sql(
            "SELECT unit, ordinal, repo, path, license, license_source FROM files WHERE decision = 'kept'"
        ).to_arrow_reader(batch_size=65536)
        for batch in reader:
            for unit, ordinal, repo, path, header, header_source in zip(
                *(column.to_pylist() for column in batch.columns), strict=True
            ):
                found = effective_license(path, header, header_source, scopes.get(repo, {}))
                rows["unit"].append(unit)
                rows["ordinal"].append(ordinal)
                rows["license"].append(found.license)
                rows["license_source"].append(found.source)
                reason = verdict(found.license, found.conflict, allowed)
                rows["reason"].append(reason)
                rows["detail"].append(verdict_detail(reason, found.license, allowed))
        db.register("license_rows", pa.table(rows, schema=pa.schema([
            ("unit", pa.string()), ("ordinal", pa.int64()), ("license", pa.string()),
            ("license_source", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
        ])))
        db.execute("INSERT INTO annotations SELECT unit, ordinal, license, license_source FROM license_rows")
        db.execute("""CREATE OR REPLACE TEMP TABLE license_drops AS
                      SELECT unit, ordinal, reason, detail, NULL AS dup_of
                      FROM license_rows WHERE reason IS NOT NULL""")
        db.unregister("license_rows")
        return "SELECT * FROM license_drops"
