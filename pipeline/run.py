"""One build, start to end: resolve sources into units, run the repository and file stages
per unit (on Ray), the corpus stages over all parts (DuckDB), then the writer and the
manifests. The order of stages is pipeline/flow.py's; this module only drives it.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import signal
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from corpus_core import reasons, schema
from corpus_core.errors import BuildFailed, ConfigError
from corpus_core.locations import Store
from corpus_core.partitions import PartitionPlan
from corpus_core.stage import DROP_COLUMNS, CorpusContext, StageStats
from corpus_core.storage import sql_list
from manifests.attribution import write_attribution, write_notice
from manifests.card import write_card
from manifests.report import write_report
from manifests.writer import write_manifest_parts, write_repos_manifest, write_run_json
from pipeline.config import BuildConfig
from pipeline.executor import make_executor, peak_rss_bytes
from pipeline.flow import STAGES, stages_of
from pipeline.outdir import OutDir, RemoteOutDir, claim_out, refuse_inside_sources
from pipeline.progress import Progress
from pipeline.work import Chunk, WorkDir, mark_done, write_files_part, write_repos_part
from stages.dedup import write_signatures
from stages.license import keep_scancode_inside
from stages.sources import Unit, resolve_units, source_fingerprint

RUN_FORMAT = 1
VERSIONED = ("corpus-pipeline", "enry-python", "ray", "duckdb", "pyarrow", "charset-normalizer", "datasketch",
             "tokenizers")


def process_unit(chunk: Chunk, config: BuildConfig, work_base: str) -> dict[str, Any]:
    """The body of one task: ingest a chunk of a unit, run the file stages, write its parts
    and marker under `work_base/_work/`."""
    started = time.perf_counter()
    work = WorkDir(Path(work_base), config.fingerprint())
    # what the unit's input was when its first chunk read it: a resume compares it
    fingerprint = source_fingerprint(chunk.unit) if chunk.number == 0 else None
    (ingest,) = (spec.build(config) for spec in stages_of("repository"))
    file_stages = [spec.build(config) for spec in stages_of("file")]
    records = ingest.run(chunk.unit, chunk.start, chunk.stop, work.stash(chunk))
    for stage in file_stages:
        records = stage.run(records)
    write_files_part(work, chunk.key, records)
    tables = {}
    for stage in file_stages:  # after the stream: ingest knows every repository, stages all evidence
        tables.update(stage.finish_unit(ingest.repos))
    write_repos_part(work, chunk.key, ingest.repos.values(), tables)
    # ingest's time is the task's wall time less the file stages': reading, decoding, writing
    ingest.stats.seconds = time.perf_counter() - started - sum(s.stats.seconds for s in file_stages)
    marker = {"unit": chunk.unit.key, "chunk": chunk.number, "records": ingest.records,
              "source_fingerprint": fingerprint,
              "stages": {s.name: s.stats.to_dict() for s in [ingest, *file_stages]}}
    mark_done(work, chunk.key, marker)
    return marker


ROWS_PER_PARTITION = 1_000_000  # what one task of a corpus stage takes on, at most, when partitions are chosen


def partition_count(setting: int, executor: Any, files: int) -> int:
    """The corpus stages' partitions: the setting, or when it is 0, one in-process (no task
    runs beside another there) and on Ray four per worker, more past a million files each.
    The output is the same whatever the count."""
    if setting:
        return setting
    if executor.name == "local":
        return 1
    return max(4 * executor.num_workers, -(-files // ROWS_PER_PARTITION))


def _clear_other_cut(work: WorkDir, count: int) -> None:
    """Forget what the corpus stages kept for a resume when it was cut into another number of
    partitions (another --workers, another setting): a partition's result holds other keys."""
    recorded = work.path / "partitions"
    if recorded.exists() and recorded.read_text().strip() != str(count):
        _clear_corpus_scratch(work)
    recorded.write_text(f"{count}\n")


def _clear_corpus_scratch(work: WorkDir) -> None:
    """Remove what the corpus stages kept for a resume (a folder each)."""
    for spec in stages_of("corpus"):
        shutil.rmtree(work.path / spec.name, ignore_errors=True)


