"""The `corpus` command: build a corpus, inspect why files would be kept or dropped, audit a
build, manage opt-outs, look code up in a build, draw its report and serve the code owners'
page."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path

from corpus_core.errors import BuildFailed, ConfigError
from corpus_core.schema import files_manifest
from pipeline.config import load_config, resolve_source_path

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

    from corpus_core.records import SourceSpec
    from pipeline.progress import Progress, summary
    from pipeline.run import build

    config = load_config(args.config, _overrides(args))
    if args.sources:  # sources on the command line replace the config's list
        config = replace(config, sources=tuple(
            SourceSpec(source=resolve_source_path(s, Path.cwd())) for s in args.sources
        ))
    run = build(config, args.out, Progress(stream=sys.stderr, quiet=args.quiet), force=args.force)
    print(summary(run))
    served = "" if "://" in run["out_dir"] else f"; `corpus serve {run['out_dir']}` for code owners"
    print(f"  report: {run['out_dir']}/report.html (charts{served})")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from pipeline.inspect import format_line, inspect_paths

    config = load_config(args.config)
    for row in inspect_paths(args.paths, config):
        print(json.dumps(row, sort_keys=True) if args.json else format_line(row), flush=True)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from pipeline.audit import AuditError, Policy, audit, connect, format_report, load_policy

    try:
        if args.sql:
            rows = connect(Path(args.out)).sql(args.sql)
            if args.json:
                print(json.dumps(rows.to_arrow_table().to_pylist(), default=str))
            else:
                rows.show(max_rows=10_000)
            return 0
        # the policy first: a broken one is a config error before any of OUT is read
        policy = load_policy(args.policy) if args.policy else Policy()
        report = audit(args.out, policy, pii_sample=args.pii_sample)
    except AuditError as err:
        print(f"corpus audit: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except duckdb_error() as err:
        print(f"corpus audit: the query failed: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(format_report(report))
    return 0 if report.passed else EXIT_FAILED


def _registry(args: argparse.Namespace) -> Path:
    if args.registry:
        return Path(args.registry)
    if args.config:
        registry = load_config(args.config).optout.registry
        if registry:
            return Path(registry)
        raise ConfigError(f"{args.config} names no optout.registry")
    raise ConfigError("name the registry: --registry FILE, or --config CONFIG with optout.registry")


def cmd_optout(args: argparse.Namespace) -> int:
    from manifests import optout

    registry = _registry(args)
    if args.action == "list":
        entries = optout.load(registry)
        if args.json:
            print(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
        else:
            for entry in entries:
                print(entry.describe())
            print(f"{len(entries)} opt-out(s) in {registry}")
        return 0
    if args.action == "review":
        return _review(args, registry)
    if args.action == "remove":
        entry = optout.remove(registry, args.id)
        print(f"removed {entry.describe()}")
        return 0
    if args.action == "apply":
        from manifests.republish import apply_optout

        target = args.to or f"{str(args.out).rstrip('/')}-optout-{datetime_stamp()}"
        result = apply_optout(args.out, registry, target)
        for row in result["removed"]:
            print(f"removed {row['repo']}/{row['path']}  (opt-out {row['optout']})")
        print(f"{len(result['removed'])} file(s) removed; the new version is {result['out']} "
              f"({args.out} is unchanged)")
        return 0
    # add
    chosen = [k for k in ("owner", "path", "sha256", "file") if getattr(args, k)]
    if len(chosen) > 1 or (not chosen and not args.repo):
        raise ConfigError("say what to opt out: --repo owner/name, --owner NAME, --path GLOB --repo owner/name, "
                          "--sha256 HEX or --file PATH (one of them)")
    if args.file:
        from corpus_core.storage import sha256_file

        kind, value = "sha256", sha256_file(Path(args.file))
    elif args.sha256:
        kind, value = "sha256", args.sha256.lower()
    elif args.owner:
        kind, value = "owner", args.owner
    elif args.path:
        kind, value = "path", args.path
    else:
        kind, value = "repo", args.repo
    entry = optout.make_entry(kind, value, repo=args.repo if kind == "path" else None, requested_by=args.by,
                              reason=args.reason or "")
    optout.add(registry, entry)
    print(f"added {entry.describe()}")
    return 0


def _review(args: argparse.Namespace, registry: Path) -> int:
    """List the pending web requests, or accept or reject one."""
    from manifests import optout

    if args.accept or args.reject:
        if not args.by:
            raise ConfigError("say who decides: --by NAME")
        decided = optout.decide(registry, args.accept or args.reject, accept=bool(args.accept), by=args.by,
                                note=args.note or "")
        where = f"; it is in {registry} now" if decided.status == "accepted" else ""
        print(f"{decided.status} {decided.describe()}{where}")
        return 0
    requests = [r for r in optout.load_requests(registry) if args.all or r.status == "pending"]
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in requests], indent=2))
        return 0
    for request in requests:
        print(f"{request.status:<8} {request.describe()}")
    pending = sum(r.status == "pending" for r in requests)
    print(f"{pending} pending request(s) in {optout.requests_path(registry)}; decide with --accept ID or --reject ID "
          "--by NAME")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import tempfile

    from manifests.report import REPORT, write_report
    from pipeline import flow  # noqa: F401 - the stages' reasons, which the report places in the funnel
    from pipeline.outdir import OutDir

    out = Path(args.out)
    if not files_manifest(out) or not (out / "manifest" / "run.json").is_file():
        raise ConfigError(f"{out}: not a finished build (no manifest/files/ and manifest/run.json)")
    with OutDir(out, ()) as claimed, tempfile.TemporaryDirectory(dir=claimed.path, prefix=".report-") as staging:
        write_report(claimed.path, Path(staging) / REPORT)
        claimed.add(Path(staging))  # listed in the build's marker, as every output is
    print(f"wrote {out / REPORT}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pipeline.search import open_builds
    from pipeline.web import ServeConfig, create_app

    registry = _registry(args) if (args.registry or args.config) else None
    config = ServeConfig(open_builds(args.outs), registry=registry, rate_limit=args.rate_limit,
                         max_paste_bytes=args.max_paste_bytes, trusted_proxies=tuple(args.trusted_proxy or ()))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"corpus serve: listening on {args.host}: anyone who can reach it can search and send opt-out requests; "
              "put it behind a reverse proxy (--trusted-proxy ADDRESS for its X-Forwarded-For)", file=sys.stderr)
    names = ", ".join(config.builds)
    print(f"serving {names} on http://{args.host}:{args.port}/ (opt-out requests: "
          f"{optout_requests(registry) if registry else 'off, no --registry or --config'})", file=sys.stderr)
    # the client address is ours to work out (pipeline/web.py): uvicorn must not rewrite it from headers
    uvicorn.run(create_app(config), host=args.host, port=args.port, proxy_headers=False, server_header=False,
                log_level="warning" if args.quiet else "info")
    return 0


def optout_requests(registry: Path) -> Path:
    from manifests.optout import requests_path

    return requests_path(registry)


def datetime_stamp() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")


def cmd_lookup(args: argparse.Namespace) -> int:
    from manifests.republish import lookup

    sha256 = args.sha256
    if args.file:
        from corpus_core.storage import sha256_file

        sha256 = sha256_file(Path(args.file))
    if not (args.repo or args.owner or sha256):
        raise ConfigError("look up --repo owner/name, --owner NAME, --file PATH or --sha256 HEX")
    rows = lookup(args.out, repo=args.repo, owner=args.owner, sha256=sha256)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        where = f"shard {row['shard']} row {row['row']}" if row["decision"] == "kept" else f"dropped: {row['reason']}"
        print(f"{row['repo']}/{row['path']}\t{where}")
    kept = sum(row["decision"] == "kept" for row in rows)
    what = args.repo or args.owner or f"content {sha256[:16]}…"
    print(f"{what}: {len(rows)} file(s) in {args.out}, {kept} of them in the shards")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    try:
        from trainer.train import load_train_config, train
    except ImportError as err:
        raise ConfigError(f"training needs the train extra (pip install -e '.[train]'): {err}") from err
    config = load_train_config(args.config)
    figures = train(config)
    print(f"trained to step {figures.get('step')}: loss {figures.get('loss')}; checkpoint in {config.out_dir}/ckpt.pt")
    return 0


def duckdb_error() -> type[Exception]:
    import duckdb

    return duckdb.Error


def local_build(value: str) -> str:
    """A build these commands read (or add to) in place: a local folder. A build on an object
    store is copied down first; only `corpus build` writes there, and the trainer reads it."""
    from corpus_core.locations import is_url, shown

    if is_url(value):
        raise argparse.ArgumentTypeError(f"{shown(value)} is an object store: this command reads a local build; copy "
                                         "it down first (e.g. `aws s3 sync`)")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="corpus", description=__doc__)
    top.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    commands = top.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build a corpus: shards, manifests, run.json")
    build.add_argument("sources", nargs="*", metavar="SOURCE",
                       help="archive, directory, git+URL[@REV], pypi:NAME==VER, npm:NAME@VER, "
                            ".parquet/.jsonl dataset; replaces the config's sources")
    build.add_argument("--config", help="TOML config (default: built-in defaults)")
    build.add_argument("--out", required=True, help="output directory, e.g. out/corpus, or an object store URL, e.g. "
                       "s3://bucket/corpus (its work folder: execution.work_dir)")
    build.add_argument("--workers", type=int, help="tasks in flight (default: all CPUs Ray sees)")
    build.add_argument("--executor", choices=("ray", "local"), help="where units run (default: ray)")
    build.add_argument("--ray-address", help="Ray cluster to run on (or set RAY_ADDRESS)")
    build.add_argument("--keep-work", action="store_true", help="keep the work folder after success "
                       "(OUT/_work, or execution.work_dir's)")
    build.add_argument("--force", action="store_true",
                       help="write into an --out that holds files no build made (they are left alone; outputs of the "
                            "same names are replaced)")
    build.add_argument("--quiet", action="store_true", help="no progress lines")
    build.set_defaults(run=cmd_build)

    inspect = commands.add_parser("inspect", help="show each file's language and stage verdicts")
    inspect.add_argument("paths", nargs="+", metavar="PATH", help="files, directories or any SOURCE")
    inspect.add_argument("--json", action="store_true", help="one JSON object per line")
    inspect.add_argument("--config", help="TOML config whose thresholds to apply")
    inspect.set_defaults(run=cmd_inspect)

    audit = commands.add_parser("audit", help="check a build's shards and manifests against a compliance policy")
    audit.add_argument("out", metavar="OUT", type=local_build, help="the output directory of a build")
    audit.add_argument("--policy", metavar="FILE",
                       help="TOML with the [license] (allowed), [optout] (registry) and [pii] tables of a build "
                            "config (default: the project's shipped defaults, never the build's own run.json)")
    audit.add_argument("--pii-sample", type=int, metavar="N",
                       help="shard rows, chosen by md5 of id, to re-run the PII detectors on (default 300; 0: none)")
    audit.add_argument("--json", action="store_true", help="the report (or the query's rows) as JSON")
    audit.add_argument("--sql", help="run a DuckDB query over the views files, repos, attribution")
    audit.set_defaults(run=cmd_audit)

    opt = commands.add_parser("optout", help="manage the opt-out registry; apply it to a published build")
    actions = opt.add_subparsers(dest="action", required=True)
    for name, help_text in (("add", "add a request"), ("list", "show the registry"), ("remove", "remove a request"),
                            ("apply", "remove opted-out files from a build, as a new version"),
                            ("review", "list the web page's pending requests; accept or reject one")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--registry", help="the registry file (default: the config's optout.registry)")
        action.add_argument("--config", help="TOML config naming optout.registry")
        if name == "add":
            action.add_argument("--repo", help="owner/name (with --path: the repository the glob applies to)")
            action.add_argument("--owner", help="every repository of this owner")
            action.add_argument("--path", help="a path glob inside --repo, e.g. 'src/secret/*'")
            action.add_argument("--sha256", help="a file content's sha256")
            action.add_argument("--file", help="a file whose content to opt out (its sha256 is recorded)")
            action.add_argument("--by", required=True, help="who asked (name or e-mail of the requester)")
            action.add_argument("--reason", help="why, in the requester's words")
        elif name == "list":
            action.add_argument("--json", action="store_true")
        elif name == "remove":
            action.add_argument("id", help="the entry id `list` shows")
        elif name == "review":
            decision = action.add_mutually_exclusive_group()
            decision.add_argument("--accept", metavar="ID", help="move a pending request into the registry")
            decision.add_argument("--reject", metavar="ID", help="refuse a pending request")
            action.add_argument("--by", help="who decides (recorded with the decision)")
            action.add_argument("--note", help="the reviewer's words, kept with the request")
            action.add_argument("--all", action="store_true", help="list decided requests too")
            action.add_argument("--json", action="store_true")
        else:
            action.add_argument("out", metavar="OUT", type=local_build,
                                help="the build to apply the registry to (left unchanged)")
            action.add_argument("--to", type=local_build,
                                help="where the new version goes (default: OUT-optout-<UTC time>)")
        action.set_defaults(run=cmd_optout)

    look = commands.add_parser("lookup", help="is my code in this build, and where?")
    look.add_argument("out", metavar="OUT", type=local_build, help="the output directory of a build")
    look.add_argument("--repo", help="owner/name")
    look.add_argument("--owner", help="every repository of an owner")
    look.add_argument("--file", help="a file: found by its content's sha256, in any repository")
    look.add_argument("--sha256", help="a content hash")
    look.add_argument("--json", action="store_true")
    look.set_defaults(run=cmd_lookup)

    report = commands.add_parser("report", help="write OUT/report.html again: charts of a finished build")
    report.add_argument("out", metavar="OUT", type=local_build, help="the output directory of a build")
    report.set_defaults(run=cmd_report)

    serve = commands.add_parser("serve", help="the code owners' web page over finished builds: search, opt out")
    serve.add_argument("outs", nargs="+", metavar="OUT", type=local_build,
                       help="builds to serve, each named by its folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--registry", help="the opt-out registry; web requests go to a requests file beside it")
    serve.add_argument("--config", help="TOML config naming optout.registry (instead of --registry)")
    serve.add_argument("--trusted-proxy", action="append", metavar="ADDRESS",
                       help="a reverse proxy (address or network) whose X-Forwarded-For names the client; repeatable")
    serve.add_argument("--rate-limit", type=int, default=60, help="requests per client per minute (default 60)")
    serve.add_argument("--max-paste-bytes", type=int, default=256 * 1024,
                       help="largest pasted file compared (default 262144)")
    serve.add_argument("--quiet", action="store_true", help="log warnings only, not every request")
    serve.set_defaults(run=cmd_serve)

    trainer = commands.add_parser("train", help="train the bundled MQA/FIM model on a build's shards")
    trainer.add_argument("config", metavar="CONFIG", help="TOML with a [train] table, e.g. configs/train-tiny.toml")
    trainer.set_defaults(run=cmd_train)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as err:
        print(f"corpus: error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except BuildFailed as err:
        print(f"corpus: build failed: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("corpus: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `corpus lookup ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except Exception as err:  # a bug or an infrastructure failure: one clear line, not a dump
        if args.debug:
            traceback.print_exc()
        print(f"corpus: failed: {type(err).__name__}: {err} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
