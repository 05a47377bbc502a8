"""`corpus audit OUT`: what a compliance team runs before a release, on DuckDB over the
manifests and the shards. It takes nothing on the build's word: the allowlist, the opt-out
registry and the PII settings come from the team's policy file (`--policy`, the `[license]`,
`[optout]` and `[pii]` tables of a build config), else from the project's shipped defaults,
never from OUT's run.json; and every shard row is compared with files.parquet.

The checks, each reported with what it looked at; a problem in any makes the exit non-zero:
  licenses     every kept file and every shard row carries a license the policy allows
  evidence     every kept file has license evidence
  shard_index  the shards on disk are those of index.json (an older build's shards/index.json),
               with its bytes, sha256, rows
  tokenizer    tokenizer.json is the one index.json names (tokenized builds only)
  shard_rows   each shard row is a file files.parquet keeps, with its repo, path, sha256,
               license and place, once; each kept file is in a shard
  optout       no shard row is opted out: by files.parquet's reason, or by the policy's registry
  pii          the PII detectors find nothing in a sample of shard rows (the first N by md5 of id),
               reporting a finding's type and line, never its text
Also reported: the license table, and repositories whose evidence disagreed."""

from __future__ import annotations

import bisect
import itertools
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from license_expression import ExpressionError

from corpus_core import reasons, schema
from corpus_core.errors import ConfigError
from corpus_core.settings import Settings
from corpus_core.spdx import is_allowed
from corpus_core.storage import sha256_file, sql_list
from filters.optout import OptOutConfig
from filters.pii import PiiConfig, build_analyzer, find
from manifests.card import BuildIndex, find_index
from manifests.optout import Entry, Matcher, load
from stages.license import LicenseConfig

PII_SAMPLE = 300  # shard rows the PII detectors re-run on, unless told otherwise
SHOWN_PROBLEMS = 20  # per check in the text report; --json lists them all
SHARD_COLUMNS = ("id", "repo", "path", "sha256", "license")  # what the row checks read of each shard
POLICY_SECTIONS: tuple[type[Settings], ...] = (LicenseConfig, OptOutConfig, PiiConfig)


class AuditError(Exception):
    """The directory is not a build that can be audited; the message says what is missing."""


@dataclass(frozen=True)
class Policy:
    """What a build is held to: the compliance team's file, or the project's shipped defaults."""

    source: str | None = None  # the policy file; None: the shipped defaults
    license: LicenseConfig = field(default_factory=LicenseConfig)
    optout: OptOutConfig = field(default_factory=OptOutConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    optouts: tuple[Entry, ...] = ()  # the registry's entries, read with the policy

    @property
    def allowed(self) -> frozenset[str]:
        return frozenset(self.license.allowed)

    def describe(self) -> str:
        own = self.license.allowed != LicenseConfig().allowed
        allowlist = (f"allowlist of {len(self.allowed)} license(s) "
                     f"{'from its [license] table' if own else '(the shipped default)'}")
        registry = (f"opt-out registry {self.optout.registry} ({len(self.optouts)} entries)" if self.optout.registry
                    else "no opt-out registry")
        pii = "PII settings from its [pii] table" if self.pii != PiiConfig() else "default PII settings"
        if self.source is None:
            return f"the project's shipped defaults ({allowlist}, {registry}, {pii}); --policy FILE for your own"
        return f"{self.source} ({allowlist}, {registry}, {pii})"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "license": {"allowed": sorted(self.allowed)},
                "optout": {"registry": self.optout.registry, "entries": len(self.optouts)},
                "pii": self.pii.to_dict()}


