"""Benchmark: ingest + language throughput on the default sample, in MB/s per core.

    .venv/bin/python bench/ingest_language.py [--config configs/default.toml] [--repeat 5]

Three figures, each the median of --repeat runs after one warm-up run (which also fills the
download cache):
  stream   our ingest + language stages, in one process, streaming every archive;
  extract  the obvious alternative in the same process: extract each archive to a
           temporary directory (tarfile/zipfile), walk it, read, decode, go-enry per file;
  build    the whole `corpus build` on a local Ray with --workers, per core.
MB are the bytes of the files read (ingest's bytes_in), 10^6 bytes each.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import enry
from report import publish  # bench/report.py

from pipeline.config import load_config
from pipeline.flow import stages_of
from pipeline.progress import Progress
from pipeline.run import build
from stages.ingest import Ingest
from stages.sources import fetch_npm, fetch_pypi, resolve_units

ROOT = Path(__file__).resolve().parents[1]


def stream_once(config, units) -> tuple[int, float]:
    started = time.perf_counter()
    total = 0
    for unit in units:
        ingest = Ingest(config.ingest, config.cache_dir)
        records = ingest.run(unit)
        for spec in (s for s in stages_of("file") if s.name == "language"):
            records = spec.build(config).run(records)
        for _ in records:
            pass
        total += ingest.stats.bytes_in
    return total, time.perf_counter() - started


def extract_once(archives: list[Path]) -> tuple[int, float]:
    started = time.perf_counter()
    total = 0
    for archive in archives:
        with tempfile.TemporaryDirectory() as tmp:
            if archive.suffix == ".zip":
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(tmp, filter="data")
            for folder, _, names in os.walk(tmp):
                for name in names:
                    path = os.path.join(folder, name)
                    if os.path.islink(path):
                        continue
                    data = Path(path).read_bytes()
                    total += len(data)
                    if b"\0" in data:
                        continue
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                    enry.get_language(name, data[:65536])
                    enry.is_vendor(path)
                    enry.is_generated(path, data[:65536])
    return total, time.perf_counter() - started


def median_rate(runs: list[tuple[int, float]], cores: int) -> float:
    return statistics.median(b / s / cores / 1e6 for b, s in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.toml"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--builds", type=int, default=3, help="whole builds on Ray (0 to skip)")
    args = parser.parse_args()

    config = load_config(args.config)
    units = resolve_units(config.sources)
    fetchers = {"pypi": fetch_pypi, "npm": fetch_npm}
    archives = [fetchers[u.kind](u.location, Path(config.cache_dir)) if u.kind in fetchers else Path(u.location)
                for u in units if u.kind in ("pypi", "npm", "archive")]
    stream_once(config, units)  # warm-up: fetches, imports, enry's first calls
    extract_once(archives)
    stream = [stream_once(config, units) for _ in range(args.repeat)]
    extract = [extract_once(archives) for _ in range(args.repeat)]
    result = {
        "input_mb": stream[0][0] / 1e6,
        "units": len(units),
        "stream_mb_s_per_core": round(median_rate(stream, 1), 2),
        "extract_mb_s_per_core": round(median_rate(extract, 1), 2),
    }
    result["stream_vs_extract"] = round(result["stream_mb_s_per_core"] / result["extract_mb_s_per_core"], 2)
    if args.builds:
        execution = dataclasses.replace(config.execution, num_workers=args.workers)
        on_ray = dataclasses.replace(config, execution=execution)
        with tempfile.TemporaryDirectory() as out:
            runs = []
            for _ in range(args.builds):
                run = build(on_ray, out, Progress(quiet=True))
                runs.append((run["counts"]["bytes_in"], run["wall_seconds"]))
        result["build_workers"] = args.workers
        result["build_mb_s_per_core"] = round(median_rate(runs, args.workers), 2)
        result["build_median_seconds"] = statistics.median(s for _, s in runs)
    publish("ingest_language", result)


if __name__ == "__main__":
    main()
