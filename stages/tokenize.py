"""Tokenization: a byte-level BPE tokenizer with StarCoder's special tokens, trained on the
build's kept files (or loaded from a tokenizer.json), and every kept file encoded.

- Special tokens: `SPECIAL_TOKENS`, ids 0..18 in that order (DESIGN.md). A given
  tokenizer.json must hold each at its id, or the build stops with a ConfigError.
- Training sample: at most `train_bytes` of kept content. Each language's share of the
  budget is proportional to the square root of its kept bytes (temperature sampling with
  alpha 0.5: small languages get more than their share, none is starved); within a
  language files are taken in md5(seed:id) order, whole, until its share is spent; the
  share a language cannot fill goes to the others. Same input, same sample, and
  HF tokenizers' BPE trainer is deterministic on the same input, so the same tokenizer.
- Encoding: content is encoded with special tokens *not* recognized in the text
  (`encode_special_tokens`), so a file that contains the string `<|endoftext|>` cannot
  inject a control token; decode(encode(x)) == x for any text (no normalizer; byte-level).
  A structured notebook's markers become their special ids from its `notebook` column,
  never from its text (stages/notebooks.py).
  Each file gets `<|endoftext|>` at its end and, each with probability
  `metadata_probability` decided by md5(seed:id), StarCoder's metadata prefix parts:
  `<reponame>REPO`, `<filename>PATH`, `<gh_stars>STARS` (stars only when known), then a
  newline before the content when any part is present.
- Parallel: batches of `batch_files` files are Ray tasks (the same executor as ingest);
  each calls `encode_batch`, whose Rust threads are limited so that tasks x threads fits
  the CPUs. The ids go to `_work/<fp>/tokenize/tokens-N.parquet`, read back by the writer,
  with what it needs to join a repository's files into one document (`prefix_tokens`,
  `repo_ids`, `path_ids`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from corpus_core.errors import BuildFailed, ConfigError
from corpus_core.settings import Settings, setting
from corpus_core.stage import NO_DROPS, CorpusContext, CorpusStage
from corpus_core.storage import sha256_file, sql_path, write_atomic
from corpus_core.tokens import EOS, FILENAME, GH_STARS, REPONAME, SPECIAL_TOKENS
from stages.notebooks import cells_of, script, segments


@dataclass(frozen=True)
class TokenizeConfig(Settings):
    """The tokenizer and the encoding of kept files."""

    section = "tokenize"

    enabled: bool = setting(True, "false: shards carry content only, no input_ids")
    tokenizer: str | None = setting(None, "a tokenizer.json to use (special tokens checked; relative to the "
                                    "config) instead of training one", example='"starcoder/tokenizer.json"', path=True)
    vocab_size: int = setting(49_152, "of a trained tokenizer (StarCoder's), special tokens and bytes included")
    train_bytes: int = setting(256 * 1024**2, "kept content a trained tokenizer sees, spread over languages")
    min_frequency: int = setting(2, "BPE: a merge must occur this often in the sample")
    metadata_probability: float = setting(0.2, "each of <reponame>, <filename>, <gh_stars> prefixed with this "
                                          "chance (StarCoder)")
    seed: int = setting(0, "seeds the training sample and the metadata draws")
    batch_files: int = setting(1000, "files per encoding task")

    def __post_init__(self) -> None:
        if not 0 <= self.metadata_probability <= 1:
            raise ConfigError(f"tokenize.metadata_probability = {self.metadata_probability!r}: expected 0..1")
        if self.vocab_size < 256 + 19 or self.batch_files < 1:
            raise ConfigError(f"tokenize.vocab_size = {self.vocab_size}: at least 275 (19 special tokens, 256 "
                              f"bytes); batch_files >= 1")


def ids_type(vocab_size: int) -> pa.DataType:
    """input_ids element type: uint16 while every id fits, else int32."""
    return pa.uint16() if vocab_size <= 2**16 else pa.int32()


def check_special_tokens(tokenizer: Any, source: str) -> None:
    for expected, token in enumerate(SPECIAL_TOKENS):
        found = tokenizer.token_to_id(token)
        if found != expected:
            raise ConfigError(f"tokenizer {source}: special token {token} has id {found}, expected {expected} "
                              f"(StarCoder's 19 special tokens must be ids 0..18 in DESIGN.md's order)")


def new_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


BASE_VOCAB = len(SPECIAL_TOKENS) + 256  # what a byte-level BPE holds before its first merge


def train_tokenizer(texts: Iterator[str], vocab_size: int, min_frequency: int = 2) -> Any:
    """A byte-level BPE over `texts`, special tokens first (ids 0..18), then the 256 bytes."""
    from tokenizers import pre_tokenizers, trainers

    tokenizer = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    check_special_tokens(tokenizer, "trained")
    return tokenizer


def load_tokenizer(path: str | Path) -> Any:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception for a bad file
        raise ConfigError(f"tokenize.tokenizer = {str(path)!r}: cannot load: {err}") from err
    check_special_tokens(tokenizer, str(path))
    return tokenizer


def _draws(seed: int, file_id: str) -> tuple[float, float, float]:
    """Three uniform numbers in [0, 1) fixed by the seed and the file."""
    digest = hashlib.md5(f"{seed}:{file_id}".encode()).digest()
    return tuple(int.from_bytes(digest[i:i + 4], "little") / 2**32 for i in (0, 4, 8))  # type: ignore[return-value]


def metadata_prefix(repo: str, path: str, stars: int | None, file_id: str, config: TokenizeConfig) -> list[tuple]:
    """The metadata parts this file gets: (special id, text) pairs, in StarCoder's order."""
    p = config.metadata_probability
    draw_repo, draw_path, draw_stars = _draws(config.seed, file_id)
    parts = []
    if draw_repo < p:
        parts.append((REPONAME, repo))
    if draw_path < p:
        parts.append((FILENAME, path))
    if stars is not None and draw_stars < p:
        parts.append((GH_STARS, str(stars)))
    return parts


