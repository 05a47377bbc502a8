"""Benchmark: the tokenize stage's speed, and bytes per token per language.

    make corpus && .venv/bin/python bench/tokenization.py [--out out/corpus] [--repeat 5]

Data: the kept files of a build (`make corpus`: the default sample), split by md5 of the
file id into 80% for training and 20% held out; every figure below is on held-out files.

  - two tokenizers trained with the stage's own `train_tokenizer` (vocabulary 49,152): one
    on the training files of every language (what a build does), one on the Python
    training files only, the same number of bytes at most; bytes per token on each
    language's held-out files (more is better: fewer tokens for the same code);
  - encoding speed on one core (RAYON_NUM_THREADS=1, tiktoken on one thread), CPU time,
    median of --repeat, every file of the build: the stage's `encode_files` (special tokens
    not recognized in text, metadata prefix and <|endoftext|>) with its fast encoder
    (tiktoken) against the same function on HF `encode_batch` (the stage before it), and the
    two encoders alone on the contents; the ids are checked equal; tokens/s and MB/s per core;
  - training time of the multi-language tokenizer (one core).
MB are 10^6 bytes of UTF-8 content.
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers starts its thread pool: one core  # noqa: E402

import argparse
import hashlib
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from report import publish, timed  # bench/report.py

from stages.tokenize import TextEncoder, TokenizeConfig, encode_files, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 49_152


def kept_files(out: Path) -> list[dict]:
    shards = sorted((out / "shards").glob("part-*.parquet"))
    if not shards:
        raise SystemExit(f"no shards in {out}/shards: run `make corpus` first")
    rows = []
    for shard in shards:
        rows.extend(pq.read_table(shard, columns=["id", "repo", "path", "language", "content"]).to_pylist())
    for row in rows:
        row["stars"] = None
        row["held_out"] = hashlib.md5(row["id"].encode()).digest()[0] < 256 * 0.2
    return sorted(rows, key=lambda r: r["id"])


def bytes_per_token(tokenizer, rows: list[dict]) -> dict[str, float]:
    by_language: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        ids = tokenizer.encode(row["content"], add_special_tokens=False).ids
        totals = by_language[row["language"] or "(unknown)"]
        totals[0] += len(row["content"].encode())
        totals[1] += len(ids)
    return {language: round(b / t, 3) for language, (b, t) in sorted(by_language.items()) if t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "corpus")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rows = kept_files(args.out)
    train = [r["content"] for r in rows if not r["held_out"]]
    held_out = [r for r in rows if r["held_out"]]
    python = [r["content"] for r in rows if not r["held_out"] and r["language"] == "Python"]

    started = time.perf_counter()
    every = train_tokenizer(iter(train), VOCAB)
    train_seconds = time.perf_counter() - started
    only_python = train_tokenizer(iter(python), VOCAB)

    config = TokenizeConfig()
    megabytes = sum(len(r["content"].encode()) for r in rows) / 1e6
    fast, slow = TextEncoder.of(every), TextEncoder(every)  # tiktoken, and HF encode_batch
    if fast.fast is None:
        raise SystemExit(f"no fast path for the trained tokenizer: {fast.why_not}")
    encoded = encode_files(fast, rows, config)
    if encoded != encode_files(slow, rows, config):
        raise SystemExit("the fast encoder's ids differ from encode_batch's")
    tokens = sum(len(ids) for ids in encoded)
    contents = [r["content"] for r in rows]

    def speed(seconds: float) -> dict:
        return {"tokens_per_s_per_core": round(tokens / seconds), "mb_s_per_core": round(megabytes / seconds, 2)}

    cpu = {name: timed(fn, args.repeat, clock=time.process_time) for name, fn in {
        "stage_tiktoken": lambda: encode_files(fast, rows, config),
        "stage_encode_batch": lambda: encode_files(slow, rows, config),
        "tiktoken_alone": lambda: fast.encode(contents),
        "encode_batch_alone": lambda: slow.encode(contents),
    }.items()}

    multi = bytes_per_token(every, held_out)
    single = bytes_per_token(only_python, held_out)
    held_out_counts = defaultdict(int)
    for row in held_out:
        held_out_counts[row["language"] or "(unknown)"] += 1
    publish("tokenize", {
        "files": len(rows), "megabytes": round(megabytes, 2), "tokens": tokens,
        "train_megabytes": {"every_language": round(sum(len(t.encode()) for t in train) / 1e6, 2),
                            "python_only": round(sum(len(t.encode()) for t in python) / 1e6, 2)},
        "vocab_size": {"every_language": every.get_vocab_size(), "python_only": only_python.get_vocab_size()},
        "train_seconds_one_core": round(train_seconds, 1),
        "encode": {name: speed(seconds) for name, seconds in cpu.items()},
        "stage_tiktoken_vs_encode_batch": round(cpu["stage_encode_batch"] / cpu["stage_tiktoken"], 2),
        "bytes_per_token_held_out": {
            language: {"files": held_out_counts[language], "every_language": multi[language],
                       "python_only": single[language]}
            for language in multi if held_out_counts[language] >= 3
        },
        "bytes_per_token_held_out_all": {
            "every_language": round(sum(len(r["content"].encode()) for r in held_out)
                                    / sum(len(every.encode(r["content"]).ids) for r in held_out), 3),
            "python_only": round(sum(len(r["content"].encode()) for r in held_out)
                                 / sum(len(only_python.encode(r["content"]).ids) for r in held_out), 3),
        },
        "repeat": args.repeat,
    })


if __name__ == "__main__":
    main()
