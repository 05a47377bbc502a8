"""Corpus work over hash partitions: how a corpus stage leaves the driver.

A partitioned corpus stage runs in three steps that hand off through Parquet files under
the stage's scratch folder (`_work/<fingerprint>/<stage>/`):

1. **scatter**: the driver's DuckDB streams the rows the stage needs, only the columns it
   needs, into `<name>/part=K/` by `hash(key) % partitions` (`COPY ... PARTITION_BY`: out
   of core, the driver's memory bounded by `execution.duckdb_memory_limit`); a
   `<name>.done` marker is written last;
2. **tasks**: one executor task per partition (a Ray task on any node), each with its own
   DuckDB (one thread, its memory capped by `execution.partition_memory_limit`, else its
   node's share, spilling to a folder of its worker process under the build's `_work/`:
   `task_database`), reads its partition and writes its result as `<name>-K.parquet`,
   atomically;
3. the driver reads the results (the stage's drops, or the next round's input).

A stage of several steps (near dedup) hands rows from one step's tasks to the next step's
partitions with `shuffle`: each task writes one file of its rows with their partition, and
the next step's task K reads partition K of every file (`shuffled`). A task whose output went
to a shuffle leaves its counts as its result (`write_counts`), so that a resumed step still
knows them. `connected_components` runs the rounds of a graph's components this way.
`task_database` gives a task a connection to a database its worker process keeps, instead of
opening one per task.

Resume: a partition whose result exists is not computed again, and a finished scatter is
not redone (the runner clears the corpus stages' folders whenever a unit ran again or the
partition count changed, so that a result never outlives its input or its cut). The
output never depends on the number of partitions: all rows of a key land in one partition,
each partition's result is a function of its rows, and whatever is written from the
results is ordered by content keys.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus_core.storage import sql_path

SHUFFLE_ROW_GROUP = 16_384  # rows; small enough that a partition's task skips most of another's rows
MAX_ROUNDS = 10_000  # of connected_components; large-star/small-star settles in O(log n) rounds, a few dozen at most


@dataclass(frozen=True)
class PartitionPlan:
    """How many partitions a corpus stage cuts its rows into, and each task's DuckDB budget."""

    count: int = 16
    memory_limit: str | None = None  # per task; None: this node's memory x 0.8 / its CPUs (a worker per CPU)
    spill: str | None = None  # where tasks' DuckDBs spill (the build's _work/), a folder per process; None: temp dir
    threads: int = 1  # DuckDB threads of a task: 1 on Ray (a task is one CPU), all of them in-process

    def of(self, key_sql: str) -> str:
        """The SQL of the partition number of `key_sql` (DuckDB's 64-bit hash of the key)."""
        return f"(hash({key_sql}) % {int(self.count)})"


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def scatter(db: duckdb.DuckDBPyConnection, query: str, key_sql: str, folder: Path, name: str,
            plan: PartitionPlan) -> None:
    """Write the rows of `query` into `folder/name/part=K/` by the hash of `key_sql`, unless a
    finished scatter is there already. Every partition gets a file, empty ones included, so
    that a task's input is a fixed list of paths."""
    scatter_by(db, query, plan.of(key_sql), plan.count, folder, name)


def scatter_by(db: duckdb.DuckDBPyConnection, query: str, part_sql: str, count: int, folder: Path,
               name: str) -> None:
    """`scatter` by a partition number that `part_sql` computes (0 to `count` - 1; a range
    cut, say, rather than a hash)."""
    marker = folder / f"{name}.done"
    if marker.exists():
        return
    target = folder / name
    staging = folder / f"{name}.tmp"
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    db.execute(f"""COPY (SELECT *, {part_sql} AS part FROM ({query}))
                   TO {sql_literal(str(staging))} (FORMAT parquet, PARTITION_BY (part), COMPRESSION zstd)""")
    empty = db.sql(f"SELECT * FROM ({query}) LIMIT 0").to_arrow_table()
    for number in range(count):
        part = staging / f"part={number}"
        if not part.exists():
            part.mkdir()
            pq.write_table(empty, part / "empty.parquet")
    os.replace(staging, target)
    marker.write_text("done\n")


