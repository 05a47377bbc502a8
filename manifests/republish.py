"""Opt-outs for a build already published, and lookups for code owners.

`apply_optout(OUT, registry, NEW)` writes a new version of the build to NEW with every kept
file the registry names removed; OUT is only read. Shards that held such files are
rewritten without them (same order, rows renumbered); the others are copied byte for
byte. The files manifest (manifest/files/, part by part) marks the removed files `dropped` /
`opted_out` (the entry id in `detail`) and moves the shifted rows; repos.parquet, attribution.parquet, NOTICE,
index.json and the dataset card README.md are recomputed, and each SBOM document loses the
removed files (manifests/sbom.py `without_files`); run.json is the old one plus a
`republished` record. NEW has the current layout (index.json beside shards/, the files
manifest and SBOM in parts) whatever OUT's (older builds kept index.json in shards/, and one
manifest/files.parquet and manifest/sbom.spdx.json).

`lookup(OUT, repo=..., owner=..., sha256=...)` lists the files of a build that belong to a
repository or owner, or have a given content, with their decision and shard position.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus_core import reasons, schema
from corpus_core.errors import ConfigError
from corpus_core.storage import sha256_file
from manifests.attribution import ATTRIBUTION, write_notice
from manifests.card import find_index, write_card
from manifests.optout import Matcher, load, owner_name
from manifests.sbom import without_files
from manifests.writer import ROW_GROUP_ROWS

INDEX_FORMAT = 3  # the layout stages/shards.py writes: index.json at the top, the shards in SHARD_DIR
SHARD_DIR = "shards"


def _manifest(out: Path) -> list[Path]:
    """The build's files manifest, its parts in order."""
    paths = schema.files_manifest(out)
    if not paths:
        raise ConfigError(f"{out}: not a build (no manifest/files/)")
    return paths


def _matched(path: Path, matcher: Matcher) -> dict[str, str]:
    """file id -> registry entry id, of one part's kept files that the registry names."""
    present = set(pq.read_schema(path).names)
    files = pq.read_table(path, columns=[name for name in ("id", "repo", "owner", "path", "sha256", "decision")
                                         if name in present])
    removed = {}
    columns = [files.column(name).to_pylist() for name in ("id", "repo", "path", "sha256", "decision")]
    for file_id, repo, path_in_repo, sha256, decision, owner in zip(*columns, owners_of(files), strict=True):
        if decision == "kept":
            entry = matcher.match(repo, path_in_repo, sha256, owner)
            if entry is not None:
                removed[file_id] = entry.id
    return removed


