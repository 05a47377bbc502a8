"""The writer: kept files to Parquet shards in OUT/shards/, their index OUT/index.json and
the tokenizer OUT/tokenizer.json. shards/ holds only the Parquet files, so that
`pyarrow.dataset.dataset("OUT/shards")` and `datasets.load_dataset("parquet", data_dir=...)`
read it as it is.

Files are spread over shards by a seeded shuffle (md5 of seed and file id), so one big
repository does not fill one shard and the same input gives the same shards whatever
order the units finished in. A shard closes when it reaches `target_bytes` of content,
`target_tokens` tokens (when the tokenize stage ran) or `max_rows` rows. Each shard is
written in one call with a fixed row-group size, so its bytes depend only on its rows.
When the tokenize stage ran (DuckDB view `tokens`), shards carry `input_ids` and
`num_tokens`, and index.json the token counts and the tokenizer's sha256.

`group_by = "repository"` (StarCoder2's repository context): repositories, not files, are
shuffled; a repository's kept files sit in consecutive rows in path order, in one shard
unless the repository alone passes a shard's limits (then each shard's run of it is a
document of its own); their input_ids are the pieces of one document that the loader joins
(`repository_ids`, docs/FORMATS.md). Rows stay one per file.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus_core import partitions, schema
from corpus_core.errors import ConfigError
from corpus_core.settings import Settings, setting
from corpus_core.stage import CorpusContext, Stage
from corpus_core.storage import sha256_file, sql_path
from corpus_core.tokens import EOS, FILENAME, REPONAME
from stages.tokenize import ids_type

# 3: at OUT/index.json, the shards in its `shard_dir`; 2 (older builds): shards/index.json,
# beside its shards, with token counts and the tokenizer
INDEX_FORMAT = 3
SHARD_DIR = "shards"  # the data files, relative to OUT
INDEX = "index.json"  # relative to OUT
TOKENIZER = "tokenizer.json"  # relative to OUT


PLACEMENT_BATCH = 65_536  # files placed at a time


def shard_name(number: int) -> str:
    return f"part-{number:05d}.parquet"


@dataclass(frozen=True)
class ShardConfig(Settings):
    section = "shards"

    target_bytes: int = setting(256 * 1024**2, "content bytes per shard before a new one starts")
    target_tokens: int = setting(64 * 1024**2, "with tokens: a shard closes past this many")
    max_rows: int = setting(100_000, "rows per shard at most")
    row_group_rows: int = setting(1024, "Parquet row group size inside a shard")
    shuffle_seed: int = setting(0, "seeds the deterministic spread of files over shards")
    compression: str = setting("zstd", "zstd, snappy, gzip, none")
    group_by: str = setting("file", "file: each file its own document; repository (StarCoder2): a repository's "
                            "files in consecutive rows, in path order, that the loader joins into one document")

    def __post_init__(self) -> None:
        if self.compression not in ("zstd", "snappy", "gzip", "none"):
            raise ConfigError(f"shards.compression = {self.compression!r}: unsupported")
        if self.group_by not in ("file", "repository"):
            raise ConfigError(f"shards.group_by = {self.group_by!r}: expected 'file' or 'repository'")


def repository_ids(batch: pa.Table, element: pa.DataType) -> pa.Table:
    """A repository document's rows: each file's input_ids become `[<reponame> REPO "\n"]`
    (the repository's first row in the shard) `<filename> PATH "\n" CONTENT`
    `[<|endoftext|>]` (its last row in the shard), without the file's own metadata prefix;
    `content_start` is where CONTENT starts in them."""
    ids, starts = [], []
    columns = [batch.column(name).to_pylist() for name in
               ("input_ids", "prefix_tokens", "repo_ids", "path_ids", "repo_first", "repo_last")]
    for file_ids, prefix, repo_ids, path_ids, first, last in zip(*columns, strict=True):
        head = ([REPONAME, *repo_ids] if first else []) + [FILENAME, *path_ids]
        starts.append(len(head))
        ids.append(head + file_ids[prefix:-1] + ([EOS] if last else []))
    batch = batch.drop_columns(["input_ids", "num_tokens", "prefix_tokens", "repo_ids", "path_ids", "repo_first",
                                "repo_last"])
    return (batch.append_column("input_ids", pa.array(ids, pa.list_(element)))
            .append_column("num_tokens", pa.array([len(i) for i in ids], pa.int32()))
            .append_column("content_start", pa.array(starts, pa.int32())))


class ShardWriter(Stage):
    name = "shards"
    settings_class = ShardConfig
    reads = ("files", "tokens")  # tokens only when the build tokenizes
    writes = ("placement",)  # shard and row of every kept file, for the manifests

    config: ShardConfig

    def place(self, db: Any, scratch: Path, tokenized: bool = False) -> None:
        """Create table `placement(unit, ordinal, shard, row)` for every kept file. The files
        stream by in shard order, a batch at a time (DuckDB sorts out of core); each batch's
        placement goes to `scratch/placement.parquet`, so the driver never holds a list of
        every file."""
        grouped = self.config.group_by == "repository"
        reader = self.in_shard_order(db, tokenized).to_arrow_reader(batch_size=PLACEMENT_BATCH)
        cursor = Cursor()
        path = scratch / "placement.parquet"
        placed = pa.schema([("unit", pa.string()), ("ordinal", pa.int64()), ("shard", pa.int32()),
                            ("row", pa.int64())])
        with pq.ParquetWriter(path, placed) as writer:
            for batch in reader:
                if grouped:
                    shards, rows = place_repositories(batch, cursor, self.config, tokenized)
                else:
                    shards, rows = next_fit(batch.column("size").to_numpy(), batch.column("num_tokens").to_numpy(),
                                            cursor, self.config, tokenized)
                writer.write_table(pa.table([batch.column("unit"), batch.column("ordinal"),
                                             pa.array(shards, pa.int32()), pa.array(rows, pa.int64())],
                                            schema=placed))
        db.execute(f"CREATE OR REPLACE TABLE placement AS SELECT * FROM read_parquet({sql_path(path)})")

    def in_shard_order(self, db: Any, tokenized: bool) -> Any:
        """The kept files' keys, sizes and token counts in the order of the shards (a DuckDB
        relation; with repository totals when documents are repositories)."""
        tokens = "t.num_tokens" if tokenized else "0"
        join = "LEFT JOIN tokens t USING (unit, ordinal)" if tokenized else ""
        seed = int(self.config.shuffle_seed)
        grouped = self.config.group_by == "repository"
        # a repository's files next to each other, in path order; repositories shuffled
        order_by = f"md5('{seed}:' || repo), repo, path" if grouped else f"md5('{seed}:' || id), unit, ordinal"
        # a repository's files, bytes and tokens, for a repository document that must not be cut
        group = (", count(*) OVER repository AS repo_files, sum(size) OVER repository AS repo_bytes, "
                 "sum(num_tokens) OVER repository AS repo_tokens") if grouped else ""
        window = "WINDOW repository AS (PARTITION BY repo)" if grouped else ""
        return db.sql(
            f"""SELECT unit, ordinal, repo, size, num_tokens {group}
                FROM (SELECT f.unit, f.ordinal, f.repo, f.size, f.id, f.path, {tokens} AS num_tokens
                      FROM files f {join} WHERE f.decision = 'kept')
                {window} ORDER BY {order_by}""")

    def write(self, db: Any, out_dir: Path, context: CorpusContext, tokenizer: Path | None = None) -> dict[str, Any]:
        """Write every shard into `out_dir`/shards and the index as `out_dir`/index.json;
        return the index. With a `tokenizer` (the tokenize stage ran), shards carry its
        input_ids and the tokenizer is copied to `out_dir`/tokenizer.json.

        Shards are written by several tasks at once: the driver scatters the kept rows' keys
        by chunk into partitions (corpus_core/partitions.py), a task per partition adds their
        content (from the parts) and ids (from tokenize's result) and sends them on by shard,
        and a task per partition writes its shards, each in one call, from its rows in
        (shard, row) order."""
        shard_dir = out_dir / SHARD_DIR
        shard_dir.mkdir(parents=True, exist_ok=True)
        shard_schema = schema.SHARD
        grouped = self.config.group_by == "repository"
        columns = ", ".join(f"f.{name}" for name in schema.SHARD.names if name != "content")
        vocab_size = None
        if tokenizer is not None:
            from tokenizers import Tokenizer

            vocab_size = Tokenizer.from_file(str(tokenizer)).get_vocab_size()
            shard_schema = schema.shard_schema(ids_type(vocab_size))
            if grouped:
                shard_schema = shard_schema.append(pa.field("content_start", pa.int32(), nullable=False))
                columns += (", p.row = min(p.row) OVER (PARTITION BY p.shard, f.repo) AS repo_first,"
                            " p.row = max(p.row) OVER (PARTITION BY p.shard, f.repo) AS repo_last")
        folder = context.scratch / self.name
        shutil.rmtree(folder, ignore_errors=True)  # cheap to redo next to what it writes
        folder.mkdir(parents=True)
        # the rows' keys leave the driver, by chunk; tasks add content and ids and send the rows on by shard
        partitions.scatter(db, f"SELECT f.unit, f.ordinal, p.shard, p.row, {columns} "
                               "FROM files f JOIN placement p USING (unit, ordinal)", "unit", folder, "keys",
                           context.partitions)
        # tokenize leaves no ids when nothing was kept (then no partition has rows either)
        ids = tokenizer is not None and any(tokenizer.parent.glob("tokens-*.parquet"))
        partitions.run_tasks(context.executor, gather_rows, folder, "gathered", context.partitions,
                             (context.parts, str(tokenizer.parent) if ids else None, grouped))
        numbered: list[tuple[int, dict[str, Any]]] = []  # (shard, its index entry) from every task
        context.executor.map(write_shards, range(context.partitions.count),
                             (str(folder), context.partitions, str(shard_dir), shard_schema, self.config,
                              vocab_size if grouped else None),
                             lambda _, written: numbered.extend(written))
        entries = [entry for _, entry in sorted(numbered, key=lambda pair: pair[0])]  # in shard order
        for entry in entries:
            self.stats.files_in += entry["rows"]
            self.stats.kept += entry["rows"]
            self.stats.bytes_in += entry["content_bytes"]
        totals = {
            "shards": len(entries),
            "rows": sum(e["rows"] for e in entries),
            "content_bytes": sum(e["content_bytes"] for e in entries),
            "bytes": sum(e["bytes"] for e in entries),
        }
        index: dict[str, Any] = {"format": INDEX_FORMAT, "shard_dir": SHARD_DIR, "shards": entries, "totals": totals,
                                 "tokenizer": None, "tokenizer_sha256": None}
        if grouped:  # absent by default: a build of files keeps the index it always had
            index["group_by"] = "repository"
            totals["documents"] = sum(e["documents"] for e in entries)
        if tokenizer is not None:
            target = out_dir / TOKENIZER
            shutil.copyfile(tokenizer, target)
            totals["tokens"] = sum(e["tokens"] for e in entries)
            index.update(tokenizer=TOKENIZER, tokenizer_sha256=sha256_file(target), vocab_size=vocab_size,
                         input_ids=str(ids_type(vocab_size)))
        (out_dir / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return index


GATHER_BATCH = 2048  # keys whose content a gathering task reads at once


@dataclass
class Cursor:
    """Where placement stands: the open shard, its next row, the bytes and tokens it holds,
    and the repository placed last."""

    shard: int = 0
    row: int = 0
    bytes: int = 0
    tokens: int = 0
    repo: str | None = None


def next_fit(sizes: np.ndarray, counts: np.ndarray, cursor: Cursor, config: ShardConfig,
             tokenized: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shard and row of each file, in order: a file opens a new shard when the open one holds
    files and would pass `target_bytes`, `max_rows` or (tokenized) `target_tokens` with it.
    The same placement as a loop over the files (`place_repositories` without repositories),
    found a shard at a time with running sums over a window: the driver places 3 billion
    files in minutes instead of an hour of Python (`group_by = "repository"` still places
    one file at a time: `place_repositories`). Advances `cursor`."""
    count = len(sizes)
    shards, rows = np.empty(count, np.int32), np.empty(count, np.int64)
    sizes, counts = sizes.astype(np.int64, copy=False), counts.astype(np.int64, copy=False)
    start, window = 0, max(16, 2 * cursor.row)
    while start < count:
        stop = min(count, start + window)
        held_bytes = cursor.bytes + np.cumsum(sizes[start:stop])  # the shard's bytes with each file
        row = cursor.row + np.arange(stop - start)
        closes = (held_bytes > config.target_bytes) | (row >= config.max_rows)
        if tokenized:
            held_tokens = cursor.tokens + np.cumsum(counts[start:stop])
            closes |= held_tokens > config.target_tokens
        closes &= row > 0  # a shard holds at least one file, however big
        first = int(np.argmax(closes)) if closes.any() else stop - start
        shards[start:start + first] = cursor.shard
        rows[start:start + first] = row[:first]
        if first:
            cursor.row += first
            cursor.bytes = int(held_bytes[first - 1])
            if tokenized:
                cursor.tokens = int(held_tokens[first - 1])
        if first < stop - start:  # the shard closed before file `start + first`
            # the next window: twice the files of the shard that closed, so that shards of few
            # files (small targets) cost no sums over files far past them
            window = max(16, 2 * cursor.row)
            cursor.shard, cursor.row, cursor.bytes, cursor.tokens = cursor.shard + 1, 0, 0, 0
        else:
            window *= 2
        start += first
    return shards, rows


def place_repositories(batch: pa.RecordBatch, cursor: Cursor, config: ShardConfig,
                       tokenized: bool) -> tuple[list[int], list[int]]:
    """`next_fit` one file at a time, where a repository that starts must fit whole in the open
    shard (bytes, tokens and rows) or opens a new one: its document is never cut."""
    repos = batch.column("repo").to_pylist()
    sizes, counts = batch.column("size").to_pylist(), batch.column("num_tokens").to_pylist()
    totals = zip(*(batch.column(c).to_pylist() for c in ("repo_files", "repo_bytes", "repo_tokens")), strict=True)
    shards, rows = [], []
    for repo, size, count in zip(repos, sizes, counts, strict=True):
        files, total_bytes, total_tokens = next(totals)
        extra_rows = 0
        test_size, test_count = size, count
        if cursor.row and repo != cursor.repo:
            # a repository starts: in a new shard when it does not fit whole in this one
            test_size, test_count, extra_rows = total_bytes, total_tokens, files - 1
        cursor.repo = repo
        if cursor.row and (cursor.bytes + test_size > config.target_bytes
                           or cursor.row + extra_rows >= config.max_rows
                           or (tokenized and cursor.tokens + test_count > config.target_tokens)):
            cursor.shard, cursor.row, cursor.bytes, cursor.tokens = cursor.shard + 1, 0, 0, 0
        shards.append(cursor.shard)
        rows.append(cursor.row)
        cursor.row += 1
        cursor.bytes += size
        cursor.tokens += count
    return shards, rows


def gather_rows(number: int, folder: str, plan: partitions.PartitionPlan, parts: dict[str, str],
                tokens: str | None, grouped: bool) -> dict[str, int]:
    """Partition `number` of the rows' keys (by chunk): their content from the chunks' parts,
    their ids from the tokenize stage's result of the same partition (its keys were scattered
    by chunk over the same partitions: `tokens-K.parquet` holds exactly these files' ids), sent
    on by shard to the writing tasks (`rows`)."""
    base = Path(folder)
    gathered = base / f"gathered-{number:05d}.content"
    with partitions.task_database(plan) as db:
        reader = db.sql(f"SELECT * FROM {partitions.inputs(base, 'keys', number)} ORDER BY unit, ordinal"
                        ).to_arrow_reader(batch_size=GATHER_BATCH)
        with_content = reader.schema.append(pa.field("content", pa.large_string()))
        with pq.ParquetWriter(gathered, with_content, compression="zstd") as writer:
            for rows in partitions.with_content(reader, parts):
                writer.write_table(pa.Table.from_pylist(rows, schema=with_content))
        ids, join = "", ""
        if tokens is not None:
            ids = ", t.input_ids, t.num_tokens" + (", t.prefix_tokens, t.repo_ids, t.path_ids" if grouped else "")
            join = f"JOIN read_parquet({sql_path(partitions.result_path(Path(tokens), 'tokens', number))}) t " \
                   "USING (unit, ordinal)"
        query = f"SELECT k.* EXCLUDE (unit, ordinal){ids} FROM read_parquet({sql_path(gathered)}) k {join}"
        rows = partitions.shuffle(db, query, "shard", base, "rows", plan, number)
    gathered.unlink()
    partitions.write_counts(base, "gathered", number, {"rows": rows})
    return {"rows": rows}


def write_shards(number: int, folder: str, plan: partitions.PartitionPlan, shard_dir: str, shard_schema: pa.Schema,
                 config: ShardConfig, grouped_vocab: int | None) -> list[tuple[int, dict[str, Any]]]:
    """One partition's shards: its rows in (shard, row) order, one shard at a time in
    memory; returns (shard number, index entry) of each."""
    base = Path(folder)
    with partitions.task_database(plan) as db:
        if not db.sql(f"SELECT count(*) FROM {partitions.shuffled(base, 'rows', number)}").fetchall()[0][0]:
            return []  # (nothing kept at all: the rows then have no ids to select)
        names = [n for n in shard_schema.names if n != "content_start"]
        extra = ", prefix_tokens, repo_ids, path_ids, repo_first, repo_last" if grouped_vocab else ""
        reader = db.sql(f"SELECT shard, {', '.join(names)}{extra} FROM {partitions.shuffled(base, 'rows', number)} "
                        "ORDER BY shard, row").to_arrow_reader(batch_size=config.row_group_rows)
        entries: list[tuple[int, dict[str, Any]]] = []
        pending: list[pa.Table] = []
        current = None
        for batch in reader:
            table = pa.Table.from_batches([batch])
            if grouped_vocab:
                table = repository_ids(table, ids_type(grouped_vocab))
            shard_numbers = table.column("shard").to_numpy()
            start = 0
            for position in range(1, len(shard_numbers) + 1):
                if position == len(shard_numbers) or shard_numbers[position] != shard_numbers[start]:
                    shard = int(shard_numbers[start])
                    if current is not None and shard != current:
                        entries.append((current, _write_shard(Path(shard_dir), current, pending, shard_schema, config)))
                        pending = []
                    current = shard
                    pending.append(table.slice(start, position - start).drop_columns(["shard"]))
                    start = position
        if current is not None:
            entries.append((current, _write_shard(Path(shard_dir), current, pending, shard_schema, config)))
    return entries


def _write_shard(shard_dir: Path, number: int, pieces: list[pa.Table], shard_schema: pa.Schema,
                 config: ShardConfig) -> dict[str, Any]:
    table = pa.concat_tables(pieces).select(shard_schema.names).cast(shard_schema)
    path = shard_dir / shard_name(number)
    compression = None if config.compression == "none" else config.compression
    pq.write_table(table, path, compression=compression, row_group_size=config.row_group_rows)
    content_bytes = int(pc.sum(pc.binary_length(table.column("content"))).as_py() or 0)
    entry = {
        "file": path.name,
        "rows": table.num_rows,
        "content_bytes": content_bytes,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }
    if "num_tokens" in table.column_names:
        entry["tokens"] = int(pc.sum(table.column("num_tokens")).as_py() or 0)
    if config.group_by == "repository":  # runs of one repository: the loader's documents
        repos = table.column("repo").to_pylist()
        entry["documents"] = sum(1 for i, repo in enumerate(repos) if i == 0 or repos[i - 1] != repo)
    return entry
