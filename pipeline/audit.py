"""`corpus audit OUT`: what a compliance team runs before a release, on DuckDB over the
manifests. Failures (any makes the exit status non-zero): a kept file whose license does
not pass the allowlist, a kept file without license evidence, a shard whose bytes, rows or
checksum differ from shards/index.json, a shard missing from the index or on disk, a
tokenizer.json that is not the one the shards were encoded with.
Also reported: the license table, and repositories whose evidence disagreed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from corpus_core.spdx import is_allowed
from corpus_core.storage import sha256_file


class AuditError(Exception):
    """The directory is not a build that can be audited; the message says what is missing."""


@dataclass
class AuditReport:
    licenses: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def connect(out_dir: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the build's manifests as views: files, repos, attribution."""
    manifest = out_dir / "manifest"
    db = duckdb.connect()
    for name in ("files", "repos", "attribution"):
        path = manifest / f"{name}.parquet"
        if not path.exists():
            raise AuditError(f"{path} is missing: is {out_dir} the output of `corpus build`?")
        db.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{_quote(path)}')")
    return db


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _rows(db: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    return db.sql(query).to_arrow_table().to_pylist()


def audit(out_dir: str | Path, allowed: frozenset[str] | None = None) -> AuditReport:
    out_dir = Path(out_dir)
    run_path = out_dir / "manifest" / "run.json"
    if not run_path.exists():
        raise AuditError(f"{run_path} is missing: is {out_dir} the output of `corpus build`?")
    run = json.loads(run_path.read_text())
    allowed = allowed or frozenset(run["config"]["license"]["allowed"])
    db = connect(out_dir)
    report = AuditReport()
    report.licenses = _rows(db, """
        SELECT license, count(DISTINCT repo) AS repos, count(*) AS files, sum(size) AS bytes
        FROM files WHERE decision = 'kept' GROUP BY license ORDER BY bytes DESC, license""")
    for row in report.licenses:
        if row["license"] is not None and not is_allowed(row["license"], allowed):
            report.failures.append(
                f"{row['files']} kept file(s) under {row['license']!r}, which the allowlist does not allow"
            )
    for row in _rows(db, """SELECT repo, path, license, license_source FROM files
                             WHERE decision = 'kept' AND (license IS NULL OR license_source IS NULL)
                             ORDER BY repo, path"""):
        report.failures.append(f"kept file without license evidence: {row['repo']}/{row['path']}")
    report.conflicts = _rows(db, """SELECT repo, license, license_source, license_conflict, decision FROM repos
                                     WHERE license_conflict IS NOT NULL ORDER BY repo""")
    report.failures += _check_shards(db, out_dir / "shards")
    return report


def _check_shards(db: duckdb.DuckDBPyConnection, shard_dir: Path) -> list[str]:
    failures = []
    index_path = shard_dir / "index.json"
    if not index_path.exists():
        return [f"{index_path} is missing"]
    index = json.loads(index_path.read_text())
    listed = {entry["file"] for entry in index["shards"]}
    for stray in sorted(p.name for p in shard_dir.glob("*.parquet") if p.name not in listed):
        failures.append(f"shard {stray} is not in index.json")
    for entry in index["shards"]:
        path = shard_dir / entry["file"]
        if not path.exists():
            failures.append(f"shard {entry['file']} is listed in index.json but missing")
            continue
        if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            failures.append(f"shard {entry['file']}: bytes differ from index.json (sha256 mismatch)")
            continue
        if pq.ParquetFile(path).metadata.num_rows != entry["rows"]:
            failures.append(f"shard {entry['file']}: {entry['rows']} rows in index.json, not in the file")
    if index.get("tokenizer"):
        tokenizer = shard_dir.parent / index["tokenizer"]
        if not tokenizer.exists():
            failures.append(f"{tokenizer} is missing (index.json names it)")
        elif sha256_file(tokenizer) != index["tokenizer_sha256"]:
            failures.append(f"{tokenizer}: sha256 differs from index.json's tokenizer_sha256")
    ((kept,),) = db.sql("SELECT count(*) FROM files WHERE decision = 'kept'").fetchall()
    if kept != index["totals"]["rows"]:
        failures.append(f"files.parquet keeps {kept} files but the shards hold {index['totals']['rows']} rows")
    return failures


def format_report(report: AuditReport) -> str:
    lines = ["licenses of kept files:", f"  {'license':<60} {'repos':>6} {'files':>7} {'bytes':>12}"]
    for row in report.licenses:
        lines.append(f"  {str(row['license']):<60} {row['repos']:>6} {row['files']:>7} {row['bytes']:>12}")
    if report.conflicts:
        lines.append("repositories whose license evidence disagreed:")
        for row in report.conflicts:
            lines.append(f"  {row['repo']} ({row['license_conflict']}, {row['decision']}): {row['license']} "
                         f"from {row['license_source']}")
    if report.failures:
        lines.append(f"AUDIT FAILED: {len(report.failures)} problem(s)")
        lines += [f"  - {failure}" for failure in report.failures]
    else:
        lines.append("audit passed: every kept file is allowed and has evidence; shards match the index")
    return "\n".join(lines)