def load_policy(path: str | Path) -> Policy:
    """A policy file: the `[license]`, `[optout]` and `[pii]` tables of a build config, each
    read by its stage's settings class; a table left out keeps the shipped defaults. Paths are
    relative to the file. Anything wrong is a ConfigError naming the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"policy {path} cannot be read: {err.strerror}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"policy {path} is not valid TOML: {err}") from err
    known = [cls.section for cls in POLICY_SECTIONS]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"policy {path}: unknown section(s) {unknown} (a policy holds "
                          f"{', '.join(f'[{name}]' for name in known)}, as in a build config)")
    try:
        sections = {cls.section: cls.from_table(data.get(cls.section, {})) for cls in POLICY_SECTIONS}
    except ConfigError as err:
        raise ConfigError(f"policy {path}: {err}") from err
    entries: tuple[Entry, ...] = ()
    if sections["optout"].registry:
        registry = path.resolve().parent / sections["optout"].registry  # an absolute path stays as it is
        if not registry.is_file():  # the build ignores a missing registry; an audit must not
            raise ConfigError(f"policy {path}: optout.registry {registry} does not exist")
        try:
            entries = tuple(load(registry))
        except ConfigError as err:
            raise ConfigError(f"policy {path}: {err}") from err
        sections["optout"] = sections["optout"].replace(registry=str(registry))
    return Policy(str(path), optouts=entries, **sections)


@dataclass
class Check:
    """One check's outcome: how many `unit` it looked at, and one line per problem found."""

    name: str
    checked: int = 0
    unit: str = "rows"
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the check did not run
    note: str | None = None  # what it covered, when that needs saying

    @property
    def passed(self) -> bool:
        return not self.problems

    def status(self) -> str:
        if self.problems:
            return f"FAILED: {len(self.problems)} problem(s)"
        if self.skipped:
            return f"skipped: {self.skipped}"
        return "passed" + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "checked": self.checked, "unit": self.unit, "passed": self.passed,
                "skipped": self.skipped, "note": self.note, "failed": len(self.problems), "problems": self.problems}


@dataclass
class AuditReport:
    policy: Policy = field(default_factory=Policy)
    checks: list[Check] = field(default_factory=list)
    licenses: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [problem for check in self.checks for problem in check.problems]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "policy": self.policy.to_dict(),
                "checks": [check.to_dict() for check in self.checks], "failures": self.failures,
                "licenses": self.licenses, "conflicts": self.conflicts}


