"""Corpus work over hash partitions: how a corpus stage leaves the driver.

A partitioned corpus stage runs in three steps that hand off through Parquet files under
the stage's scratch folder (`_work/<fingerprint>/<stage>/`):

1. **scatter**: the driver's DuckDB streams the rows the stage needs, only the columns it
   needs, into `<name>/part=K/` by `hash(key) % partitions` (`COPY ... PARTITION_BY`: out
   of core, the driver's memory bounded by `execution.duckdb_memory_limit`); a
   `<name>.done` marker is written last;
2. **tasks**: one executor task per partition (a Ray task on any node), each with its own
   DuckDB (one thread, its memory capped by `execution.partition_memory_limit`, its temp
   files under the stage folder), reads its partition and writes its result as
   `<name>-K.parquet`, atomically;
3. the driver reads the results (the stage's drops, or the next round's input).

Resume: a partition whose result exists is not computed again, and a finished scatter is
not redone (the runner clears a corpus stage's folder whenever a unit ran again, so that a
result never outlives its input). The output never depends on the number of partitions:
all rows of a key land in one partition, each partition's result is a function of its
rows, and whatever is written from the results is ordered by content keys.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from corpus_core.storage import sql_path


@dataclass(frozen=True)
class PartitionPlan:
    """How many partitions a corpus stage cuts its rows into, and each task's DuckDB budget."""

    count: int = 16
    memory_limit: str | None = None  # per task; None: DuckDB's default

    def of(self, key_sql: str) -> str:
        """The SQL of the partition number of `key_sql` (DuckDB's 64-bit hash of the key)."""
        return f"(hash({key_sql}) % {int(self.count)})"


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def task_db(folder: Path, memory_limit: str | None, name: str) -> duckdb.DuckDBPyConnection:
    """A task's own DuckDB: one thread (a task is one CPU), spilling under `folder`."""
    db = duckdb.connect()
    temp = folder / f"tmp-{name}"
    temp.mkdir(parents=True, exist_ok=True)
    db.execute(f"SET temp_directory = {sql_literal(str(temp))}")
    db.execute("SET threads = 1")
    db.execute("SET preserve_insertion_order = false")
    if memory_limit:
        db.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
    return db


def close_task_db(db: duckdb.DuckDBPyConnection, folder: Path, name: str) -> None:
    db.close()
    shutil.rmtree(folder / f"tmp-{name}", ignore_errors=True)


def scatter(db: duckdb.DuckDBPyConnection, query: str, key_sql: str, folder: Path, name: str,
            plan: PartitionPlan) -> None:
    """Write the rows of `query` into `folder/name/part=K/` by the hash of `key_sql`, unless a
    finished scatter is there already. Every partition gets a file, empty ones included, so
    that a task's input is a fixed list of paths."""
    marker = folder / f"{name}.done"
    if marker.exists():
        return
    target = folder / name
    staging = folder / f"{name}.tmp"
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    db.execute(f"""COPY (SELECT *, {plan.of(key_sql)} AS part FROM ({query}))
                   TO {sql_literal(str(staging))} (FORMAT parquet, PARTITION_BY (part), COMPRESSION zstd)""")
    empty = db.sql(f"SELECT * FROM ({query}) LIMIT 0").to_arrow_table()
    for number in range(plan.count):
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
