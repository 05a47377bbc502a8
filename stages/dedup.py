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

Near-duplicate removal (`NearDedup`) follows it, partitioned the same way, in steps that
hand off through Parquet files under `_work/<fingerprint>/near_dedup/` (a task per
partition each, its own bounded DuckDB; a task sends rows on to the next step's partitions
with `partitions.shuffle`):

1. docs: the driver numbers the kept files by (unit, ordinal), whatever the partition
   count (star + chain below and the labels depend on the numbers), and scatters their
   keys by doc (`docs`) and by chunk (`sign`); no content leaves the driver;
2. signatures: a task per `sign` partition reads its files' content from their chunks'
   parts (`partitions.with_content`) and signs them in batches of `batch_files`
   (stages/minhash.py); it keeps their signatures, sends them on by doc (`signed`), and
   sends their LSH band keys on by (band, key);
3. buckets: files sharing a key in some band are candidates. A bucket of at most
   `max_bucket_size` files gives every pair; a bigger one (many copies of one file) gives
   a star on its smallest member plus the chain of neighbours, so no bucket costs more
   than linear pairs. The pairs go on by their first doc;
4. verification, in two halves: a pair meets its first doc's signature in that doc's
   partition, then its second's in the other's; it becomes an edge when the estimated
   Jaccard reaches the threshold (`verify`), computed in bounded batches;
5. clusters: the connected components of the edges, by `partitions.connected_components`
   (large-star / small-star rounds over partitions; their count is the note `rounds`);
6. removal: the members of each cluster meet at their label's partition, where the file
   first in KEEP_ORDER stays (most stars, then the smallest repository, path); the others
   are dropped as `near_duplicate`, `dup_of` naming the one kept.

