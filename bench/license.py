"""Benchmark: the license stage on a labeled set of real packages (the default sample).

    .venv/bin/python bench/license.py [--config configs/default.toml] [--repeat 3]

Labels: each package's declared license from its registry, checked by hand against the
license text it ships (LABELS below). Reported:
  precision, recall   of the permissive decision per repository (precision must be 1.0);
  leaked_files        kept files from non-permissive packages (must be 0);
  cold, warm          the stage's seconds per repository with an empty and a filled
                      ScanCode cache (median of --repeat; ScanCode's one-time index load
                      is excluded and reported apart);
  every_file          the obvious alternative in the same process: ScanCode's
                      get_licenses on every file of each repository, and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from report import publish  # bench/report.py

from pipeline.config import load_config
from pipeline.flow import stages_of
from stages.ingest import Ingest
from stages.license import LicenseDetector, effective_license, scopes_of, verdict
from stages.sources import resolve_units

ROOT = Path(__file__).resolve().parents[1]

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
    """Every unit's records after the stages before license (ingest, language), in memory."""
    before = [spec for spec in stages_of("file") if spec.name != "license"]
    loaded = []
    for unit in units:
        ingest = Ingest(config.ingest, config.cache_dir)
        records = ingest.run(unit)
        for spec in before:
            records = spec.build(config).run(records)
        loaded.append((unit, list(records), ingest.repos))
    return loaded


def license_pass(config, loaded, cache_dir: Path):
    """The stage over every unit: (seconds, {repo: root resolution}, repos of kept files)."""
    allowed = frozenset(config.license.allowed)
    started = time.perf_counter()
    roots, kept = {}, []
    for _, records, repos in loaded:
        stage = LicenseDetector(config.license, cache_dir)
        for record in records:
            if record.kept:
                stage.process(record)
        scopes = scopes_of(stage.finish_unit(repos)["licenses"].to_pylist())
        for record in records:
            if record.kept:
                found = effective_license(record.path, record.license, record.license_source,
                                          scopes.get(record.repo, {}))
                if verdict(found.license, found.conflict, allowed) is None:
                    kept.append(record.repo)
        for name in repos:
            roots[name] = scopes.get(name, {}).get("")
    return time.perf_counter() - started, roots, kept


def every_file(loaded) -> float:
    """The alternative: ScanCode on every text file of every repository, no cache."""
    from scancode.api import get_licenses

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "file"
        for _, records, _ in loaded:
            for record in records:
                if record.content is not None:
                    scratch.write_text(record.content, encoding="utf-8", errors="surrogatepass")
                    get_licenses(str(scratch))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.toml"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-every-file", action="store_true", help="skip the slow alternative")
    args = parser.parse_args()

    config = load_config(args.config)
    units = resolve_units(config.sources)
    loaded = load_records(config, units)
    repos = len(units)
    allowed = frozenset(config.license.allowed)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        from stages.license import LicenseScanner

        LicenseScanner(tmp).licenses("Licensed under the MIT license.")
    index_load = time.perf_counter() - started

    cold, warm = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, roots, kept = license_pass(config, loaded, Path(tmp))
            cold.append(seconds)
            for _ in range(args.repeat):
                warm.append(license_pass(config, loaded, Path(tmp))[0])

    predicted = {repo: r is not None and verdict(r.license, r.conflict, allowed) is None for repo, r in roots.items()}
    truth = {repo: permissive for repo, (_, permissive) in LABELS.items()}
    true_positive = sum(predicted[r] and truth[r] for r in truth)
    result = {
        "repositories": repos,
        "precision": round(true_positive / max(sum(predicted[r] for r in truth), 1), 3),
        "recall": round(true_positive / max(sum(truth.values()), 1), 3),
        "missed_permissive": sorted(r for r in truth if truth[r] and not predicted[r]),
        "leaked_files": sum(1 for repo in kept if not truth[repo]),
        "scancode_index_load_s": round(index_load, 2),
        "cold_s_per_repo": round(statistics.median(cold) / repos, 4),
        "warm_s_per_repo": round(statistics.median(warm) / repos, 5),
    }
    if not args.skip_every_file:
        result["every_file_s_per_repo"] = round(every_file(loaded) / repos, 4)
        result["every_file_vs_cold"] = round(result["every_file_s_per_repo"] / result["cold_s_per_repo"], 1)
        result["every_file_vs_warm"] = round(result["every_file_s_per_repo"] / result["warm_s_per_repo"], 1)
    publish("license", result)


if __name__ == "__main__":
    main()
