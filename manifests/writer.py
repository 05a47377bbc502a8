"""manifest/files/ (with manifest/sbom/), manifest/repos.parquet and manifest/run.json,
written from the DuckDB views the run builds (`files`, `repos`, `placement`)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus_core import partitions, reasons, schema
from manifests.sbom import PACKAGES, write_sbom_part

ROW_GROUP_ROWS = 65536
# files a part of manifest/files/ holds, about (a part is a task's; it is cut between
# repositories, so it may hold more). A constant, not a setting: the input fingerprint is
# made of the parts' hashes, and must not change with a knob.
PART_FILES = 1_048_576


def write_manifest_parts(db: Any, manifest_dir: Path, context: Any) -> str:
    """manifest/files/part-K.parquet and manifest/sbom/part-K.spdx.json, written by a task
    per part on the executor; returns the input fingerprint.

    The driver cuts the repositories, in name order, into ranges of about PART_FILES files
    (a repository starts the part in which its first file falls: the cut depends on the data
    alone), scatters every file's manifest row and every kept repository's SBOM package by
    part, and a task per part sorts its rows and writes them in row groups of exactly
    ROW_GROUP_ROWS rows, so the bytes depend on neither the workers nor DuckDB's batches.
    Each task hashes its rows (`part_fingerprint`); the input fingerprint is the sha256 of
    the parts' in order. The driver's own work is DuckDB's, parallel over its cores."""
    folder = context.scratch / "manifest"
    shutil.rmtree(folder, ignore_errors=True)  # cheap to redo next to what it writes
    folder.mkdir(parents=True)
    count = scatter_manifest_parts(db, folder)
    for name in ("files", "sbom"):
        (manifest_dir / name).mkdir(parents=True, exist_ok=True)
    digests: dict[int, str] = {}
    context.executor.map(write_manifest_part, range(count),
                         (str(folder), context.partitions, context.parts, str(manifest_dir), count),
                         lambda number, digest: digests.__setitem__(number, digest))
    return hashlib.sha256("".join(digests[n] + "\n" for n in range(count)).encode()).hexdigest()


def scatter_manifest_parts(db: Any, folder: Path) -> int:
    """The driver's part: the cut (a table of repositories and their part) and the scatters
    of the files' rows and the SBOM's packages into `folder`; returns the number of parts."""
    db.execute(f"""CREATE OR REPLACE TEMP TABLE manifest_parts AS
                   WITH counts AS (SELECT repo, count(*) AS n FROM files GROUP BY repo),
                        starts AS (SELECT repo, sum(n) OVER (ORDER BY repo ROWS UNBOUNDED PRECEDING) - n AS first
                                   FROM counts)
                   SELECT repo, (dense_rank() OVER (ORDER BY first // {int(PART_FILES)}) - 1)::INTEGER AS part
                   FROM starts""")
    count = max(db.sql("SELECT count(DISTINCT part) FROM manifest_parts").fetchall()[0][0], 1)
    partitions.scatter_by(db, f"SELECT m.part AS manifest_part, rows.* FROM ({manifest_rows()}) rows "
                              "JOIN manifest_parts m USING (repo)", "manifest_part", count, folder, "files")
    partitions.scatter_by(db, f"SELECT m.part AS manifest_part, p.* FROM ({PACKAGES}) p "
                              "JOIN manifest_parts m USING (repo)", "manifest_part", count, folder, "packages")
    return count


def write_manifest_part(number: int, folder: str, plan: partitions.PartitionPlan, parts: dict[str, str],
                        manifest_dir: str, count: int) -> str:
    """Part `number` of the files manifest and its SPDX document; returns its fingerprint."""
    base, target = Path(folder), Path(manifest_dir)
    rows = f"(SELECT * EXCLUDE (manifest_part) FROM {partitions.inputs(base, 'files', number)})"
    with partitions.task_database(plan) as db:
        fingerprint = write_files_part(db, rows, target / "files" / schema.part_name(number, ".parquet"))
        packages = f"(SELECT * EXCLUDE (manifest_part) FROM {partitions.inputs(base, 'packages', number)})"
        write_sbom_part(db, rows, packages, parts, target / "sbom" / schema.part_name(number, ".spdx.json"),
                        fingerprint, number, count)
    return fingerprint


def write_files_part(db: Any, rows: str, path: Path) -> str:
    """`rows` (SQL: manifest rows with their unit and ordinal) sorted and written to `path` in
    row groups of exactly ROW_GROUP_ROWS rows; returns their fingerprint."""
    reader = db.sql(f"SELECT * EXCLUDE (unit, ordinal) FROM {rows} ORDER BY repo, path, unit, ordinal"
                    ).to_arrow_reader(batch_size=ROW_GROUP_ROWS)
    digest = hashlib.sha256()
    with pq.ParquetWriter(path, schema.FILES, compression="zstd") as writer:
        for group in row_groups(reader, ROW_GROUP_ROWS):
            part_fingerprint(digest, group)
            writer.write_table(group.select(schema.FILES.names).cast(schema.FILES), row_group_size=ROW_GROUP_ROWS)
    return digest.hexdigest()


def part_fingerprint(digest: Any, rows: pa.Table) -> None:
    """Add the rows' repo, path and content hash (or drop reason) to `digest`, as the input
    fingerprint hashes every input file."""
    hashes = pc.coalesce(rows.column("sha256"), rows.column("reason"), pa.scalar("None")).to_pylist()
    for repo, file_path, content_hash in zip(rows.column("repo").to_pylist(), rows.column("path").to_pylist(),
                                             hashes, strict=True):
        digest.update(f"{repo}\x00{file_path}\x00{content_hash}\n".encode())


def manifest_rows() -> str:
    """The SQL of every file's manifest row with its shard and row, and its unit and ordinal
    (the order's last keys)."""
    columns = ", ".join(f"f.{name}" for name in schema.FILES.names if name not in ("shard", "row"))
    return f"""SELECT {columns}, p.shard, p.row, f.unit, f.ordinal
               FROM files f LEFT JOIN placement p USING (unit, ordinal)"""


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


def write_run_json(path: Path, run: dict[str, Any]) -> None:
    path.write_text(json.dumps(run, indent=2, sort_keys=True, default=str) + "\n")