def kill_point(name: str) -> None:
    """A named point where a test can kill the build (CORPUS_KILL_AT=NAME, e.g.
    `units_done:3`): resume is tested at a chosen point, not after a sleep."""
    if os.environ.get("CORPUS_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _set_memory_limit(db: duckdb.DuckDBPyConnection, name: str, memory_limit: str | None) -> None:
    """`SET memory_limit` on `db`; a value DuckDB refuses is a ConfigError naming the setting."""
    if memory_limit:
        try:
            db.execute("SET memory_limit = " + "'" + memory_limit.replace("'", "''") + "'")
        except duckdb.Error as err:
            raise ConfigError(f"execution.{name} = {memory_limit!r}: {err}") from err


def _connect(work: WorkDir, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    scratch = work.path / "duckdb"
    scratch.mkdir(parents=True, exist_ok=True)
    db.execute("SET temp_directory = " + "'" + str(scratch).replace("'", "''") + "'")
    db.execute("SET preserve_insertion_order = true")
    _set_memory_limit(db, "duckdb_memory_limit", memory_limit)
    return db


def _load_parts(db: duckdb.DuckDBPyConnection, work: WorkDir, chunks: list[Chunk]) -> None:
    files = [str(work.files_part(c.key)) for c in chunks]
    repos = [str(work.repos_part(c.key)) for c in chunks]
    db.execute(f"CREATE VIEW parts AS SELECT * FROM read_parquet({sql_list(files)})")
    # a repository named by two dataset units keeps the row of the first unit (by key)
    db.execute(
        f"""CREATE TABLE repos AS SELECT DISTINCT ON (repo) * EXCLUDE (filename)
            FROM read_parquet({sql_list(repos)}, filename = true) ORDER BY repo, filename"""
    )
    for spec in stages_of("file"):
        for table in spec.cls.writes:
            paths = [str(work.table_part(c.key, table)) for c in chunks]
            db.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet({sql_list(paths)})")
    # what corpus stages decide: drops, and the license columns of every file that was read
    db.execute("CREATE TABLE decisions (unit VARCHAR, ordinal BIGINT, reason VARCHAR, detail VARCHAR, dup_of VARCHAR)")
    db.execute(f"CREATE TABLE annotations AS SELECT unit, ordinal, {', '.join(schema.ANNOTATED)} FROM parts LIMIT 0")
    # an annotated file takes all its license columns from its annotation, as a group
    annotated = ", ".join(f"CASE WHEN a.ordinal IS NULL THEN p.{name} ELSE a.{name} END AS {name}"
                          for name in schema.ANNOTATED)
    db.execute(
        f"""CREATE VIEW files AS
           SELECT p.* REPLACE (
                      CASE WHEN d.reason IS NULL THEN p.decision ELSE 'dropped' END AS decision,
                      coalesce(d.reason, p.reason) AS reason,
                      coalesce(d.detail, p.detail) AS detail,
                      coalesce(d.dup_of, p.dup_of) AS dup_of,
                      {annotated},
                      CASE WHEN d.reason IS NULL THEN p.content END AS content),
                  r.stars
           FROM parts p LEFT JOIN decisions d USING (unit, ordinal)
                LEFT JOIN annotations a USING (unit, ordinal) LEFT JOIN repos r USING (repo)"""
    )


def _run_corpus_stages(db: duckdb.DuckDBPyConnection, config: BuildConfig, context: CorpusContext,
                       stats: dict[str, StageStats]) -> None:
    for spec in stages_of("corpus"):
        stage = spec.build(config)
        started = time.perf_counter()
        context.progress.phase(f"{spec.name}")
        ((files_in, bytes_in),) = db.sql(
            "SELECT count(*), coalesce(sum(size), 0) FROM files WHERE decision = 'kept'"
        ).fetchall()
        db.execute(f"CREATE OR REPLACE TEMP TABLE stage_drops AS {stage.drops(db, context)}")
        dropped = Counter(dict(db.execute("SELECT reason, count(*) FROM stage_drops GROUP BY reason").fetchall()))
        db.execute(f"INSERT INTO decisions SELECT {', '.join(DROP_COLUMNS)} FROM stage_drops")
        stats[spec.name] = StageStats(files_in, bytes_in, files_in - sum(dropped.values()), dropped,
                                      time.perf_counter() - started, stage.stats.notes)


def _check_inputs(config: BuildConfig) -> None:
    """What would make a build silently wrong, refused before any work."""
    registry = config.optout.registry
    if registry:
        if not os.path.isfile(registry):
            raise ConfigError(f"optout.registry = {registry!r} does not exist; create it (`corpus optout add`) or "
                              "remove the setting")
        from manifests.optout import load

        load(registry)  # a malformed entry is a ConfigError now, not on every worker
    if config.execution.license_cache:
        cache = Store(config.execution.license_cache)  # a bad URL fails here, not in every task
        try:
            cache.list()
        except OSError as err:
            raise ConfigError(f"execution.license_cache {cache.location} cannot be read: {err}") from None


def _input_below(units: list[Unit], limit: int) -> bool:
    """True when every unit is a local path and all of them hold fewer than `limit` bytes
    (counting stops at the limit; fetched kinds count as large: their size is unknown)."""
    if limit <= 0:
        return False
    total = 0
    for unit in units:
        if unit.kind in ("pypi", "npm", "git_url"):
            return False
        path = Path(unit.location)
        paths = [path] if path.is_file() else (
            (Path(root) / name for root, _, names in os.walk(path) for name in names))
        for file in paths:
            try:
                total += file.lstat().st_size
            except OSError:
                continue
            if total >= limit:
                return False
    return True


def _changed_since(unit: Unit, marker: dict[str, Any]) -> bool:
    """True when the unit's source is not what its done parts were made from."""
    recorded = marker.get("source_fingerprint")
    return recorded is not None and source_fingerprint(unit) != recorded


def _check_failures(stats: dict[str, StageStats], config: BuildConfig, failed_sources: list[str],
                    units: int) -> None:
    """Fail loudly where the build's result cannot be trusted; the reasons in the message."""
    problems = []
    if failed_sources and len(failed_sources) == units:
        shown = "; ".join(failed_sources[:5]) + (" ..." if len(failed_sources) > 5 else "")
        problems.append(f"every source failed: {shown}")
    ingest = stats["ingest"]
    if not problems and ingest.files_in and not ingest.kept:
        reasons_seen = ", ".join(f"{n} {r}" for r, n in sorted(ingest.dropped.items()))
        problems.append(f"no file could be read as text ({reasons_seen})")
    share = config.execution.max_stage_error_share
    for name, stage in stats.items():
        errors = stage.dropped.get(reasons.STAGE_ERROR, 0)
        if errors and errors > share * stage.files_in:
            problems.append(f"stage {name} raised on {errors} of {stage.files_in} files (more than "
                            f"execution.max_stage_error_share = {share}); see reason stage_error in the parts")
    if problems:
        raise BuildFailed("; ".join(problems) + " (the parts are kept in _work/ for a look; a rerun resumes)")


def build(config: BuildConfig, out_dir: str | Path, progress: Progress | None = None,
          force: bool = False) -> dict[str, Any]:
    """Build the corpus into `out_dir` (a folder, or an object store URL); returns what
    run.json records. `out_dir` must be empty, new or a previous build's (pipeline/outdir.py)
    unless `force`."""
    started = time.perf_counter()
    progress = progress or Progress(stream=sys.stderr)
    units = resolve_units(config.sources)
    if not units:
        raise ConfigError("no sources: name some in the config or on the command line")
    _check_inputs(config)
    refuse_inside_sources(Path(config.cache_dir), config.sources, "cache_dir")
    keep_scancode_inside(config.cache_dir)  # the driver reads ScanCode's license texts (NOTICE) too
    if config.execution.work_dir:
        refuse_inside_sources(Path(config.execution.work_dir), config.sources, "execution.work_dir")
    with claim_out(out_dir, config.sources, force=force, work_dir=config.execution.work_dir,
                   cache_dir=config.cache_dir) as out:
        return _build(config, out, units, progress, started)


def _build(config: BuildConfig, out: OutDir | RemoteOutDir, units: list[Unit], progress: Progress,
           started: float) -> dict[str, Any]:
    work = WorkDir(out.work_base, config.fingerprint())
    work.prepare()

    stats: dict[str, StageStats] = {spec.name: StageStats() for spec in STAGES}

    execution = config.execution
    chunks: dict[str, list[Chunk]] = {}  # unit key -> all its chunks, once its first one is done
    waiting: dict[str, int] = {}  # unit key -> chunks not done yet
    finished = 0

    def take(marker: dict[str, Any]) -> None:
        for name, values in marker["stages"].items():
            stats[name].merge(StageStats.from_dict(values))

    def plan(first: Chunk, marker: dict[str, Any]) -> list[Chunk]:
        """A unit's chunks from its first one's marker; returns those still to run."""
        chunks[first.unit.key] = first.all_of_unit(marker["records"])
        rest = []
        for chunk in chunks[first.unit.key][1:]:
            if work.is_done(chunk.key):
                take(work.read_marker(chunk.key))
            else:
                rest.append(chunk)
        waiting[first.unit.key] = len(rest)
        if not rest:
            unit_finished(first)
        return rest

    def unit_finished(chunk: Chunk) -> None:
        if (stash := work.stash(chunk)) is not None:
            stash.unlink(missing_ok=True)  # its chunks are done: nothing reads it again

    def chunk_done(chunk: Chunk, marker: dict[str, Any]) -> list[Chunk]:
        nonlocal finished
        take(marker)
        progress.chunk_done(marker)
        if chunk.number == 0:
            rest = plan(chunk, marker)  # the unit's other chunks are known now
        else:
            rest = []
            waiting[chunk.unit.key] -= 1
        if waiting[chunk.unit.key] == 0:
            if chunk.number:
                unit_finished(chunk)
            progress.unit_done(chunk.unit.key)
            finished += 1
            kill_point(f"units_done:{finished}")
        return rest

    todo: list[Chunk] = []
    done = 0
    redone: list[str] = []
    for unit in units:
        first = Chunk(unit, 0, execution.chunk_files)
        if work.is_done(first.key) and _changed_since(unit, work.read_marker(first.key)):
            for part in work.unit_files(unit.key, first.key):  # never mix parts of the old input with the new
                part.unlink()
            redone.append(unit.repo or unit.location)
        if work.is_done(first.key):
            marker = work.read_marker(first.key)
            take(marker)
            todo += plan(first, marker)
            done += waiting[unit.key] == 0
        else:
            todo.append(first)
    kind = execution.executor
    if kind == "ray" and not (execution.ray_address or os.environ.get("RAY_ADDRESS")) \
            and _input_below(units, execution.local_below_bytes):
        kind = "local"  # starting Ray costs more than it saves; the bytes are the same either way
    db = _connect(work, execution.duckdb_memory_limit)  # a bad memory limit fails before Ray starts
    _set_memory_limit(duckdb.connect(), "partition_memory_limit", execution.partition_memory_limit)  # checked now
    executor = make_executor(kind, execution.num_workers, execution.ray_address, execution.connect_timeout_s)
    progress.start_units(len(units), resumed=done, workers=executor.num_workers, executor=executor.name)
    if redone:
        progress.note(f"{len(redone)} source(s) changed since the interrupted build, read again: "
                      + ", ".join(redone[:5]) + (" ..." if len(redone) > 5 else ""))
    if todo:  # what corpus stages kept for a resume was made from other parts: never reuse it
        _clear_corpus_scratch(work)
    try:
        executor.map(process_unit, todo, (config, str(out.work_base)), chunk_done)
        progress.end_units()
        _load_parts(db, work, [chunk for unit in units for chunk in chunks[unit.key]])
        failed = [f"{repo}: {error}" for repo, error in db.execute(
            "SELECT repo, detail FROM repos WHERE detail IS NOT NULL ORDER BY repo").fetchall()]
        _check_failures(stats, config, failed, len(units))
        # corpus stages may hand work to the executor too (near dedup's signatures)
        count = partition_count(execution.partitions, executor, stats["ingest"].files_in)
        _clear_other_cut(work, count)
        # a task's DuckDB spills into _work (removed with it); in-process, one task at a time takes every core
        cut = PartitionPlan(count, execution.partition_memory_limit, spill=str(work.path / "duckdb-tasks"),
                            threads=(os.cpu_count() or 1) if executor.name == "local" else 1)
        parts = {c.key: str(work.files_part(c.key)) for unit in units for c in chunks[unit.key]}
        context = CorpusContext(work.path, executor, progress, cut, parts)
        _run_corpus_stages(db, config, context, stats)

        # the writer's shard tasks run on the executor too
        (writer_spec,) = stages_of("output")
        writer = writer_spec.build(config)
        progress.phase(writer_spec.name)
        writer_started = time.perf_counter()
        shutil.rmtree(work.staging, ignore_errors=True)
        (work.staging / "manifest").mkdir(parents=True)
        tokenizer = work.path / "tokenize" / "tokenizer.json" if config.tokenize.enabled else None
        writer.place(db, work.path, tokenized=tokenizer is not None)
        # staging mirrors OUT: shards/, index.json, tokenizer.json
        index = writer.write(db, work.staging, context, tokenizer)
        # manifest/files/ and manifest/sbom/: a task per part, as the shards
        fingerprint = write_manifest_parts(db, work.staging / "manifest", context)
        # near dedup's signatures, kept for searching the build for near copies (corpus serve): a task per part
        write_signatures(db, context, work.staging / "manifest", config.near_dedup)
    finally:
        executor.shutdown()

    write_repos_manifest(db, work.staging / "manifest" / "repos.parquet")
    write_attribution(db, work.staging / "manifest" / "attribution.parquet")
    write_notice(db, work.staging / "NOTICE")
    writer.stats.seconds = time.perf_counter() - writer_started
    stats[writer_spec.name] = writer.stats

    (totals,) = db.sql(
        """SELECT count(*), count(*) FILTER (WHERE decision = 'kept'), coalesce(sum(size), 0),
                  coalesce(sum(size) FILTER (WHERE decision = 'kept'), 0) FROM files"""
    ).fetchall()
    dropped = dict(db.execute(
        "SELECT reason, count(*) FROM files WHERE decision = 'dropped' GROUP BY reason ORDER BY reason"
    ).fetchall())
    languages = dict(db.execute(
        """SELECT coalesce(language, '(unknown)'), count(*) FROM files WHERE decision = 'kept'
           GROUP BY ALL ORDER BY count(*) DESC, 1"""
    ).fetchall())
    # tokens per language, in the order of `languages` (none when tokenization is off)
    language_tokens = {} if not config.tokenize.enabled else {language: 0 for language in languages} | dict(
        db.execute("""SELECT coalesce(f.language, '(unknown)'), sum(t.num_tokens)::BIGINT
                      FROM files f JOIN tokens t USING (unit, ordinal) WHERE f.decision = 'kept' GROUP BY ALL"""
                   ).fetchall())
    unknown = set(dropped) - set(reasons.REASONS)
    if unknown:
        raise RuntimeError(f"reasons outside the documented set: {sorted(unknown)}")
    run = {
        "format": RUN_FORMAT,
        "out_dir": out.location,
        "config": config.to_dict(),
        "config_fingerprint": config.fingerprint(),
        "input_fingerprint": fingerprint,
        "versions": _versions(),
        "executor": {"kind": executor.name, "workers": executor.num_workers, "partitions": cut.count,
                     "tasks": executor.usage.to_dict(),
                     "driver_peak_rss_mb": round(peak_rss_bytes() / 2**20, 1)},
        "units": {"total": len(units), "resumed": done, "redone": len(redone),
                  "chunks": sum(map(len, chunks.values()))},
        "counts": {
            "files": totals[0], "kept": totals[1], "dropped": dropped,
            "bytes_in": totals[2], "bytes_kept": totals[3],
            "repositories": db.sql("SELECT count(*) FROM repos").fetchall()[0][0],
            "languages": languages,
            "language_tokens": language_tokens,
        },
        "shards": index["totals"],
        "stages": [{"name": name, **stats[name].to_dict()} for name in stats],  # a list: flow order
        "wall_seconds": round(time.perf_counter() - started, 3),
        "finished_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    db.close()
    write_run_json(work.staging / "manifest" / "run.json", run)
    write_card(work.staging)  # README.md, from the manifests and run.json just written
    write_report(work.staging)  # report.html, from the same: charts of the funnel, languages, licenses, sizes
    out.publish(work.staging)
    if not execution.keep_work_dir:
        work.remove()
    return run
