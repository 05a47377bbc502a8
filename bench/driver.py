"""Benchmark: the driver's passes over every kept file, the part of a build that does not
grow with the cluster (docs/ARCHITECTURE.md, "At The Stack's scale").

    .venv/bin/python bench/driver.py [--files 10000000] [--in-situ 5000000] [--signed 1000000] [--repeat 5]

1. The shard writer's placement: `next_fit` (running sums over windows, numpy) against the
   rule applied one file at a time in Python (what the driver ran before), on the same files
   in the same process. Sizes drawn from a log-normal law near bench/e2e.py's kept files
   (median ~2.5 KB, a long tail), token counts ~ size / 3.5, the default ShardConfig (256 MB,
   100,000 rows, 64 M tokens), tokenized, in batches of PLACEMENT_BATCH files as the driver
   streams them. Files per second per core (process CPU time, median of --repeat) of each,
   and their ratio; both must place every file in the same shard and row.
2. In situ, on --in-situ synthetic files in the driver's DuckDB (its default threads): the
   whole placement pass (`ShardWriter.place`: DuckDB's sort of the keys, the batches,
   `next_fit`, placement.parquet) next to its DuckDB query alone (read in batches, nothing
   done with them), and the files manifest: the driver's part (`scatter_manifest_parts`: the
   cut into parts and the scatter of every row, DuckDB) and the parts' tasks
   (`write_files_part`: each part sorted, hashed and encoded in exact row groups, run here
   one after another, each on a one-thread DuckDB as a Ray task has), against the one file
   the driver wrote before (`write_files_manifest` then: the same function over every row on
   the driver). Wall µs per file, median of --repeat. The queries scale with the driver's
   cores; pyarrow's encoding and the hashing run in one thread.
3. In situ, near dedup's signatures (--signed synthetic signed files: 256 permutations,
   25 bands): what the signing tasks add (their rows sent on to the parts of minhash/ and
   minhash_bands/ by key range: `shuffle_by`, here as one task on one thread) and the
   writing tasks (`write_signature_parts`, one after another, as with 256 partitions),
   against the two files the driver wrote before (each sorted and encoded whole:
   `_write_in_groups`, on the driver's threads). The
   driver itself now does nothing per file here. Wall µs per signed file, median of --repeat.

Into bench/results/driver.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from corpus_core import partitions, schema
from manifests.writer import manifest_rows, scatter_manifest_parts, write_files_part
from stages import dedup
from stages.shards import PLACEMENT_BATCH, Cursor, ShardConfig, ShardWriter, next_fit

RESULTS = Path(__file__).resolve().parent / "results" / "driver.json"


def one_at_a_time(sizes: list[int], counts: list[int], config: ShardConfig) -> tuple[list[int], list[int]]:
    shard = row = held_bytes = held_tokens = 0
    shards, rows = [], []
    for size, count in zip(sizes, counts, strict=True):
        if row and (held_bytes + size > config.target_bytes or row >= config.max_rows
                    or held_tokens + count > config.target_tokens):
            shard, row, held_bytes, held_tokens = shard + 1, 0, 0, 0
        shards.append(shard)
        rows.append(row)
        row, held_bytes, held_tokens = row + 1, held_bytes + size, held_tokens + count
    return shards, rows


def synthetic_files(db: duckdb.DuckDBPyConnection, count: int) -> None:
    """Tables `files` (every column of files.parquet but shard and row, strings of realistic
    length), `tokens` and, for the manifest, `placement`, as the driver's views hold them."""
    values = {"id": "md5(i::VARCHAR)", "repo": "'github.com/owner' || (i % 20000) || '/repo' || (i % 50000)",
              "path": "'src/pkg' || (i % 97) || '/module_' || i || '.py'", "decision": "'kept'",
              "size": "greatest(1, exp(ln(2500) + 1.3 * sqrt(-2 * ln(random() + 1e-12)) * cos(6.283 * random())))"
                                      "::BIGINT"}  # log-normal, by Box-Muller
    columns = []
    for field in schema.FILES:
        if field.name in ("shard", "row"):
            continue
        kind = str(field.type)
        value = values.get(field.name) or (
            f"sha256(i::VARCHAR || '{field.name}')" if field.name.endswith("sha256")
            else "'Python'" if field.name.startswith("language") and kind == "string"
            else "CASE WHEN i % 7 = 0 THEN 'MIT' END" if kind == "string"
            else "i % 5 = 0" if kind == "bool"
            else "['Jane Doe ' || (i % 300)]" if kind.startswith("list")
            else "(i % 1000) / 1000.0" if kind in ("float", "double") else "(i % 5000)")
        columns.append(f"{value} AS {field.name}")
    db.execute(f"CREATE TABLE files AS SELECT 'unit' || (i % 5000) AS unit, i AS ordinal, {', '.join(columns)} "
               f"FROM range({count}) t(i)")
    db.execute("CREATE TABLE tokens AS SELECT unit, ordinal, (size / 3.5)::BIGINT AS num_tokens FROM files")
    db.execute("""CREATE TABLE repos AS SELECT DISTINCT repo, 'dir:' || repo AS source, 'directory' AS kind,
                  NULL AS url, NULL AS commit, NULL AS sha256, 'MIT' AS license, 'LICENSE' AS license_source,
                  '[]' AS license_evidence, ['Jane Doe'] AS copyright_holders FROM files""")


