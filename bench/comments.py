"""Benchmark: the comment-to-code ratio by tree-sitter against Pygments, on the real code of
bench/e2e.py's sources (fetched by it into .cache/bench-e2e) and the default sample.

    .venv/bin/python bench/comments.py [--max-files 400] [--repeat 3]

Per language with a grammar: files, MB, the mean ratio by each, the largest per-file
difference, how many files' keep/drop decisions flip at SantaCoder's bounds [0.01, 0.8],
and how many files the filter's own path (`measure`: Python scanned, not parsed) gives a
ratio other than tree-sitter's (it must be 0) and how many it parsed after all.
Speed: MB/s per core (CPU time, median of --repeat) of `measure`, of tree-sitter alone and
of Pygments alone on the same files in this process, and the ratios.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time
from collections import defaultdict
from pathlib import Path

from report import publish, timed  # bench/report.py

from filters.comments import (
    GRAMMARS,
    SCANNERS,
    comment_ratio,
    grammar_for,
    lexer_for,
    measure,
    tree_sitter_ratio,
)
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


def cpu_seconds(ratio_of, files: list[tuple[str, list[str]]], repeat: int) -> float:
    """Median CPU seconds of `ratio_of(text, language)` over every file."""
    return timed(lambda: [ratio_of(text, language) for language, texts in files for text in texts], repeat,
                 clock=time.process_time)


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
        filtered = [measure(t, language)[0] for t in texts]
        scan = SCANNERS.get(language)
        flipped = sum((LOW <= a <= HIGH) != (LOW <= b <= HIGH) for a, b in zip(ours, theirs, strict=True))
        flips += flipped
        every += texts
        languages[language] = {
            "files": len(texts), "mb": round(sum(map(len, texts)) / 1e6, 2),
            "mean_tree_sitter": round(statistics.mean(ours), 4), "mean_pygments": round(statistics.mean(theirs), 4),
            "mean_difference": round(abs(statistics.mean(ours) - statistics.mean(theirs)), 4),
            "largest_difference": round(max(abs(a - b) for a, b in zip(ours, theirs, strict=True)), 4),
            "decisions_flipped": flipped,
            "measure_differs": sum(a != b for a, b in zip(filtered, ours, strict=True)),
            "measure_parsed": len(texts) if scan is None else sum(scan(t) is None for t in texts),
        }
    megabytes = sum(map(len, every)) / 1e6
    measured = [(language, texts) for language, texts in files.items() if language in languages]
    by_grammar = {lang: grammar_for(lang) for lang, _ in measured}
    by_lexer = {lang: lexer_for(lang) for lang, _ in measured}
    seconds = {
        "measure": cpu_seconds(measure, measured, args.repeat),
        "tree_sitter": cpu_seconds(lambda text, lang: tree_sitter_ratio(text, by_grammar[lang]), measured, args.repeat),
        "pygments": cpu_seconds(lambda text, lang: comment_ratio(text, by_lexer[lang]), measured, args.repeat),
    }
    publish("comments", {
        "files": len(every), "mb": round(megabytes, 2), "languages": languages, "decisions_flipped": flips,
        "measure_differs": sum(figures["measure_differs"] for figures in languages.values()),
        **{f"{name}_mb_per_s": round(megabytes / spent, 2) for name, spent in seconds.items()},
        "measure_over_tree_sitter": round(seconds["tree_sitter"] / seconds["measure"], 2),
        "tree_sitter_over_pygments": round(seconds["pygments"] / seconds["tree_sitter"], 1),
    })


if __name__ == "__main__":
    main()
