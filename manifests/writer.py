"""manifest/files.parquet, manifest/repos.parquet and manifest/run.json, written from the
DuckDB views the run builds (`files`, `repos`, `placement`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core import reasons, schema

ROW_GROUP_ROWS = 65536


def write_files_manifest(db: Any, path: Path) -> None:
    """Streamed: the driver holds one row group of the manifest at a time, whatever the
    corpus's size, and row groups are exactly ROW_GROUP_ROWS rows (the last one fewer), so the
    bytes do not depend on how DuckDB batches its result."""
    reader = files_in_manifest_order(db).to_arrow_reader(batch_size=ROW_GROUP_ROWS)
    with pq.ParquetWriter(path, schema.FILES, compression="zstd") as writer:
        for group in row_groups(reader, ROW_GROUP_ROWS):
            writer.write_table(group.cast(schema.FILES), row_group_size=ROW_GROUP_ROWS)


def files_in_manifest_order(db: Any) -> Any:
    """Every file's row with its shard and row, by repo and path (a DuckDB relation)."""
    columns = ", ".join(f"f.{name}" for name in schema.FILES.names if name not in ("shard", "row"))
    return db.sql(f"""SELECT {columns}, p.shard, p.row FROM files f LEFT JOIN placement p USING (unit, ordinal)
                      ORDER BY f.repo, f.path, f.unit, f.ordinal""")


def row_groups(batches: Any, rows: int) -> Any:
    """Tables of exactly `rows` rows (the last one fewer, none empty) from a stream of record batches."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending, schema=pending[0].schema)


def write_repos_manifest(db: Any, path: Path) -> None:
    table = db.sql(
        f"""
        WITH counts AS (
            SELECT repo, count(*) AS files,
                   count(*) FILTER (WHERE decision = 'kept') AS files_kept,
                   coalesce(sum(size) FILTER (WHERE decision = 'kept'), 0) AS bytes_kept
            FROM files GROUP BY repo
        ),
        -- a repository with nothing kept is dropped for the reason most of its files were
        main_reason AS (
            SELECT repo, arg_min(reason, (-n, reason)) AS reason
            FROM (SELECT repo, reason, count(*) AS n FROM files WHERE reason IS NOT NULL GROUP BY ALL)
            GROUP BY repo
        )
        SELECT r.repo, r.source, r.kind, r.url, r.owner, r.commit, r.sha256, r.stars,
               coalesce(c.files, 0) AS files, coalesce(c.files_kept, 0) AS files_kept,
               coalesce(c.bytes_kept, 0) AS bytes_kept, r.license, r.license_source, r.license_conflict,
               r.license_evidence, r.copyright_holders,
               CASE WHEN c.files_kept > 0 THEN 'kept' ELSE 'dropped' END AS decision,
               CASE WHEN c.files_kept > 0 THEN NULL
                    WHEN r.detail IS NOT NULL THEN '{reasons.SOURCE_UNREADABLE}'
                    ELSE coalesce(m.reason, '{reasons.NO_FILE_KEPT}') END AS reason,
               r.detail
        FROM repos r LEFT JOIN counts c USING (repo) LEFT JOIN main_reason m USING (repo)
        ORDER BY r.repo
        """
    ).to_arrow_table()
    pq.write_table(table.cast(schema.REPOS), path, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def input_fingerprint(db: Any) -> str:
    """sha256 over every input file's repo, path and content hash, in manifest order."""
    digest = hashlib.sha256()
    reader = db.sql(
        "SELECT repo, path, coalesce(sha256, reason) FROM files ORDER BY repo, path, unit, ordinal"
    ).to_arrow_reader(batch_size=65536)
    for batch in reader:
        for repo, file_path, content_hash in zip(*(column.to_pylist() for column in batch.columns), strict=True):
            digest.update(f"{repo}\x00{file_path}\x00{content_hash}\n".encode())
    return digest.hexdigest()


def write_run_json(path: Path, run: dict[str, Any]) -> None:
    path.write_text(json.dumps(run, indent=2, sort_keys=True, default=str) + "\n")
