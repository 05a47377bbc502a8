"""The shard loader: documents or packed token blocks from a build's shards, verified,
shuffled by seed and epoch, split across data-parallel ranks and loader workers, resumable.

    loader = ShardLoader("out/corpus", seed=0, rank=0, world_size=1)
    for block, state in loader.blocks(2049):      # (2049,) int64 token ids, and where we are
        ...
    resumed = ShardLoader("out/corpus").blocks(2049, state)   # continues right after `block`

Where: a build directory (its index.json lists the files of its shards/; an older build's
index is shards/index.json) or its shard directory, as a local path or a URL. `s3://`,
`gs://`, `hdfs://` and `file://` go through pyarrow's own filesystems; any other scheme
through fsspec (`memory://`, `https://`, ...) where fsspec and its backend are installed.

Verification: a shard is read whole, its size and sha256 compared with index.json before
any row is used; a mismatch raises ShardError naming the file. index.json's tokenizer
hash can be checked against the tokenizer a trainer loads (`expect_tokenizer`).

Order of an epoch: the shards in a permutation drawn from (seed, epoch), the rows of each
shard in a permutation drawn from (seed, epoch, shard). The writer already spreads files
over shards by a seeded hash, so every shard is a random sample of the corpus.

Split: consumer c = rank * num_workers + worker of C = world_size * num_workers takes the
contiguous slice [c*N//C, (c+1)*N//C) of the epoch's N documents: each document exactly
once per epoch, the slices differ by at most one document, and a consumer reads only the
about S/C shards its slice touches.

Repository documents: a build with `[shards] group_by = "repository"` (index.json's
`group_by`) holds a repository's files in consecutive rows; a document is then one run of
a repository's rows in a shard, their input_ids joined (`<reponame>`, then `<filename>`
PATH and content per file, `<|endoftext|>` at the end), and its `id` is the repository.
FIM belongs inside one file (StarCoder2): pass `fim` to the loader, which transforms each
file's content on its own, and apply no FIM to the packed blocks.

Held out: with `holdout` and `split`, documents whose md5(id) falls in the first `holdout`
share form the "eval" split, the rest the "train" split (the trainer's eval loss).

Resume: every item comes with the state after it (`LoaderState`: epoch, position in the
consumer's slice, tokens of the current document already emitted); a loader started from
a state yields exactly what would have followed. With a torch DataLoader (`TokenBlocks`),
keep the last state seen from each worker and pass them all back on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from corpus_core.tokens import EOS
from trainer.fim import FimConfig, permute


class ShardError(RuntimeError):
    """A shard or index that does not match what the build wrote."""


@dataclass(frozen=True)
class LoaderState:
    epoch: int = 0
    position: int = 0  # documents of this consumer's slice of the epoch fully consumed
    offset: int = 0  # tokens of the next document already emitted (blocks only)

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "offset": self.offset}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> LoaderState:
        return cls(int(data["epoch"]), int(data["position"]), int(data.get("offset", 0)))


# a build's commit record (docs/FORMATS.md): while it says "publishing", the index and the
# shards may be of two builds
BUILD_MARKER = ".corpus-build.json"


def open_location(url: str) -> tuple[pafs.FileSystem, str, dict[str, Any]]:
    """A pyarrow filesystem, the path of the shard directory and the index listing its shards."""
    url = str(url)
    if "://" not in url:
        filesystem, path = pafs.LocalFileSystem(), os.path.abspath(url)
    else:
        try:
            filesystem, path = pafs.FileSystem.from_uri(url)
        except (pa.ArrowInvalid, ValueError):
            try:
                import fsspec
            except ImportError as err:
                raise ShardError(f"{url}: no pyarrow filesystem for this scheme, and fsspec is not installed") from err
            protocol, _, rest = url.partition("://")
            handler = pafs.FSSpecHandler(fsspec.filesystem(protocol))
            filesystem, path = pafs.PyFileSystem(handler), rest if protocol != "memory" else "/" + rest.lstrip("/")
    path = path.rstrip("/") or "/"

    def read(index_path: str) -> dict[str, Any] | None:
        if filesystem.get_file_info(index_path).type == pafs.FileType.NotFound:
            return None
        with filesystem.open_input_stream(index_path) as stream:
            return json.loads(stream.read())

    # a build (index.json, its shards in shard_dir), an older build's shard directory (the
    # index among its shards: no shard_dir), an older build, a build's shard directory
    index = read(f"{path}/index.json")
    if index is not None:
        marker = read(f"{path}/{BUILD_MARKER}")
        if isinstance(marker, dict) and marker.get("state") == "publishing":
            raise ShardError(f"{url}: a build is being published there, or its publishing was cut short "
                             f"({BUILD_MARKER} says so); read it once the build has ended")
        return filesystem, posixpath.join(path, index["shard_dir"]) if "shard_dir" in index else path, index
    index = read(f"{path}/shards/index.json")
    if index is not None:
        return filesystem, f"{path}/shards", index
    parent = posixpath.dirname(path)
    index = read(f"{parent}/index.json") if parent != path else None
    if index is not None and posixpath.join(parent, index.get("shard_dir", "")).rstrip("/") == path:
        return filesystem, path, index
    raise ShardError(f"{url}: no index.json here or in shards/ (is it a build's output?)")


class ShardLoader:
    def __init__(self, url: str, *, seed: int = 0, rank: int = 0, world_size: int = 1, worker: int = 0,
                 num_workers: int = 1, columns: tuple[str, ...] = ("id", "input_ids"),
                 expect_tokenizer: str | None = None, holdout: float = 0.0, split: str | None = None,
                 fim: FimConfig | None = None):
        if not (0 <= rank < world_size and 0 <= worker < num_workers):
            raise ValueError(f"rank {rank} of {world_size}, worker {worker} of {num_workers}: out of range")
        self.filesystem, self.path, self.index = open_location(url)
        self.url = url
        if expect_tokenizer and self.index.get("tokenizer_sha256") != expect_tokenizer:
            raise ShardError(f"{url}: shards were tokenized with {self.index.get('tokenizer_sha256')}, "
                             f"not the expected tokenizer {expect_tokenizer}")
        self.shards: list[dict[str, Any]] = self.index["shards"]
        if split not in (None, "train", "eval") or (split and "id" not in columns):
            raise ValueError(f"split {split!r}: None, 'train' or 'eval', with the id column")
        self.seed, self.columns = seed, columns
        self.holdout, self.split = holdout, split
        self.consumer = rank * num_workers + worker
        self.consumers = world_size * num_workers
        self._verified: dict[str, pa.Table] = {}
        # repository documents (the writer's group_by): runs of rows of one repository
        self.grouped = self.index.get("group_by") == "repository"
        self.fim = fim
        if fim is not None and not self.grouped:
            raise ValueError(f"{url}: fim in the loader is for repository documents; a build of files gets FIM "
                             "per document from trainer.fim.fim_sample")
        self._read_columns = list(columns)
        if self.grouped:
            needed = ["repo", "content_start"] if "input_ids" in columns else ["repo"]
            self._read_columns += [name for name in needed if name not in columns]

    def _units(self, entry: dict[str, Any]) -> int:
        """Documents in a shard: its rows, or its repository runs."""
        return entry["documents"] if self.grouped else entry["rows"]

    @property
    def documents_per_epoch(self) -> int:
        return sum(self._units(entry) for entry in self.shards)

    def slice(self) -> tuple[int, int]:
        """This consumer's [start, end) of the epoch's document sequence."""
        total = self.documents_per_epoch
        return self.consumer * total // self.consumers, (self.consumer + 1) * total // self.consumers

    def _is_eval(self, doc_id: str) -> bool:
        """Held out for evaluation: the first `holdout` share of documents by md5 of their id."""
        return hashlib.md5(doc_id.encode()).digest()[0] < self.holdout * 256

    def _read_shard(self, entry: dict[str, Any]) -> pa.Table:
        """The shard's rows (self.columns), after its size and sha256 match the index."""
        name = entry["file"]
        if name not in self._verified:
            with self.filesystem.open_input_file(f"{self.path}/{name}") as handle:
                data = handle.read()
            digest = hashlib.sha256(data).hexdigest()
            if len(data) != entry["bytes"] or digest != entry["sha256"]:
                raise ShardError(f"{self.url}/{name}: {len(data)} bytes with sha256 {digest[:16]}…, the index says "
                                 f"{entry['bytes']} bytes with sha256 {entry['sha256'][:16]}…: corrupt or changed; "
                                 "refusing to train on it")
            table = pq.read_table(pa.BufferReader(data), columns=self._read_columns)
            self._verified = {name: table}  # one shard in memory at a time
        return self._verified[name]

    def _epoch_order(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        """(shard index, row permutation) in the epoch's order."""
        shard_order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
        return [(int(s), np.random.default_rng([self.seed, epoch, int(s)]).permutation(self._units(self.shards[s])))
                for s in shard_order]

    def documents(self, state: LoaderState | None = None, epochs: int | None = None
                  ) -> Iterator[tuple[dict[str, Any], LoaderState]]:
        """Documents (a dict of self.columns, input_ids as an int64 array) with the state after
        each, epoch after epoch (all of them when `epochs` is None)."""
        state = state or LoaderState()
        start, end = self.slice()
        if start == end:  # more consumers than documents: this one has none
            return
        epoch = state.epoch
        while epochs is None or epoch < state.epoch + epochs:
            first = start + (state.position if epoch == state.epoch else 0)
            seen = 0
            yielded = 0
            for shard, rows in self._epoch_order(epoch):
                count = len(rows)
                lo, hi = max(first - seen, 0), min(end - seen, count)
                if lo < hi:
                    table = self._read_shard(self.shards[shard])
                    if self.grouped:
                        columns = self._repositories(table, rows[lo:hi], epoch, seen + lo)
                    else:
                        columns = self._rows(table.take(pa.array(rows[lo:hi])))
                    for i in range(hi - lo):
                        if self.split and self._is_eval(columns["id"][i]) != (self.split == "eval"):
                            continue  # the other split's document: its position still counts
                        yielded += 1
                        yield ({name: values[i] for name, values in columns.items()},
                               LoaderState(epoch, seen + lo + i + 1 - start))
                seen += count
                if seen >= end:
                    break
            if yielded == 0 and first == start:  # a whole epoch with nothing for this consumer
                if self.split:
                    raise ShardError(f"{self.url}: no {self.split} documents for consumer {self.consumer} "
                                     f"(holdout {self.holdout})")
                return
            epoch += 1

    def _rows(self, picked: pa.Table) -> dict[str, list[Any]]:
        """Each column of the picked rows as a list; input_ids as int64 arrays."""
        columns = {name: picked.column(name).to_pylist() for name in self.columns if name != "input_ids"}
        if "input_ids" in self.columns:
            ids = picked.column("input_ids").combine_chunks()
            flat = ids.flatten().to_numpy().astype(np.int64)
            bounds = np.concatenate(([0], np.cumsum(ids.value_lengths().to_numpy())))
            columns["input_ids"] = [flat[bounds[i]:bounds[i + 1]] for i in range(picked.num_rows)]
        return columns

    def _repositories(self, table: pa.Table, picks: np.ndarray, epoch: int, position: int) -> dict[str, list[Any]]:
        """The picked repository documents of a shard: `id` is the repository (a held-out
        split takes or leaves whole repositories), `ids` and `paths` its files' ids and
        paths, input_ids its rows' ids joined, `files` each file's (start, end) of content
        in them; with `fim`, each file's content is FIM-transformed on its own."""
        repos = table.column("repo").to_pylist()
        starts = [i for i in range(len(repos)) if i == 0 or repos[i - 1] != repos[i]] + [len(repos)]
        picked = [(starts[int(p)], starts[int(p) + 1]) for p in picks]
        rows = self._rows(table.take(pa.array([i for lo, hi in picked for i in range(lo, hi)])))
        offsets = table.column("content_start").to_pylist() if "input_ids" in self.columns else None
        out: dict[str, list[Any]] = {name: [] for name in self.columns}
        out.update(ids=[], paths=[], files=[])
        at = 0
        for number, (lo, hi) in enumerate(picked):
            part = slice(at, at + hi - lo)
            at += hi - lo
            for name in self.columns:
                if name == "id":
                    out["id"].append(repos[lo])
                elif name != "input_ids":
                    out[name].append(rows[name][part][0])
            out["ids"].append(rows["id"][part] if "id" in rows else None)
            out["paths"].append(rows["path"][part] if "path" in rows else None)
            if offsets is None:
                continue
            rng = np.random.default_rng([self.seed, epoch, position + number])
            pieces, files, length = [], [], 0
            for ids, start in zip(rows["input_ids"][part], offsets[lo:hi], strict=True):
                content = ids[start:len(ids) - (ids[-1] == EOS)]
                if self.fim is not None:
                    content = permute(content, rng, self.fim)
                pieces += [ids[:start], content, ids[len(ids) - (ids[-1] == EOS):]]
                files.append((length + start, length + start + len(content)))
                length += start + len(content) + int(ids[-1] == EOS)
            out["input_ids"].append(np.concatenate(pieces).astype(np.int64))
            out["files"].append(files)
        return out

    def blocks(self, length: int, state: LoaderState | None = None) -> Iterator[tuple[np.ndarray, LoaderState]]:
        """Packed blocks of `length` token ids, documents back to back (each ends in
        <|endoftext|>, so boundaries are in the ids); endless, epoch after epoch."""
        if "input_ids" not in self.columns:
            raise ValueError("blocks need the input_ids column")
        state = state or LoaderState()
        buffer = np.empty(length, dtype=np.int64)
        filled = 0
        skip = state.offset
        for doc, after in self.documents(LoaderState(state.epoch, state.position)):
            ids = doc["input_ids"][skip:]
            emitted = skip
            skip = 0
            while len(ids):
                take = min(length - filled, len(ids))
                buffer[filled:filled + take] = ids[:take]
                filled += take
                ids = ids[take:]
                emitted += take
                if filled == length:
                    filled = 0
                    if len(ids):  # the document goes on into the next block
                        yield buffer.copy(), LoaderState(after.epoch, after.position - 1, emitted)
                    else:
                        yield buffer.copy(), after


def _torch_dataset_base() -> type:
    try:
        from torch.utils.data import IterableDataset
    except ImportError:  # torch is the optional `train` extra
        return object
    return IterableDataset


class TokenBlocks(_torch_dataset_base()):  # type: ignore[misc]
    """A torch IterableDataset of packed blocks for one data-parallel rank. Each DataLoader
    worker is a consumer of its own; items are {"input_ids": LongTensor (length,),
    "worker": int, "state": dict}. Keep the last state per worker and pass them back as
    `states` to resume exactly."""

    def __init__(self, url: str, length: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                 num_workers: int = 1, states: dict[int, dict[str, int]] | None = None):
        self.url, self.length, self.seed = url, length, seed
        self.rank, self.world_size, self.num_workers = rank, world_size, max(num_workers, 1)
        self.states = states or {}

    def __iter__(self):
        import torch
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker = info.id if info else 0
        if (info.num_workers if info else 1) != self.num_workers:
            raise ValueError(f"TokenBlocks(num_workers={self.num_workers}) in a DataLoader with "
                             f"{info.num_workers if info else 1} workers")
        loader = ShardLoader(self.url, seed=self.seed, rank=self.rank, world_size=self.world_size, worker=worker,
                             num_workers=self.num_workers, columns=("input_ids",))
        state = self.states.get(worker)
        for block, after in loader.blocks(self.length, LoaderState.from_dict(state) if state else None):
            yield {"input_ids": torch.from_numpy(block), "worker": worker, "state": after.to_dict()}