def inputs(folder: Path, name: str, number: int) -> str:
    """DuckDB's read of one partition of a scatter (or of a task's partitioned output)."""
    return f"read_parquet({sql_path(folder / name / f'part={number}' / '*.parquet')}, hive_partitioning = false)"


def result_path(folder: Path, name: str, number: int) -> Path:
    return folder / f"{name}-{number:05d}.parquet"


def results(folder: Path, name: str) -> str:
    """DuckDB's read of every task's result of a step."""
    return f"read_parquet({sql_path(folder / f'{name}-*.parquet')})"


def run_tasks(executor: Any, fn: Callable[..., dict[str, Any]], folder: Path, name: str, plan: PartitionPlan,
              args: tuple) -> dict[str, int]:
    """`fn(number, folder, plan, *args)` for every partition whose result `name-K.parquet` is
    not there yet, on the executor; returns the summed counts the tasks report."""
    todo = [n for n in range(plan.count) if not result_path(folder, name, n).exists()]
    totals: dict[str, int] = {}

    def on_result(number: int, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value

    executor.map(fn, todo, (str(folder), plan, *args), on_result)
    return totals


def write_result(db: duckdb.DuckDBPyConnection, query: str, folder: Path, name: str, number: int) -> int:
    """Write a task's result atomically (rename into place last: its presence means done);
    returns its rows."""
    path = result_path(folder, name, number)
    partial = path.with_suffix(".partial")
    db.execute(f"COPY ({query}) TO {sql_literal(str(partial))} (FORMAT parquet, COMPRESSION zstd)")
    os.replace(partial, path)
    return db.sql(f"SELECT count(*) FROM read_parquet({sql_literal(str(path))})").fetchall()[0][0]


_DATABASES: dict[PartitionPlan, duckdb.DuckDBPyConnection] = {}  # this process's, by plan


def default_memory_limit() -> str:
    """A task's share of its node: 80% of the memory (DuckDB's own default for one database)
    over the CPUs, since Ray runs a worker per CPU, each with its database."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(int(total * 0.8 / (os.cpu_count() or 1)) // 2**20, 64)}MB"


@contextmanager
def task_database(plan: PartitionPlan) -> Iterator[duckdb.DuckDBPyConnection]:
    """A task's DuckDB (`plan.threads` threads, bounded by `plan.memory_limit`, spilling to
    disk): a connection to a database this worker process keeps between its tasks: opening
    a database costs ~60 ms, which a step of many small tasks (a round of `connected_components`)
    would pay per task. Its temp tables go with the connection; it spills under a folder of
    this process in `plan.spill` (the build's `_work/`, removed with it; DuckDB cannot move a
    temp directory once used). A process keeps one database: a new build's plan replaces it."""
    if plan not in _DATABASES:
        for database in _DATABASES.values():
            database.close()
        _DATABASES.clear()
        root = Path(plan.spill) if plan.spill else Path(tempfile.gettempdir())
        temp = root / f"corpus-duckdb-{socket.gethostname()}-{os.getpid()}"
        root.mkdir(parents=True, exist_ok=True)  # DuckDB makes its temp directory when it first spills, not its parents
        database = duckdb.connect(config={"threads": plan.threads, "preserve_insertion_order": False,
                                          "temp_directory": str(temp),
                                          "memory_limit": plan.memory_limit or default_memory_limit()})
        atexit.register(shutil.rmtree, temp, True)
        _DATABASES[plan] = database
    db = _DATABASES[plan].cursor()
    try:
        yield db
    finally:
        db.close()


def shuffle(db: duckdb.DuckDBPyConnection, query: str, key_sql: str, folder: Path, name: str, plan: PartitionPlan,
            number: int) -> int:
    """Write task `number`'s rows of `query` to `folder/name/from-K.parquet`, with the
    partition of the hash of `key_sql` in a column `part` and sorted by it: the input of the
    next step, whose task P reads its rows of every task's file (`shuffled`), the row groups
    of other partitions skipped by their statistics. A scatter that tasks make of their own
    output, one file per task (a file per task and partition would be count^2 files a step).
    Written atomically; a rerun of the task replaces it. Returns the rows."""
    return shuffle_by(db, query, plan.of(key_sql), folder, name, number)