def drained(relation: duckdb.DuckDBPyRelation) -> float:
    """Seconds to run a query and read its result as the driver does, in batches, doing nothing else."""
    started = time.perf_counter()
    for _ in relation.to_arrow_reader(batch_size=PLACEMENT_BATCH):
        pass
    return time.perf_counter() - started


def measure_in_situ(count: int, repeat: int) -> dict[str, float]:
    """Wall µs per file of the placement pass and its DuckDB query alone, and of the files
    manifest: the driver's cut and scatter, the parts' tasks, and the one file written on the
    driver as before."""
    db = duckdb.connect()
    synthetic_files(db, count)
    writer = ShardWriter(ShardConfig())
    seconds: dict[str, list[float]] = {"placement": [], "placement_query": [], "manifest_driver": [],
                                       "manifest_tasks": [], "one_file_on_the_driver": []}
    parts = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as scratch:
            seconds["placement_query"].append(drained(writer.in_shard_order(db, tokenized=True)))
            started = time.perf_counter()
            writer.place(db, Path(scratch), tokenized=True)
            seconds["placement"].append(time.perf_counter() - started)
            started = time.perf_counter()
            write_files_part(db, f"({manifest_rows()})", Path(scratch) / "files.parquet")
            seconds["one_file_on_the_driver"].append(time.perf_counter() - started)
            folder = Path(scratch) / "manifest"
            folder.mkdir()
            started = time.perf_counter()
            parts = scatter_manifest_parts(db, folder)
            seconds["manifest_driver"].append(time.perf_counter() - started)
            plan = partitions.PartitionPlan(parts, spill=scratch)
            started = time.perf_counter()
            for number in range(parts):
                with partitions.task_database(plan) as task:
                    write_files_part(task, f"(SELECT * EXCLUDE (manifest_part) FROM "
                                           f"{partitions.inputs(folder, 'files', number)})",
                                     Path(scratch) / f"part-{number}.parquet")
            seconds["manifest_tasks"].append(time.perf_counter() - started)
    return {"files": count, "threads": db.sql("SELECT current_setting('threads')").fetchall()[0][0],
            "manifest_parts": parts,
            **{f"{name}_us_per_file": round(statistics.median(values) / count * 1e6, 3)
               for name, values in seconds.items()}}


