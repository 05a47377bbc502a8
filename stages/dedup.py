"""Exact deduplication: files with the same sha256 are kept once, corpus-wide.

Which copy stays is a fixed rule, so the result does not depend on the order units
finished in: the repository with the most stars, then the smallest repository name, then
the smallest path. The others are dropped as `exact_duplicate`, `dup_of` naming the kept
file's id. Rows of a dataset that repeat a (repo, path) are dropped first as
`duplicate_path`, so that ids stay unique among kept files.

Both run as partitioned corpus work (corpus_core/partitions.py): the driver scatters the
kept files' keys by hash into partitions, and a task per partition (on any Ray node, with
its own DuckDB that spills to disk) writes that partition's drops; all copies of a sha256
(or rows of a (repo, path)) land in one partition, so no task needs another's rows.

Near-duplicate removal (`NearDedup`) follows it, in four passes that hand off through
Parquet files under `_work/<fingerprint>/near_dedup/`:

1. signatures: batches of kept files go to the executor (Ray tasks); each task writes
   the batch's MinHash signatures and LSH band keys (stages/minhash.py);
2. buckets: DuckDB groups the band keys of every file (spilling to disk past
   `execution.duckdb_memory_limit`); files sharing a key in some band are candidates.
   A bucket of at most `max_bucket_size` files gives every pair; a bigger one (many
   copies of one file) gives a star on its smallest member plus the chain of neighbours,
   so no bucket costs more than linear pairs;
3. verification and clusters: a candidate pair becomes an edge when its signatures'
   estimated Jaccard reaches the threshold (`verify`), read in bounded batches; clusters
   are the connected components of the edges, found by min-label propagation with
   pointer jumping in DuckDB, never as pairs held in memory;
4. removal: in each cluster the file first in KEEP_ORDER stays (most stars, then the
   smallest repository, path); the others are dropped as `near_duplicate`, `dup_of`
   naming the one kept.

Clusters are transitive: with A~B and B~C, A and C land in one cluster even when they
are not similar themselves, and only one of the three stays (BigCode's behaviour).

The signatures outlive `_work/`: `write_signatures` puts them, and their band keys, into
OUT/manifest/ (docs/FORMATS.md), so that a finished build can be searched for near copies of
a file (`corpus serve`) with the settings that clustered it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core import partitions, reasons
from corpus_core.errors import ConfigError
from corpus_core.settings import Settings, setting
from corpus_core.stage import DROP_COLUMNS, NO_DROPS, CorpusContext, CorpusStage
from corpus_core.storage import sql_path, write_atomic
from stages import minhash

DUPLICATE_PATH = reasons.register("duplicate_path", "duplicate_paths", "a second row with the same repo and path "
                                  "(datasets)")
EXACT_DUPLICATE = reasons.register("exact_duplicate", "exact_dedup", "same sha256 as a kept file")
NEAR_DUPLICATE = reasons.register("near_duplicate", "near_dedup", "in a MinHash LSH cluster whose kept file is "
                                  "another (`dup_of` names it)")

SIGNATURES = "minhash.parquet"  # in OUT/manifest: id, tokens, signature of every file near dedup signed
SIGNATURE_BANDS = "minhash_bands.parquet"  # in OUT/manifest: key, band, id, sorted by key
SIGNATURE_ROW_GROUP = 4096
BANDS_ROW_GROUP = 16_384  # sorted by key: a lookup reads the row groups whose key range holds its keys

KEEP_ORDER = "stars DESC NULLS LAST, repo, path, unit, ordinal"
MAX_ROUNDS = 10_000  # of label propagation; pointer jumping makes a few dozen plenty
VERIFY_ROWS = 16_384  # candidate pairs (with both signatures) in memory at once


@dataclass(frozen=True)
class DedupConfig(Settings):
    section = "dedup"

    exact: bool = setting(True, "drop files whose sha256 was already kept")


@dataclass(frozen=True)
class NearDedupConfig(Settings):
    """MinHash LSH near-duplicate removal (stages/minhash.py). Defaults are StarCoder's run:
    5-token shingles, 256 permutations, Jaccard 0.7."""

    section = "near_dedup"

    enabled: bool = setting(True, "remove near duplicates: MinHash LSH, StarCoder's settings (docs/ARCHITECTURE.md)")
    threshold: float = setting(0.7, "estimated Jaccard of 5-token shingle sets at which files are near duplicates")
    num_perm: int = setting(256, "MinHash permutations (datasketch, affine32 scheme)")
    shingle_size: int = setting(5, "tokens (runs of word characters) per shingle")
    bands: int = setting(0, "LSH bands; 0 with rows = 0: datasketch's optimal (bands, rows) for threshold, num_perm")
    rows: int = setting(0, "signature values per band")
    seed: int = setting(1, "seeds the permutations (datasketch's default seed)")
    min_tokens: int = setting(10, "files with fewer tokens get no signature: never near duplicates")
    verify: bool = setting(True, "a candidate pair must reach the threshold by its signatures' estimate")
    max_bucket_size: int = setting(64, "buckets up to this size pair every member; larger: star + chain")
    batch_files: int = setting(500, "files per signature task")

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"near_dedup.threshold = {self.threshold!r}: expected a number in (0, 1]")
        if self.num_perm < 1 or self.shingle_size < 1 or self.batch_files < 1 or self.max_bucket_size < 2:
            raise ConfigError("near_dedup: num_perm, shingle_size and batch_files must be >= 1, "
                              "max_bucket_size >= 2")
        if (self.bands == 0) != (self.rows == 0):
            raise ConfigError(f"near_dedup.bands = {self.bands}, rows = {self.rows}: give both, or neither")
        if self.bands * self.rows > self.num_perm:
            raise ConfigError(f"near_dedup: {self.bands} bands x {self.rows} rows exceed num_perm = {self.num_perm}")

    def resolved(self) -> NearDedupConfig:
        """The same settings with bands and rows filled in."""
        if self.bands:
            return self
        bands, rows = minhash.optimal_bands(self.threshold, self.num_perm)
        return dataclasses.replace(self, bands=bands, rows=rows)

    @property
    def name(self) -> str:
        """Names the settings, datatrove style: 5ng_256p_25b10r_t0.7."""
        return f"{self.shingle_size}ng_{self.num_perm}p_{self.bands}b{self.rows}r_t{self.threshold:g}"


class DuplicatePaths(CorpusStage):
    """Partitioned by (repo, path): a task per partition (corpus_core/partitions.py)."""

    name = "duplicate_paths"

    def drops(self, db: Any, context: CorpusContext) -> str:
        folder = context.scratch / self.name
        folder.mkdir(parents=True, exist_ok=True)
        partitions.scatter(db, "SELECT unit, ordinal, repo, path FROM files WHERE decision = 'kept'",
                           "repo, path", folder, "rows", context.partitions)
        partitions.run_tasks(context.executor, duplicate_paths_task, folder, "drops", context.partitions, ())
        return f"SELECT {', '.join(DROP_COLUMNS)} FROM {partitions.results(folder, 'drops')}"


def duplicate_paths_task(number: int, folder: str, plan: partitions.PartitionPlan) -> dict[str, int]:
    """One partition of `duplicate_paths`: rows after the first of each (repo, path)."""
    return _partition_drops(number, Path(folder), plan, f"""
        SELECT unit, ordinal, '{DUPLICATE_PATH}' AS reason, NULL::VARCHAR AS detail, NULL::VARCHAR AS dup_of
        FROM {{rows}}
        QUALIFY row_number() OVER (PARTITION BY repo, path ORDER BY unit, ordinal) > 1""")


class ExactDedup(CorpusStage):
    """Partitioned by sha256: a task per partition (corpus_core/partitions.py)."""

    name = "exact_dedup"
    settings_class = DedupConfig

    config: DedupConfig

    def drops(self, db: Any, context: CorpusContext) -> str:
        if not self.config.exact:
            return NO_DROPS
        folder = context.scratch / self.name
        folder.mkdir(parents=True, exist_ok=True)
        partitions.scatter(db, "SELECT unit, ordinal, sha256, id, repo, path, stars FROM files "
                               "WHERE decision = 'kept'", "sha256", folder, "rows", context.partitions)
        partitions.run_tasks(context.executor, exact_dedup_task, folder, "drops", context.partitions, ())
        return f"SELECT {', '.join(DROP_COLUMNS)} FROM {partitions.results(folder, 'drops')}"


def exact_dedup_task(number: int, folder: str, plan: partitions.PartitionPlan) -> dict[str, int]:
    """One partition of `exact_dedup`: every copy of a sha256 but the first in KEEP_ORDER."""
    return _partition_drops(number, Path(folder), plan, f"""
        SELECT unit, ordinal, '{EXACT_DUPLICATE}' AS reason, NULL::VARCHAR AS detail,
               first_value(id) OVER same_content AS dup_of
        FROM {{rows}}
        WINDOW same_content AS (PARTITION BY sha256 ORDER BY {KEEP_ORDER})
        QUALIFY row_number() OVER same_content > 1""")


def _partition_drops(number: int, folder: Path, plan: partitions.PartitionPlan, query: str) -> dict[str, int]:
    """Run a drops query over partition `number` of the scatter `rows` (written as `{rows}`
    in it) in the task's own DuckDB; its result is `drops-K.parquet`."""
    db = partitions.task_db(folder, plan.memory_limit, f"{number}")
    try:
        rows = partitions.write_result(db, query.format(rows=partitions.inputs(folder, "rows", number)), folder,
                                       "drops", number)
    finally:
        partitions.close_task_db(db, folder, f"{number}")
    return {"dropped": rows}