Clusters are transitive: with A~B and B~C, A and C land in one cluster even when they
are not similar themselves, and only one of the three stays (BigCode's behaviour).

The signatures outlive `_work/`: `write_signatures` puts them, and their band keys, into
OUT/manifest/ (docs/FORMATS.md), so that a finished build can be searched for near copies of
a file (`corpus serve`) with the settings that clustered it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core import partitions, reasons
from corpus_core.errors import ConfigError
from corpus_core.schema import part_name, parts_or_before
from corpus_core.settings import Settings, setting
from corpus_core.stage import DROP_COLUMNS, NO_DROPS, CorpusContext, CorpusStage
from corpus_core.storage import sql_path, write_atomic
from stages import minhash

DUPLICATE_PATH = reasons.register("duplicate_path", "duplicate_paths", "a second row with the same repo and path "
                                  "(datasets)")
EXACT_DUPLICATE = reasons.register("exact_duplicate", "exact_dedup", "same sha256 as a kept file")
NEAR_DUPLICATE = reasons.register("near_duplicate", "near_dedup", "in a MinHash LSH cluster whose kept file is "
                                  "another (`dup_of` names it)")

# in OUT/manifest, folders of parts part-K.parquet that read in name order are one table:
SIGNATURES = "minhash"  # id, tokens, signature of every file near dedup signed, by id
SIGNATURE_BANDS = "minhash_bands"  # key, band, id, by key, band, id
SIGNATURE_PART_ROWS = 1_048_576  # rows a part holds at most on average (`signature_cuts`)
CUTS = "signature_cuts.json"  # in near dedup's scratch: the cuts the signing tasks used
SIGNATURE_ROW_GROUP = 4096
SIGNATURE_SHUFFLE_ROW_GROUP = 1024  # 1 MB of signatures: a writing task reads little past its own rows
BANDS_ROW_GROUP = 16_384  # sorted by key: a lookup reads the row groups whose key range holds its keys
# each signature manifest's sort order, its row groups, and those of the shuffle that feeds its writing tasks
MANIFEST_ROWS = {SIGNATURES: ("id", SIGNATURE_ROW_GROUP, SIGNATURE_SHUFFLE_ROW_GROUP),
                 SIGNATURE_BANDS: ("key, band, id", BANDS_ROW_GROUP, partitions.SHUFFLE_ROW_GROUP)}

KEEP_ORDER = "stars DESC NULLS LAST, repo, path, unit, ordinal"
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
    with partitions.task_database(plan) as db:
        rows = partitions.write_result(db, query.format(rows=partitions.inputs(folder, "rows", number)), folder,
                                       "drops", number)
    return {"dropped": rows}


def signed_tables(docs: list[int], contents: list[str], config: NearDedupConfig) -> tuple[pa.Table, pa.Table]:
    """MinHash signatures (doc, tokens, signature) and LSH band keys (band, key, doc) of a
    batch of files; files with fewer than `min_tokens` tokens are left out of both."""
    words = [minhash.tokens(text) for text in contents]
    signed = [i for i, found in enumerate(words) if len(found) >= config.min_tokens]
    shingles = [minhash.shingle_hashes(words[i], config.shingle_size) for i in signed]
    signature = minhash.signatures(shingles, config.num_perm, config.seed)
    keys = minhash.band_keys(signature, config.bands, config.rows)
    doc_ids = np.asarray(docs, dtype=np.int64)[signed]
    flat = pa.array(signature.reshape(-1), type=pa.uint32())
    return pa.table({
        "doc": pa.array(doc_ids), "tokens": pa.array([len(words[i]) for i in signed], type=pa.int32()),
        "signature": pa.FixedSizeListArray.from_arrays(flat, config.num_perm),
    }), pa.table({
        "band": pa.array(np.tile(np.arange(config.bands, dtype=np.int16), len(signed))),
        "key": pa.array(keys.reshape(-1)),
        "doc": pa.array(np.repeat(doc_ids, config.bands)),
    })


def sign_batch(batch: tuple[int, list[int], list[str]], config: NearDedupConfig, folder: str) -> dict[str, int]:
    """Signatures and band keys of one batch of files (`signed_tables`), written to
    `sig-N.parquet` and `bands-N.parquet` (bench/dedup.py times the signing through it)."""
    number, docs, contents = batch
    signatures, bands = signed_tables(docs, contents, config)
    write_atomic(signatures, Path(folder) / f"sig-{number:06d}.parquet")
    write_atomic(bands, Path(folder) / f"bands-{number:06d}.parquet")
    return {"files": len(docs), "signed": signatures.num_rows}


class NearDedup(CorpusStage):
    """Partitioned (corpus_core/partitions.py): the files by doc, their band keys by (band,
    key), candidate pairs by one doc then the other, the edges' components by node, the
    clusters by label; every step a task per partition."""

    name = "near_dedup"
    settings_class = NearDedupConfig

    config: NearDedupConfig

    def drops(self, db: Any, context: CorpusContext) -> str:
        if not self.config.enabled:
            return NO_DROPS
        config = self.config.resolved()
        folder = context.scratch / self.name
        folder.mkdir(parents=True, exist_ok=True)
        plan, executor = context.partitions, context.executor
        notes: dict[str, Any] = {"settings": config.name, "bands": config.bands, "rows": config.rows}
        self.stats.notes = notes
        # the doc numbers follow (unit, ordinal), whatever the partitions: star + chain and the
        # labels depend on them
        partitions.scatter(db, """SELECT row_number() OVER (ORDER BY unit, ordinal) - 1 AS doc,
                                         unit, ordinal, id, repo, path, stars
                                  FROM files WHERE decision = 'kept'""", "doc", folder, "docs", plan)
        # no content leaves the driver: the signing tasks read it from the parts, a chunk's files together
        docs = f"read_parquet({sql_path(folder / 'docs' / '*' / '*.parquet')})"
        partitions.scatter(db, f"SELECT doc, unit, ordinal, id FROM {docs}", "unit", folder, "sign", plan)
        (total,) = db.sql(f"SELECT count(*) FROM read_parquet({sql_path(folder / 'docs' / '*' / '*.parquet')})"
                          ).fetchall()[0]
        if total == 0:
            return NO_DROPS

        context.progress.phase(f"{self.name}: signatures of {total} files in {plan.count} partitions "
                               f"({config.name})")
        cuts = signature_cuts(total, config.bands, plan.count)
        (folder / f"{CUTS}.partial").write_text(json.dumps(cuts, sort_keys=True))  # the writer cuts the same way
        os.replace(folder / f"{CUTS}.partial", folder / CUTS)
        partitions.run_tasks(executor, near_signatures_task, folder, "signatures", plan, (config, context.parts, cuts))
        (signed,) = db.sql(f"SELECT count(*) FROM {partitions.results(folder, 'signatures')}").fetchall()[0]
        notes.update(files=total, signed=signed, too_few_tokens=total - signed)
        if signed == 0:
            return NO_DROPS

        context.progress.phase(f"{self.name}: buckets, candidate pairs, verification")
        partitions.run_tasks(executor, near_buckets_task, folder, "buckets", plan, (config.max_bucket_size,))
        partitions.run_tasks(executor, near_pairs_task, folder, "pairs", plan, ())
        partitions.run_tasks(executor, near_edges_task, folder, "edges", plan, (config,))
        candidates = partitions.total(folder, "pairs", "candidates")
        (edges,) = db.sql(f"SELECT count(*) FROM {partitions.results(folder, 'edges')}").fetchall()[0]
        if edges == 0:
            notes.update(rounds=0, candidate_pairs=candidates, edges=0, clusters=0, largest_cluster=0)
            return NO_DROPS

        context.progress.phase(f"{self.name}: clusters of {edges} edges")
        rounds = partitions.connected_components(executor, folder, plan, "links")
        partitions.run_tasks(executor, near_members_task, folder, "members", plan, (rounds,))
        partitions.run_tasks(executor, near_drops_task, folder, "drops", plan, ())
        largest = pq.read_table([str(path) for path in sorted(folder.glob("clusters-*.parquet"))],
                                columns=["largest"]).column("largest").to_pylist()
        notes.update(rounds=rounds, candidate_pairs=candidates, edges=edges,
                     clusters=partitions.total(folder, "clusters", "clusters"), largest_cluster=max(largest))
        return f"SELECT {', '.join(DROP_COLUMNS)} FROM {partitions.results(folder, 'drops')}"


def near_signatures_task(number: int, folder: str, plan: partitions.PartitionPlan, config: NearDedupConfig,
                         parts: dict[str, str], cuts: dict[str, tuple[int, int]]) -> dict[str, int]:
    """The files of partition `number` of `sign` (by chunk), their content read from the
    parts, signed in batches of `batch_files`: their signatures are the result
    `signatures-K.parquet` (doc, tokens, signature) and go on by doc (`signed`, for the pairs'
    verification); their band keys go to the bucket partitions by (band, key). Both go on,
    with the files' ids, by ranges of id and key (`signature_cuts`) to the writer's tasks of
    the manifests minhash/ and minhash_bands/."""
    where = Path(folder)
    result = partitions.result_path(where, "signatures", number)
    bands = where / f"bands-{number:05d}.partial"
    with partitions.task_database(plan) as db:
        reader = db.sql(f"SELECT doc, unit, ordinal FROM {partitions.inputs(where, 'sign', number)} "
                        "ORDER BY unit, ordinal").to_arrow_reader(batch_size=config.batch_files)
        signature_schema, band_schema = (table.schema for table in signed_tables([], [], config))
        with pq.ParquetWriter(result.with_suffix(".partial"), signature_schema, compression="zstd") as signatures, \
                pq.ParquetWriter(bands, band_schema, compression="zstd") as keys:
            for rows in partitions.with_content(reader, parts):
                signed, banded = signed_tables([r["doc"] for r in rows], [r["content"] for r in rows], config)
                signatures.write_table(signed)
                keys.write_table(banded)
        partitions.shuffle(db, f"SELECT band, key, doc FROM read_parquet({sql_path(bands)})", "band, key", where,
                           "bands", plan, number)
        partitions.shuffle(db, f"SELECT doc, signature FROM read_parquet({sql_path(result.with_suffix('.partial'))})",
                           "doc", where, "signed", plan, number)
        ids = f"(SELECT doc, id FROM {partitions.inputs(where, 'sign', number)})"
        for name, query in ((SIGNATURES, f"""SELECT i.id, s.tokens, s.signature
                                             FROM read_parquet({sql_path(result.with_suffix('.partial'))}) s
                                             JOIN {ids} i USING (doc)"""),
                            (SIGNATURE_BANDS, f"""SELECT b.key, b.band, i.id FROM read_parquet({sql_path(bands)}) b
                                                  JOIN {ids} i USING (doc)""")):
            partitions.shuffle_by(db, query, _range_sql(name, cuts[name][1]), where, name, number,
                                  MANIFEST_ROWS[name][2])
    bands.unlink()
    os.replace(result.with_suffix(".partial"), result)  # last: its presence means done
    return {}


def near_buckets_task(number: int, folder: str, plan: partitions.PartitionPlan, cap: int) -> dict[str, int]:
    """Candidate pairs (a < b) of the buckets of partition `number`: every pair of a bucket of
    at most `cap` files; a bigger bucket (many copies of one file) gives a star on its smallest
    doc plus the chain of neighbours, so that no bucket costs more than linear pairs. Sent on
    by a's partition."""
    where = Path(folder)
    with partitions.task_database(plan) as db:
        db.execute(f"""CREATE TEMP TABLE buckets AS
            SELECT band, key, doc, count(*) OVER (PARTITION BY band, key) AS size,
                   row_number() OVER (PARTITION BY band, key ORDER BY doc) AS pos
            FROM {partitions.shuffled(where, 'bands', number)}
            QUALIFY size > 1""")
        pairs = partitions.shuffle(db, f"""SELECT DISTINCT a, b FROM (
                SELECT x.doc AS a, y.doc AS b
                FROM (SELECT * FROM buckets WHERE size <= {cap}) x
                JOIN (SELECT * FROM buckets WHERE size <= {cap}) y
                  ON x.band = y.band AND x.key = y.key AND x.pos < y.pos
                UNION ALL
                SELECT first_value(doc) OVER bucket, doc FROM buckets WHERE size > {cap}
                WINDOW bucket AS (PARTITION BY band, key ORDER BY pos) QUALIFY pos > 1
                UNION ALL
                SELECT lag(doc) OVER bucket, doc FROM buckets WHERE size > {cap}
                WINDOW bucket AS (PARTITION BY band, key ORDER BY pos) QUALIFY pos > 2)""",
                                   "a", where, "candidates", plan, number)
    partitions.write_counts(where, "buckets", number, {"pairs": pairs})
    return {"pairs": pairs}


def near_pairs_task(number: int, folder: str, plan: partitions.PartitionPlan) -> dict[str, int]:
    """The first half of verification: each distinct candidate pair whose a is in partition
    `number` takes a's signature along to b's partition."""
    where = Path(folder)
    with partitions.task_database(plan) as db:
        candidates = partitions.shuffle(db, f"""
            SELECT c.a, c.b, s.signature AS left_signature
            FROM (SELECT DISTINCT a, b FROM {partitions.shuffled(where, 'candidates', number)}) c
            JOIN {partitions.shuffled(where, 'signed', number)} s ON s.doc = c.a""",
                                        "b", where, "halves", plan, number)
    partitions.write_counts(where, "pairs", number, {"candidates": candidates})
    return {"candidates": candidates}


def near_edges_task(number: int, folder: str, plan: partitions.PartitionPlan,
                    config: NearDedupConfig) -> dict[str, int]:
    """The second half: the pairs whose b is in partition `number` meet b's signature; their
    estimated Jaccard is computed in batches of VERIFY_ROWS, those under the threshold left
    out when `verify` is on. The edges are the result `edges-K.parquet` (a, b, similarity),
    and go on both ways to the components (`links`, by node)."""
    where = Path(folder)
    result = partitions.result_path(where, "edges", number)
    partial = result.with_suffix(".partial")
    schema = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("similarity", pa.float32())])
    with partitions.task_database(plan) as db:
        reader = db.sql(f"""SELECT h.a, h.b, h.left_signature, s.signature
                            FROM {partitions.shuffled(where, 'halves', number)} h
                            JOIN {partitions.shuffled(where, 'signed', number)} s ON s.doc = h.b"""
                         ).to_arrow_reader(batch_size=VERIFY_ROWS)
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            for batch in reader:
                left, right = (batch.column(i).flatten().to_numpy().reshape(-1, config.num_perm) for i in (2, 3))
                similarity = minhash.jaccard_estimate(left, right).astype(np.float32)
                keep = similarity >= config.threshold if config.verify else np.ones(len(similarity), dtype=bool)
                writer.write_table(pa.table([batch.column(0).filter(keep), batch.column(1).filter(keep),
                                             pa.array(similarity[keep])], schema=schema))
        edges = f"read_parquet({sql_path(partial)})"
        partitions.shuffle(db, f"SELECT a AS x, b AS y FROM {edges} UNION ALL SELECT b, a FROM {edges}", "x", where,
                           "links", plan, number)
    os.replace(partial, result)
    return {}


