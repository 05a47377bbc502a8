"""Benchmark: the corpus stages at scale, on a 3-node local Ray cluster (tests/cluster.py).

    .venv/bin/python bench/scale.py [--docs 1000000] [--seed 0] [--keep DIR]

Never in CI: 1 million documents by default (the README's figure is 5 million, once; check
the disk first: the signatures alone are ~1 KB a document). The input is synthetic, made
once per (--docs, --seed) into .cache/bench-scale/ and reused: Parquet dataset parts of
PART_ROWS rows (repo, path, content, license, stars), each document ~1 KB of Python-like
code over a vocabulary of made-up words. A share of them are near-duplicate clusters with
sizes from a heavy-tailed (Zipf) law, a few of thousands and many of 2 or 3: an original,
copies with a few percent of their tokens changed, and some exact copies.

Synthetic documents skip the expensive per-file work on purpose (no license words, so
ScanCode never runs: the license is the dataset row's declared one; comments are not lexed;
no PII, decontamination or tokenizer): docs/ARCHITECTURE.md ("At The Stack's scale")
combines these figures with bench/e2e.py's per-file rates.

The cluster: a head with no CPUs and WORKERS worker nodes of one CPU each, whose Python
lacks the project; the build's driver runs outside it, with its DuckDB capped by
--driver-memory. Reported (bench/results/scale.json):
  wall_seconds, stages       run.json's wall time, and each stage's seconds, files, drops
  driver_peak_rss_mb         run.json (the driver's own high-water mark)
  memory                     the driver and each node, sampled every second from /proc (a node is
                             the session of its `ray start`): the peak of the sum of its processes'
                             PSS (shared object-store pages counted once) and of its largest
                             process's RSS; the tasks each worker node ran (run.json)
  disk                       peaks of _work/ in all, of what DuckDB spilled into it (the driver's in
                             duckdb/, the partition tasks' in duckdb-tasks/), of Ray's spilled objects; the
                             finished output's size
  near_dedup                 the stage's notes (rounds, edges, clusters, ...)
  license_cache_entries      texts ScanCode read (its cache starts empty): 0 when it never ran
  accuracy.recall            planted duplicates (all members but one per cluster) dropped as
                             exact_duplicate/near_duplicate with dup_of inside their own cluster;
                             also per cluster size, and for near copies whose true 5-shingle
                             Jaccard with their original is at or above 0.7 and below it (a copy
                             that its cluster keeps does not count)
  accuracy.precision         of all duplicate drops, the share that are such planted ones
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from report import publish  # bench/report.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/cluster.py
from tests.cluster import local_cluster  # noqa: E402

CACHE = ROOT / ".cache" / "bench-scale"
FORMAT = 1  # of the cached corpus: bump when the generator changes
# rows per dataset part, and execution.chunk_files: a part is one task. One big dataset file cut into
# chunks would be read quadratically: each chunk's task parses every row before its window
PART_ROWS = 5000
FILES_PER_REPO = 20
PLANTED_SHARE = 0.2  # of the documents, in near-duplicate clusters
ZIPF_EXPONENT = 2.1  # cluster sizes: P(size - 1 = k) ~ k^-2.1
EXACT_SHARE = 0.1  # of a cluster's copies: byte-identical to the original
CHANGED = (0.01, 0.04)  # share of a copy's slots (identifiers, numbers) replaced: a uniform draw per copy
SHINGLE = 5  # tokens per shingle, as near dedup's default: the planted copies' true Jaccard is measured with it
THRESHOLD = 0.7  # near dedup's default: copies at or above it are the ones it must find
LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause")
WORKERS = 2
SIZE_BUCKETS = ((2, 2), (3, 3), (4, 9), (10, 99), (100, 999), (1000, None))
BYTES_NEEDED_PER_DOC = 10_000  # measured: _work/ peaks at 6.4 KB a document, the output is 3 KB
MB = 1e6

SYLLABLES = ("ba", "co", "de", "fi", "gu", "ha", "jo", "ki", "lu", "ma", "ne", "po", "ra", "si", "tu", "ve",
             "wo", "xa", "ze", "qui")
WORDS = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES]  # 8000 made-up identifiers
# (line, slots); a slot is an identifier or a number
IMPORTS = (("import {}", 1), ("from {}.{} import {}", 3))
HEADS = (("def {}({}, {}):", 3), ("def {}(self, {}):", 2), ("class {}({}):", 2))
BODY = (("    {} = {}({}, {})", 4), ("    if {} > {}:", 2), ("        return {}.{}({})", 3),
        ("    for {} in range({}):", 2), ("        {}[{}] = {} + {}", 4), ("    {} = [{} for {} in {}]", 4),
        ("    return {}", 1), ("    {} = {}", 2), ("    {}.{}({}, {}={})", 5))


# --- the synthetic corpus ------------------------------------------------------------------


class Document:
    """A document as its lines' templates and the values of their slots: a copy changes slots."""

    def __init__(self, rng: random.Random):
        self.lines: list[tuple[str, int]] = [rng.choice(IMPORTS) for _ in range(rng.randint(1, 3))]
        target = rng.randint(850, 1550)
        size = 0
        while size < target:
            block = [rng.choice(HEADS)] + [rng.choice(BODY) for _ in range(rng.randint(3, 8))] + [("", 0)]
            self.lines += block
            size += sum(len(line) + 8 * slots for line, slots in block)
        self.slots = [slot(rng) for _ in range(sum(n for _, n in self.lines))]

    def text(self, slots: list[str] | None = None) -> str:
        values = iter(slots or self.slots)
        return "\n".join(line.format(*(next(values) for _ in range(n))) for line, n in self.lines) + "\n"

    def copy(self, rng: random.Random, share: float) -> str:
        """A copy with `share` of its slots replaced (one at least)."""
        slots = list(self.slots)
        for index in rng.sample(range(len(slots)), max(1, round(share * len(slots)))):
            slots[index] = slot(rng)
        return self.text(slots)


