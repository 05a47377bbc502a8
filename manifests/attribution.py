"""Attribution that travels with the corpus: NOTICE (every kept repository, its license and
the copyright holders ScanCode found in its license files) and manifest/attribution.parquet
(which repositories, under which licenses, each shard holds). MIT and BSD require the
notice to accompany copies, so a shard handed on alone can be handed on with its rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ATTRIBUTION = pa.schema([
    pa.field("shard", pa.int32(), nullable=False),
    pa.field("repo", pa.string(), nullable=False),
    pa.field("license", pa.string()),
    pa.field("files", pa.int64(), nullable=False),
    pa.field("copyright_holders", pa.list_(pa.string())),
    pa.field("source", pa.string()),
])


def write_attribution(db: Any, path: Path) -> None:
    table = db.sql(
        """SELECT p.shard, f.repo, f.license, count(*) AS files, any_value(r.copyright_holders) AS copyright_holders,
                  any_value(r.source) AS source
           FROM files f JOIN placement p USING (unit, ordinal) JOIN repos r USING (repo)
           GROUP BY p.shard, f.repo, f.license ORDER BY p.shard, f.repo, f.license"""
    ).to_arrow_table()
    pq.write_table(table.cast(ATTRIBUTION), path, compression="zstd")


def write_notice(db: Any, path: Path) -> None:
    rows = db.sql(
        """SELECT f.repo, string_agg(DISTINCT f.license, '; ' ORDER BY f.license) AS licenses, count(*) AS files,
                  any_value(r.copyright_holders) AS holders, any_value(r.source) AS source,
                  any_value(r.commit) AS commit, any_value(r.license_source) AS evidence
           FROM files f JOIN repos r USING (repo) WHERE f.decision = 'kept'
           GROUP BY f.repo ORDER BY f.repo"""
    ).fetchall()
    lines = [
        "NOTICE",
        "",
        "This corpus holds files from the repositories below, each under the license(s) named.",
        "The copyright holders are those stated in each repository's license and NOTICE files;",
        "the full license texts are in the repositories at the sources named.",
        "",
    ]
    for repo, licenses, files, holders, source, commit, evidence in rows:
        lines += [
            f"== {repo} ==",
            f"License: {licenses}",
            f"Source: {source}" + (f" at {commit}" if commit else ""),
            f"Copyright: {', '.join(holders) if holders else '(no holder named in its license files)'}",
            f"Files in this corpus: {files}; license evidence: {evidence or 'file headers'}",
            "",
        ]
    path.write_text("\n".join(lines))