def documents(row: dict[str, Any]) -> list[list[tuple[int, str]]]:
    """The documents a row is encoded as, each a list of (special id, "") and (0, text)
    segments: the content alone, or a structured notebook's cells between their markers
    (after its script, for the "both" form; stages/notebooks.py)."""
    if not row.get("notebook"):
        return [[(0, row["content"])]]
    notebook = json.loads(row["notebook"])
    marked = list(segments(row["content"], notebook["markers"]))
    if notebook["form"] != "both":
        return [marked]
    cells = cells_of(row["content"], notebook["markers"])
    return [[(0, script(cells, row.get("language")))], marked] if cells is not None else [marked]


def encode_files(tokenizer: Any, rows: list[dict[str, Any]], config: TokenizeConfig) -> list[list[int]]:
    """input_ids of each row (repo, path, stars, id, content; language and notebook when
    known): prefix, then each of its documents followed by <|endoftext|>."""
    return [ids for ids, _ in encode_with_prefix(tokenizer, rows, config)]


def encode_with_prefix(tokenizer: Any, rows: list[dict[str, Any]], config: TokenizeConfig
                       ) -> list[tuple[list[int], int]]:
    """`encode_files`, each with the length of its metadata prefix (where the content starts)."""
    tokenizer.encode_special_tokens = True  # the text never yields a control token
    prefixes = [metadata_prefix(r["repo"], r["path"], r["stars"], r["id"], config) for r in rows]
    docs = [documents(r) for r in rows]
    texts = [text for row_docs in docs for doc in row_docs for special, text in doc if not special]
    pieces = [text for parts in prefixes for _, text in parts]
    encoded = tokenizer.encode_batch(texts + pieces, add_special_tokens=False)
    text_ids = iter(e.ids for e in encoded[: len(texts)])
    piece_ids = iter(e.ids for e in encoded[len(texts):])
    newline = tokenizer.encode("\n", add_special_tokens=False).ids if pieces else []
    result = []
    for parts, row_docs in zip(prefixes, docs, strict=True):
        ids: list[int] = []
        for special, _ in parts:
            ids.append(special)
            ids.extend(next(piece_ids))
        if parts:
            ids.extend(newline)
        prefix = len(ids)
        for doc in row_docs:
            for special, _ in doc:
                if special:
                    ids.append(special)
                else:
                    ids.extend(next(text_ids))
            ids.append(EOS)
        result.append((ids, prefix))
    return result


