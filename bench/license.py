"""Benchmark: the license stage on a labeled set of real packages (the default sample).

    .venv/bin/python bench/license.py [--config configs/default.toml] [--repeat 3] [--alternative-mb 2.0]
    .venv/bin/python bench/license.py --e2e [--repeat 3]

Labels: each package's declared license from its registry, checked by hand against the
license text it ships (LABELS below). The stage runs as a build runs it: the file stage
(`LicenseDetector`) over each repository's records after the stages before it in
pipeline/flow.py (opt-out, language), then the corpus-scope decision (`resolve_repositories`,
`judge`, as `LicenseDecision` and `corpus inspect` do). Reported:
  precision, recall   of the permissive decision on each repository's root (precision must be 1.0);
  leaked_files        files whose license passes, in packages labeled not permissive (must be 0;
                      `kept_in_non_permissive` lists each with the evidence it rests on);
  cold, warm          MB/s per core of the stage (one process; MB: the raw bytes of the files
                      it sees; seconds: the process's CPU time, so that other work on the
                      machine does not count, wall seconds beside) with an empty and with a
                      filled ScanCode cache, median of --repeat passes; ScanCode's one-time
                      index load is excluded and reported apart;
  alternative         ScanCode's get_licenses on every file, in the same process, no cache:
                      MB/s per core on a seeded sample of the same files of about
                      --alternative-mb MB (all of it would take most of an hour), and the
                      stage's cold and warm speed as multiples of it.

--e2e: the file stage alone (`LicenseDetector`) on bench/e2e.py's input (the sdists of
bench/e2e_sources.toml, which bench/e2e.py fetches into .cache/bench-e2e), cold (an empty
cache per pass). Reported: MB/s per core by CPU time (median of --repeat), ScanCode's runs
by kind with their CPU seconds (`licenses`: license files, READMEs, metadata values;
`notice:`/`header:` a file's notice or whole header, `exact` when the exact matchers decided,
`approximate` when ScanCode ran whole; `holders`: copyright detection), and the same with
ScanCode as it ships (one pass: its own candidate ranking, copyright lexer and parser, and
libmagic asked of every text; `narrow_candidates`, `quicken_copyrights` and `told_plain_text`
off): its speed, and the files whose header license, rule or lines, or holders, and the
evidence rows, that differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
import time
import tomllib
from pathlib import Path

from report import publish  # bench/report.py

from corpus_core import reasons, schema
from corpus_core.records import SourceSpec
from pipeline.config import load_config
from pipeline.flow import STAGES
from stages.ingest import Ingest
from stages.license import (
    LicenseDetector,
    LicenseScanner,
    decide,
    judge,
    narrow_candidates,
    quicken_copyrights,
    resolve_repositories,
    scopes_of,
)
from stages.sources import resolve_units

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000

# repository -> (declared license, permissive?); declared by the registry, checked against the text
LABELS = {
    "pypi/six": ("MIT", True), "pypi/idna": ("BSD-3-Clause", True), "pypi/click": ("BSD-3-Clause", True),
    "pypi/requests": ("Apache-2.0", True), "pypi/pyyaml": ("MIT", True), "pypi/msgpack": ("Apache-2.0", True),
    "pypi/markupsafe": ("BSD-3-Clause", True), "pypi/pybind11": ("BSD-3-Clause", True),
    "pypi/attrs": ("MIT", True), "pypi/simplejson": ("MIT OR AFL-2.1", True), "pypi/bcrypt": ("Apache-2.0", True),
    "pypi/packaging": ("Apache-2.0 OR BSD-2-Clause", True), "pypi/typing_extensions": ("PSF-2.0", True),
    "pypi/certifi": ("MPL-2.0", False), "pypi/yamllint": ("GPL-3.0-or-later", False),
    "pypi/mutagen": ("GPL-2.0-or-later", False), "pypi/psycopg2": ("LGPL-3.0-or-later", False),
    "npm/ms": ("MIT", True), "npm/chalk": ("MIT", True), "npm/tslib": ("0BSD", True), "npm/minimist": ("MIT", True),
    "npm/semver": ("ISC", True), "npm/n": ("MIT", True), "npm/commander": ("MIT", True), "npm/zod": ("MIT", True),
    "npm/nanoid": ("MIT", True), "npm/is-number": ("MIT", True),
    "npm/@nextcloud/router": ("GPL-3.0-or-later", False), "npm/@nextcloud/files": ("AGPL-3.0-or-later", False),
}


def load_records(config, units):
    """Every unit's records after the file stages that run before license, in memory."""
    order = [spec.name for spec in STAGES]
    before = [spec for spec in STAGES if spec.scope == "file" and order.index(spec.name) < order.index("license")]
    loaded = []
    for unit in units:
        ingest = Ingest(config.ingest, config.cache_dir)
        records = ingest.run(unit)
        for spec in before:
            records = spec.build(config).run(records)
        loaded.append((list(records), ingest.repos))
    return loaded


