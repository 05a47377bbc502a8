"""Benchmark: the comment-to-code ratio by tree-sitter against Pygments, on the real code of
bench/e2e.py's sources (fetched by it into .cache/bench-e2e) and the default sample.

    .venv/bin/python bench/comments.py [--max-files 400] [--repeat 3]

Per language with a grammar: files, MB, the mean ratio by each, the largest per-file
difference, and how many files' keep/drop decisions flip at SantaCoder's bounds [0.01, 0.8].
Speed: MB/s per core of each on the same files in this process (median of --repeat) and
the ratio.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time
from collections import defaultdict
from pathlib import Path

from report import publish  # bench/report.py

from filters.comments import GRAMMARS, comment_ratio, grammar_for, lexer_for, tree_sitter_ratio
from stages.ingest import IngestConfig, decode_text
from stages.language import detect_language
from stages.readers import read_archive

ROOT = Path(__file__).resolve().parents[1]
LOW, HIGH = 0.01, 0.8


def code_files(max_files: int) -> dict[str, list[str]]:
    """Up to max_files decoded files per language that has a grammar, in archive order."""
    found: dict[str, list[str]] = defaultdict(list)
    archives = sorted(glob.glob(str(ROOT / ".cache/bench-e2e/pypi/*/*.tar.gz")) +
                      glob.glob(str(ROOT / ".cache/corpus/*/*/*.t*gz")))
    for archive in archives:
        for entry in read_archive(Path(archive), IngestConfig()):
            if entry.data is None or len(entry.data) > 1_000_000:
                continue
            language, kind = detect_language(entry.path, entry.data[:65536])
            if language not in GRAMMARS or kind != "programming" or len(found[language]) >= max_files:
                continue
            text, _ = decode_text(entry.data, 0.2)
            if text:
                found[language].append(text)
    return found


def timed(measure, parser, texts: list[str], repeat: int) -> float:
    """Median CPU seconds of `measure(text, parser)` over all texts."""
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        for text in texts:
            measure(text, parser)
        runs.append(time.process_time() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-files", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = code_files(args.max_files)
    languages, flips, every = {}, 0, []
    for language, texts in sorted(files.items()):
        grammar, lexer = grammar_for(language), lexer_for(language)
        if lexer is None:
            continue
        ours = [tree_sitter_ratio(t, grammar) for t in texts]
        theirs = [comment_ratio(t, lexer) for t in texts]
        flipped = sum((LOW <= a <= HIGH) != (LOW <= b <= HIGH) for a, b in zip(ours, theirs, strict=True))
        flips += flipped
        every += texts
        languages[language] = {
            "files": len(texts), "mb": round(sum(map(len, texts)) / 1e6, 2),
            "mean_tree_sitter": round(statistics.mean(ours), 4), "mean_pygments": round(statistics.mean(theirs), 4),
            "mean_difference": round(abs(statistics.mean(ours) - statistics.mean(theirs)), 4),
            "largest_difference": round(max(abs(a - b) for a, b in zip(ours, theirs, strict=True)), 4),
            "decisions_flipped": flipped,
        }
    megabytes = sum(map(len, every)) / 1e6
    measured = [(language, texts) for language, texts in files.items() if language in languages]
    ts_seconds = sum(timed(tree_sitter_ratio, grammar_for(lang), texts, args.repeat) for lang, texts in measured)
    py_seconds = sum(timed(comment_ratio, lexer_for(lang), texts, args.repeat) for lang, texts in measured)
    publish("comments", {
        "files": len(every), "mb": round(megabytes, 2), "languages": languages, "decisions_flipped": flips,
        "tree_sitter_mb_per_s": round(megabytes / ts_seconds, 2), "pygments_mb_per_s": round(megabytes / py_seconds, 2),
        "speedup": round(py_seconds / ts_seconds, 1),
    })


if __name__ == "__main__":
    main()
