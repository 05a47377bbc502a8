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

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus_core import schema
from corpus_core.errors import ConfigError
from corpus_core.settings import Settings, setting
from corpus_core.stage import Stage
from corpus_core.storage import sha256_file
from corpus_core.tokens import EOS, FILENAME, REPONAME
from stages.tokenize import ids_type

# 3: at OUT/index.json, the shards in its `shard_dir`; 2 (older builds): shards/index.json,
# beside its shards, with token counts and the tokenizer
INDEX_FORMAT = 3
SHARD_DIR = "shards"  # the data files, relative to OUT
INDEX = "index.json"  # relative to OUT
TOKENIZER = "tokenizer.json"  # relative to OUT


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


def _group_totals(repos: list[str], sizes: list[int], counts: list[int]) -> dict[str, tuple[int, int, int]]:
    """Files, bytes and tokens of each repository."""
    totals: dict[str, tuple[int, int, int]] = {}
    for repo, size, count in zip(repos, sizes, counts, strict=True):
        files, total_bytes, total_tokens = totals.get(repo, (0, 0, 0))
        totals[repo] = (files + 1, total_bytes + size, total_tokens + count)
    return totals


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

    def place(self, db: Any, tokenized: bool = False) -> None:
        """Create table `placement(unit, ordinal, shard, row)` for every kept file."""
        tokens = "t.num_tokens" if tokenized else "0"
        join = "LEFT JOIN tokens t USING (unit, ordinal)" if tokenized else ""
        seed = int(self.config.shuffle_seed)
        grouped = self.config.group_by == "repository"
        # a repository's files next to each other, in path order; repositories shuffled
        order_by = f"md5('{seed}:' || repo), repo, path" if grouped else f"md5('{seed}:' || id), unit, ordinal"
        order = db.sql(
            f"""SELECT unit, ordinal, repo, size, {tokens} AS num_tokens FROM files {join} WHERE decision = 'kept'
                ORDER BY {order_by}"""
        ).to_arrow_table()
        shards, rows = [], []
        shard, row, shard_bytes, shard_tokens = 0, 0, 0, 0
        config = self.config
        repos = order.column("repo").to_pylist()
        sizes, counts = order.column("size").to_pylist(), order.column("num_tokens").to_pylist()
        group = _group_totals(repos, sizes, counts) if grouped else {}
        for position, (size, count) in enumerate(zip(sizes, counts, strict=True)):
            if grouped and row and (position == 0 or repos[position - 1] != repos[position]):
                # a repository starts: in a new shard when it does not fit whole in this one
                files, total_bytes, total_tokens = group[repos[position]]
                size, count, extra_rows = total_bytes, total_tokens, files - 1
            else:
                extra_rows = 0
            if row and (shard_bytes + size > config.target_bytes or row + extra_rows >= config.max_rows
                        or (tokenized and shard_tokens + count > config.target_tokens)):
                shard, row, shard_bytes, shard_tokens = shard + 1, 0, 0, 0
            size, count = sizes[position], counts[position]
            shards.append(shard)
            rows.append(row)
            row += 1
            shard_bytes += size
            shard_tokens += count
        placement = pa.table(
            {
                "unit": order.column("unit"),
                "ordinal": order.column("ordinal"),
                "shard": pa.array(shards, pa.int32()),
                "row": pa.array(rows, pa.int64()),
            }
        )
        db.register("placement_arrow", placement)
        db.sql("CREATE OR REPLACE TABLE placement AS SELECT * FROM placement_arrow")
        db.unregister("placement_arrow")

    def write(self, db: Any, out_dir: Path, tokenizer: Path | None = None) -> dict[str, Any]:
        """Write every shard into `out_dir`/shards and the index as `out_dir`/index.json;
        return the index. With a `tokenizer` (the tokenize stage ran), shards carry its
        input_ids and the tokenizer is copied to `out_dir`/tokenizer.json."""
        shard_dir = out_dir / SHARD_DIR
        shard_dir.mkdir(parents=True, exist_ok=True)
        self._schema = schema.SHARD
        grouped = self.config.group_by == "repository"
        columns = ", ".join(f"f.{name}" for name in schema.SHARD.names)
        join = ""
        vocab_size = None
        if tokenizer is not None:
            from tokenizers import Tokenizer

            vocab_size = Tokenizer.from_file(str(tokenizer)).get_vocab_size()
            self._schema = schema.shard_schema(ids_type(vocab_size))
            columns += ", t.input_ids, t.num_tokens"
            join = "JOIN tokens t USING (unit, ordinal)"
            if grouped:
                self._schema = self._schema.append(pa.field("content_start", pa.int32(), nullable=False))
                columns += (", t.prefix_tokens, t.repo_ids, t.path_ids,"
                            " p.row = min(p.row) OVER (PARTITION BY p.shard, f.repo) AS repo_first,"
                            " p.row = max(p.row) OVER (PARTITION BY p.shard, f.repo) AS repo_last")
        reader = db.sql(
            f"""SELECT p.shard, {columns} FROM files f JOIN placement p USING (unit, ordinal) {join}
                ORDER BY p.shard, p.row"""
        ).to_arrow_reader(batch_size=self.config.row_group_rows)
        entries: list[dict[str, Any]] = []
        pending: list[pa.Table] = []
        current = None
        for batch in reader:
            table = pa.Table.from_batches([batch])
            if grouped and tokenizer is not None:
                table = repository_ids(table, ids_type(vocab_size))
            shard_numbers = table.column("shard").to_numpy()
            start = 0
            for position in range(1, len(shard_numbers) + 1):
                if position == len(shard_numbers) or shard_numbers[position] != shard_numbers[start]:
                    number = int(shard_numbers[start])
                    if current is not None and number != current:
                        entries.append(self._write_shard(shard_dir, current, pending))
                        pending = []
                    current = number
                    pending.append(table.slice(start, position - start).drop_columns(["shard"]))
                    start = position
        if current is not None:
            entries.append(self._write_shard(shard_dir, current, pending))
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

    def _write_shard(self, shard_dir: Path, number: int, pieces: list[pa.Table]) -> dict[str, Any]:
        table = pa.concat_tables(pieces).cast(self._schema)
        path = shard_dir / shard_name(number)
        compression = None if self.config.compression == "none" else self.config.compression
        pq.write_table(table, path, compression=compression, row_group_size=self.config.row_group_rows)
        content_bytes = int(pc.sum(pc.binary_length(table.column("content"))).as_py() or 0)
        self.stats.files_in += table.num_rows
        self.stats.kept += table.num_rows
        self.stats.bytes_in += content_bytes
        entry = {
            "file": path.name,
            "rows": table.num_rows,
            "content_bytes": content_bytes,
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        if "num_tokens" in table.column_names:
            entry["tokens"] = int(pc.sum(table.column("num_tokens")).as_py() or 0)
        if self.config.group_by == "repository":  # runs of one repository: the loader's documents
            repos = table.column("repo").to_pylist()
            entry["documents"] = sum(1 for i, repo in enumerate(repos) if i == 0 or repos[i - 1] != repo)
        return entry
