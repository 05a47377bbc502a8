"""Build configuration: TOML in, dataclasses out, every error raised before work starts.

Each section of the TOML file is one dataclass below; `BuildConfig.to_dict()` is what
run.json records, and `fingerprint()` keys the resumable work directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and value."""


@dataclass(frozen=True)
class SourceSpec:
    """One entry of the source list: a SOURCE string plus what is known about it."""

    source: str  # archive path, directory, git+URL[@REV], pypi:NAME==VER, npm:NAME@VER, dataset
    sha256: str | None = None  # expected sha256 of a fetched or local archive
    stars: int | None = None  # repository popularity, used by dedup tie-breaks
    name: str | None = None  # repository name override


@dataclass(frozen=True)
class IngestConfig:
    max_file_bytes: int = 10 * 1024 * 1024  # files of this size or more: `too_large` (BigCode: 10 MB)
    max_archive_members: int = 200_000  # members past this count: `archive_limit`
    max_archive_bytes: int = 2 * 1024**3  # uncompressed bytes read from one archive
    max_compression_ratio: int = 200  # zip member ratio above this: `archive_limit` (bomb)
    max_decode_chaos: float = 0.2  # non-UTF-8 text whose best charset guess is messier: `not_text`


@dataclass(frozen=True)
class LanguageConfig:
    max_sniff_bytes: int = 64 * 1024  # content bytes go-enry's classifier sees (ambiguous extensions)


# The Stack's permissive set, widened to close relatives that impose no copyleft: see
# docs/FORMATS.md#licenses for the list's sources and what was left out (and why).
PERMISSIVE = (
    "0BSD", "AFL-3.0", "Apache-2.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-2-Clause-Patent", "BSD-3-Clause",
    "BSD-3-Clause-Clear", "BSL-1.0", "CC0-1.0", "CNRI-Python", "ECL-2.0", "ISC", "MIT", "MIT-0", "NCSA",
    "PSF-2.0", "Python-2.0", "Unlicense", "UPL-1.0", "WTFPL", "X11", "Zlib",
)


@dataclass(frozen=True)
class LicenseConfig:
    allowed: tuple[str, ...] = PERMISSIVE  # SPDX ids a kept file's expression must satisfy
    header_lines: int = 40  # lines of a file read for its own license
    max_header_bytes: int = 8192  # and at most these bytes (also a README's license section)
    scan_headers: bool = True  # ScanCode on headers that mention a license (SPDX lines always)


@dataclass(frozen=True)
class DedupConfig:
    exact: bool = True  # drop files whose sha256 was already kept


@dataclass(frozen=True)
class NearDedupConfig:
    """MinHash LSH near-duplicate removal (stages/dedup.py, stages/minhash.py). Defaults are
    StarCoder's run: 5-token shingles, 256 permutations, Jaccard 0.7."""

    enabled: bool = True
    threshold: float = 0.7  # estimated Jaccard similarity at which two files are near duplicates
    num_perm: int = 256  # MinHash permutations (signature length)
    shingle_size: int = 5  # tokens per shingle
    bands: int = 0  # LSH bands; 0 (with rows = 0): datasketch's optimal pair for threshold and num_perm
    rows: int = 0  # signature values per band
    seed: int = 1  # seeds the permutations (datasketch's default seed)
    min_tokens: int = 10  # files with fewer tokens get no signature: never near duplicates
    verify: bool = True  # a candidate pair must reach the threshold by its signatures' estimate
    max_bucket_size: int = 64  # buckets up to this size pair every member; larger ones a star and a chain
    batch_files: int = 500  # files per signature task

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"near_dedup.threshold = {self.threshold!r}: expected a number in (0, 1]")
        if self.num_perm < 1 or self.shingle_size < 1 or self.batch_files < 1 or self.max_bucket_size < 2:
            raise ConfigError("near_dedup: num_perm, shingle_size and batch_files must be >= 1, "
                              "max_bucket_size >= 2")
        if (self.bands == 0) != (self.rows == 0):
            raise ConfigError(f"near_dedup.bands = {self.bands}, rows = {self.rows}: give both, or neither")
        if self.bands * self.rows > self.num_perm:
            raise ConfigError(f"near_dedup: {self.bands} bands x {self.rows} rows exceed num_perm = {self.num_perm}")

    def resolved(self) -> NearDedupConfig:
        """The same settings with bands and rows filled in."""
        if self.bands:
            return self
        from stages.minhash import optimal_bands

        bands, rows = optimal_bands(self.threshold, self.num_perm)
        return dataclasses.replace(self, bands=bands, rows=rows)

    @property
    def name(self) -> str:
        """Names the settings, datatrove style: 5ng_256p_25b10r_t0.7."""
        return f"{self.shingle_size}ng_{self.num_perm}p_{self.bands}b{self.rows}r_t{self.threshold:g}"


@dataclass(frozen=True)
class TokenizeConfig:
    """The tokenizer and the encoding of kept files (stages/tokenize.py)."""

    enabled: bool = True  # false: shards carry content only, no input_ids
    tokenizer: str | None = None  # a tokenizer.json to use (relative to the config); None: train one
    vocab_size: int = 49_152  # of a trained tokenizer (StarCoder's), special tokens included
    train_bytes: int = 256 * 1024**2  # kept content a trained tokenizer sees, sampled across languages
    min_frequency: int = 2  # a merge must occur this often in the sample
    metadata_probability: float = 0.2  # each of <reponame>, <filename>, <gh_stars> prefixed with this chance
    seed: int = 0  # seeds the training sample and the metadata draws
    batch_files: int = 1000  # files per encoding task

    def __post_init__(self) -> None:
        if not 0 <= self.metadata_probability <= 1:
            raise ConfigError(f"tokenize.metadata_probability = {self.metadata_probability!r}: expected 0..1")
        if self.vocab_size < 256 + 19 or self.batch_files < 1:
            raise ConfigError(f"tokenize.vocab_size = {self.vocab_size}: at least 275 (19 special tokens, 256 "
                              f"bytes); batch_files >= 1")