def sign_batch(batch: tuple[int, list[int], list[str]], config: NearDedupConfig, folder: str) -> dict[str, int]:
    """One signature task: MinHash signatures and band keys of a batch of files, written to
    `sig-N.parquet` (doc, signature) and `bands-N.parquet` (band, key, doc). Files with
    fewer than `min_tokens` tokens are left out of both."""
    number, docs, contents = batch
    words = [minhash.tokens(text) for text in contents]
    signed = [i for i, found in enumerate(words) if len(found) >= config.min_tokens]
    shingles = [minhash.shingle_hashes(words[i], config.shingle_size) for i in signed]
    signature = minhash.signatures(shingles, config.num_perm, config.seed)
    keys = minhash.band_keys(signature, config.bands, config.rows)
    doc_ids = np.asarray(docs, dtype=np.int64)[signed]
    flat = pa.array(signature.reshape(-1), type=pa.uint32())
    write_atomic(pa.table({
        "doc": pa.array(doc_ids), "tokens": pa.array([len(words[i]) for i in signed], type=pa.int32()),
        "signature": pa.FixedSizeListArray.from_arrays(flat, config.num_perm),
    }), Path(folder) / f"sig-{number:06d}.parquet")
    # the bands file is written last: its presence marks the batch done (resume)
    write_atomic(pa.table({
        "band": pa.array(np.tile(np.arange(config.bands, dtype=np.int16), len(signed))),
        "key": pa.array(keys.reshape(-1)),
        "doc": pa.array(np.repeat(doc_ids, config.bands)),
    }), Path(folder) / f"bands-{number:06d}.parquet")
    return {"files": len(docs), "signed": len(signed)}


