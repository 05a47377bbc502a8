"""Benchmark: the quality stage on real code, and its alphanumeric count against the regex
it replaced, in the same process.

    .venv/bin/python bench/quality.py [--repeat 5] [--max-mb 150]

Data: the files of the end-to-end benchmark's sdists (bench/e2e_sources.toml, fetched into
.cache/bench-e2e) that ingest reads as text and go-enry gives a language, up to --max-mb of
them. Figures on one core (CPU time), median of --repeat, MB = 10^6 bytes as stored:
  - `QualityFilter` over every file (the default settings): MB/s per core;
  - `alphanumeric_count` (ASCII bytes through `bytes.translate`, `str.isalnum` on the rest)
    against `len(re.sub(r"[\\W_]+", "", text))`, the former way; the bench checks both give
    the same count on every file.
"""

from __future__ import annotations

import argparse
import copy
import re
import time

from e2e import CACHE, fetch_all  # bench/e2e.py
from report import publish, timed  # bench/report.py

from corpus_core.records import SourceSpec
from filters.quality import QualityConfig, QualityFilter, alphanumeric_count
from stages.ingest import Ingest, IngestConfig
from stages.language import LanguageConfig, LanguageDetector
from stages.sources import fetch_pypi, resolve_units

FORMER = re.compile(r"[\W_]+")
MB = 1e6


def records(max_bytes: int) -> list:
    found, total = [], 0
    for entry in fetch_all():
        archive = fetch_pypi(entry["source"], CACHE)  # cached by fetch_all
        ingest = Ingest(IngestConfig(), str(CACHE))
        language = LanguageDetector(LanguageConfig())
        for record in language.run(ingest.run(resolve_units((SourceSpec(str(archive)),))[0])):
            if record.kept:
                found.append(record)
                total += record.size
                if total >= max_bytes:
                    return found
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-mb", type=float, default=150)
    args = parser.parse_args()
    files = records(int(args.max_mb * MB))
    size = sum(r.size for r in files)
    texts = [r.content for r in files]
    former = [len(FORMER.sub("", t)) for t in texts]
    if [alphanumeric_count(t) for t in texts] != former:
        raise SystemExit("alphanumeric_count differs from the former regex")
    stage = QualityFilter(QualityConfig())

    def run_stage() -> None:
        list(stage.run(copy.deepcopy(files)))

    seconds = timed(run_stage, args.repeat, clock=time.process_time)
    new = timed(lambda: [alphanumeric_count(t) for t in texts], args.repeat, clock=time.process_time)
    old = timed(lambda: [len(FORMER.sub("", t)) for t in texts], args.repeat, clock=time.process_time)
    # deepcopy is inside the stage's timing: measured alone, it is taken out
    copying = timed(lambda: copy.deepcopy(files), args.repeat, clock=time.process_time)
    result = {
        "files": len(files), "mb": round(size / MB, 1),
        "quality_mb_per_s_per_core": round(size / MB / (seconds - copying), 2),
        "alphanumeric_count_mb_per_s": round(size / MB / new, 1),
        "former_regex_mb_per_s": round(size / MB / old, 1),
        "speedup": round(old / new, 1),
        "non_ascii_files": sum(not t.isascii() for t in texts),
    }
    publish("quality", result)


if __name__ == "__main__":
    main()