def near_members_task(number: int, folder: str, plan: partitions.PartitionPlan, rounds: int) -> dict[str, int]:
    """The files of doc partition `number` that are in a cluster, with what the keep order
    needs, sent on by their label (the cluster's smallest doc)."""
    where = Path(folder)
    with partitions.task_database(plan) as db:
        members = partitions.shuffle(db, f"""
            SELECT d.unit, d.ordinal, d.id, d.repo, d.path, d.stars, l.label
            FROM {partitions.component_labels(where, rounds, number)} l
            JOIN {partitions.inputs(where, 'docs', number)} d ON d.doc = l.node""", "label", where, "members", plan,
                                     number)
    partitions.write_counts(where, "members", number, {"members": members})
    return {"members": members}


def near_drops_task(number: int, folder: str, plan: partitions.PartitionPlan) -> dict[str, int]:
    """The clusters of label partition `number`: the file first in KEEP_ORDER stays, the others
    are its near duplicates (the result `drops-K.parquet`); their count and largest size are
    `clusters-K.parquet`."""
    where = Path(folder)
    members = partitions.shuffled(where, "members", number)
    with partitions.task_database(plan) as db:
        ((clusters, largest),) = db.sql(f"""SELECT count(*), coalesce(max(size), 0)
                                            FROM (SELECT count(*) AS size FROM {members} GROUP BY label)""").fetchall()
        partitions.write_counts(where, "clusters", number, {"clusters": clusters, "largest": largest})
        dropped = partitions.write_result(db, f"""
            SELECT unit, ordinal, '{NEAR_DUPLICATE}' AS reason, NULL::VARCHAR AS detail,
                   first_value(id) OVER cluster AS dup_of
            FROM {members}
            WINDOW cluster AS (PARTITION BY label ORDER BY {KEEP_ORDER})
            QUALIFY row_number() OVER cluster > 1""", where, "drops", number)
    return {"dropped": dropped}