def connect(out_dir: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the build's manifests as views: files, repos, attribution."""
    manifest = out_dir / "manifest"
    db = duckdb.connect()
    if not schema.files_manifest(out_dir):
        raise AuditError(f"{manifest / 'files'} is missing: is {out_dir} the output of `corpus build`?")
    db.execute(f"CREATE VIEW files AS SELECT * FROM {schema.files_sql(out_dir)}")
    for name in ("repos", "attribution"):
        path = manifest / f"{name}.parquet"
        if not path.exists():
            raise AuditError(f"{path} is missing: is {out_dir} the output of `corpus build`?")
        db.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{_quote(path)}')")
    return db


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _rows(db: duckdb.DuckDBPyConnection, query: str, parameters: list[Any] | None = None) -> list[dict[str, Any]]:
    return db.sql(query, params=parameters).to_arrow_table().to_pylist()


def _count(db: duckdb.DuckDBPyConnection, query: str) -> int:
    ((count,),) = db.sql(query).fetchall()
    return int(count)


def audit(out_dir: str | Path, policy: Policy | None = None, pii_sample: int | None = None) -> AuditReport:
    """Every check on the build in `out_dir`, against `policy` (default: the shipped defaults),
    the PII detectors on `pii_sample` shard rows (default PII_SAMPLE)."""
    pii_sample = PII_SAMPLE if pii_sample is None else pii_sample
    if pii_sample < 0:
        raise ConfigError(f"--pii-sample {pii_sample}: expected 0 (no PII check) or more rows")
    out_dir = Path(out_dir)
    policy = policy or Policy()
    db = connect(out_dir)
    found = find_index(out_dir)
    shard_dir = out_dir / "shards"  # what loaders read, whatever the index says
    index_check, index, readable = _check_index(found, shard_dir)
    rows_check = _register_shard_rows(db, shard_dir, readable)
    report = AuditReport(policy=policy)
    report.licenses = _rows(db, """
        SELECT license, count(DISTINCT repo) AS repos, count(*) AS files, sum(size) AS bytes
        FROM files WHERE decision = 'kept' GROUP BY license ORDER BY bytes DESC, license""")
    for row in report.licenses:
        row["allowed"] = _allowed(row["license"], policy.allowed)
    report.conflicts = _rows(db, """SELECT repo, license, license_source, license_conflict, decision FROM repos
                                     WHERE license_conflict IS NOT NULL ORDER BY repo""")
    report.checks = [
        _check_licenses(db, policy.allowed),
        _check_evidence(db),
        index_check,
        _check_tokenizer(found.root if found else out_dir, index),
        _check_rows(db, rows_check),
        _check_optout(db, policy),
        _check_pii(db, shard_dir, policy.pii, pii_sample),
    ]
    return report


@cache
def _allowed(expression: str | None, allowed: frozenset[str]) -> bool:
    if expression is None:
        return False
    try:
        return is_allowed(expression, allowed)
    except ExpressionError:  # an expression that does not parse allows nothing
        return False


def _check_licenses(db: duckdb.DuckDBPyConnection, allowed: frozenset[str]) -> Check:
    """Kept files and shard rows alike: a row in a shard ships whatever files.parquet says."""
    check = Check("licenses", unit="files")
    db.execute("""CREATE TEMP TABLE shipped AS SELECT DISTINCT repo, path, license FROM (
                      SELECT repo, path, license FROM files WHERE decision = 'kept'
                      UNION ALL SELECT repo, path, license FROM shard_rows)""")
    check.checked = _count(db, "SELECT count(*) FROM shipped")
    refused = [license for (license,) in db.sql("SELECT DISTINCT license FROM shipped").fetchall()
               if license is not None and not _allowed(license, allowed)]
    for row in _rows(db, """SELECT repo, path, license FROM shipped WHERE license IS NULL OR list_contains(?, license)
                            ORDER BY repo, path, license""", [refused]):
        if row["license"] is None:
            check.problems.append(f"{row['repo']}/{row['path']}: no license")
        else:
            check.problems.append(f"{row['repo']}/{row['path']}: {row['license']!r} is not allowed by the policy")
    return check


def _check_evidence(db: duckdb.DuckDBPyConnection) -> Check:
    check = Check("evidence", unit="kept files")
    check.checked = _count(db, "SELECT count(*) FROM files WHERE decision = 'kept'")
    for row in _rows(db, """SELECT repo, path FROM files
                             WHERE decision = 'kept' AND (license IS NULL OR license_source IS NULL)
                             ORDER BY repo, path"""):
        check.problems.append(f"kept file without license evidence: {row['repo']}/{row['path']}")
    return check


def _check_index(found: BuildIndex | None, shard_dir: Path) -> tuple[Check, dict[str, Any], list[Path]]:
    """The shards against the index (OUT/index.json, an older build's shards/index.json);
    also which shard files the row checks can read (every Parquet file in the folder, listed
    or not: what is on disk is what ships)."""
    check = Check("shard_index", unit="shards")
    on_disk = sorted(shard_dir.glob("*.parquet"))
    if found is None:
        check.problems.append(f"{shard_dir.parent / 'index.json'} is missing")
        return check, {}, on_disk
    index = found.data
    if found.shard_dir.resolve() != shard_dir.resolve():
        check.problems.append(f"index.json names {found.shard_dir} as the shard folder, not {shard_dir}")
    listed = {entry["file"] for entry in index["shards"]}
    check.checked = len(listed | {p.name for p in on_disk})
    # anything else in the folder is loaded (or breaks loading) by pyarrow.dataset and datasets
    everything = sorted(p.relative_to(shard_dir).as_posix() for p in shard_dir.rglob("*") if p.is_file()) \
        if shard_dir.is_dir() else []
    for stray in everything:
        if stray not in listed and shard_dir / stray != found.path:
            check.problems.append(f"shards/{stray} is not a shard of index.json (loaders would read it)")
    for entry in index["shards"]:
        path = shard_dir / entry["file"]
        if not path.exists():
            check.problems.append(f"shard {entry['file']} is listed in index.json but missing")
            continue
        if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            check.problems.append(f"shard {entry['file']}: bytes differ from index.json (sha256 mismatch)")
            continue
        if pq.ParquetFile(path).metadata.num_rows != entry["rows"]:
            check.problems.append(f"shard {entry['file']}: {entry['rows']} rows in index.json, not in the file")
    listed_rows = sum(entry["rows"] for entry in index["shards"])
    if index["totals"]["rows"] != listed_rows:
        check.problems.append(f"index.json totals {index['totals']['rows']} rows, its shards {listed_rows}")
    return check, index, on_disk


def _check_tokenizer(root: Path, index: dict[str, Any]) -> Check:
    """The tokenizer index.json names (relative to the build's folder) is the one hashed."""
    check = Check("tokenizer", unit="files")
    if not index.get("tokenizer"):
        check.skipped = "the shards are not tokenized"
        return check
    check.checked = 1
    tokenizer = root / index["tokenizer"]
    if not tokenizer.exists():
        check.problems.append(f"{tokenizer} is missing (index.json names it)")
    elif sha256_file(tokenizer) != index["tokenizer_sha256"]:
        check.problems.append(f"{tokenizer}: sha256 differs from index.json's tokenizer_sha256")
    return check


def _register_shard_rows(db: duckdb.DuckDBPyConnection, shard_dir: Path, shards: list[Path]) -> Check:
    """View `shard_rows(shard, row, id, repo, path, sha256, license)` over the readable shards;
    the returned check (shard_rows) holds a problem per shard that could not be read."""
    check = Check("shard_rows", unit="shard rows")
    readable = []
    for path in shards:
        try:
            names = set(pq.ParquetFile(path).schema_arrow.names)
        except (OSError, pa.ArrowException) as err:
            check.problems.append(f"shard {path.name} cannot be read as Parquet ({type(err).__name__}): "
                                  "its rows are not checked")
            continue
        missing = [name for name in SHARD_COLUMNS if name not in names]
        if missing:
            check.problems.append(f"shard {path.name} has no column(s) {missing}: its rows are not checked")
            continue
        readable.append(path)
    if readable:
        db.execute(f"""CREATE VIEW shard_rows AS
            SELECT parse_filename(filename) AS shard, file_row_number AS "row", {', '.join(SHARD_COLUMNS)}
            FROM read_parquet({sql_list(readable)}, filename = true, file_row_number = true, union_by_name = true)""")
    else:
        db.execute("""CREATE TABLE shard_rows (shard VARCHAR, "row" BIGINT, id VARCHAR, repo VARCHAR, path VARCHAR,
                                               sha256 VARCHAR, license VARCHAR)""")
    return check


def _where(row: dict[str, Any]) -> str:
    return f"{row['shard']} row {row['row']}: {row['repo']}/{row['path']}"


def _check_rows(db: duckdb.DuckDBPyConnection, check: Check) -> Check:
    """Each shard row against the files.parquet row of its id (the kept one, when a dataset
    gave one id twice and one copy was dropped as `duplicate_path`)."""
    check.checked = _count(db, "SELECT count(*) FROM shard_rows")
    for row in _rows(db, """
        WITH manifest AS (SELECT * FROM files
                          QUALIFY row_number() OVER (PARTITION BY id ORDER BY decision = 'kept' DESC) = 1),
             shipped AS (SELECT *, count(*) OVER (PARTITION BY id) AS copies FROM shard_rows)
        SELECT s.shard, s."row", s.id, s.repo, s.path, s.sha256, s.license, s.copies, f.id IS NULL AS unknown,
               f.repo AS f_repo, f.path AS f_path, f.decision, f.reason, f.sha256 AS f_sha256,
               f.license AS f_license, printf('part-%05d.parquet', f.shard) AS f_shard, f."row" AS f_row
        FROM shipped s LEFT JOIN manifest f ON s.id = f.id
        WHERE f.id IS NULL OR f.decision <> 'kept' OR s.copies > 1
           OR s.repo IS DISTINCT FROM f.repo OR s.path IS DISTINCT FROM f.path
           OR s.sha256 IS DISTINCT FROM f.sha256 OR s.license IS DISTINCT FROM f.license
           OR s.shard IS DISTINCT FROM printf('part-%05d.parquet', f.shard) OR s."row" IS DISTINCT FROM f."row"
        ORDER BY s.shard, s."row" """):
        found = []
        if row["unknown"]:
            found.append(f"id {row['id']} is not in files.parquet")
        elif row["decision"] != "kept":
            found.append(f"files.parquet drops it ({row['reason']})")
        else:
            if (row["repo"], row["path"]) != (row["f_repo"], row["f_path"]):
                found.append(f"files.parquet has id {row['id']} as {row['f_repo']}/{row['f_path']}")
            if row["sha256"] != row["f_sha256"]:
                found.append("sha256 differs from files.parquet's")
            if row["license"] != row["f_license"]:
                found.append(f"license {row['license']!r} here, {row['f_license']!r} in files.parquet")
            if (row["shard"], row["row"]) != (row["f_shard"], row["f_row"]):
                found.append(f"files.parquet places it at {row['f_shard']} row {row['f_row']}")
        if row["copies"] > 1:
            found.append(f"its id is in {row['copies']} shard rows")
        check.problems.append(f"{_where(row)}: {'; '.join(found)}")
    for row in _rows(db, """SELECT repo, path FROM files f WHERE decision = 'kept'
                             AND NOT EXISTS (SELECT 1 FROM shard_rows s WHERE s.id = f.id) ORDER BY repo, path"""):
        check.problems.append(f"{row['repo']}/{row['path']}: kept in files.parquet, in no shard")
    return check


def _check_optout(db: duckdb.DuckDBPyConnection, policy: Policy) -> Check:
    check = Check("optout", unit="shard rows")
    check.checked = _count(db, "SELECT count(*) FROM shard_rows")
    for row in _rows(db, """SELECT s.shard, s."row", s.repo, s.path, f.detail FROM shard_rows s
                             JOIN files f ON s.id = f.id WHERE f.reason = ? ORDER BY s.shard, s."row" """,
                     [reasons.OPTED_OUT]):
        check.problems.append(f"{_where(row)}: files.parquet says opted out ({row['detail']})")
    if not policy.optout.registry:
        check.note = "files.parquet's opted_out only: the policy names no opt-out registry"
        return check
    check.note = f"files.parquet's opted_out and {len(policy.optouts)} registry entries"
    matcher = Matcher(list(policy.optouts))
    if not matcher:
        return check
    # a build from before files.parquet had owners: the name's first part stands in (manifests.republish.owners_of)
    has_owner = "owner" in {name for name, *_ in db.execute("DESCRIBE files").fetchall()}
    owner = "f.owner" if has_owner else "nullif(split_part(regexp_extract(s.repo, '([^/]+/[^/]+)$', 1), '/', 1), '')"
    shipped = db.sql(f"""SELECT s.shard, s."row", s.repo, s.path, s.sha256, {owner} AS owner
                         FROM shard_rows s LEFT JOIN (SELECT DISTINCT ON (id) * FROM files
                                                      ORDER BY id, decision <> 'kept') f ON s.id = f.id
                         ORDER BY s.shard, s."row" """)
    for batch in shipped.to_arrow_reader():
        for row in batch.to_pylist():
            entry = matcher.match(row["repo"], row["path"], row["sha256"], row["owner"])
            if entry is not None:
                check.problems.append(f"{_where(row)}: opted out by {entry.id} ({entry.kind}) in "
                                      f"{policy.optout.registry}")
    return check


@cache
def _analyzer(config: PiiConfig) -> Any:
    return build_analyzer(config)  # seconds to build: once per process and settings


def _check_pii(db: duckdb.DuckDBPyConnection, shard_dir: Path, config: PiiConfig, sample: int) -> Check:
    """The detectors of filters/pii.py on the first `sample` shard rows by md5 of id: the same
    rows on every run, spread over shards and repositories. The finding's type and line are
    reported, never its text."""
    check = Check("pii", unit="shard rows")
    if sample == 0:
        check.skipped = "--pii-sample 0"
        return check
    if not config.enabled:
        check.skipped = "the policy sets pii.enabled = false"
        return check
    picked = _rows(db, 'SELECT shard, "row", repo, path FROM shard_rows ORDER BY md5(id), shard, "row" LIMIT ?',
                   [sample])
    by_shard: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in picked:
        by_shard[row["shard"]].append(row)
    textless = []
    for shard, rows in sorted(by_shard.items()):
        contents = _contents(shard_dir / shard, [row["row"] for row in rows])
        if contents is None:
            textless.append(shard)
            continue
        for row, content in zip(rows, contents, strict=True):
            check.checked += 1
            text = content or ""
            findings = find(text, _analyzer(config))
            if findings:
                lines = ", ".join(f"{entity} on line {text.count(chr(10), 0, start) + 1}"
                                  for entity, start, _ in findings)
                check.problems.append(f"{_where(row)}: {lines}")
    total = _count(db, "SELECT count(*) FROM shard_rows")
    if textless and not check.checked:
        check.skipped = "the shards hold no text (no content column) to run the detectors on"
        return check
    check.note = f"a sample of {check.checked} of {total} rows by md5 of id"
    if textless:
        check.note += f"; {', '.join(textless)} hold no text, not checked"
    return check


def _contents(path: Path, rows: list[int]) -> list[str | None] | None:
    """`content` of the given rows of a shard, reading only the row groups that hold them;
    None when the shard has no content column."""
    shard = pq.ParquetFile(path)
    if "content" not in shard.schema_arrow.names:
        return None
    sizes = [shard.metadata.row_group(group).num_rows for group in range(shard.metadata.num_row_groups)]
    starts = list(itertools.accumulate(sizes, initial=0))
    group_of = {row: bisect.bisect_right(starts, row) - 1 for row in rows}
    groups = sorted(set(group_of.values()))
    column = shard.read_row_groups(groups, columns=["content"]).column("content")
    at = dict(zip(groups, itertools.accumulate((sizes[group] for group in groups), initial=0), strict=False))
    return [column[at[group_of[row]] + row - starts[group_of[row]]].as_py() for row in rows]


def format_report(report: AuditReport) -> str:
    lines = [f"policy: {report.policy.describe()}", "licenses of kept files:",
             f"  {'license':<60} {'repos':>6} {'files':>7} {'bytes':>12}  allowed"]
    for row in report.licenses:
        lines.append(f"  {str(row['license']):<60} {row['repos']:>6} {row['files']:>7} {row['bytes']:>12}  "
                     f"{'yes' if row['allowed'] else 'NO'}")
    if report.conflicts:
        lines.append("repositories whose license evidence disagreed:")
        for row in report.conflicts:
            lines.append(f"  {row['repo']} ({row['license_conflict']}, {row['decision']}): {row['license']} "
                         f"from {row['license_source']}")
    lines.append("checks:")
    for check in report.checks:
        lines.append(f"  {check.name:<12} {check.checked:>9} {check.unit:<11} {check.status()}")
        lines += [f"    - {problem}" for problem in check.problems[:SHOWN_PROBLEMS]]
        if len(check.problems) > SHOWN_PROBLEMS:
            lines.append(f"    … and {len(check.problems) - SHOWN_PROBLEMS} more (--json lists them all)")
    failed = [check for check in report.checks if not check.passed]
    if failed:
        lines.append(f"AUDIT FAILED: {len(failed)} of {len(report.checks)} checks, {len(report.failures)} problem(s)")
    else:
        skipped = sum(check.skipped is not None for check in report.checks)
        lines.append(f"audit passed: {len(report.checks) - skipped} checks passed"
                     + (f", {skipped} skipped" if skipped else ""))
    return "\n".join(lines)