class NearDedup(CorpusStage):
    name = "near_dedup"
    settings_class = NearDedupConfig

    config: NearDedupConfig

    def drops(self, db: Any, context: CorpusContext) -> str:
        if not self.config.enabled:
            return NO_DROPS
        config = self.config.resolved()
        folder = context.scratch / self.name
        folder.mkdir(parents=True, exist_ok=True)
        db.execute("""CREATE OR REPLACE TEMP TABLE near_docs AS
                       SELECT row_number() OVER (ORDER BY unit, ordinal) - 1 AS doc,
                              unit, ordinal, id, repo, path, stars
                       FROM files WHERE decision = 'kept'""")
        (total,) = db.sql("SELECT count(*) FROM near_docs").fetchall()[0]
        notes: dict[str, Any] = {"settings": config.name, "bands": config.bands, "rows": config.rows}
        self.stats.notes = notes
        if total == 0:
            return NO_DROPS

        batches = -(-total // config.batch_files)
        context.progress.phase(f"{self.name}: signatures of {total} files in {batches} batches ({config.name})")
        signed = 0

        def on_result(batch: tuple, result: dict[str, int]) -> None:
            nonlocal signed
            signed += result["signed"]

        context.executor.map(sign_batch, self._batches(db, config, folder), (config, str(folder)), on_result)
        # batches done before a restart were skipped above: count their files from their outputs
        signed = db.sql(f"SELECT count(*) FROM read_parquet({sql_path(folder / 'sig-*.parquet')})").fetchall()[0][0]
        notes.update(files=total, signed=signed, too_few_tokens=total - signed)
        if signed == 0:
            return NO_DROPS

        context.progress.phase(f"{self.name}: buckets, candidate pairs, clusters")
        self._candidates(db, config, folder)
        self._edges(db, config, folder)
        notes["rounds"] = self._components(db, folder)
        (notes["candidate_pairs"],) = db.sql("SELECT count(*) FROM near_candidates").fetchall()[0]
        (notes["edges"],) = db.sql(f"SELECT count(*) FROM read_parquet({sql_path(folder / 'edges.parquet')})"
                                   ).fetchall()[0]
        (notes["clusters"], notes["largest_cluster"]) = db.sql(
            "SELECT count(*), coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM near_label GROUP BY label)"
        ).fetchall()[0]
        return f"""
            SELECT d.unit, d.ordinal, '{NEAR_DUPLICATE}' AS reason, NULL AS detail,
                   first_value(d.id) OVER cluster AS dup_of
            FROM near_label c JOIN near_docs d USING (doc)
            WINDOW cluster AS (PARTITION BY c.label ORDER BY {", ".join("d." + k for k in KEEP_ORDER.split(", "))})
            QUALIFY row_number() OVER cluster > 1
        """

    def _batches(self, db: Any, config: NearDedupConfig, folder: Path):
        """(number, docs, contents) of every batch not already done, streamed in doc order so
        that memory holds only the batches in flight."""
        reader = db.sql("""SELECT n.doc, f.content FROM near_docs n JOIN files f USING (unit, ordinal)
                           ORDER BY n.doc""").to_arrow_reader(batch_size=config.batch_files)
        docs: list[int] = []
        contents: list[str] = []
        for record_batch in reader:
            for doc, content in zip(record_batch.column(0).to_pylist(), record_batch.column(1).to_pylist(),
                                    strict=True):
                docs.append(doc)
                contents.append(content)
                if len(docs) == config.batch_files:
                    yield from self._unless_done(folder, docs, contents, config)
                    docs, contents = [], []
        if docs:
            yield from self._unless_done(folder, docs, contents, config)

    @staticmethod
    def _unless_done(folder: Path, docs: list[int], contents: list[str], config: NearDedupConfig):
        number = docs[0] // config.batch_files
        if not (folder / f"bands-{number:06d}.parquet").exists():
            yield number, docs, contents

    def _candidates(self, db: Any, config: NearDedupConfig, folder: Path) -> None:
        cap = config.max_bucket_size
        db.execute(f"""CREATE OR REPLACE TEMP TABLE near_buckets AS
            SELECT band, key, doc, count(*) OVER (PARTITION BY band, key) AS size,
                   row_number() OVER (PARTITION BY band, key ORDER BY doc) AS pos
            FROM read_parquet({sql_path(folder / 'bands-*.parquet')})
            QUALIFY size > 1""")
        db.execute(f"""CREATE OR REPLACE TEMP TABLE near_candidates AS
            SELECT DISTINCT a, b FROM (
                SELECT x.doc AS a, y.doc AS b
                FROM (SELECT * FROM near_buckets WHERE size <= {cap}) x
                JOIN (SELECT * FROM near_buckets WHERE size <= {cap}) y
                  ON x.band = y.band AND x.key = y.key AND x.pos < y.pos
                UNION ALL
                SELECT first_value(doc) OVER bucket, doc FROM near_buckets WHERE size > {cap}
                WINDOW bucket AS (PARTITION BY band, key ORDER BY pos) QUALIFY pos > 1
                UNION ALL
                SELECT lag(doc) OVER bucket, doc FROM near_buckets WHERE size > {cap}
                WINDOW bucket AS (PARTITION BY band, key ORDER BY pos) QUALIFY pos > 2)""")
        db.execute("DROP TABLE near_buckets")

    def _edges(self, db: Any, config: NearDedupConfig, folder: Path) -> None:
        """Candidate pairs with their estimated Jaccard, those under the threshold left out
        when `verify` is on; written batch by batch to edges.parquet."""
        sigs = sql_path(folder / "sig-*.parquet")
        reader = db.sql(f"""SELECT c.a, c.b, sa.signature AS sa, sb.signature AS sb
                            FROM near_candidates c
                            JOIN read_parquet({sigs}) sa ON sa.doc = c.a
                            JOIN read_parquet({sigs}) sb ON sb.doc = c.b""").to_arrow_reader(batch_size=VERIFY_ROWS)
        schema = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("similarity", pa.float32())])
        path = folder / "edges.parquet"
        with pq.ParquetWriter(path.with_suffix(".tmp"), schema, compression="zstd") as writer:
            for batch in reader:
                left, right = (batch.column(i).flatten().to_numpy().reshape(-1, config.num_perm) for i in (2, 3))
                similarity = minhash.jaccard_estimate(left, right).astype(np.float32)
                keep = similarity >= config.threshold if config.verify else np.ones(len(similarity), dtype=bool)
                writer.write_table(pa.table([batch.column(0).filter(keep), batch.column(1).filter(keep),
                                             pa.array(similarity[keep])], schema=schema))
        os.replace(path.with_suffix(".tmp"), path)

    @staticmethod
    def _components(db: Any, folder: Path) -> int:
        """near_label(doc, label): the smallest doc of each file's connected component, for
        every file with an edge. Each round gives a file the least label among its own and
        its neighbours', then the label of that label (pointer jumping); returns the rounds."""
        edges = f"read_parquet({sql_path(folder / 'edges.parquet')})"
        db.execute(f"""CREATE OR REPLACE TEMP TABLE near_links AS
                       SELECT a AS x, b AS y FROM {edges} UNION ALL SELECT b, a FROM {edges}""")
        db.execute("""CREATE OR REPLACE TEMP TABLE near_label AS
                      SELECT x AS doc, least(x, min(y)) AS label FROM near_links GROUP BY x""")
        for rounds in range(1, MAX_ROUNDS + 1):
            db.execute("""CREATE OR REPLACE TEMP TABLE near_step AS
                WITH spread AS (
                    SELECT n.x AS doc, least(own.label, min(l.label)) AS label
                    FROM near_links n JOIN near_label l ON l.doc = n.y JOIN near_label own ON own.doc = n.x
                    GROUP BY n.x, own.label)
                SELECT s.doc, least(s.label, j.label) AS label FROM spread s JOIN near_label j ON j.doc = s.label""")
            (changed,) = db.sql("""SELECT count(*) FROM near_step s JOIN near_label l USING (doc)
                                   WHERE s.label <> l.label""").fetchall()[0]
            db.execute("DROP TABLE near_label")
            db.execute("ALTER TABLE near_step RENAME TO near_label")
            if changed == 0:
                db.execute("DROP TABLE near_links")
                return rounds
        raise RuntimeError(f"near dedup: connected components did not settle in {MAX_ROUNDS} rounds")