def signature_settings(config: NearDedupConfig) -> dict[str, Any]:
    """What a reader of the written signatures needs to sign a file the same way."""
    config = config.resolved()
    return {"settings": config.name, "threshold": config.threshold, "num_perm": config.num_perm,
            "shingle_size": config.shingle_size, "bands": config.bands, "rows": config.rows, "seed": config.seed,
            "min_tokens": config.min_tokens}


def signature_cuts(files: int, bands: int, partitions_count: int) -> dict[str, tuple[int, int]]:
    """How minhash/ and minhash_bands/ are cut, for `files` entering near dedup: (k, j) of
    each. The parts are 16^k ranges of the sort key (the id's first k hex digits; the key's
    top 4k bits, as unsigned), k the fewest that leave a part at most SIGNATURE_PART_ROWS rows
    on average if every file were signed: the data alone decides them. The writing is cut
    coarser, into 16^j tasks of 16^(k-j) consecutive parts each (j ≤ k, 16^j ≤ the partitions),
    so that a task takes a large share of each signing task's file instead of a few rows of
    it; j shapes the work, never the bytes."""
    cuts = {}
    for name, rows in ((SIGNATURES, files), (SIGNATURE_BANDS, files * bands)):
        digits = _hex_digits(rows)
        group_digits = 0
        while group_digits < digits and 16 ** (group_digits + 1) <= partitions_count:
            group_digits += 1
        cuts[name] = (digits, group_digits)
    return cuts


