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

    def __post_init__(self) -> None:
        if self.compression not in ("zstd", "snappy", "gzip", "none"):
            raise ConfigError(f"shards.compression = {self.compression!r}: unsupported")


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
        order = db.sql(
            f"""SELECT unit, ordinal, size, {tokens} AS num_tokens FROM files {join} WHERE decision = 'kept'
                ORDER BY md5('{int(self.config.shuffle_seed)}:' || id), unit, ordinal"""
        ).to_arrow_table()
        shards, rows = [], []
        shard, row, shard_bytes, shard_tokens = 0, 0, 0, 0
        config = self.config
        for size, count in zip(order.column("size").to_pylist(), order.column("num_tokens").to_pylist(), strict=True):
            if row and (shard_bytes + size > config.target_bytes or row >= config.max_rows
                        or (tokenized and shard_tokens + count > config.target_tokens)):
                shard, row, shard_bytes, shard_tokens = shard + 1, 0, 0, 0
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
        columns = ", ".join(f"f.{name}" for name in schema.SHARD.names)
        join = ""
        vocab_size = None
        if tokenizer is not None:
            from tokenizers import Tokenizer

            vocab_size = Tokenizer.from_file(str(tokenizer)).get_vocab_size()
            self._schema = schema.shard_schema(ids_type(vocab_size))
            columns += ", t.input_ids, t.num_tokens"
            join = "JOIN tokens t USING (unit, ordinal)"
        reader = db.sql(
            f"""SELECT p.shard, {columns} FROM files f JOIN placement p USING (unit, ordinal) {join}
                ORDER BY p.shard, p.row"""
        ).to_arrow_reader(batch_size=self.config.row_group_rows)
        entries: list[dict[str, Any]] = []
        pending: list[pa.Table] = []
        current = None
        for batch in reader:
            table = pa.Table.from_batches([batch])
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
        return entry