def signature_settings(config: NearDedupConfig) -> dict[str, Any]:
    """What a reader of the written signatures needs to sign a file the same way."""
    config = config.resolved()
    return {"settings": config.name, "threshold": config.threshold, "num_perm": config.num_perm,
            "shingle_size": config.shingle_size, "bands": config.bands, "rows": config.rows, "seed": config.seed,
            "min_tokens": config.min_tokens}


def write_signatures(db: Any, scratch: Path, manifest: Path, config: NearDedupConfig) -> None:
    """OUT/manifest/minhash.parquet (id, tokens, signature) and minhash_bands.parquet (key,
    band, id) of every file near dedup signed, its settings in each file's metadata under
    `near_dedup`. Called after `NearDedup.drops` on the same connection (its `near_docs`);
    nothing is written when near dedup is off."""
    if not config.enabled:
        return
    settings = signature_settings(config)
    metadata = {b"near_dedup": json.dumps(settings, sort_keys=True).encode()}
    signatures = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("tokens", pa.int32()),
                            pa.field("signature", pa.list_(pa.uint32(), settings["num_perm"]))], metadata=metadata)
    bands = pa.schema([pa.field("key", pa.int64()), pa.field("band", pa.int16()),
                       pa.field("id", pa.string(), nullable=False)], metadata=metadata)
    folder = scratch / NearDedup.name
    if not any(folder.glob("sig-*.parquet")):  # no file had enough tokens, or none was kept
        pq.write_table(signatures.empty_table(), manifest / SIGNATURES, compression="zstd")
        pq.write_table(bands.empty_table(), manifest / SIGNATURE_BANDS, compression="zstd")
        return
    sigs, keys = sql_path(folder / "sig-*.parquet"), sql_path(folder / "bands-*.parquet")
    _write_in_groups(db.sql(f"""SELECT d.id, s.tokens, s.signature FROM read_parquet({sigs}) s
                                JOIN near_docs d USING (doc) ORDER BY d.id""").to_arrow_reader(batch_size=8192),
                     manifest / SIGNATURES, signatures, SIGNATURE_ROW_GROUP)
    _write_in_groups(db.sql(f"""SELECT b.key, b.band, d.id FROM read_parquet({keys}) b
                                JOIN near_docs d USING (doc) ORDER BY b.key, b.band, d.id""").to_arrow_reader(
                     batch_size=65_536), manifest / SIGNATURE_BANDS, bands, BANDS_ROW_GROUP)


def _write_in_groups(reader: Any, path: Path, schema: pa.Schema, group_rows: int) -> None:
    """Stream sorted rows into `path` in row groups of exactly `group_rows` (the last one
    less), so that the bytes depend on the rows only, never on how DuckDB batched them."""
    pending = schema.empty_table()
    with pq.ParquetWriter(path.with_suffix(".tmp"), schema, compression="zstd") as writer:
        for batch in reader:
            pending = pa.concat_tables([pending, pa.Table.from_batches([batch]).cast(schema)])
            while pending.num_rows >= group_rows:
                writer.write_table(pending.slice(0, group_rows), row_group_size=group_rows)
                pending = pending.slice(group_rows)
        if pending.num_rows:
            writer.write_table(pending, row_group_size=group_rows)
    os.replace(path.with_suffix(".tmp"), path)