def shuffle_by(db: duckdb.DuckDBPyConnection, query: str, part_sql: str, folder: Path, name: str,
               number: int, row_group: int = SHUFFLE_ROW_GROUP) -> int:
    """`shuffle` by a partition number that `part_sql` computes (a range cut, say), in row
    groups of `row_group` rows (fewer for wide rows, so a reader skips more)."""
    path = folder / name / f"from-{number:05d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    ((rows,),) = db.execute(f"""COPY (SELECT *, {part_sql} AS part FROM ({query}) ORDER BY part)
                                TO {sql_literal(str(partial))} (FORMAT parquet, COMPRESSION zstd,
                                                                ROW_GROUP_SIZE {int(row_group)})""").fetchall()
    os.replace(partial, path)
    return rows


def shuffled(folder: Path, name: str, number: int) -> str:
    """DuckDB's read of partition `number` of a `shuffle`: its rows from every task's file."""
    return (f"(SELECT * EXCLUDE (part) FROM read_parquet({sql_path(folder / name / '*.parquet')}) "
            f"WHERE part = {int(number)})")


def write_counts(folder: Path, name: str, number: int, counts: dict[str, int]) -> None:
    """A task's result when its output went elsewhere (a `shuffle`): one row of its counts,
    written atomically, so that a resumed step still knows what its finished tasks counted."""
    path = result_path(folder, name, number)
    partial = path.with_suffix(".partial")
    pq.write_table(pa.table({key: pa.array([value], type=pa.int64()) for key, value in counts.items()}), partial)
    os.replace(partial, path)


def total(folder: Path, name: str, count: str) -> int:
    """The sum of one of the counts (`write_counts`) of every task of a step."""
    return sum(pq.read_table([str(path) for path in sorted(folder.glob(f"{name}-*.parquet"))],
                             columns=[count]).column(count).to_pylist())


def connected_components(executor: Any, folder: Path, plan: PartitionPlan, links: str) -> int:
    """The connected components of an undirected graph, over partitions: `links` is a shuffle
    of its edges in both directions, `(x, y)` by the hash of `x` (BIGINT nodes).
    Leaves `labels-R-K.parquet` (`component_labels`): every node with an edge and its label,
    the smallest node of its component; returns R, the rounds it took.

    The alternating algorithm of Kiveris et al. ("Connected components in MapReduce and
    beyond", 2014): a round is a large-star step then a small-star step, each a task per
    partition over the edges of its nodes, handing its new edges to the next step through a
    shuffle; O(log^2 n) rounds at worst, a handful in practice (a chain of 2000 nodes in
    random order: 10). The large-star step of round R also counts the nodes with a smaller
    neighbour and another neighbour: none left means every component is a star around its
    smallest node, so each node's least neighbour (or itself) is its label, and the rounds end.
    A finished step is not run again (resume); the edges a finished step consumed are removed,
    never `links` itself."""
    edges = links
    for rounds in range(1, MAX_ROUNDS + 1):
        run_tasks(executor, large_star_task, folder, f"large-{rounds}", plan, (edges, rounds))
        _remove_spent(folder, edges, links)
        if total(folder, f"large-{rounds}", "unfinished") == 0:
            shutil.rmtree(folder / f"large-edges-{rounds}", ignore_errors=True)  # stars already
            return rounds
        for path in folder.glob(f"labels-{rounds}-*.parquet"):  # not the last round's: not the labels
            path.unlink()
        run_tasks(executor, small_star_task, folder, f"small-{rounds}", plan, (rounds,))
        _remove_spent(folder, f"large-edges-{rounds}", links)
        edges = f"small-edges-{rounds}"
    raise RuntimeError(f"connected components did not settle in {MAX_ROUNDS} rounds")


def _remove_spent(folder: Path, edges: str, links: str) -> None:
    if edges != links:
        shutil.rmtree(folder / edges, ignore_errors=True)


def component_labels(folder: Path, rounds: int, number: int) -> str:
    """DuckDB's read of partition `number` of the labels `connected_components` left: (node, label)."""
    return f"read_parquet({sql_path(result_path(folder, f'labels-{rounds}', number))})"


def large_star_task(number: int, folder: str, plan: PartitionPlan, edges: str, rounds: int) -> dict[str, int]:
    """Large star on the nodes of partition `number`: each node's larger neighbours are linked
    to the least of its neighbours and itself instead. Writes that least as the node's label
    (the labels, once nothing is left to do) and counts the unfinished nodes."""
    where = Path(folder)
    with task_database(plan) as db:
        db.execute(f"CREATE TEMP TABLE adjacent AS SELECT DISTINCT x, y FROM {shuffled(where, edges, number)} "
                   "WHERE x <> y")
        db.execute("""CREATE TEMP TABLE star AS
                      SELECT x, least(x, min(y)) AS low, count(*) > 1 AND min(y) < x AS unfinished
                      FROM adjacent GROUP BY x""")
        write_result(db, "SELECT x AS node, low AS label FROM star", where, f"labels-{rounds}", number)
        shuffle(db, """WITH linked AS (SELECT a.y AS v, s.low FROM adjacent a JOIN star s USING (x) WHERE a.y > a.x)
                       SELECT v AS x, low AS y FROM linked UNION ALL SELECT low, v FROM linked""",
                "x", where, f"large-edges-{rounds}", plan, number)
        (unfinished,) = db.sql("SELECT count(*) FILTER (WHERE unfinished) FROM star").fetchall()[0]
    write_counts(where, f"large-{rounds}", number, {"unfinished": unfinished})
    return {"unfinished": unfinished}


def small_star_task(number: int, folder: str, plan: PartitionPlan, rounds: int) -> dict[str, int]:
    """Small star on the nodes of partition `number`: a node and its smaller neighbours are all
    linked to the least of them instead."""
    where = Path(folder)
    with task_database(plan) as db:
        db.execute(f"""CREATE TEMP TABLE smaller AS
                       SELECT DISTINCT x, y FROM {shuffled(where, f'large-edges-{rounds}', number)} WHERE y < x""")
        rows = shuffle(db, """WITH linked AS (
                                  SELECT v, low FROM (SELECT x, min(y) AS low, list(y) || [x] AS star
                                                      FROM smaller GROUP BY x), unnest(star) AS t(v)
                                  WHERE v <> low)
                              SELECT v AS x, low AS y FROM linked UNION ALL SELECT low, v FROM linked""",
                       "x", where, f"small-edges-{rounds}", plan, number)
    write_counts(where, f"small-{rounds}", number, {"edges": rows})
    return {"edges": rows}


def with_content(batches: Any, parts: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Each Arrow batch of keys (`unit`, `ordinal`, ...; best ordered by them) as rows (dicts)
    with their `content`, read from `parts` (`unit` -> the Parquet file of its records after
    the file stages, where a kept file's content is final: CorpusContext.parts): only the row
    groups that hold the batch's ordinals. A task reads content this way instead of the driver
    scattering it."""
    groups: dict[str, list[tuple[int, int, int]]] = {}  # part -> (row group, min, max ordinal), read once

    def row_groups(part: str) -> list[tuple[int, int, int]]:
        if part not in groups:
            meta = pq.ParquetFile(part).metadata
            column = meta.schema.to_arrow_schema().get_field_index("ordinal")
            groups[part] = [(g, meta.row_group(g).column(column).statistics.min,
                             meta.row_group(g).column(column).statistics.max) for g in range(meta.num_row_groups)]
        return groups[part]

    for batch in batches:
        rows = batch.to_pylist()
        by_unit: dict[str, dict[int, dict[str, Any]]] = {}
        for row in rows:
            by_unit.setdefault(row["unit"], {})[row["ordinal"]] = row
        for unit, wanted in by_unit.items():
            low, high = min(wanted), max(wanted)
            ordinals = pa.array(sorted(wanted), pa.int64())
            needed = [g for g, first, last in row_groups(parts[unit]) if first <= high and last >= low]
            table = pq.ParquetFile(parts[unit]).read_row_groups(needed, columns=["ordinal", "content"])
            table = table.filter(pc.is_in(table["ordinal"], value_set=ordinals))
            for ordinal, content in zip(table["ordinal"].to_pylist(), table["content"].to_pylist(), strict=True):
                wanted[ordinal]["content"] = content
        if rows:
            yield rows
