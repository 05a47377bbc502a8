"""Build configuration: TOML in, settings out, every error raised before work starts.

Each stage owns its section of the TOML file (its `settings_class`, declared beside the
stage); `BuildConfig` is assembled from pipeline/flow.py's STAGES plus the build's own
settings: `sources`, `cache_dir` and `[execution]`. `BuildConfig.to_dict()` is what
run.json records, and `fingerprint()` keys the resumable work directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus_core.errors import ConfigError
from corpus_core.locations import is_url, shown
from corpus_core.records import SourceSpec
from corpus_core.settings import Settings, setting
from corpus_core.urls import scrub_credentials
from pipeline.flow import SECTIONS

__all__ = ["BuildConfig", "ConfigError", "ExecutionConfig", "SourceSpec", "load_config", "resolve_source_path"]


@dataclass(frozen=True)
class ExecutionConfig(Settings):
    """How the build runs; never part of the fingerprint (the output does not depend on it)."""

    section = "execution"

    executor: str = setting("ray", "or \"local\": in-process (same bytes; for debugging and small inputs)")
    local_below_bytes: int = setting(4_000_000, "local sources smaller than this in all build in-process even with "
                                                "executor \"ray\" (no cluster address): Ray's start costs more than "
                                                "it saves; 0: never")
    num_workers: int = setting(0, "tasks in flight at once; 0 = every CPU Ray sees")
    ray_address: str | None = setting(None, "a cluster; RAY_ADDRESS works too; none: a local Ray",
                                      example='"ray://head:10001"')
    connect_timeout_s: float = setting(30.0, "seconds to wait for a cluster at ray_address to answer before the "
                                            "build fails with the address in the message")
    keep_work_dir: bool = setting(False, "keep _work/ (per-repository parts) after success")
    chunk_files: int = setting(2000, "records per task: a bigger repository runs as several tasks, so that "
                                     "none runs alone at the end; 0: one task per repository")
    max_stage_error_share: float = setting(0.01, "a per-file stage that raises on more than this share of its files "
                                                 "fails the build (each such file is a `stage_error` row)")
    duckdb_memory_limit: str | None = setting(None, "the driver's DuckDB (the corpus stages' views, scatters) "
                                              "spills to _work/ past it; none: DuckDB's default", example='"4GB"')
    partitions: int = setting(0, "hash partitions of the corpus stages' work (dedup, near dedup, the license decision, "
                                 "the writer): a task each; 0: 1 in-process, 4 per Ray worker (more past 1M files "
                                 "each); the output does not depend on it")
    partition_memory_limit: str | None = setting(None, "DuckDB memory of one partition's task (it spills into _work/ "
                                                       "past it); none: 80% of its node's memory over its CPUs",
                                                 example='"2GB"')
    work_dir: str = setting("", "the folder that holds _work/ (parts, shuffles, spill: a filesystem every node sees); "
                                "empty: OUT, or cache_dir/remote-out/<hash of OUT> when OUT is an object store URL",
                            path=True)
    license_cache: str = setting("", "ScanCode's results, shared between builds and nodes: a folder or an object store "
                                     "URL (s3://bucket/license-cache); empty: cache_dir/license-cache",
                                 example='"s3://bucket/license-cache"', path=True)

    def __post_init__(self) -> None:
        if self.executor not in ("ray", "local"):
            raise ConfigError(f"execution.executor = {self.executor!r}: expected 'ray' or 'local'")
        if self.partitions < 0:
            raise ConfigError(f"execution.partitions = {self.partitions}: 0 (chosen by the build) or more")
        if "://" in self.work_dir:
            raise ConfigError(f"execution.work_dir = {shown(self.work_dir)!r}: a folder every node sees, not a URL "
                              "(the shuffles and DuckDB's spill need a filesystem)")
        if "://" in self.license_cache and not is_url(self.license_cache):
            raise ConfigError(f"execution.license_cache = {shown(self.license_cache)!r}: a folder, or an object store "
                              "URL (s3://, gs://, abfs://, hdfs://)")
        if not 0 <= self.max_stage_error_share <= 1:
            raise ConfigError(f"execution.max_stage_error_share = {self.max_stage_error_share}: a share from 0 to 1")


class _BuildConfig:
    """The methods of BuildConfig, whose fields are made from the stages' sections below."""

    def __post_init__(self) -> None:
        """Settings of two sections that cannot go together."""
        if self.section("notebooks").form == "both" and self.section("shards").group_by == "repository":
            # a "both" row holds two documents (script, then structured, each ended by <|endoftext|>): inside a
            # repository document the first would end it, and FIM would treat the mark as content
            raise ConfigError('notebooks.form = "both" cannot go with shards.group_by = "repository": a notebook '
                              'would end its repository\'s document in the middle; choose "script" or "structured"')

    def section(self, name: str) -> Settings:
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return {
            # credentials in a source URL are never recorded (nor part of the fingerprint)
            "sources": [{**dataclasses.asdict(spec), "source": scrub_credentials(spec.source)}
                        for spec in self.sources],
            "cache_dir": self.cache_dir,
            **{name: self.section(name).to_dict() for name in SECTIONS},
            "execution": {**self.execution.to_dict(),
                          "ray_address": scrub_credentials(self.execution.ray_address),
                          "license_cache": shown(self.execution.license_cache)},  # no keys from its URL
        }

    def fingerprint(self) -> str:
        """Hash of everything that shapes the output (execution settings and where the caches
        are excluded), the opt-out registry's content included."""
        shaping = self.to_dict()
        shaping.pop("execution")
        shaping.pop("cache_dir")
        registry = self.optout.registry
        if registry and os.path.exists(registry):
            shaping["optout_registry"] = hashlib.sha256(Path(registry).read_bytes()).hexdigest()
        blob = json.dumps(shaping, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# sources, cache_dir, one field per stage section in flow order, execution: a frozen dataclass,
# so `BuildConfig(quality=QualityConfig(...))` and `dataclasses.replace` work as for any other
BuildConfig = dataclasses.make_dataclass(
    "BuildConfig",
    [("sources", "tuple[SourceSpec, ...]", dataclasses.field(default=())),
     ("cache_dir", "str", dataclasses.field(default=".cache/corpus")),  # relative to the config file
     *[(name, cls.__name__, dataclasses.field(default_factory=cls)) for name, cls in SECTIONS.items()],
     ("execution", "ExecutionConfig", dataclasses.field(default_factory=ExecutionConfig))],
    bases=(_BuildConfig,), frozen=True,
)
BuildConfig.__module__ = __name__  # pickled by reference, as a class written out here would be
BuildConfig.__doc__ = "Everything a build needs to know: its sources and every stage's settings."
BUILD_SECTIONS: dict[str, type[Settings]] = {**SECTIONS, "execution": ExecutionConfig}


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
    if source.startswith(("pypi:", "npm:", "git+")) or os.path.isabs(source) or is_url(source):
        return source
    return str((base / source).resolve())


def _sources_from_list_file(path: Path) -> list[Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read source list {path}: {err}") from err
    return data.get("sources", [])


def _section(cls: type[Settings], values: Any, base: Path) -> Settings:
    """A section from its TOML table, with its file paths made absolute against `base`."""
    checked = cls.from_table(values)
    paths = {name: _resolved(getattr(checked, name), base)
             for name, declared in cls.declared().items() if declared.path and getattr(checked, name)}
    return checked.replace(**paths) if paths else checked


def _resolved(value: Any, base: Path) -> Any:
    """A path setting against `base`: a string, or a table of tables each naming its file under
    `path` (decontamination's benchmarks); `package:MODULE/FILE` is data inside a package."""
    if isinstance(value, dict):
        return {key: {**table, "path": _resolved(table["path"], base)}
                if isinstance(table, dict) and isinstance(table.get("path"), str) else table
                for key, table in value.items()}
    return value if value.startswith("package:") else resolve_source_path(value, base)


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

    unknown = set(data) - set(BUILD_SECTIONS) - {"sources", "source_lists", "cache_dir"}
    if unknown:
        raise ConfigError(f"unknown config sections {sorted(unknown)}")
    specs = [_source_spec(e, base) for e in data.get("sources", [])]
    for list_file in data.get("source_lists", []):
        list_path = Path(resolve_source_path(list_file, base))
        specs.extend(_source_spec(e, list_path.parent) for e in _sources_from_list_file(list_path))
    sections = {name: _section(cls, data.get(name, {}), base) for name, cls in BUILD_SECTIONS.items()}
    cache_dir = resolve_source_path(data.get("cache_dir", ".cache/corpus"), base)
    return BuildConfig(sources=tuple(specs), cache_dir=cache_dir, **sections)