def header_ids(tokenizer: Any, rows: list[dict[str, Any]]) -> tuple[list[list[int]], list[list[int]]]:
    """The ids of "REPO\n" and of "PATH\n" of each row: the text after <reponame> and
    <filename> in a repository document (stages/shards.py, `group_by = "repository"`)."""
    tokenizer.encode_special_tokens = True
    texts = [r["repo"] + "\n" for r in rows] + [r["path"] + "\n" for r in rows]
    encoded = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return encoded[: len(rows)], encoded[len(rows):]


def encode_batch_task(batch: tuple[int, list[dict[str, Any]]], config: TokenizeConfig, folder: str,
                      threads: int) -> dict[str, int]:
    """One encoding task: writes tokens-N.parquet (unit, ordinal, input_ids, num_tokens)."""
    if threads:  # read when the tokenizer's thread pool starts, i.e. on the first encode_batch
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
    number, rows = batch
    tokenizer = _cached_tokenizer(str(Path(folder) / "tokenizer.json"))
    encoded = encode_with_prefix(tokenizer, rows, config)
    ids = [i for i, _ in encoded]
    repo_ids, path_ids = header_ids(tokenizer, rows)
    element = pa.list_(ids_type(tokenizer.get_vocab_size()))
    table = pa.table({
        "unit": pa.array([r["unit"] for r in rows], pa.string()),
        "ordinal": pa.array([r["ordinal"] for r in rows], pa.int64()),
        "input_ids": pa.array(ids, element),
        "num_tokens": pa.array([len(i) for i in ids], pa.int32()),
        # for repository documents (the writer's `group_by`): where the content starts, and
        # the ids of the text after <reponame> and <filename>
        "prefix_tokens": pa.array([p for _, p in encoded], pa.int32()),
        "repo_ids": pa.array(repo_ids, element),
        "path_ids": pa.array(path_ids, element),
    })
    write_atomic(table, Path(folder) / f"tokens-{number:06d}.parquet")
    return {"files": len(rows), "tokens": sum(len(i) for i in ids)}


_TOKENIZERS: dict[str, Any] = {}


def _cached_tokenizer(path: str) -> Any:
    """One tokenizer per worker process and file (workers are reused across tasks)."""
    if path not in _TOKENIZERS:
        _TOKENIZERS.clear()
        _TOKENIZERS[path] = load_tokenizer(path)
    return _TOKENIZERS[path]


