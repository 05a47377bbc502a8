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
- Fast path: `TextEncoder` encodes with tiktoken (about ten times the speed of `encode_batch`
  per core; GPT-2's split is most of HF's cost) wherever it gives HF's ids, and falls back to
  `encode_batch` where that is not proven (the reason goes to the stage's notes).
- Training: the driver writes the sample, in order, to `_work/<fp>/tokenize/sample.parquet`;
  one task (`train_task`) trains on it, so HF's trainer uses a worker node's cores and memory.
- Parallel: the driver scatters the kept files' keys and metadata (no content) by chunk
  (corpus_core/partitions.py); a task per partition reads its files' content from their
  chunks' parts itself and encodes it in batches of `batch_files`, with threads limited so
  that tasks x threads fits the CPUs. The ids go to `_work/<fp>/tokenize/tokens-K.parquet`,
  read back by the writer, with what it needs to join a repository's files into one
  document (`prefix_tokens`, `repo_ids`, `path_ids`).

Why tiktoken gives HF's ids. HF's BPE ("merge-BPE") splits text with GPT-2's regex, then in
each piece, from its bytes, repeatedly merges the adjacent pair that is a merge of the list
with the lowest merge index (leftmost on a tie). tiktoken ("rank-BPE") splits with the same
regex (`SPLIT_PATTERN`: the same matches, see its comment), returns a piece that is itself a
token as that token, else repeatedly merges the adjacent pair whose *concatenation* is a
token with the lowest rank (leftmost on a tie). With rank = the id of the merge's result, the
two agree on every piece when the tokenizer's merges satisfy (checked in `_tiktoken_for`):
  C1 no two merges make the same token, and merge results' ids rise with the merge index;
  C2 each merge joins bytes or results of earlier merges;
  C3 merge-BPE encodes each merge result's own bytes as that one token.
They are checked, not assumed; a trained tokenizer meets them (its trainer merges inside
pre-tokenized words as encoding does, so a token's bytes re-merge as in the word it came from).
Proof. A whole piece that is a token: C3. Otherwise both are the same greedy process over
keys (rank, position) as long as rank-BPE picks pairs of the list (merge-BPE's candidates
are a subset of rank-BPE's, with the same keys); up to then the picked keys never decrease
(C1, C2: a pair that contains a new token ranks above it). Suppose rank-BPE first picks an
off-list pair: x y adjacent, xy = t, (x, y) not t's merge (a, b). Merge-BPE run on t's bytes
alone ends in [t] (C3); every merge in it but the last ranks below t (C2), and the lowest
node of its merge tree spanning the x|y boundary is a merge (p, q) splitting exactly there,
key k = (rank(pq), start of p) < key of (x, y). Until the run on t does (p, q), it merges
inside x's bytes and inside y's bytes only, in the order merge-BPE would on each alone; so
does the whole piece, which built x and y without crossing their bounds. After the piece's
last merge of key below k, the bytes of x and of y stand exactly as in the run on t just
before (p, q): p and q adjacent, a candidate of key k. Nothing of key below k is left, and
keys are unique, so the next pick is (p, q), which joins across x|y before (x, y) could be
picked: a contradiction. So rank-BPE never leaves the merge list, and gives merge-BPE's ids.
The equality is also checked on real text by tests/stages/test_tokenize_fast.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core.errors import BuildFailed, ConfigError
from corpus_core.partitions import PartitionPlan, inputs, result_path, run_tasks, scatter, with_content
from corpus_core.settings import Settings, setting
from corpus_core.stage import NO_DROPS, CorpusContext, CorpusStage
from corpus_core.storage import sha256_file, sql_path
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


# GPT-2's split (HF ByteLevel's regex: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
# ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+), written so that tiktoken's engine runs it fast: the easy
# branches grouped (one call of the regex crate instead of one per branch), the contractions
# as one (no contraction is a prefix of another: same match), and the last branch `\s` (it is
# reached only when `\s+(?!\S)` fails, i.e. at one whitespace character before a non-space,
# where `\s+` matched that one character). The same pieces: checked on every code point and on
# real text by tests/stages/test_tokenize_fast.py.
SPLIT_PATTERN = r"""(?:'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+)|\s+(?!\S)|\s"""


def byte_level_chars() -> dict[str, int]:
    """ByteLevel's (GPT-2's) character for each byte, as character -> byte: printable Latin-1
    stands for itself, the other 68 bytes for U+0100 onwards, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + i): b for i, b in enumerate(others)}


def _tiktoken_for(tokenizer: Any) -> tuple[Any, str | None]:
    """A tiktoken Encoding that gives `tokenizer`'s ids on any text, special tokens not
    recognized (the module's docstring has why), or (None, why there is none)."""
    spec = json.loads(tokenizer.to_str())
    model, pre = spec["model"], spec["pre_tokenizer"] or {}
    if spec["normalizer"] is not None:
        return None, "the tokenizer has a normalizer"
    if (pre.get("type"), pre.get("add_prefix_space"), pre.get("use_regex")) != ("ByteLevel", False, True):
        return None, "its pre-tokenizer is not ByteLevel(add_prefix_space=false, use_regex=true)"
    if model["type"] != "BPE":
        return None, f"its model is {model['type']}, not BPE"
    options = [o for o in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback",
                           "ignore_merges") if model.get(o)]
    if options:
        return None, f"its BPE sets {', '.join(options)}"
    if not all(added["special"] for added in spec["added_tokens"]):
        return None, "it has added tokens that are not special (those are recognized in text)"
    chars, vocab = byte_level_chars(), model["vocab"]
    if not all(c in vocab for c in chars):
        return None, "its vocabulary lacks some of the 256 byte tokens"
    ranks = {bytes([b]): vocab[c] for c, b in chars.items()}
    made, merged, last = set(chars), [], -1
    for number, merge in enumerate(model["merges"]):
        first, second = merge if isinstance(merge, list) else merge.split(" ")
        token = first + second
        if first not in made or second not in made:  # C2
            return None, f"merge {number} ({first!r} {second!r}) joins a token no earlier merge made"
        if token in made or vocab.get(token, -1) <= last:  # C1
            return None, f"merge {number} ({first!r} {second!r}) makes a token made before or an id out of order"
        made.add(token)
        merged.append(token)
        last = vocab[token]
        ranks[bytes(chars[c] for c in token)] = last
    for token in merged:  # C3
        if [t.id for t in tokenizer.model.tokenize(token)] != [vocab[token]]:
            return None, f"token {token!r} does not encode to itself"
    import tiktoken

    return tiktoken.Encoding("corpus-bpe", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens={}), None


@dataclass(frozen=True)
class TextEncoder:
    """A tokenizer's ids for plain text (no special token recognized in it): tiktoken's where
    that is proven equal (`fast`), else `encode_batch`'s."""

    tokenizer: Any  # the HF tokenizer: the reference, and the fallback
    fast: Any = None  # a tiktoken Encoding that gives its ids, or None
    why_not: str | None = None  # why `fast` is None

    @classmethod
    def of(cls, tokenizer: Any) -> TextEncoder:
        if isinstance(tokenizer, TextEncoder):
            return tokenizer
        fast, why_not = _tiktoken_for(tokenizer)
        return cls(tokenizer, fast, why_not)

    def encode(self, texts: list[str]) -> list[list[int]]:
        threads = int(os.environ.get("RAYON_NUM_THREADS") or os.cpu_count() or 1)  # what limits encode_batch
        # the text never yields a control token (and the tokenizer stays so, as callers expect)
        self.tokenizer.encode_special_tokens = True
        if self.fast is None:
            return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]
        encode = self.fast.encode_ordinary  # releases the GIL while it encodes
        if threads == 1 or len(texts) < 2:
            return [encode(text) for text in texts]
        # a few slices, not one future per text (~20 us each: more than a short text takes)
        ids: list[Any] = [None] * len(texts)
        with ThreadPoolExecutor(threads) as pool:
            for start, part in enumerate(pool.map(lambda s: [encode(t) for t in texts[s::threads]], range(threads))):
                ids[start::threads] = part
        return ids


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
    known): prefix, then each of its documents followed by <|endoftext|>. `tokenizer`: an HF
    tokenizer, or its `TextEncoder` (built once: checking the fast path takes ~0.1 s)."""
    return [ids for ids, _ in encode_with_prefix(tokenizer, rows, config)]


def encode_with_prefix(tokenizer: Any, rows: list[dict[str, Any]], config: TokenizeConfig
                       ) -> list[tuple[list[int], int]]:
    """`encode_files`, each with the length of its metadata prefix (where the content starts)."""
    encoder = TextEncoder.of(tokenizer)
    prefixes = [metadata_prefix(r["repo"], r["path"], r["stars"], r["id"], config) for r in rows]
    docs = [documents(r) for r in rows]
    texts = [text for row_docs in docs for doc in row_docs for special, text in doc if not special]
    pieces = [text for parts in prefixes for _, text in parts]
    encoded = encoder.encode(texts + pieces)
    text_ids = iter(encoded[: len(texts)])
    piece_ids = iter(encoded[len(texts):])
    newline = encoder.encode(["\n"])[0] if pieces else []
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
    texts = [r["repo"] + "\n" for r in rows] + [r["path"] + "\n" for r in rows]
    encoded = TextEncoder.of(tokenizer).encode(texts)
    return encoded[: len(rows)], encoded[len(rows):]


def train_task(folder: str, vocab_size: int, min_frequency: int) -> int:
    """The tokenizer's training, as a task (the driver only coordinates; HF's trainer takes
    every core of the node it runs on and holds its word counts there): reads the sample
    `folder/sample.parquet` in order, writes `folder/tokenizer.json`; returns the vocabulary's
    size."""
    def texts() -> Iterator[str]:
        for batch in pq.ParquetFile(Path(folder) / "sample.parquet").iter_batches(batch_size=256):
            yield from batch.column(0).to_pylist()

    tokenizer = train_tokenizer(texts(), vocab_size, min_frequency)
    tokenizer.save(str(Path(folder) / "tokenizer.json"))
    return tokenizer.get_vocab_size()


# what a file's encoding needs besides its content
KEY_COLUMNS = ("unit", "ordinal", "id", "repo", "path", "stars", "language", "notebook")


def encode_task(number: int, folder: str, plan: PartitionPlan, config: TokenizeConfig,
                parts: dict[str, str], threads: int) -> dict[str, int]:
    """One partition's encoding: its kept files' keys from the driver's scatter, their content
    from their chunks' parts, in batches of `batch_files`; writes `tokens-K.parquet` (unit,
    ordinal, input_ids, num_tokens, prefix_tokens, repo_ids, path_ids)."""
    import duckdb

    if threads:  # read when the tokenizer's thread pool starts, i.e. on the first encode_batch
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
    encoder = _cached_encoder(str(Path(folder) / "tokenizer.json"))
    element = pa.list_(ids_type(encoder.tokenizer.get_vocab_size()))
    schema = pa.schema([("unit", pa.string()), ("ordinal", pa.int64()), ("input_ids", element),
                        ("num_tokens", pa.int32()), ("prefix_tokens", pa.int32()), ("repo_ids", element),
                        ("path_ids", element)])
    keys = duckdb.connect().sql(f"SELECT * FROM {inputs(Path(folder), 'keys', number)} ORDER BY unit, ordinal")
    path = result_path(Path(folder), "tokens", number)
    partial = path.with_suffix(".partial")
    files = tokens = 0
    with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
        for rows in with_content(keys.to_arrow_reader(batch_size=config.batch_files), parts):
            encoded = encode_with_prefix(encoder, rows, config)
            ids = [i for i, _ in encoded]
            repo_ids, path_ids = header_ids(encoder, rows)
            writer.write_table(pa.table({
                "unit": [r["unit"] for r in rows],
                "ordinal": [r["ordinal"] for r in rows],
                "input_ids": ids,
                "num_tokens": [len(i) for i in ids],
                # for repository documents (the writer's `group_by`): where the content starts, and
                # the ids of the text after <reponame> and <filename>
                "prefix_tokens": [p for _, p in encoded],
                "repo_ids": repo_ids,
                "path_ids": path_ids,
            }, schema=schema))
            files += len(rows)
            tokens += sum(len(i) for i in ids)
    os.replace(partial, path)
    return {"files": files, "tokens": tokens}


_ENCODERS: dict[str, TextEncoder] = {}


def _cached_encoder(path: str) -> TextEncoder:
    """One encoder per worker process and file (workers are reused across tasks)."""
    if path not in _ENCODERS:
        _ENCODERS.clear()
        _ENCODERS[path] = TextEncoder.of(load_tokenizer(path))
    return _ENCODERS[path]


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
            self._write_sample(db, shares, folder / "sample.parquet")
            trained: list[int] = []  # the vocabulary's size, once the task is done
            context.executor.map(train_task, [str(folder)], (self.config.vocab_size, self.config.min_frequency),
                                 lambda _, size: trained.append(size))
            (folder / "sample.parquet").unlink()
            tokenizer = load_tokenizer(tokenizer_path)
            merges = trained[0] - BASE_VOCAB
            if merges <= 0:  # a vocabulary of bytes alone: not a tokenizer anyone should train on
                raise BuildFailed(
                    f"tokenize: {total} bytes of kept text taught the BPE no merge (at least "
                    f"{self.config.min_frequency} occurrences of a pair are needed); see why files were dropped "
                    "(corpus inspect), or name a trained tokenizer in tokenize.tokenizer")
            notes["tokenizer"] = "trained"
            notes["train_seconds"] = round(time.perf_counter() - started, 3)
        if self.config.tokenizer:
            tokenizer.save(str(tokenizer_path))
        notes["vocab_size"] = tokenizer.get_vocab_size()
        notes["tokenizer_sha256"] = sha256_file(tokenizer_path)
        encoder = TextEncoder.of(load_tokenizer(tokenizer_path))  # as the workers will see it
        notes["encoder"] = "tiktoken" if encoder.fast else f"tokenizers encode_batch: {encoder.why_not}"

        (files,) = db.sql("SELECT count(*) FROM files WHERE decision = 'kept'").fetchall()[0]
        context.progress.phase(f"{self.name}: encoding {files} files")
        executor = context.executor
        cpus = os.cpu_count() or 1
        threads = 0 if executor.name == "local" else max(1, cpus // max(executor.num_workers, 1))
        tokens = 0
        if files:
            started = time.perf_counter()
            # only keys and metadata leave the driver: each task reads its files' content from the parts
            scatter(db, f"SELECT {', '.join(KEY_COLUMNS)} FROM files WHERE decision = 'kept'", "unit", folder,
                    "keys", context.partitions)
            tokens = run_tasks(executor, encode_task, folder, "tokens", context.partitions,
                               (self.config, context.parts, threads)).get("tokens", 0)
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

    def _write_sample(self, db: Any, shares: dict[str, int], path: Path) -> None:
        """The training sample, in order, to `path` (a Parquet file of `content`): kept files,
        whole, in md5(seed:id) order per language, each taken while the bytes taken before it
        in its language are under the language's share."""
        seed = int(self.config.seed)
        db.execute("CREATE OR REPLACE TEMP TABLE train_shares (language VARCHAR, share BIGINT)")
        if shares:  # none when nothing was kept: the sample is empty, and the trainer learns no merge
            db.executemany("INSERT INTO train_shares VALUES (?, ?)", sorted(shares.items()))
        # the keys chosen first (a sort of a few small columns), then only their content
        db.execute(f"""CREATE OR REPLACE TEMP TABLE train_picked AS
            SELECT unit, ordinal, language, rank FROM (
                SELECT unit, ordinal, coalesce(language, '(unknown)') AS language, md5('{seed}:' || id) AS rank,
                       coalesce(sum(size) OVER (PARTITION BY coalesce(language, '(unknown)')
                                                ORDER BY md5('{seed}:' || id), unit, ordinal
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
                FROM files WHERE decision = 'kept')
            JOIN train_shares USING (language)
            WHERE before < share""")
        db.execute(f"""COPY (
            SELECT f.content FROM train_picked p JOIN files f USING (unit, ordinal)
            ORDER BY p.language, p.rank, p.unit, p.ordinal
        ) TO {sql_path(path)} (FORMAT parquet, COMPRESSION zstd)""")
        db.execute("DROP TABLE train_shares; DROP TABLE train_picked")
