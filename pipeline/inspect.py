"""`corpus inspect`: the per-file stages on given files or sources, no corpus written.

It answers "why was my file dropped?": each file's language, flags and the verdict of every
per-file stage, in the order of pipeline/flow.py. Corpus-wide stages (dedup) need the whole
corpus and are not run here; the manifest of a build holds their verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpus_core import reasons, schema
from corpus_core.records import FileRecord, SourceSpec
from pipeline.config import BuildConfig
from pipeline.flow import stages_of
from stages.ingest import Ingest
from stages.license import judge, resolve_repositories, scopes_of
from stages.readers import is_archive, is_dataset, read_path_entry
from stages.sources import resolve_units


def _records(path: str, config: BuildConfig, ingest: Ingest) -> Iterator[FileRecord]:
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
    """Per path: the file stages on each record, then the license each file ends up with
    (its header's, or its directory's as resolved from the files given) and the verdict."""
    allowed = frozenset(config.license.allowed)
    for path in paths:
        (ingest,) = (spec.build(config) for spec in stages_of("repository"))
        file_stages = [spec.build(config) for spec in stages_of("file")]
        seen = []
        for record in _records(path, config, ingest):
            verdicts = {"ingest": record.reason or "kept"}
            for stage in file_stages:
                if record.kept:
                    stage.process(record)
                    verdicts[stage.name] = record.reason or "kept"
                else:
                    verdicts[stage.name] = "not run"
            seen.append((record, verdicts))
        tables = {}
        for stage in file_stages:
            tables.update(stage.finish_unit(ingest.repos))
        declared = {name: repo.declared_license for name, repo in ingest.repos.items() if repo.declared_license}
        licenses, _ = resolve_repositories(tables["license_evidence"].to_pylist(), declared, list(ingest.repos))
        scopes = scopes_of(licenses)
        for record, verdicts in seen:
            if record.sha256 is not None and record.reason != reasons.OPTED_OUT:  # as LicenseDecision judges
                row = {name: getattr(record, name) for name in ("path", "decision", "reason", "detail",
                                                                *schema.ANNOTATED)}
                columns, reason, detail = judge(row, scopes.get(record.repo, {}), allowed)
                for name, value in columns.items():
                    setattr(record, name, value)
                if reason is not None:
                    record.drop(reason, detail)
                verdicts["license_decision"] = reason or ("kept" if record.kept else "not run")
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
        "license": record.license,
        "license_source": record.license_source,
        "flags": {
            name: getattr(record, name)
            for name in ("vendored", "generated", "documentation", "configuration")
            if getattr(record, name)
        },
        "quality": {name: getattr(record, name) for name in (
            "max_line_length", "mean_line_length", "alphanum_fraction", "comment_ratio", "comment_lexer")},
        "pii": record.pii_findings or [],  # type, start, end in the original content; never the value
        "decision": record.decision,
        "reason": record.reason,
        "detail": record.detail,
        "stages": verdicts,
    }


def format_line(row: dict[str, Any]) -> str:
    outcome = row["decision"] if row["reason"] is None else f"dropped: {row['reason']}"
    if row["detail"]:
        outcome += f" ({row['detail']})"
    flags = ",".join(row["flags"]) or "-"
    license = f"{row['license']} ({row['license_source']})" if row["license"] else "-"
    return f"{row['repo']}/{row['path']}\t{row['language'] or '-'}\t{license}\t{flags}\t{outcome}"