class Tokenize(CorpusStage):
    """Drops nothing: trains or loads the tokenizer, encodes every kept file, and leaves the
    DuckDB view `tokens` (unit, ordinal, input_ids, num_tokens, prefix_tokens, repo_ids,
    path_ids) for the writer."""

    name = "tokenize"
    settings_class = TokenizeConfig
    writes = ("tokens",)

    config: TokenizeConfig

    def drops(self, db: Any, context: CorpusContext) -> str:
        if not self.config.enabled:
            return NO_DROPS
        folder = context.scratch / self.name
        shutil.rmtree(folder, ignore_errors=True)  # cheap to redo, and a half-written one must not count
        folder.mkdir(parents=True)
        tokenizer_path = folder / "tokenizer.json"
        notes: dict[str, Any] = self.stats.notes
        if self.config.tokenizer:
            context.progress.phase(f"{self.name}: loading {self.config.tokenizer}")
            tokenizer = load_tokenizer(self.config.tokenizer)
            notes["tokenizer"] = self.config.tokenizer
        else:
            available = dict(db.sql("""SELECT coalesce(language, '(unknown)'), sum(size) FROM files
                                       WHERE decision = 'kept' GROUP BY ALL ORDER BY 1""").fetchall())
            shares = self._shares(available)
            notes["trained_on"] = {lang: {"available": int(size), "bytes": shares.get(lang, 0)}
                                   for lang, size in available.items()}
            total = sum(shares.values())
            context.progress.phase(f"{self.name}: training a {self.config.vocab_size}-token BPE on "
                                   f"{total / 1e6:.1f} MB of {len(available)} languages")
            started = time.perf_counter()
            tokenizer = train_tokenizer(self._sample(db, shares), self.config.vocab_size, self.config.min_frequency)
            merges = tokenizer.get_vocab_size() - BASE_VOCAB
            if merges <= 0:  # a vocabulary of bytes alone: not a tokenizer anyone should train on
                raise BuildFailed(
                    f"tokenize: {total} bytes of kept text taught the BPE no merge (at least "
                    f"{self.config.min_frequency} occurrences of a pair are needed); see why files were dropped "
                    "(corpus inspect), or name a trained tokenizer in tokenize.tokenizer")
            notes["tokenizer"] = "trained"
            notes["train_seconds"] = round(time.perf_counter() - started, 3)
        tokenizer.save(str(tokenizer_path))
        notes["vocab_size"] = tokenizer.get_vocab_size()
        notes["tokenizer_sha256"] = sha256_file(tokenizer_path)

        (files,) = db.sql("SELECT count(*) FROM files WHERE decision = 'kept'").fetchall()[0]
        context.progress.phase(f"{self.name}: encoding {files} files")
        executor = context.executor
        cpus = os.cpu_count() or 1
        threads = 0 if executor.name == "local" else max(1, cpus // max(executor.num_workers, 1))
        tokens = 0

        def on_result(batch: Any, result: dict[str, int]) -> None:
            nonlocal tokens
            tokens += result["tokens"]

        if files:
            started = time.perf_counter()
            executor.map(encode_batch_task, self._batches(db), (self.config, str(folder), threads), on_result)
            notes["encode_seconds"] = round(time.perf_counter() - started, 3)
            parts = sql_path(folder / "tokens-*.parquet")
            db.execute(f"CREATE OR REPLACE VIEW tokens AS SELECT * FROM read_parquet({parts})")
        else:
            element = "USMALLINT" if notes["vocab_size"] <= 2**16 else "INTEGER"
            db.execute(f"""CREATE OR REPLACE VIEW tokens AS
                           SELECT NULL::VARCHAR AS unit, NULL::BIGINT AS ordinal, NULL::{element}[] AS input_ids,
                                  NULL::INTEGER AS num_tokens, NULL::INTEGER AS prefix_tokens,
                                  NULL::{element}[] AS repo_ids, NULL::{element}[] AS path_ids LIMIT 0""")
        notes["tokens"] = tokens
        return NO_DROPS

    def _batches(self, db: Any) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        reader = db.sql("""SELECT unit, ordinal, id, repo, path, stars, language, notebook, content FROM files
                           WHERE decision = 'kept' ORDER BY unit, ordinal""").to_arrow_reader(
            batch_size=self.config.batch_files)
        rows: list[dict[str, Any]] = []
        number = 0
        for batch in reader:
            rows.extend(batch.to_pylist())
            while len(rows) >= self.config.batch_files:
                yield number, rows[: self.config.batch_files]
                rows = rows[self.config.batch_files:]
                number += 1
        if rows:
            yield number, rows

    def _shares(self, available: dict[str, int]) -> dict[str, int]:
        """Bytes of each language's share of the training budget (see the module's docstring)."""
        remaining = dict(available)
        shares: dict[str, int] = {}
        budget = self.config.train_bytes
        while remaining and budget > 0:
            weights = {lang: math.sqrt(size) for lang, size in remaining.items()}
            total = sum(weights.values())
            filled = {lang for lang in remaining if budget * weights[lang] / total >= remaining[lang]}
            if not filled:
                for lang in remaining:
                    shares[lang] = int(budget * weights[lang] / total)
                break
            for lang in filled:  # languages smaller than their share: all of it, the rest re-split
                shares[lang] = remaining.pop(lang)
                budget -= shares[lang]
        return shares

    def _sample(self, db: Any, shares: dict[str, int]) -> Iterator[str]:
        """Kept files, whole, in md5(seed:id) order per language until its share is spent."""
        seed = int(self.config.seed)
        reader = db.sql(f"""SELECT coalesce(language, '(unknown)') AS language, size, content FROM files
                            WHERE decision = 'kept'
                            ORDER BY language, md5('{seed}:' || id), unit, ordinal""").to_arrow_reader(batch_size=256)
        spent: dict[str, int] = {}
        for batch in reader:
            for language, size, content in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                used = spent.get(language, 0)
                if used < shares.get(language, 0):
                    spent[language] = used + size
                    yield content