def license_pass(config, loaded, cache_dir: Path) -> tuple[tuple[float, float], dict, list[dict]]:
    """The stage over every unit, on fresh copies of the records: ((CPU seconds, wall seconds),
    {repo: root resolution}, the files the decision lets through, with their evidence)."""
    allowed = frozenset(config.license.allowed)
    copies = [([dataclasses.replace(r) for r in records], repos) for records, repos in loaded]
    started, wall = time.process_time(), time.perf_counter()
    roots, passing = {}, []
    for records, repos in copies:
        stage = LicenseDetector(config.license, cache_dir)
        seen = list(stage.run(records))
        declared = {name: repo.declared_license for name, repo in repos.items() if repo.declared_license}
        licenses, _ = resolve_repositories(stage.finish_unit(repos)["license_evidence"].to_pylist(), declared,
                                           list(repos))
        scopes = scopes_of(licenses)
        for record in seen:
            if record.sha256 is None or record.reason == reasons.OPTED_OUT:  # as LicenseDecision judges
                continue
            row = {name: getattr(record, name) for name in ("path", "decision", "reason", "detail",
                                                            *schema.ANNOTATED)}
            columns, reason, _ = judge(row, scopes.get(record.repo, {}), allowed)
            if reason is None and record.kept:  # what would ship unless a filter drops it
                passing.append({"repo": record.repo, "path": record.path, **columns})
        for name in repos:
            roots[name] = scopes.get(name, {}).get("")
    return (time.process_time() - started, time.perf_counter() - wall), roots, passing


def stage_bytes(loaded) -> int:
    """Raw bytes of the files the license stage sees (those still kept after the stages before it)."""
    return sum(r.size for records, _ in loaded for r in records if r.kept)


def alternative_sample(loaded, megabytes: float, seed: int = 0) -> list[str]:
    """A seeded sample of the texts the stage sees, about `megabytes` MB: the alternative's input."""
    texts = [r.content for records, _ in loaded for r in records if r.kept and r.content is not None]
    random.Random(seed).shuffle(texts)
    picked, total = [], 0
    for text in texts:
        if total >= megabytes * MB:
            break
        picked.append(text)
        total += len(text.encode("utf-8", "surrogatepass"))
    return picked


def every_file(texts: list[str]) -> tuple[float, float]:
    """The alternative: ScanCode's get_licenses on every file, no cache. (CPU seconds, wall seconds)."""
    from scancode.api import get_licenses

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "file"
        started, wall = time.process_time(), time.perf_counter()
        for text in texts:
            scratch.write_text(text, encoding="utf-8", errors="surrogatepass")
            get_licenses(str(scratch))
        return time.process_time() - started, time.perf_counter() - wall


def e2e_config(config):
    """The config with bench/e2e.py's sources and cache (where it fetched the sdists)."""
    entries = tomllib.loads((ROOT / "bench" / "e2e_sources.toml").read_text())["sources"]
    return dataclasses.replace(config, sources=tuple(SourceSpec(e["source"], sha256=e["sha256"]) for e in entries),
                               cache_dir=str(ROOT / ".cache" / "bench-e2e"))


def detector_pass(config, loaded, quick: bool) -> tuple[float, float, dict, dict, list]:
    """`LicenseDetector` over every unit with an empty cache: (CPU s, wall s, ScanCode's runs per
    kind, {(repo, path): what the file got}, the evidence rows). `quick` False: ScanCode as it
    ships (see above)."""
    narrow_candidates(quick)
    quicken_copyrights(quick)
    copies = [[dataclasses.replace(r) for r in records] for records, _ in loaded]
    runs: dict[str, list] = {}
    files, evidence = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        started, wall = time.process_time(), time.perf_counter()
        for records in copies:
            stage = LicenseDetector(config.license, Path(tmp))
            stage.scanner.narrow = stage.scanner.quick_copyrights = stage.scanner.as_text = quick
            for record in stage.run(records):
                files[(record.repo, record.path)] = (record.license, record.license_rule, record.license_start_line,
                                                     record.license_end_line, tuple(record.copyright_holders or ()),
                                                     record.reason)
            evidence += stage.evidence
            for kind, (count, seconds) in stage.scanner.runs.items():
                runs.setdefault(kind, [0, 0.0])
                runs[kind][0] += count
                runs[kind][1] += seconds
        return time.process_time() - started, time.perf_counter() - wall, runs, files, evidence