def measure_signatures(count: int, repeat: int) -> dict[str, float]:
    """Wall µs per signed file of near dedup's signature manifests: the signing tasks' extra
    shuffle, the parts' tasks, and the two files written whole on the driver as before."""
    db = duckdb.connect()
    db.execute(f"""CREATE TABLE signatures AS SELECT md5(i::VARCHAR)[:16] AS id, (i % 3000)::INTEGER AS tokens,
                       list_transform(range(256), lambda x: (hash(i, x) % 4294967295)::UINTEGER) AS signature
                   FROM range({count}) t(i)""")
    db.execute(f"""CREATE TABLE bands AS SELECT (hash(i, b) >> 1)::BIGINT * (CASE WHEN i % 2 = 0 THEN 1 ELSE -1 END)
                       AS key, b::SMALLINT AS band, md5(i::VARCHAR)[:16] AS id
                   FROM range({count}) t(i), range(25) u(b)""")
    schemas = dedup.signature_schemas({"num_perm": 256, "bands": 25})
    cuts = dedup.signature_cuts(count, 25, 256)  # as with 256 partitions: the writing in 16^j groups
    tables = {dedup.SIGNATURES: "signatures", dedup.SIGNATURE_BANDS: "bands"}
    seconds: dict[str, list[float]] = {"signing_tasks_shuffle": [], "part_tasks": [], "two_files_on_the_driver": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as scratch:
            folder, manifest = Path(scratch) / "near_dedup", Path(scratch) / "manifest"
            for name in schemas:
                (manifest / name).mkdir(parents=True)
            started = time.perf_counter()
            for name, table in tables.items():
                order, group, _ = dedup.MANIFEST_ROWS[name]
                dedup._write_in_groups(db.sql(f"SELECT * FROM {table} ORDER BY {order}").to_arrow_reader(
                    batch_size=group), Path(scratch) / f"{name}.parquet", schemas[name], group)
            seconds["two_files_on_the_driver"].append(time.perf_counter() - started)
            plan = partitions.PartitionPlan(1, spill=scratch)
            with partitions.task_database(plan) as task:
                task.register("signatures", db.sql("SELECT * FROM signatures").to_arrow_table())
                task.register("bands", db.sql("SELECT * FROM bands").to_arrow_table())
                started = time.perf_counter()
                for name, table in tables.items():
                    partitions.shuffle_by(task, f"SELECT * FROM {table}", dedup._range_sql(name, cuts[name][1]),
                                          folder, name, 0, dedup.MANIFEST_ROWS[name][2])
                seconds["signing_tasks_shuffle"].append(time.perf_counter() - started)
            started = time.perf_counter()
            for name in schemas:
                for group in range(16 ** cuts[name][1]):
                    dedup.write_signature_parts((name, group), str(folder), plan, str(manifest), schemas, cuts)
            seconds["part_tasks"].append(time.perf_counter() - started)
    return {"signed": count, "parts": {name: 16 ** cut[0] for name, cut in cuts.items()},
            "writing_tasks": {name: 16 ** cut[1] for name, cut in cuts.items()},
            **{f"{name}_us_per_signed_file": round(statistics.median(values) / count * 1e6, 3)
               for name, values in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000_000)
    parser.add_argument("--in-situ", type=int, default=5_000_000, help="files of the in-situ passes; 0: skip")
    parser.add_argument("--signed", type=int, default=1_000_000, help="signed files of the signatures' pass; 0: skip")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    sizes = np.maximum(1, rng.lognormal(np.log(2500), 1.3, args.files)).astype(np.int64)
    counts = (sizes / 3.5).astype(np.int64)
    config = ShardConfig()
    batches = [(sizes[i:i + PLACEMENT_BATCH], counts[i:i + PLACEMENT_BATCH])
               for i in range(0, args.files, PLACEMENT_BATCH)]

    def vectorized() -> tuple[np.ndarray, np.ndarray]:
        cursor = Cursor()
        placed = [next_fit(s, c, cursor, config, True) for s, c in batches]
        return np.concatenate([p[0] for p in placed]), np.concatenate([p[1] for p in placed])

    def looped() -> tuple[np.ndarray, np.ndarray]:
        # the driver converted each batch's columns to Python lists before its loop, as here
        shards, rows = one_at_a_time(sizes.tolist(), counts.tolist(), config)
        return np.array(shards), np.array(rows)

    timings: dict[str, list[float]] = {"next_fit": [], "one_at_a_time": []}
    results = {}
    for _ in range(args.repeat):
        for name, run in (("next_fit", vectorized), ("one_at_a_time", looped)):
            started = time.process_time()
            results[name] = run()
            timings[name].append(time.process_time() - started)
    in_situ = measure_in_situ(args.in_situ, args.repeat) if args.in_situ else None
    signatures = measure_signatures(args.signed, args.repeat) if args.signed else None
    same = all(np.array_equal(a, b) for a, b in zip(results["next_fit"], results["one_at_a_time"], strict=True))
    if not same:
        raise SystemExit("next_fit placed files elsewhere than the rule one file at a time")
    median = {name: statistics.median(values) for name, values in timings.items()}
    report = {
        "files": args.files, "repeat": args.repeat, "seed": args.seed,
        "shards": int(results["next_fit"][0][-1]) + 1,
        "seconds_median": {name: round(value, 3) for name, value in median.items()},
        "files_per_s_per_core": {name: round(args.files / value) for name, value in median.items()},
        "ratio": round(median["one_at_a_time"] / median["next_fit"], 1),
        "same_placement": same,
        "in_situ": in_situ,
        "signatures": signatures,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