def apply_optout(out: str | Path, registry: str | Path, target: str | Path) -> dict[str, Any]:
    out, target = Path(out), Path(target)
    parts = _manifest(out)
    if target.exists():
        raise ConfigError(f"{target} exists: a republished build goes to a new directory")
    matcher = Matcher(load(registry))
    removed: dict[str, str] = {}  # file id -> entry id
    for path in parts:
        removed.update(_matched(path, matcher))

    run = json.loads((out / "manifest" / "run.json").read_text())
    found = find_index(out)
    if found is None:
        raise ConfigError(f"{out}: not a build (no index.json, nor shards/index.json)")
    index = found.data
    if index.get("group_by") == "repository":  # a removed row may hold its run's <reponame> header or <|endoftext|>
        raise ConfigError(f"{out}: optout apply does not rewrite repository documents (shards.group_by = "
                          "\"repository\") yet; build again with the registry instead (corpus build drops opted-out "
                          "files first)")
    (target / SHARD_DIR).mkdir(parents=True)
    (target / "manifest").mkdir()
    moves: dict[str, tuple[int, int]] = {}  # file id -> (shard, new row) for rows of rewritten shards
    entries = []
    for number, entry in enumerate(index["shards"]):
        source = found.shard_dir / entry["file"]
        destination = target / SHARD_DIR / entry["file"]
        table = pq.read_table(source)
        ids = table.column("id").to_pylist()
        if not any(i in removed for i in ids):
            shutil.copyfile(source, destination)
            entries.append(entry)
            continue
        keep = pa.array([i not in removed for i in ids])
        kept = table.filter(keep)
        metadata = pq.ParquetFile(source).metadata
        compression = metadata.row_group(0).column(0).compression.lower() if metadata.num_row_groups else "zstd"
        row_group = run["config"]["shards"]["row_group_rows"]
        pq.write_table(kept, destination, compression=None if compression == "uncompressed" else compression,
                       row_group_size=row_group)
        for row, file_id in enumerate(kept.column("id").to_pylist()):
            moves[file_id] = (number, row)
        new_entry = {**entry, "rows": kept.num_rows, "bytes": destination.stat().st_size,
                     "sha256": sha256_file(destination),
                     "content_bytes": int(pc.sum(pc.binary_length(kept.column("content"))).as_py() or 0)}
        if "tokens" in entry:
            new_entry["tokens"] = int(pc.sum(kept.column("num_tokens")).as_py() or 0)
        entries.append(new_entry)
    totals = {"shards": len(entries), "rows": sum(e["rows"] for e in entries),
              "content_bytes": sum(e["content_bytes"] for e in entries), "bytes": sum(e["bytes"] for e in entries)}
    if "tokens" in index["totals"]:
        totals["tokens"] = sum(e["tokens"] for e in entries)
    index = {**index, "format": max(index["format"], INDEX_FORMAT), "shard_dir": SHARD_DIR, "shards": entries,
             "totals": totals}
    (target / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    if index.get("tokenizer") and (found.root / index["tokenizer"]).exists():
        shutil.copyfile(found.root / index["tokenizer"], target / index["tokenizer"])

    # part by part, in the current layout whatever OUT's (one files.parquet before parts)
    (target / schema.FILES_DIR).mkdir(parents=True)
    gone = []
    for number, path in enumerate(parts):
        rows = pq.read_table(path).to_pylist()
        for row in rows:
            if row["id"] in removed and row["decision"] == "kept":
                gone.append({"id": row["id"], "repo": row["repo"], "path": row["path"], "optout": removed[row["id"]]})
                row.update(decision="dropped", reason=reasons.OPTED_OUT, detail=f"opt-out {removed[row['id']]}",
                           shard=None, row=None)
            elif row["id"] in moves and row["decision"] == "kept":
                row["shard"], row["row"] = moves[row["id"]]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema.FILES),
                       target / schema.FILES_DIR / schema.part_name(number, ".parquet"), compression="zstd",
                       row_group_size=ROW_GROUP_ROWS)
    _write_repos_and_attribution(out, target)
    documents = schema.sbom_documents(out)
    if documents:
        (target / schema.SBOM_DIR).mkdir(parents=True)
    for document in documents:  # the one document of a build from before parts becomes part 0
        name = document.name if document.parent.name == "sbom" else schema.part_name(0, ".spdx.json")
        without_files(document, target / schema.SBOM_DIR / name, set(removed))

    record = {"from": str(out.resolve()), "registry": str(Path(registry).resolve()),
              "registry_sha256": hashlib.sha256(Path(registry).read_bytes()).hexdigest()
              if Path(registry).exists() else None,
              "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "removed": len(removed)}
    run = {**run, "out_dir": str(target.resolve()), "shards": totals,
           "republished": [*run.get("republished", []), record]}
    run["counts"]["kept"] -= len(removed)
    if removed:
        run["counts"]["dropped"][reasons.OPTED_OUT] = run["counts"]["dropped"].get(reasons.OPTED_OUT, 0) + len(removed)
    (target / "manifest" / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True, default=str) + "\n")
    write_card(target)
    return {"removed": gone, "out": str(target)}


def _conform(table: pa.Table, target: pa.Schema) -> pa.Table:
    """`table` in `target`'s columns: a column an older build did not write (repos' `owner`) is null."""
    columns = [table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in target]
    return pa.Table.from_arrays(columns, schema=pa.schema([f.with_nullable(True) for f in target])).cast(target)


