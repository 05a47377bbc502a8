"""The license decision (stage `license_decision`), as partitioned work by repository.

Everything the decision needs of a repository is its own: its evidence (the license file
stage's `license_evidence` rows), the license a dataset declares for it, and its files. So
the driver scatters the three by hash(repo) into partitions (corpus_core/partitions.py), and
a task per partition, on any Ray node with its own DuckDB, resolves its repositories'
directories (`resolve_repositories`), judges every file that was read (`judge`), and writes
five results: `licenses-K` (per directory), `repo_licenses-K` (each repository's license
fields), `annotations-K` (every judged file's license columns), `relabelled-K` (how many
earlier drops, by reason, the license reason replaced) and `verdicts-K` (the files that
fail, and those earlier drops), the last one last: its presence means the partition is done. The task holds one
partition's evidence and one batch of its files at a time.

The driver then applies the results in DuckDB: the repositories' license fields, the
annotations, and the verdicts as drops or relabels (docs/ARCHITECTURE.md, "The license
code").
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core import partitions, reasons, schema
from corpus_core.stage import CorpusContext, CorpusStage
from stages.license import (
    ANNOTATION_TABLE,
    EVIDENCE_TABLE,
    LICENSE_TABLE,
    REPO_LICENSE,
    LicenseConfig,
    judge,
    resolve_repositories,
    scopes_of,
)

VERDICTS = pa.schema([("unit", pa.string()), ("ordinal", pa.int64()), ("reason", pa.string()),
                      ("detail", pa.string()), ("relabel", pa.bool_())])
BATCH_FILES = 65_536  # files judged at once in a task


class LicenseDecision(CorpusStage):
    name = "license_decision"
    settings_class = LicenseConfig
    reads = ("files", "repos", "license_evidence")
    # per directory; every file's license columns; the license reason of files an earlier stage dropped
    writes = ("licenses", "annotations", "decisions")
    config: LicenseConfig

    def drops(self, db: Any, context: CorpusContext) -> str:
        """Resolve every directory's license from its repository's evidence (filling the
        repositories' license fields), give every file that was read its license (table
        `annotations`), drop the kept files that fail, and give the license reason to the
        files earlier stages dropped that fail too (their reason goes to `detail`)."""
        folder = context.scratch / self.name
        folder.mkdir(parents=True, exist_ok=True)
        plan = context.partitions
        partitions.scatter(db, "SELECT * FROM license_evidence", "repo", folder, "evidence", plan)
        partitions.scatter(db, "SELECT repo, declared_license FROM repos", "repo", folder, "repos", plan)
        # the files that were read (their bytes have a sha256: not links, escapes, files past a limit or rows
        # that are no file) and not opted out, which get no more work
        partitions.scatter(db, f"""SELECT unit, ordinal, repo, path, decision, reason, detail,
                                          {', '.join(schema.ANNOTATED)}
                                   FROM files
                                   WHERE sha256 IS NOT NULL AND reason IS DISTINCT FROM '{reasons.OPTED_OUT}'""",
                           "repo", folder, "files", plan)
        partitions.run_tasks(context.executor, decide_partition, folder, "verdicts", plan,
                             (tuple(sorted(self.config.allowed)),))
        # from every partition's result, those a resumed build did not recompute included
        self.stats.notes["relabelled"] = dict(db.sql(
            f"""SELECT reason, sum(files)::BIGINT FROM {partitions.results(folder, 'relabelled')}
                GROUP BY reason ORDER BY reason""").fetchall())
        db.execute(f"""CREATE OR REPLACE TABLE licenses AS
                       SELECT * FROM {partitions.results(folder, 'licenses')} ORDER BY repo, dir""")
        db.execute(f"""UPDATE repos SET license = r.license, license_source = r.license_source,
                          license_conflict = r.license_conflict, license_evidence = r.license_evidence,
                          copyright_holders = r.copyright_holders
                       FROM {partitions.results(folder, 'repo_licenses')} r WHERE repos.repo = r.repo""")
        # the runner's table has the columns the view `files` takes from it (corpus_core.schema.ANNOTATED)
        applied = ", ".join(name for name, *_ in db.execute("DESCRIBE annotations").fetchall())
        db.execute(f"INSERT INTO annotations ({applied}) SELECT {applied} "
                   f"FROM {partitions.results(folder, 'annotations')}")
        db.execute(f"CREATE OR REPLACE TEMP TABLE license_verdicts AS "
                   f"SELECT * FROM {partitions.results(folder, 'verdicts')}")
        # an earlier corpus stage's drop is its row of `decisions`; a file stage's drop gets one
        db.execute("""UPDATE decisions SET reason = v.reason, detail = v.detail FROM license_verdicts v
                      WHERE v.relabel AND decisions.unit = v.unit AND decisions.ordinal = v.ordinal""")
        db.execute("""INSERT INTO decisions SELECT v.unit, v.ordinal, v.reason, v.detail, NULL FROM license_verdicts v
                      WHERE v.relabel AND NOT EXISTS (SELECT 1 FROM decisions d
                                                      WHERE d.unit = v.unit AND d.ordinal = v.ordinal)""")
        db.execute("""CREATE OR REPLACE TEMP TABLE license_drops AS
                      SELECT unit, ordinal, reason, detail, NULL AS dup_of FROM license_verdicts WHERE NOT relabel""")
        return "SELECT * FROM license_drops"


def decide_partition(number: int, folder: str, plan: partitions.PartitionPlan, allowed: tuple[str, ...]
                     ) -> dict[str, int]:
    """One partition's repositories: resolve, judge, write the five results (verdicts last:
    its presence means the partition is done)."""
    base = Path(folder)
    with partitions.task_database(plan) as db:
        evidence = db.sql(f"SELECT * FROM {partitions.inputs(base, 'evidence', number)}"
                          ).to_arrow_table().select(EVIDENCE_TABLE.names).cast(EVIDENCE_TABLE).to_pylist()
        declared: dict[str, str] = {}
        repos = []
        for repo, value in db.sql(f"SELECT repo, declared_license FROM {partitions.inputs(base, 'repos', number)}"
                                  ).fetchall():
            repos.append(repo)
            if value is not None:
                declared[repo] = value
        licenses, repositories = resolve_repositories(evidence, declared, repos)
        _write(pa.Table.from_pylist(licenses, schema=LICENSE_TABLE), partitions.result_path(base, "licenses", number))
        _write(pa.Table.from_pylist(repositories, schema=REPO_LICENSE),
               partitions.result_path(base, "repo_licenses", number))
        scopes = scopes_of(licenses)
        permitted = frozenset(allowed)
        relabelled: Counter[str] = Counter()
        reader = db.sql(f"SELECT * FROM {partitions.inputs(base, 'files', number)}"
                        ).to_arrow_reader(batch_size=BATCH_FILES)
        annotations_path = partitions.result_path(base, "annotations", number)
        verdicts_path = partitions.result_path(base, "verdicts", number)
        with pq.ParquetWriter(annotations_path.with_suffix(".partial"), ANNOTATION_TABLE) as annotated, \
                pq.ParquetWriter(verdicts_path.with_suffix(".partial"), VERDICTS) as judged:
            for batch in reader:
                annotations: list[dict[str, Any]] = []
                verdicts: dict[str, list] = {name: [] for name in VERDICTS.names}
                for row in batch.to_pylist():
                    columns, reason, detail = judge(row, scopes.get(row["repo"], {}), permitted)
                    annotations.append({"unit": row["unit"], "ordinal": row["ordinal"], **columns})
                    if reason is None:
                        continue
                    relabel = row["decision"] != "kept"
                    for name, value in (("unit", row["unit"]), ("ordinal", row["ordinal"]), ("reason", reason),
                                        ("detail", detail), ("relabel", relabel)):
                        verdicts[name].append(value)
                    if relabel:
                        relabelled[row["reason"]] += 1
                annotated.write_table(pa.Table.from_pylist(annotations, schema=ANNOTATION_TABLE))
                judged.write_table(pa.table(verdicts, schema=VERDICTS))
        _write(pa.table({"reason": pa.array(sorted(relabelled), pa.string()),
                         "files": pa.array([relabelled[r] for r in sorted(relabelled)], pa.int64())}),
               partitions.result_path(base, "relabelled", number))
        os.replace(annotations_path.with_suffix(".partial"), annotations_path)
        os.replace(verdicts_path.with_suffix(".partial"), verdicts_path)
    return {"relabelled": sum(relabelled.values())}


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path.with_suffix(".partial"), compression="zstd")
    os.replace(path.with_suffix(".partial"), path)
