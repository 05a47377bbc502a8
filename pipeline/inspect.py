"""`corpus inspect`: the per-file stages on given files or sources, no corpus written.

It answers "why was my file dropped?": each file's language, flags and the verdict of every
per-file stage, in the order of pipeline/flow.py. Corpus-wide stages (dedup) need the whole
corpus and are not run here; the manifest of a build holds their verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.config import BuildConfig, SourceSpec
from pipeline.flow import stages_of
from pipeline.records import FileRecord
from stages.readers import is_archive, is_dataset, read_path_entry
from stages.sources import resolve_units


def _records(path: str, config: BuildConfig) -> Iterator[FileRecord]:
    (ingest,) = (spec.build(config) for spec in stages_of("repository"))
    local = Path(path)
    if local.is_symlink() or (local.is_file() and not is_archive(local) and not is_dataset(local)):
        parent = local.parent
        entry = read_path_entry(parent, parent.resolve(), local.name, config.ingest)
        entry.path = str(local)
        yield ingest.to_record(parent.resolve().name, entry)
        return
    for unit in resolve_units([SourceSpec(source=path)]):
        yield from ingest.run(unit)


def inspect_paths(paths: list[str], config: BuildConfig) -> Iterator[dict[str, Any]]:
    file_stages = [spec.build(config) for spec in stages_of("file")]
    for path in paths:
        for record in _records(path, config):
            verdicts = {"ingest": record.reason or "kept"}
            for stage in file_stages:
                if record.kept:
                    stage.process(record)
                    verdicts[stage.name] = record.reason or "kept"
                else:
                    verdicts[stage.name] = "not run"
            yield describe(record, verdicts)


def describe(record: FileRecord, verdicts: dict[str, str]) -> dict[str, Any]:
    return {
        "repo": record.repo,
        "path": record.path,
        "size": record.size,
        "sha256": record.sha256,
        "encoding": record.encoding,
        "language": record.language,
        "language_type": record.language_type,
        "flags": {
            name: getattr(record, name)
            for name in ("vendored", "generated", "documentation", "configuration")
            if getattr(record, name)
        },
        "decision": record.decision,
        "reason": record.reason,
        "detail": record.detail,
        "stages": verdicts,
    }


def format_line(row: dict[str, Any]) -> str:
    verdict = row["decision"] if row["reason"] is None else f"dropped: {row['reason']}"
    if row["detail"]:
        verdict += f" ({row['detail']})"
    flags = ",".join(row["flags"]) or "-"
    return f"{row['repo']}/{row['path']}\t{row['language'] or '-'}\t{flags}\t{verdict}"