def _range_sql(name: str, digits: int) -> str:
    """The SQL of a row's range at `digits` hex digits of its sort key (0 to 16^digits - 1)."""
    if not digits:
        return "0::BIGINT"
    if name == SIGNATURES:
        return f"('0x' || left(id, {digits}))::BIGINT"
    return f"((key::HUGEINT + 9223372036854775808) >> {64 - 4 * digits})::BIGINT"


def write_signatures(db: Any, context: CorpusContext, manifest: Path, config: NearDedupConfig) -> None:
    """OUT/manifest/minhash/ (id, tokens, signature) and minhash_bands/ (key, band, id) of every
    file near dedup signed, their settings in each part's metadata under `near_dedup`; nothing
    is written when near dedup is off. The signing tasks sent their rows on by ranges
    (`signature_cuts`); a task per range sorts its rows and writes its parts in exact row
    groups. Nothing of them passes through the driver."""
    if not config.enabled:
        return
    settings = signature_settings(config)
    schemas = signature_schemas(settings)
    for name in schemas:
        (manifest / name).mkdir(parents=True, exist_ok=True)
    folder = context.scratch / NearDedup.name
    signed = sum(pq.read_metadata(path).num_rows for path in folder.glob("signatures-*.parquet"))
    if not signed:  # nothing was kept or signed: one empty part each
        for name, table_schema in schemas.items():
            pq.write_table(table_schema.empty_table(), manifest / name / _part(0), compression="zstd")
        return
    cuts = {name: tuple(cut) for name, cut in json.loads((folder / CUTS).read_text()).items()}
    work = [(name, group) for name in schemas for group in range(16 ** cuts[name][1])]
    written = dict.fromkeys(schemas, 0)
    context.executor.map(write_signature_parts, work, (str(folder), context.partitions, str(manifest), schemas, cuts),
                         lambda item, rows: written.__setitem__(item[0], written[item[0]] + rows))
    if written != {SIGNATURES: signed, SIGNATURE_BANDS: signed * settings["bands"]}:
        raise RuntimeError(f"near dedup's signature manifests hold {written} rows of {signed} signed files")


