"""Benchmark: the shard writer's placement on the driver, the one pass over every kept file
that runs in one thread (docs/ARCHITECTURE.md, "At The Stack's scale"). `next_fit` (running
sums over windows, numpy) against the rule applied one file at a time in Python (what the
driver ran before), on the same files in the same process.

    .venv/bin/python bench/placement.py [--files 10000000] [--repeat 5] [--seed 0]

Files: sizes drawn from a log-normal law fitted to bench/e2e.py's kept files (median ~2.5 KB,
a long tail), token counts ~ size / 3.5; the default ShardConfig (256 MB, 100,000 rows, 64 M
tokens), tokenized; batches of PLACEMENT_BATCH files as the driver streams them. Reports
files per second per core (process CPU time, median of --repeat) of each and their ratio,
into bench/results/placement.json; both must place every file in the same shard and row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from stages.shards import PLACEMENT_BATCH, Cursor, ShardConfig, next_fit

RESULTS = Path(__file__).resolve().parent / "results" / "placement.json"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000_000)
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
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
