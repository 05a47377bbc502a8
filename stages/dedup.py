"""Exact deduplication: files with the same sha256 are kept once, corpus-wide.

Which copy stays is a fixed rule, so the result does not depend on the order units
finished in: the repository with the most stars, then the smallest repository name, then
the smallest path. The others are dropped as `exact_duplicate`, `dup_of` naming the kept
file's id. Rows of a dataset that repeat a (repo, path) are dropped first as
`duplicate_path`, so that ids stay unique among kept files.

Runs in DuckDB over the Parquet parts, so it spills to disk instead of holding a dict of
every hash in memory. Near-duplicate removal (MinHash LSH) follows it as another
CorpusStage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from manifests import reasons
from pipeline.config import DedupConfig
from pipeline.stage import CorpusStage

KEEP_ORDER = "stars DESC NULLS LAST, repo, path, unit, ordinal"


class DuplicatePaths(CorpusStage):
    name = "duplicate_paths"

    def drops(self, db: Any, scratch: Path) -> str:
        return f"""
            SELECT unit, ordinal, '{reasons.DUPLICATE_PATH}' AS reason, NULL AS dup_of FROM files
            WHERE decision = 'kept'
            QUALIFY row_number() OVER (PARTITION BY repo, path ORDER BY unit, ordinal) > 1
        """


class ExactDedup(CorpusStage):
    name = "exact_dedup"

    config: DedupConfig

    def drops(self, db: Any, scratch: Path) -> str:
        if not self.config.exact:
            return "SELECT NULL::VARCHAR AS unit, NULL::BIGINT AS ordinal, NULL AS reason, NULL AS dup_of LIMIT 0"
        return f"""
            SELECT unit, ordinal, '{reasons.EXACT_DUPLICATE}' AS reason,
                   first_value(id) OVER same_content AS dup_of
            FROM files
            WHERE decision = 'kept'
            WINDOW same_content AS (PARTITION BY sha256 ORDER BY {KEEP_ORDER})
            QUALIFY row_number() OVER same_content > 1
        """