def signature_schemas(settings: dict[str, Any]) -> dict[str, pa.Schema]:
    """The schemas of minhash/ and minhash_bands/, with near dedup's `settings` (what a reader
    needs to sign a text the same way) in their metadata."""
    metadata = {b"near_dedup": json.dumps(settings, sort_keys=True).encode()}
    return {
        SIGNATURES: pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("tokens", pa.int32()),
                               pa.field("signature", pa.list_(pa.uint32(), settings["num_perm"]))], metadata=metadata),
        SIGNATURE_BANDS: pa.schema([pa.field("key", pa.int64()), pa.field("band", pa.int16()),
                                    pa.field("id", pa.string(), nullable=False)], metadata=metadata)}


def write_signature_parts(item: tuple[str, int], folder: str, plan: partitions.PartitionPlan, manifest: str,
                          schemas: dict[str, pa.Schema], cuts: dict[str, tuple[int, int]]) -> int:
    """The parts of minhash/ or minhash_bands/ in range `group` (`item`: the name and the
    group): its rows from every signing task, sorted, each part in its file (an empty one
    where a range holds no row); returns the rows written."""
    name, group = item
    digits, group_digits = cuts[name]
    per_group = 16 ** (digits - group_digits)
    order, rows, _ = MANIFEST_ROWS[name]
    columns = schemas[name].names
    written, done = 0, set()
    with partitions.task_database(plan) as db:
        reader = db.sql(f"""SELECT *, {_range_sql(name, digits)} AS range
                            FROM {partitions.shuffled(Path(folder), name, group)} ORDER BY {order}"""
                        ).to_arrow_reader(batch_size=rows)

        def runs() -> Iterator[tuple[int, pa.RecordBatch]]:  # (part, a run of its rows), in order
            for batch in reader:
                ranges = batch.column("range").to_numpy()
                edges = [0, *(np.flatnonzero(np.diff(ranges)) + 1).tolist(), len(ranges)]
                for start, end in itertools.pairwise(edges):
                    yield int(ranges[start]), batch.slice(start, end - start).select(columns)

        for number, pieces in itertools.groupby(runs(), key=lambda run: run[0]):
            written += _write_in_groups((piece for _, piece in pieces), Path(manifest) / name / _part(number),
                                        schemas[name], rows)
            done.add(number)
    for empty in set(range(group * per_group, (group + 1) * per_group)) - done:  # a range with no row
        pq.write_table(schemas[name].empty_table(), Path(manifest) / name / _part(empty), compression="zstd")
    return written


def _part(number: int) -> str:
    return part_name(number, ".parquet")


def _hex_digits(rows: int) -> int:
    """The fewest hex digits k that cut `rows` into 16^k parts of at most SIGNATURE_PART_ROWS on average."""
    digits = 0
    while rows > SIGNATURE_PART_ROWS * 16 ** digits:
        digits += 1
    return digits


def signature_parts(manifest: Path) -> tuple[list[Path], list[Path]] | None:
    """The parts of the build's minhash/ and minhash_bands/ in order (a build from before
    parts: its minhash.parquet and minhash_bands.parquet); None when it kept neither."""
    signatures, bands = (parts_or_before(manifest / name, ".parquet", manifest / f"{name}.parquet")
                         for name in (SIGNATURES, SIGNATURE_BANDS))
    return (signatures, bands) if signatures and bands else None


def _write_in_groups(reader: Any, path: Path, schema: pa.Schema, group_rows: int) -> int:
    """Stream sorted rows into `path` in row groups of exactly `group_rows` (the last one
    less), so that the bytes depend on the rows only, never on how DuckDB batched them;
    returns the rows."""
    pending = schema.empty_table()
    written = 0
    with pq.ParquetWriter(path.with_suffix(".tmp"), schema, compression="zstd") as writer:
        for batch in reader:
            pending = pa.concat_tables([pending, pa.Table.from_batches([batch]).cast(schema)])
            while pending.num_rows >= group_rows:
                writer.write_table(pending.slice(0, group_rows), row_group_size=group_rows)
                pending = pending.slice(group_rows)
                written += group_rows
        if pending.num_rows:
            writer.write_table(pending, row_group_size=group_rows)
            written += pending.num_rows
    os.replace(path.with_suffix(".tmp"), path)
    return written
