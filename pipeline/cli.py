"""The `corpus` command: build a corpus, or inspect why files would be kept or dropped."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from pipeline.config import ConfigError, load_config, resolve_source_path

EXIT_CONFIG = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _overrides(args: argparse.Namespace) -> dict[str, dict]:
    execution = {}
    if args.workers is not None:
        execution["num_workers"] = args.workers
    if args.executor is not None:
        execution["executor"] = args.executor
    if getattr(args, "ray_address", None):
        execution["ray_address"] = args.ray_address
    if getattr(args, "keep_work", False):
        execution["keep_work_dir"] = True
    return {"execution": execution} if execution else {}


def cmd_build(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from pipeline.config import SourceSpec
    from pipeline.progress import Progress, summary
    from pipeline.run import build

    config = load_config(args.config, _overrides(args))
    if args.sources:  # sources on the command line replace the config's list
        config = replace(config, sources=tuple(
            SourceSpec(source=resolve_source_path(s, Path.cwd())) for s in args.sources
        ))
    run = build(config, args.out, Progress(stream=sys.stderr, quiet=args.quiet))
    print(summary(run))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from pipeline.inspect import format_line, inspect_paths

    config = load_config(args.config)
    for row in inspect_paths(args.paths, config):
        print(json.dumps(row, sort_keys=True) if args.json else format_line(row), flush=True)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from manifests.audit import AuditError, audit, connect, format_report

    try:
        if args.sql:
            rows = connect(Path(args.out)).sql(args.sql)
            if args.json:
                print(json.dumps(rows.to_arrow_table().to_pylist(), default=str))
            else:
                rows.show(max_rows=10_000)
            return 0
        report = audit(args.out)
    except AuditError as err:
        print(f"corpus audit: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except duckdb_error() as err:
        print(f"corpus audit: the query failed: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps({"passed": report.passed, "failures": report.failures, "licenses": report.licenses,
                          "conflicts": report.conflicts}, indent=2, default=str))
    else:
        print(format_report(report))
    return 0 if report.passed else EXIT_FAILED


def duckdb_error() -> type[Exception]:
    import duckdb

    return duckdb.Error


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="corpus", description=__doc__)
    top.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    commands = top.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build a corpus: shards, manifests, run.json")
    build.add_argument("sources", nargs="*", metavar="SOURCE",
                       help="archive, directory, git+URL[@REV], pypi:NAME==VER, npm:NAME@VER, "
                            ".parquet/.jsonl dataset; replaces the config's sources")
    build.add_argument("--config", help="TOML config (default: built-in defaults)")
    build.add_argument("--out", required=True, help="output directory, e.g. out/corpus")
    build.add_argument("--workers", type=int, help="tasks in flight (default: all CPUs Ray sees)")
    build.add_argument("--executor", choices=("ray", "local"), help="where units run (default: ray)")
    build.add_argument("--ray-address", help="Ray cluster to run on (or set RAY_ADDRESS)")
    build.add_argument("--keep-work", action="store_true", help="keep OUT/_work after success")
    build.add_argument("--quiet", action="store_true", help="no progress lines")
    build.set_defaults(run=cmd_build)

    inspect = commands.add_parser("inspect", help="show each file's language and stage verdicts")
    inspect.add_argument("paths", nargs="+", metavar="PATH", help="files, directories or any SOURCE")
    inspect.add_argument("--json", action="store_true", help="one JSON object per line")
    inspect.add_argument("--config", help="TOML config whose thresholds to apply")
    inspect.set_defaults(run=cmd_inspect)

    audit = commands.add_parser("audit", help="check a build's licenses, evidence and shard checksums")
    audit.add_argument("out", metavar="OUT", help="the output directory of a build")
    audit.add_argument("--json", action="store_true", help="the report (or the query's rows) as JSON")
    audit.add_argument("--sql", help="run a DuckDB query over the views files, repos, attribution")
    audit.set_defaults(run=cmd_audit)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as err:
        print(f"corpus: error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("corpus: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug or an infrastructure failure: one clear line, not a dump
        if args.debug:
            traceback.print_exc()
        print(f"corpus: failed: {type(err).__name__}: {err} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