def _write_repos_and_attribution(out: Path, target: Path) -> None:
    db = duckdb.connect()
    db.execute(f"CREATE VIEW new_files AS SELECT * FROM {schema.files_sql(target)}")
    repos_path = str(out / "manifest" / "repos.parquet").replace("'", "''")
    db.execute(f"CREATE VIEW old_repos AS SELECT * FROM read_parquet('{repos_path}')")
    repos = db.sql(f"""
        WITH counts AS (
            SELECT repo, count(*) FILTER (WHERE decision = 'kept') AS files_kept,
                   coalesce(sum(size) FILTER (WHERE decision = 'kept'), 0) AS bytes_kept
            FROM new_files GROUP BY repo),
        main_reason AS (
            SELECT repo, arg_min(reason, (-n, reason)) AS reason
            FROM (SELECT repo, reason, count(*) AS n FROM new_files WHERE reason IS NOT NULL GROUP BY ALL)
            GROUP BY repo)
        SELECT r.* REPLACE (
                   coalesce(c.files_kept, 0) AS files_kept, coalesce(c.bytes_kept, 0) AS bytes_kept,
                   CASE WHEN c.files_kept > 0 THEN 'kept' ELSE 'dropped' END AS decision,
                   CASE WHEN c.files_kept > 0 THEN NULL WHEN r.decision = 'dropped' THEN r.reason
                        ELSE coalesce(m.reason, '{reasons.OPTED_OUT}') END AS reason)
        FROM old_repos r LEFT JOIN counts c USING (repo) LEFT JOIN main_reason m USING (repo)
        ORDER BY r.repo""").to_arrow_table()
    repos = _conform(repos, schema.REPOS)
    pq.write_table(repos, target / "manifest" / "repos.parquet", compression="zstd")
    db.register("new_repos", repos)
    attribution = db.sql("""
        SELECT f.shard, f.repo, f.license, count(*) AS files, any_value(r.copyright_holders) AS copyright_holders,
               any_value(r.source) AS source
        FROM new_files f JOIN new_repos r USING (repo) WHERE f.decision = 'kept'
        GROUP BY f.shard, f.repo, f.license ORDER BY f.shard, f.repo, f.license""").to_arrow_table()
    pq.write_table(attribution.cast(ATTRIBUTION), target / "manifest" / "attribution.parquet", compression="zstd")
    db.execute("CREATE VIEW files AS SELECT * FROM new_files")
    db.execute("CREATE VIEW repos AS SELECT * FROM new_repos")
    write_notice(db, target / "NOTICE")
    db.close()


def owners_of(files: pa.Table) -> list[str | None]:
    """Each row's owner: the `owner` column; a build from before it had none records its
    owners nowhere, and the name's first part (`octo` of `octo/repo`, `github.com/octo/repo`)
    stands in, as it did then."""
    if "owner" in files.column_names:
        return files.column("owner").to_pylist()
    return [(owner_name(repo) or "").split("/")[0] or None for repo in files.column("repo").to_pylist()]


def lookup(out: str | Path, *, repo: str | None = None, owner: str | None = None,
           sha256: str | None = None) -> list[dict[str, Any]]:
    """Files of the build that belong to `repo` (its name, or owner/name of host/owner/name)
    or to repositories `owner` owns, or have content `sha256`."""
    manifest = [str(path) for path in _manifest(Path(out))]
    present = set(pq.read_schema(manifest[0]).names)
    files = pq.read_table(manifest, columns=[name for name in (
        "id", "repo", "owner", "path", "sha256", "decision", "reason", "dup_of", "shard", "row") if name in present])
    found = []
    for row, row_owner in zip(files.to_pylist(), owners_of(files), strict=True):
        full = owner_name(row["repo"])
        if (repo and (row["repo"].lower() == repo.lower() or full == repo.lower())) or (
                owner and row_owner and row_owner.lower() == owner.lower()) or (sha256 and row["sha256"] == sha256):
            row["owner"] = row_owner
            found.append(row)
    return found