def jaccard(a: str, b: str) -> float:
    """Of the two texts' sets of SHINGLE-token shingles (tokens: runs of word characters)."""
    def shingles(text: str) -> set[tuple[str, ...]]:
        tokens = re.findall(r"\w+", text)
        return {tuple(tokens[i:i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}
    first, second = shingles(a), shingles(b)
    return len(first & second) / len(first | second)


def slot(rng: random.Random) -> str:
    return str(rng.randrange(10_000)) if rng.random() < 0.15 else rng.choice(WORDS)


def cluster_sizes(docs: int, rng: np.random.Generator) -> list[int]:
    """Sizes (>= 2) from a Zipf law, capped at docs / 200, until PLANTED_SHARE of `docs` is planted."""
    cap = max(2, docs // 200)
    sizes: list[int] = []
    planted, target = 0, int(docs * PLANTED_SHARE)
    while planted < target:
        size = min(int(rng.zipf(ZIPF_EXPONENT)) + 1, cap, max(target - planted, 2))
        sizes.append(size)
        planted += size
    return sizes


def corpus(docs: int, seed: int) -> Path:
    """The dataset parts and planted.parquet for (docs, seed), made once."""
    folder = CACHE / f"docs{docs}-seed{seed}-v{FORMAT}"
    if (folder / "dataset.json").exists():
        return folder
    check_disk(docs, dataset_only=True)
    started = time.perf_counter()
    layout = np.random.default_rng(seed)
    sizes = cluster_sizes(docs, layout)
    cluster_of = np.full(docs, -1, dtype=np.int64)
    role = np.zeros(docs, dtype=np.int8)  # 0 unique, 1 original, 2 copy, 3 exact copy
    position = 0
    for number, size in enumerate(sizes):
        cluster_of[position:position + size] = number
        role[position] = 1
        role[position + 1:position + size] = np.where(layout.random(size - 1) < EXACT_SHARE, 3, 2)
        position += size
    order = layout.permutation(docs)
    cluster_of, role = cluster_of[order], role[order]
    repos = (docs + FILES_PER_REPO - 1) // FILES_PER_REPO
    stars = layout.zipf(1.5, repos) - 1
    licenses = layout.integers(0, len(LICENSES), repos)

    rng = random.Random(seed)
    originals: dict[int, Document] = {}
    left = dict(enumerate(sizes))  # members of each cluster not yet written: its original is forgotten at 0
    planted: dict[str, list] = {"repo": [], "path": [], "cluster": [], "role": [], "jaccard": []}
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for start in range(0, docs, PART_ROWS):
        rows: dict[str, list] = {"repo": [], "path": [], "content": [], "license": [], "stars": []}
        for index in range(start, min(start + PART_ROWS, docs)):
            repo, path = f"synth/r{index // FILES_PER_REPO:06d}", f"pkg/m{index:07d}.py"
            number = int(cluster_of[index])
            if number < 0:
                content = Document(rng).text()
            else:
                original = originals.get(number) or originals.setdefault(number, Document(rng))
                content = original.text()
                similar = 1.0
                if role[index] == 2:
                    content = original.copy(rng, rng.uniform(*CHANGED))
                    similar = jaccard(content, original.text())
                left[number] -= 1
                if not left[number]:
                    del originals[number]
                for key, value in zip(planted, (repo, path, number, ("original", "copy", "exact")[role[index] - 1],
                                                round(similar, 4)), strict=True):
                    planted[key].append(value)
            rows["repo"].append(repo)
            rows["path"].append(path)
            rows["content"].append(content)
            rows["license"].append(LICENSES[licenses[index // FILES_PER_REPO]])
            rows["stars"].append(int(stars[index // FILES_PER_REPO]))
        pq.write_table(pa.table(rows), partial / f"part-{start // PART_ROWS:05d}.parquet", compression="zstd")
    pq.write_table(pa.table(planted), partial / "planted.parquet")
    summary = {"docs": docs, "seed": seed, "parts": (docs + PART_ROWS - 1) // PART_ROWS,
               "mb": round(sum(p.stat().st_size for p in partial.glob("part-*.parquet")) / MB, 1),
               "generate_seconds": round(time.perf_counter() - started, 1), **planted_summary(sizes, planted)}
    (partial / "dataset.json").write_text(json.dumps(summary, indent=2) + "\n")
    partial.rename(folder)
    return folder


def planted_summary(sizes: list[int], planted: dict[str, list]) -> dict:
    similar = [j for j, r in zip(planted["jaccard"], planted["role"], strict=True) if r == "copy"]
    return {"clusters": len(sizes), "clustered_docs": sum(sizes), "duplicates": sum(sizes) - len(sizes),
            "largest_cluster": max(sizes), "exact_copies": planted["role"].count("exact"),
            "near_copies": len(similar), "near_copies_under_threshold": sum(1 for j in similar if j < THRESHOLD),
            "near_copies_jaccard": {q: round(float(np.quantile(similar, float(q))), 3) for q in ("0.05", "0.5", "0.95")}
            if similar else None,
            "clusters_by_size": {bucket_name(b): sum(1 for s in sizes if in_bucket(s, b)) for b in SIZE_BUCKETS}}


def bucket_name(bucket: tuple[int, int | None]) -> str:
    low, high = bucket
    return str(low) if low == high else f"{low}+" if high is None else f"{low}-{high}"


def in_bucket(size: int, bucket: tuple[int, int | None]) -> bool:
    return size >= bucket[0] and (bucket[1] is None or size <= bucket[1])


def check_disk(docs: int, dataset_only: bool = False) -> None:
    needed = docs * (1_500 if dataset_only else BYTES_NEEDED_PER_DOC)
    CACHE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(CACHE).free
    if free < needed:
        raise SystemExit(f"{docs} documents need about {needed / 1e9:.1f} GB under {CACHE}; "
                         f"{free / 1e9:.1f} GB are free")


# --- measuring the build -------------------------------------------------------------------


def memory_by_session() -> dict[int, tuple[int, int]]:
    """Session id -> (sum of its processes' PSS, its largest process's RSS), in bytes."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            session = int(stat[stat.rindex(")") + 2:].split()[3])
            rollup = Path(entry.path, "smaps_rollup").read_text()
        except (OSError, ValueError):
            continue  # gone, or not ours to read
        fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in rollup.splitlines()[1:]}
        pss, rss = found.get(session, (0, 0))
        found[session] = (pss + fields.get("Pss", 0), max(rss, fields.get("Rss", 0)))
    return found


def tree_bytes(root: Path, pick=lambda parts: True) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        if pick(Path(folder).relative_to(root).parts):
            for name in files:
                try:
                    total += os.stat(os.path.join(folder, name)).st_size
                except OSError:
                    pass  # deleted while we looked
    return total


def is_duckdb_temp(parts: tuple[str, ...]) -> bool:
    """The driver's `_work/<fp>/duckdb/`."""
    return "duckdb" in parts


def is_task_spill(parts: tuple[str, ...]) -> bool:
    """A partition task's DuckDB folder: `_work/<fp>/duckdb-tasks/` (corpus_core/partitions.py)."""
    return "duckdb-tasks" in parts


class Sampler(threading.Thread):
    """Peaks, sampled every second while the build runs: memory per session, disk under _work/ and Ray's spill."""

    def __init__(self, sessions: dict[str, int], work: Path, ray_temp: Path):
        super().__init__(daemon=True)
        self.sessions, self.work, self.ray_temp = sessions, work, ray_temp
        self.memory = {name: [0, 0] for name in sessions}
        self.disk = {"work_mb": 0, "duckdb_temp_mb": 0, "task_duckdb_temp_mb": 0, "ray_spilled_mb": 0}
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(1.0):
            by_session = memory_by_session()
            for name, session in self.sessions.items():
                pss, rss = by_session.get(session, (0, 0))
                self.memory[name] = [max(self.memory[name][0], pss), max(self.memory[name][1], rss)]
            sizes = {"work_mb": tree_bytes(self.work), "duckdb_temp_mb": tree_bytes(self.work, is_duckdb_temp),
                     "task_duckdb_temp_mb": tree_bytes(self.work, is_task_spill),
                     "ray_spilled_mb": tree_bytes(self.ray_temp, lambda parts: any("spill" in p for p in parts))}
            self.disk = {key: max(self.disk[key], round(value / MB, 1)) for key, value in sizes.items()}


def config_text(parts: list[Path], cache: Path, driver_memory: str, partition_memory: str) -> str:
    sources = ", ".join(json.dumps(str(p)) for p in parts)
    return f"""sources = [{sources}]
cache_dir = {json.dumps(str(cache))}
[language]
policy = false                # every language kept: synthetic code needs no list
[decontamination]
enabled = false
[comments]
max_bytes = 0                 # nothing lexed (no Pygments)
[pii]
enabled = false
[tokenize]
enabled = false
[execution]
local_below_bytes = 0
chunk_files = {PART_ROWS}     # a dataset part is one task
duckdb_memory_limit = {json.dumps(driver_memory)}
partition_memory_limit = {json.dumps(partition_memory)}
"""


def build(folder: Path, out: Path, driver_memory: str, partition_memory: str) -> tuple[dict, dict]:
    """One build on a fresh local cluster: run.json, and what the sampler saw."""
    scratch = out.parent
    driver_dir = scratch / "driver"  # outside the project: Ray puts the driver's folder on the workers' path
    driver_dir.mkdir()
    config = driver_dir / "config.toml"
    config.write_text(config_text(sorted(folder.glob("part-*.parquet")), scratch / "cache", driver_memory,
                                  partition_memory))
    with local_cluster(scratch / "cluster", driver_dir, workers=WORKERS) as cluster:
        command = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(config), "--out", str(out),
                   "--ray-address", cluster.address]
        started = time.perf_counter()
        driver = subprocess.Popen(command, env=cluster.env, cwd=driver_dir, start_new_session=True)
        sessions = {"driver": driver.pid, "head": cluster.processes[0].pid,
                    **{f"worker-{n}": p.pid for n, p in enumerate(cluster.processes[1:], 1)}}
        sampler = Sampler(sessions, out / "_work", cluster.temp)
        sampler.start()
        code = driver.wait()
        process_seconds = time.perf_counter() - started
        sampler.finished.set()
        sampler.join()
        workers = {f"worker-{n}": node for n, node in enumerate(cluster.workers, 1)}
    if code != 0:
        raise SystemExit(f"the build failed (exit {code}); its messages are above")
    run = json.loads((out / "manifest" / "run.json").read_text())
    scancode_texts = sum(1 for _ in (scratch / "cache" / "license-cache").glob("*/*.json"))  # a fresh cache
    disk = {**sampler.disk, "out_mb": round(tree_bytes(out, lambda parts: parts[:1] != ("_work",)) / MB, 1)}
    return run, {"process_seconds": round(process_seconds, 1), "memory": sampler.memory, "disk": disk,
                 "workers": workers, "license_cache_entries": scancode_texts}


# --- figures -------------------------------------------------------------------------------


def accuracy(out: Path, folder: Path) -> dict:
    """Recall and precision of the duplicate drops against the planted clusters."""
    db = duckdb.connect()
    db.execute(f"CREATE VIEW files AS SELECT id, repo, path, reason, dup_of FROM "
               f"read_parquet('{out / 'manifest' / 'files' / '*.parquet'}')")
    db.execute(f"CREATE VIEW planted AS SELECT * FROM read_parquet('{folder / 'planted.parquet'}')")
    db.execute("""CREATE TABLE judged AS
        SELECT f.id, f.reason, f.dup_of, p.cluster, p.role, p.jaccard, k.cluster AS kept_cluster,
               count(*) OVER (PARTITION BY p.cluster) AS size
        FROM files f LEFT JOIN planted p USING (repo, path)
             LEFT JOIN files kf ON kf.id = f.dup_of LEFT JOIN planted k ON k.repo = kf.repo AND k.path = kf.path""")
    dropped = "reason IN ('exact_duplicate', 'near_duplicate')"
    right = f"{dropped} AND cluster IS NOT NULL AND kept_cluster = cluster"
    hits, drops, duplicates, exact_hits = db.execute(
        f"SELECT count(*) FILTER ({right}), count(*) FILTER ({dropped}), "
        "count(*) FILTER (cluster IS NOT NULL) - count(DISTINCT cluster), "
        f"count(*) FILTER ({right} AND reason = 'exact_duplicate') FROM judged").fetchone()
    copies = {}
    for name, where in (("at_or_above_threshold", f"jaccard >= {THRESHOLD}"),
                        ("below_threshold", f"jaccard < {THRESHOLD}")):
        found, count = db.execute(  # a copy that others were dropped for is its cluster's kept file: no miss
            f"SELECT count(*) FILTER ({right}), count(*) FROM judged WHERE role = 'copy' AND {where} "
            f"AND id NOT IN (SELECT dup_of FROM judged WHERE {right})").fetchone()
        copies[name] = {"copies": count, "recall": round(found / count, 4) if count else None}
    by_size = {}
    for bucket in SIZE_BUCKETS:
        low, high = bucket
        where = f"size >= {low}" + (f" AND size <= {high}" if high is not None else "")
        found, clusters, members, whole = db.execute(
            f"SELECT count(*) FILTER ({right}), count(DISTINCT cluster), count(*), "
            f"(SELECT count(*) FROM (SELECT cluster FROM judged WHERE cluster IS NOT NULL AND {where} "
            f"GROUP BY cluster HAVING count(*) FILTER (NOT coalesce({right}, false)) = 1)) "
            f"FROM judged WHERE cluster IS NOT NULL AND {where}").fetchone()
        if clusters:
            by_size[bucket_name(bucket)] = {"clusters": clusters, "recall": round(found / (members - clusters), 4),
                                            "clusters_whole": round(whole / clusters, 4)}
    return {"recall": round(hits / duplicates, 4) if duplicates else None,
            "precision": round(hits / drops, 4) if drops else None,
            "planted_duplicates": duplicates, "found": hits, "found_exact": exact_hits, "duplicate_drops": drops,
            "false_drops": drops - hits, "recall_of_near_copies_by_true_jaccard": copies,
            "recall_by_cluster_size": by_size}


def figures(run: dict, sampled: dict, docs: int) -> dict:
    tasks = run["executor"]["tasks"]
    memory = {name: {"peak_pss_mb": round(pss / 2**20, 1), "peak_process_rss_mb": round(rss / 2**20, 1)}
             for name, (pss, rss) in sampled["memory"].items()}
    for name, node_id in sampled["workers"].items():
        memory[name]["tasks"] = tasks["nodes"].get(node_id, 0)
    near = next((s for s in run["stages"] if s["name"] == "near_dedup"), {})
    return {
        "wall_seconds": run["wall_seconds"], "process_seconds": sampled["process_seconds"],
        "docs_per_second": round(docs / run["wall_seconds"], 1), "mb_in": round(run["counts"]["bytes_in"] / MB, 1),
        "files_kept": run["counts"]["kept"], "dropped": run["counts"]["dropped"],
        "driver_peak_rss_mb": run["executor"]["driver_peak_rss_mb"],
        "task_peak_rss_mb": tasks["peak_rss_mb"], "task_cpu_seconds": tasks["cpu_seconds"], "tasks": tasks["tasks"],
        "memory": memory, "disk": sampled["disk"],
        "license_cache_entries": sampled["license_cache_entries"],  # ScanCode results cached: 0 when it never ran
        "near_dedup": near.get("notes", {}),
        "stages": {s["name"]: {"seconds": s["seconds"], "files_in": s["files_in"], "kept": s["kept"],
                               **({"dropped": s["dropped"]} if s.get("dropped") else {})} for s in run["stages"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="copy the build's manifest/ here (to look at its decisions)")
    parser.add_argument("--driver-memory", default="1GB", help="execution.duckdb_memory_limit of the driver")
    parser.add_argument("--partition-memory", default="1GB", help="execution.partition_memory_limit per task")
    args = parser.parse_args()
    if args.docs < PART_ROWS:
        raise SystemExit(f"--docs {args.docs}: at least {PART_ROWS} (one dataset part)")
    folder = corpus(args.docs, args.seed)
    dataset = json.loads((folder / "dataset.json").read_text())
    print(f"corpus: {folder} ({dataset['mb']} MB, {dataset['clusters']} planted clusters)", file=sys.stderr)
    check_disk(args.docs)
    with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as scratch:
        out = Path(scratch) / "out"
        run, sampled = build(folder, out, args.driver_memory, args.partition_memory)
        result = {"docs": args.docs, "seed": args.seed, "dataset": dataset,
                  "cluster": {"head_cpus": 0, "workers": WORKERS, "cpus_per_worker": 1,
                              "driver_memory_limit": args.driver_memory,
                              "partition_memory_limit": args.partition_memory,
                              "partitions": run["executor"]["partitions"]},
                  **figures(run, sampled, args.docs), "accuracy": accuracy(out, folder)}
        if args.keep:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(out / "manifest", args.keep)
    publish("scale", result)


if __name__ == "__main__":
    main()
