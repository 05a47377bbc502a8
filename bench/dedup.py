"""Benchmark: near dedup's accuracy and speed on real code with controlled mutations, and its
peak memory on a million small documents.

    .venv/bin/python bench/dedup.py [--config configs/default.toml] [--bases 600] [--repeat 3]
    .venv/bin/python bench/dedup.py --million [--docs 1000000]

The corpus: the programming-language files of the default sample (fetched into the cache
if needed) with at least 50 tokens, distinct by content, up to --bases of them; each gets
three mutated copies, every word token replaced by a random one with probability 0.02, 0.08
and 0.25 (so the copies span Jaccard ~0.9 down to ~0.3). Ground truth is the exact Jaccard
of the 5-token shingle sets, found for every pair at or over 0.5 by prefix filtering (an
exact all-pairs similarity join), so pairs no method reported are counted too.

Figures (all in this process, one core):
  accuracy   `corpus build` of the corpus with the default [near_dedup] settings, executor
             local: precision of the verified edges (exact Jaccard >= threshold), recall of
             the pairs >= 0.8 and >= threshold as edges and as cluster members;
  signatures MB/s per core of `stages.dedup.sign_batch` over the corpus (median of --repeat);
  stage      MB/s per core of the whole near_dedup stage (signatures, buckets, verification,
             components), from run.json, executor local;
  datasketch the straightforward alternative on the same files: one MinHash per file fed
             with `update` per shingle, `MinHashLSH.insert`, then `query` for every file and a
             union-find over the pairs; its MB/s per core and its pair precision/recall.
--million: a synthetic dataset of small documents (10% in near-duplicate families) through
a whole `corpus build` in this process (executor local, DuckDB capped at 4 GB), reporting
the process's peak RSS and the stage's figures.
MB are 10^6 bytes of file content.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasketch import MinHash, MinHashLSH
from report import publish  # bench/report.py

from corpus_core.records import SourceSpec
from pipeline.config import BuildConfig, ExecutionConfig, load_config
from pipeline.flow import stages_of
from pipeline.progress import Progress
from pipeline.run import build
from stages import minhash
from stages.dedup import DedupConfig, NearDedupConfig, sign_batch
from stages.ingest import Ingest
from stages.shards import ShardConfig
from stages.sources import resolve_units
from stages.tokenize import TokenizeConfig

ROOT = Path(__file__).resolve().parents[1]
RATES = (0.02, 0.08, 0.25)
SHINGLE = 5


def sample_files(config_path: Path, bases: int) -> list[str]:
    """Distinct programming-language files of the sample with at least 50 tokens and no
    license header of their own (the bench's dataset gives every file MIT)."""
    config = load_config(config_path)
    seen: set[str] = set()
    found: list[str] = []
    for unit in resolve_units(config.sources):
        ingest = Ingest(config.ingest, config.cache_dir)
        records = ingest.run(unit)
        for spec in stages_of("file"):
            records = spec.build(config).run(records)
        for record in records:
            if (record.kept and record.language_type == "programming" and record.license is None
                    and record.sha256 not in seen and len(minhash.tokens(record.content)) >= 50):
                seen.add(record.sha256)
                found.append(record.content)
    random.Random(0).shuffle(found)
    return found[:bases]


def mutate(text: str, rate: float, rng: random.Random) -> str:
    return minhash.WORD.sub(lambda m: f"w{rng.randrange(10**6)}" if rng.random() < rate else m.group(0), text)


def shingle_set(text: str) -> set[tuple[str, ...]]:
    words = minhash.tokens(text)
    return {tuple(words[i:i + SHINGLE]) for i in range(max(len(words) - SHINGLE + 1, 1))}


def similar_pairs(sets: list[set], threshold: float) -> dict[tuple[int, int], float]:
    """Every pair with exact Jaccard >= threshold (prefix filtering: a pair that similar must
    share an element within each set's prefix of |x| - ceil(t|x|) + 1 rarest elements)."""
    frequency = Counter(e for s in sets for e in s)
    ordered = [sorted(s, key=lambda e: (frequency[e], e)) for s in sets]
    index: dict = defaultdict(list)
    found: dict[tuple[int, int], float] = {}
    for i, elements in enumerate(ordered):
        prefix = len(elements) - math.ceil(threshold * len(elements)) + 1
        candidates = {j for e in elements[:prefix] for j in index[e]}
        for j in candidates:
            small, large = sorted((len(sets[i]), len(sets[j])))
            if small < threshold * large:
                continue
            similarity = len(sets[i] & sets[j]) / len(sets[i] | sets[j])
            if similarity >= threshold:
                found[(j, i)] = similarity
        for e in elements[:prefix]:
            index[e].append(i)
    return found


def datasketch_loop(docs: list[str], threshold: float, num_perm: int) -> tuple[set[tuple[int, int]], float]:
    """The straightforward way: MinHash.update per shingle, MinHashLSH, query, union-find."""
    started = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes = []
    for i, text in enumerate(docs):
        words = minhash.tokens(text)
        m = MinHash(num_perm=num_perm)
        for k in range(max(len(words) - SHINGLE + 1, 1)):
            m.update(" ".join(words[k:k + SHINGLE]).encode())
        lsh.insert(i, m)
        hashes.append(m)
    pairs = {(min(i, j), max(i, j)) for i, m in enumerate(hashes) for j in lsh.query(m) if j != i}
    parent = list(range(len(docs)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    return pairs, time.perf_counter() - started


def write_dataset(path: Path, docs: list[str]) -> None:
    pq.write_table(pa.table({
        "repo": [f"bench/d{i:07d}" for i in range(len(docs))], "path": ["f.py"] * len(docs),
        "content": docs, "license": ["MIT"] * len(docs),
    }), path)


def build_near(dataset: Path, out: Path, settings: NearDedupConfig, memory_limit: str | None = None) -> dict:
    config = BuildConfig(
        sources=(SourceSpec(str(dataset)),), dedup=DedupConfig(exact=False), near_dedup=settings,
        tokenize=TokenizeConfig(enabled=False), shards=ShardConfig(target_bytes=64 * 1024**2),
        execution=ExecutionConfig(executor="local", keep_work_dir=True, duckdb_memory_limit=memory_limit),
    )
    return build(config, out, Progress(quiet=True))


def clusters_of(out: Path, count: int) -> tuple[list[str], list[int]]:
    """Each document's cluster (the id of its cluster's kept file, its own id when alone), and
    the documents that reached near dedup in the stage's doc order (dataset row order)."""
    rows = pq.read_table(out / "manifest" / "files", columns=["repo", "id", "reason", "dup_of"]).to_pylist()
    by_repo = {r["repo"]: r for r in rows}
    ordered = [by_repo[f"bench/d{i:07d}"] for i in range(count)]
    entered = [i for i, r in enumerate(ordered) if r["reason"] in (None, "near_duplicate")]
    return [r["dup_of"] or r["id"] for r in ordered], entered


def accuracy(args: argparse.Namespace) -> dict:
    bases = sample_files(args.config, args.bases)
    rng = random.Random(1)
    docs = [variant for text in bases for variant in (text, *(mutate(text, r, rng) for r in RATES))]
    megabytes = sum(len(d.encode()) for d in docs) / 1e6
    settings = NearDedupConfig().resolved()
    truth = similar_pairs([shingle_set(d) for d in docs], 0.5)

    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "docs.parquet"
        write_dataset(dataset, docs)
        runs = []
        for _ in range(args.repeat):
            out = Path(tmp) / f"out{len(runs)}"
            runs.append(build_near(dataset, out, settings))
        edge_paths = sorted(out.glob("_work/*/near_dedup/edges-*.parquet"))  # a result per partition
        cluster, entered = clusters_of(out, len(docs))
        edges = {(entered[a], entered[b]) for path in edge_paths for a, b in zip(
            *pq.read_table(path).select(["a", "b"]).to_pydict().values(), strict=True)}
        if len(entered) != len(docs):
            print(f"note: {len(docs) - len(entered)} documents were dropped before near dedup")

    def rate(hits: int, total: int) -> float | None:
        return round(hits / total, 4) if total else None

    t = settings.threshold
    at_t = {p for p, j in truth.items() if j >= t}
    over_08 = {p for p, j in truth.items() if j >= 0.8}
    true_edges = sum(truth.get(p, 0) >= t for p in edges)
    together = {p for p in truth if cluster[p[0]] == cluster[p[1]]}

    contents = docs
    sign_seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            started = time.perf_counter()
            for start in range(0, len(contents), settings.batch_files):
                chunk = contents[start:start + settings.batch_files]
                sign_batch((start, list(range(start, start + len(chunk))), chunk), settings, tmp)
            sign_seconds.append(time.perf_counter() - started)
    stage_seconds = [next(s["seconds"] for s in run["stages"] if s["name"] == "near_dedup") for run in runs]

    loop_seconds = []
    for _ in range(args.repeat):
        loop_pairs, seconds = datasketch_loop(docs, t, settings.num_perm)
        loop_seconds.append(seconds)
    loop_true = sum(truth.get(p, 0) >= t for p in loop_pairs)
    ours = megabytes / statistics.median(stage_seconds)
    theirs = megabytes / statistics.median(loop_seconds)
    return {
        "corpus": {"base_files": len(bases), "documents": len(docs), "megabytes": round(megabytes, 2),
                   "mutation_rates": RATES, "pairs_at_or_over_threshold": len(at_t),
                   "pairs_at_or_over_0.8": len(over_08)},
        "settings": settings.name,
        "ours": {
            "edges": len(edges),
            "edge_precision": rate(true_edges, len(edges)),
            "edge_recall_0.8": rate(len(over_08 & edges), len(over_08)),
            "edge_recall_threshold": rate(len(at_t & edges), len(at_t)),
            "cluster_recall_0.8": rate(len(over_08 & together), len(over_08)),
            "cluster_recall_threshold": rate(len(at_t & together), len(at_t)),
            "dropped": runs[-1]["counts"]["dropped"].get("near_duplicate", 0),
            "signatures_mb_s_per_core": round(megabytes / statistics.median(sign_seconds), 2),
            "stage_mb_s_per_core": round(ours, 2),
        },
        "datasketch_loop": {
            "pairs": len(loop_pairs),
            "pair_precision": rate(loop_true, len(loop_pairs)),
            "pair_recall_0.8": rate(len(over_08 & loop_pairs), len(over_08)),
            "pair_recall_threshold": rate(len(at_t & loop_pairs), len(at_t)),
            "mb_s_per_core": round(theirs, 2),
        },
        "stage_vs_datasketch_loop": round(ours / theirs, 2),
        "repeat": args.repeat,
    }


def million(args: argparse.Namespace) -> dict:
    """Peak memory of a whole build over --docs small synthetic documents."""
    rng = np.random.default_rng(0)
    vocabulary = np.array([f"tok{i}" for i in range(50_000)])
    docs: list[str] = []
    while len(docs) < args.docs:
        words = vocabulary[rng.integers(0, len(vocabulary), rng.integers(20, 60))]
        docs.append(" ".join(words))
        if rng.random() < 0.05 and len(docs) < args.docs:  # a near copy: one word changed
            copy = words.copy()
            copy[rng.integers(0, len(copy))] = "changed"
            docs.append(" ".join(copy))
    megabytes = sum(len(d) for d in docs) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "docs.parquet"
        write_dataset(dataset, docs)
        del docs
        started = time.perf_counter()
        run = build_near(dataset, Path(tmp) / "out", NearDedupConfig(), memory_limit="4GB")
        wall = time.perf_counter() - started
    stage = next(s for s in run["stages"] if s["name"] == "near_dedup")
    return {
        "documents": args.docs, "megabytes": round(megabytes, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "duckdb_memory_limit": "4GB",
        "build_seconds": round(wall, 1),
        "near_dedup_seconds": stage["seconds"],
        "near_dedup_mb_s_per_core": round(megabytes / stage["seconds"], 2),
        "near_dedup": {"dropped": stage["dropped"], **stage["notes"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.toml")
    parser.add_argument("--bases", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--docs", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.million:
        publish("dedup_million", million(args))
    else:
        publish("dedup", accuracy(args))


if __name__ == "__main__":
    main()