@dataclass(frozen=True)
class ShardConfig:
    target_bytes: int = 256 * 1024**2  # content bytes per shard before a new one starts
    target_tokens: int = 64 * 1024**2  # tokens per shard before a new one starts (when tokenizing)
    max_rows: int = 100_000  # rows per shard at most
    row_group_rows: int = 1024  # Parquet row group size inside a shard
    shuffle_seed: int = 0  # seeds the deterministic spread of files over shards
    compression: str = "zstd"


@dataclass(frozen=True)
class ExecutionConfig:
    executor: str = "ray"  # "ray" (default) or "local" (in-process, for debugging)
    num_workers: int = 0  # tasks in flight at once; 0 means the CPUs Ray sees
    ray_address: str | None = None  # None starts a local Ray; also read from RAY_ADDRESS
    keep_work_dir: bool = False  # keep _work/ (per-repository parts) after success
    duckdb_memory_limit: str | None = None  # e.g. "4GB": DuckDB spills to _work/ past it; None: DuckDB's default


@dataclass(frozen=True)
class BuildConfig:
    sources: tuple[SourceSpec, ...] = ()
    cache_dir: str = ".cache/corpus"  # fetched packages, clones; relative to the config file
    ingest: IngestConfig = field(default_factory=IngestConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    license: LicenseConfig = field(default_factory=LicenseConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    near_dedup: NearDedupConfig = field(default_factory=NearDedupConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    shards: ShardConfig = field(default_factory=ShardConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of everything that shapes the output (execution settings excluded)."""
        shaping = self.to_dict()
        shaping.pop("execution")
        blob = json.dumps(shaping, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


_SECTIONS = {
    "ingest": IngestConfig,
    "language": LanguageConfig,
    "license": LicenseConfig,
    "dedup": DedupConfig,
    "near_dedup": NearDedupConfig,
    "tokenize": TokenizeConfig,
    "shards": ShardConfig,
    "execution": ExecutionConfig,
}


def _build_section(cls: type, values: Any, section: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {section}.{key} (known: {', '.join(sorted(known))})")
        default = known[key].default
        if default is None and value is not None and not isinstance(value, str):
            raise ConfigError(f"{section}.{key} = {value!r}: expected a string")
        if default is not None and not isinstance(default, bool) and isinstance(value, bool):
            raise ConfigError(f"{section}.{key} = {value!r}: expected a number or string")
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{section}.{key} = {value!r}: expected true or false")
        if isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{section}.{key} = {value!r}: expected a number")
            values = {**values, key: float(value)}
        if isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{section}.{key} = {value!r}: expected a non-negative integer")
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{section}.{key} = {value!r}: expected a list of strings")
            values = {**values, key: tuple(value)}
    return cls(**values)


def _source_spec(entry: Any, base: Path) -> SourceSpec:
    if isinstance(entry, str):
        entry = {"source": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
        raise ConfigError(f"sources entry {entry!r}: expected a string or a table with 'source'")
    unknown = set(entry) - {f.name for f in dataclasses.fields(SourceSpec)}
    if unknown:
        raise ConfigError(f"sources entry {entry['source']!r}: unknown keys {sorted(unknown)}")
    return SourceSpec(**{**entry, "source": resolve_source_path(entry["source"], base)})


def resolve_source_path(source: str, base: Path) -> str:
    """Make a relative local path absolute against `base`; leave remote specs alone."""
    if source.startswith(("pypi:", "npm:", "git+")) or os.path.isabs(source):
        return source
    return str((base / source).resolve())


def _sources_from_list_file(path: Path) -> list[Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read source list {path}: {err}") from err
    return data.get("sources", [])


def load_config(path: str | Path | None, overrides: dict[str, dict[str, Any]] | None = None) -> BuildConfig:
    """Read a TOML config; `path=None` gives the defaults with no sources."""
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as err:
            raise ConfigError(f"cannot read config {path}: {err.strerror}") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config {path} is not valid TOML: {err}") from err
        base = path.resolve().parent
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)

    unknown = set(data) - set(_SECTIONS) - {"sources", "source_lists", "cache_dir"}
    if unknown:
        raise ConfigError(f"unknown config sections {sorted(unknown)}")
    specs = [_source_spec(e, base) for e in data.get("sources", [])]
    for list_file in data.get("source_lists", []):
        list_path = Path(resolve_source_path(list_file, base))
        specs.extend(_source_spec(e, list_path.parent) for e in _sources_from_list_file(list_path))
    sections = {name: _build_section(cls, data.get(name, {}), name) for name, cls in _SECTIONS.items()}
    execution = sections["execution"]
    if execution.executor not in ("ray", "local"):
        raise ConfigError(f"execution.executor = {execution.executor!r}: expected 'ray' or 'local'")
    if sections["shards"].compression not in ("zstd", "snappy", "gzip", "none"):
        raise ConfigError(f"shards.compression = {sections['shards'].compression!r}: unsupported")
    if sections["ingest"].max_file_bytes == 0:
        raise ConfigError("ingest.max_file_bytes = 0: every file would be too large")
    if sections["tokenize"].tokenizer:
        tokenizer = resolve_source_path(sections["tokenize"].tokenizer, base)
        sections["tokenize"] = dataclasses.replace(sections["tokenize"], tokenizer=tokenizer)
    cache_dir = resolve_source_path(data.get("cache_dir", ".cache/corpus"), base)
    return BuildConfig(
        sources=tuple(specs),
        cache_dir=cache_dir,
        **sections,
    )