def e2e_main(args) -> None:
    config = e2e_config(load_config(args.config))
    loaded = load_records(config, resolve_units(config.sources))
    megabytes = stage_bytes(loaded) / MB
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        LicenseScanner(tmp).licenses("Licensed under the MIT license.")
    index_load = time.perf_counter() - started
    passes = [detector_pass(config, loaded, quick=True) for _ in range(args.repeat)]
    old = detector_pass(config, loaded, quick=False)
    narrow_candidates(True)
    quicken_copyrights(True)
    cpu = statistics.median(p[0] for p in passes)
    new = passes[len(passes) // 2]

    def runs(found: dict) -> dict:
        return {kind: {"runs": count, "cpu_s": round(seconds, 2)} for kind, (count, seconds) in sorted(found.items())}

    changed = [key for key in old[3] if old[3][key][:4] != new[3].get(key, (None,) * 6)[:4]]
    publish("license_e2e", {
        "files": sum(len(records) for records, _ in loaded),
        "megabytes": round(megabytes, 2),
        "scancode_index_load_s": round(index_load, 2),
        "repeat": args.repeat,
        "cold_mb_s_per_core": round(megabytes / cpu, 3),
        "cold_cpu_s": round(cpu, 2),
        "cold_wall_s": round(statistics.median(p[1] for p in passes), 2),
        "scancode_runs": runs(new[2]),
        "scancode_cpu_s": round(sum(seconds for _, seconds in new[2].values()), 2),
        "old_way": "ScanCode as it ships: its own candidate ranking, copyright lexer and parser, libmagic on "
                   "every text (narrow_candidates, quicken_copyrights, told_plain_text off), one pass",
        "old_cold_mb_s_per_core": round(megabytes / old[0], 3),
        "old_cold_cpu_s": round(old[0], 2),
        "old_scancode_runs": runs(old[2]),
        "speedup": round(old[0] / cpu, 2),
        "files_whose_header_license_changes": len(changed),
        "changed": [f"{repo}/{path}: {old[3][(repo, path)][0]} -> {new[3][(repo, path)][0]}"
                    for repo, path in changed[:20]],
        "files_whose_holders_change": sum(old[3][key][4] != new[3][key][4] for key in old[3]),
        "evidence_rows_equal": old[4] == new[4],
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.toml"))
    parser.add_argument("--repeat", type=int, default=3, help="passes per measure (median)")
    parser.add_argument("--alternative-mb", type=float, default=2.0,
                        help="MB of the sample ScanCode-on-every-file runs on; 0 skips it")
    parser.add_argument("--e2e", action="store_true", help="the file stage on bench/e2e.py's input (see above)")
    args = parser.parse_args()
    if args.e2e:
        e2e_main(args)
        return

    config = load_config(args.config)
    units = resolve_units(config.sources)
    loaded = load_records(config, units)
    allowed = frozenset(config.license.allowed)
    megabytes = stage_bytes(loaded) / MB

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        LicenseScanner(tmp).licenses("Licensed under the MIT license.")
    index_load = time.perf_counter() - started

    cold, warm = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, roots, passing = license_pass(config, loaded, Path(tmp))
            cold.append(seconds)
            warm += [license_pass(config, loaded, Path(tmp))[0] for _ in range(args.repeat)]

    predicted = {repo: r is not None and decide(r, allowed)[0] is None for repo, r in roots.items()}
    truth = {repo: permissive for repo, (_, permissive) in LABELS.items() if repo in predicted}
    true_positive = sum(predicted[r] and truth[r] for r in truth)
    leaked = [f for f in passing if f["repo"] in truth and not truth[f["repo"]]]
    result = {
        "repositories": len(units),
        "labeled": len(truth),
        "unlabeled": sorted(set(predicted) - set(truth)),
        "megabytes": round(megabytes, 2),
        "precision": round(true_positive / max(sum(predicted[r] for r in truth), 1), 3),
        "recall": round(true_positive / max(sum(truth.values()), 1), 3),
        "missed_permissive": sorted(r for r in truth if truth[r] and not predicted[r]),
        "missed_because": {r: None if roots[r] is None else f"{roots[r].license} ({decide(roots[r], allowed)[0]})"
                           for r in sorted(truth) if truth[r] and not predicted[r]},
        "leaked_files": len(leaked),
        "kept_in_non_permissive": [f"{f['repo']}/{f['path']}: {f['license']} from {f['license_source']}"
                                   for f in leaked],
        "files_passing": len(passing),
        "scancode_index_load_s": round(index_load, 2),
        "repeat": args.repeat,
        "cold_mb_s_per_core": round(megabytes / statistics.median(c for c, _ in cold), 3),
        "warm_mb_s_per_core": round(megabytes / statistics.median(c for c, _ in warm), 3),
        "cold_cpu_s": round(statistics.median(c for c, _ in cold), 2),
        "cold_wall_s": round(statistics.median(w for _, w in cold), 2),
        "warm_cpu_s": round(statistics.median(c for c, _ in warm), 3),
        "warm_wall_s": round(statistics.median(w for _, w in warm), 3),
    }
    if args.alternative_mb > 0:
        texts = alternative_sample(loaded, args.alternative_mb)
        sample_mb = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / MB
        seconds, wall = every_file(texts)
        result["alternative"] = "scancode.api.get_licenses on every file, no cache"
        result["alternative_sample_mb"] = round(sample_mb, 2)
        result["alternative_files"] = len(texts)
        result["alternative_cpu_s"], result["alternative_wall_s"] = round(seconds, 1), round(wall, 1)
        result["alternative_mb_s_per_core"] = round(sample_mb / seconds, 4)
        result["cold_vs_alternative"] = round(result["cold_mb_s_per_core"] / result["alternative_mb_s_per_core"], 1)
        result["warm_vs_alternative"] = round(result["warm_mb_s_per_core"] / result["alternative_mb_s_per_core"], 1)
    publish("license", result)


if __name__ == "__main__":
    main()
