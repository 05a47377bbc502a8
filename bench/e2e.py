"""Benchmark: the whole build, end to end, on real projects' sources (bench/e2e_sources.toml).

    .venv/bin/python bench/e2e.py [--runs 3] [--workers 2]

Each run is a cold build in a fresh process: a fresh local Ray, an empty license cache (the
sdists themselves are fetched once, before any run, into .cache/bench-e2e), the default
config (configs/default.toml) with the benchmark's sources. Reported (median of --runs):
  mb_per_s_per_core   input bytes / build wall seconds / workers
                      (and `_past_training`: the wall less the tokenizer's training, a fixed
                      cost bounded by tokenize.train_bytes whatever the input's size)
  stages              per stage: bytes it saw, seconds, MB/s per core. Repository and file
                      stages run inside the workers: their seconds are summed over workers.
                      Corpus and output stages are timed on the driver (their Ray parts on
                      every worker): MB/s per core divides by workers too.
  idle_share          1 - task CPU seconds / (wall x workers): cores that waited
  straggler_ratio     wall / (task seconds / workers): 1.0 when the work is spread evenly;
                      a repository left running alone pushes it up
  peak_rss_mb         of the driver, and the largest of the workers
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from report import publish  # bench/report.py

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "bench" / "e2e_sources.toml"
CACHE = ROOT / ".cache" / "bench-e2e"
MB = 1e6


def fetch_all() -> list[dict]:
    """The pinned sdists, into the benchmark's cache (once); their sizes unpacked."""
    from corpus_core.storage import sha256_file
    from stages.sources import fetch_pypi

    entries = tomllib.loads(SOURCES.read_text())["sources"]
    for entry in entries:
        archive = fetch_pypi(entry["source"], CACHE)
        if sha256_file(archive) != entry["sha256"]:
            raise SystemExit(f"{entry['source']}: sha256 differs from the pin in {SOURCES}")
    return entries


def one_build(out: Path) -> None:
    """The timed part, in its own process: the default config with the benchmark's sources."""
    from corpus_core.records import SourceSpec
    from pipeline.config import load_config
    from pipeline.progress import Progress
    from pipeline.run import build

    entries = tomllib.loads(SOURCES.read_text())["sources"]
    config = load_config(ROOT / "configs" / "default.toml")
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 0
    config = dataclasses.replace(
        config, sources=tuple(SourceSpec(e["source"], sha256=e["sha256"]) for e in entries), cache_dir=str(CACHE),
        execution=dataclasses.replace(config.execution, num_workers=workers))
    build(config, out, Progress(stream=sys.stderr))


def figures(run: dict, process_seconds: float) -> dict:
    workers = run["executor"]["workers"]
    wall = run["wall_seconds"]
    tasks = run["executor"]["tasks"]
    tokenize_notes = next(s for s in run["stages"] if s["name"] == "tokenize").get("notes", {})
    stages = {}
    for stage in run["stages"]:
        inside_workers = stage["name"] not in ("duplicate_paths", "license_decision", "exact_dedup", "near_dedup",
                                               "tokenize", "shards")
        core_seconds = stage["seconds"] if inside_workers else stage["seconds"] * workers
        stages[stage["name"]] = {
            "mb_in": round(stage["bytes_in"] / MB, 1), "seconds": stage["seconds"],
            "mb_per_s_per_core": round(stage["bytes_in"] / MB / core_seconds, 2) if core_seconds else None,
        }
    return {
        "files": run["counts"]["files"], "mb_in": round(run["counts"]["bytes_in"] / MB, 1),
        "files_kept": run["counts"]["kept"], "mb_kept": round(run["counts"]["bytes_kept"] / MB, 1),
        "workers": workers, "wall_seconds": wall, "process_seconds": round(process_seconds, 1),
        "mb_per_s_per_core": round(run["counts"]["bytes_in"] / MB / wall / workers, 3),
        # the tokenizer's training is a fixed cost (at most train_bytes, ~1 minute), however big the input
        "mb_per_s_per_core_past_training": round(
            run["counts"]["bytes_in"] / MB / (wall - (tokenize_notes.get("train_seconds") or 0)) / workers, 3),
        "idle_share": round(1 - tasks["cpu_seconds"] / (wall * workers), 3),
        "straggler_ratio": round(wall / (tasks["seconds"] / workers), 3) if tasks["seconds"] else None,
        "driver_peak_rss_mb": run["executor"]["driver_peak_rss_mb"], "worker_peak_rss_mb": tasks["peak_rss_mb"],
        "chunks": run["units"].get("chunks"), "dropped": run["counts"]["dropped"],
        "tokenize_train_seconds": tokenize_notes.get("train_seconds"),
        "tokenize_encode_seconds": tokenize_notes.get("encode_seconds"),
        "stages": stages,
    }


def table(result: dict) -> str:
    lines = ["| stage | MB in | seconds | MB/s per core |", "|---|---:|---:|---:|"]
    for name, stage in result["stages"].items():
        lines.append(f"| {name} | {stage['mb_in']} | {stage['seconds']} | {stage['mb_per_s_per_core']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0, help="Ray workers; 0: every CPU")
    parser.add_argument("--keep", type=Path, help="copy the last run's manifest/ here (to compare decisions)")
    args = parser.parse_args()
    entries = fetch_all()
    runs = []
    for number in range(args.runs):
        shutil.rmtree(CACHE / "license-cache", ignore_errors=True)  # cold: ScanCode sees every text anew
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--one-build", tmp, "--workers", str(args.workers)],
                           check=True, cwd=ROOT)
            elapsed = time.perf_counter() - started
            run = json.loads((Path(tmp) / "manifest" / "run.json").read_text())
            if args.keep:
                shutil.rmtree(args.keep, ignore_errors=True)
                shutil.copytree(Path(tmp) / "manifest", args.keep)
        runs.append(figures(run, elapsed))
        print(f"run {number + 1}: {runs[-1]['mb_per_s_per_core']} MB/s per core, wall {runs[-1]['wall_seconds']} s",
              file=sys.stderr)
    middle = sorted(runs, key=lambda r: r["mb_per_s_per_core"])[len(runs) // 2]
    result = {"sources": [e["source"] for e in entries], "runs": len(runs),
              "mb_per_s_per_core_each_run": [r["mb_per_s_per_core"] for r in runs],
              "median_mb_per_s_per_core": statistics.median(r["mb_per_s_per_core"] for r in runs),
              "median_run": middle}
    publish("e2e", result)
    print(table(middle))


if __name__ == "__main__":
    if "--one-build" in sys.argv:
        one_build(Path(sys.argv[sys.argv.index("--one-build") + 1]))
    else:
        main()
