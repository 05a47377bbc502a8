"""Is my code in it? Look up finished builds by owner, repository or a file's content, for
the web page (`corpus serve`, pipeline/web.py).

A build is served by its folder's name; its manifests are read with DuckDB on each query,
never loaded whole. Content is found two ways: exactly, by the hash of its normalized text
(files.parquet `normalized_sha256`: line endings, a BOM and trailing whitespace do not
count, so a file pasted into a browser's form, which sends CRLF, still matches), and
nearly, by a MinHash signature made with the settings the build's near dedup used
(the parts of manifest/minhash/ and minhash_bands/, stages/dedup.py; an older build's
minhash.parquet and minhash_bands.parquet): files sharing a band
key are candidates, kept when their signatures' estimated Jaccard reaches the threshold.
Builds from before those outputs are still served, with what they have (an owner from the
repository's name, the raw sha256 for content).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq

from corpus_core import reasons, schema
from corpus_core.errors import ConfigError
from corpus_core.records import normalized_sha256
from corpus_core.storage import sql_list, sql_path
from manifests.report import REPORT
from pipeline import flow  # noqa: F401 - registers every stage's drop reasons, which `reason_words` explains
from stages import minhash
from stages.dedup import signature_parts

MAX_ROWS = 500  # file rows shown per build and query; the count says how many more there are
MAX_CANDIDATES = 2000  # near-match candidates verified per build
MAX_NEAR = 50  # near matches shown per build
FILE_COLUMNS = ("id", "repo", "owner", "path", "size", "language", "decision", "reason", "detail", "dup_of",
                "license", "license_source", "license_kind", "license_path", "license_rule", "license_score",
                "license_start_line", "license_end_line", "shard", "row")
# an older build has no owner column: the owner is the name's owner part, as `owners_of` does
LEGACY_OWNER = "list_extract(string_split(trim(lower(f.repo), '/'), '/'), -2)"


@dataclass(frozen=True)
class ServedBuild:
    name: str  # its folder's name: how the page and the URLs call it
    path: Path
    finished_at: str  # run.json's `finished_at`, or the time run.json was written
    config_fingerprint: str
    columns: frozenset[str]  # of its files manifest
    near: dict[str, Any] | None  # near dedup's settings, when the build kept its signatures

    @property
    def files(self) -> str:
        """Its files manifest's parts, as a DuckDB list of paths for read_parquet."""
        return sql_list(schema.files_manifest(self.path))

    @property
    def repos(self) -> str:
        return sql_path(self.path / "manifest" / "repos.parquet")

    @property
    def report(self) -> Path | None:
        path = self.path / REPORT
        return path if path.is_file() else None


def open_builds(paths: list[str | Path]) -> dict[str, ServedBuild]:
    """The builds to serve, by folder name; a folder that is not a finished build, or two of
    the same name, is a ConfigError before the server starts."""
    builds: dict[str, ServedBuild] = {}
    for given in paths:
        path = Path(given).resolve()
        run_json, files = path / "manifest" / "run.json", schema.files_manifest(path)
        if not (run_json.is_file() and files):
            raise ConfigError(f"{given}: not a finished build (no manifest/run.json and manifest/files/)")
        if path.name in builds:
            raise ConfigError(f"two builds are named {path.name!r} ({builds[path.name].path} and {path}); builds are "
                              "served by folder name: rename or link one")
        try:
            run = json.loads(run_json.read_text())
        except ValueError as err:
            raise ConfigError(f"{run_json}: not JSON ({err})") from None
        finished = run.get("finished_at") or datetime.datetime.fromtimestamp(
            run_json.stat().st_mtime, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        near = None
        signatures = signature_parts(path / "manifest")
        if signatures:
            metadata = pq.read_schema(signatures[0][0]).metadata or {}
            near = json.loads(metadata[b"near_dedup"]) if b"near_dedup" in metadata else None
        builds[path.name] = ServedBuild(path.name, path, str(finished), str(run.get("config_fingerprint", "")),
                                        frozenset(pq.read_schema(files[0]).names), near)
    return builds


def reason_words(reason: str | None) -> str:
    """A drop reason in plain words: its documented sentence."""
    if reason is None:
        return ""
    known = reasons.REASONS.get(reason)
    return known.doc.replace("`", "") if known else reason


@dataclass
class Found:
    """What one query found in one build."""

    build: ServedBuild
    files: list[dict[str, Any]]
    total: int  # files that matched; `files` holds at most MAX_ROWS of them
    repos: list[dict[str, Any]]
    note: str = ""  # what this build could not answer (no signatures, too few words)


def _select(build: ServedBuild) -> str:
    return ", ".join(f"f.{name}" if name in build.columns else f"NULL AS {name}" for name in FILE_COLUMNS)


def _query(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Rows as dicts, each with its reason in plain words, from a DuckDB connection of its own."""
    db = duckdb.connect()
    try:
        result = db.execute(sql, params)
        names = [column[0] for column in result.description]
        rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    finally:
        db.close()
    for row in rows:
        row["reason_words"] = reason_words(row["reason"])
    return rows


def _files(build: ServedBuild, where: str, params: list[Any], extra: str = "") -> tuple[list[dict[str, Any]], int]:
    """Rows of files.parquet matching `where` (over alias f), each with the kept copy's repo
    and path for a duplicate and its repository's version."""
    rows = _query(f"""
        WITH kept AS (SELECT DISTINCT ON (id) id, repo, path FROM read_parquet({build.files})
                      WHERE decision = 'kept' ORDER BY id, repo, path)
        SELECT {_select(build)}{extra}, k.repo AS dup_repo, k.path AS dup_path, r.commit AS version,
               count(*) OVER () AS total
        FROM read_parquet({build.files}) f LEFT JOIN kept k ON k.id = f.dup_of
             LEFT JOIN read_parquet({build.repos}) r ON r.repo = f.repo
        WHERE {where} ORDER BY f.repo, f.path LIMIT {MAX_ROWS}""", params)
    return rows, (rows[0]["total"] if rows else 0)


def _repos(build: ServedBuild, names: list[str]) -> list[dict[str, Any]]:
    if not names:
        return []
    return _query(f"""SELECT repo, commit AS version, url, files, files_kept, decision, reason
                      FROM read_parquet({build.repos}) WHERE list_contains(?, repo) ORDER BY repo""", [names])


def _with_repos(build: ServedBuild, files: list[dict[str, Any]], total: int, note: str = "") -> Found:
    return Found(build, files, total, _repos(build, sorted({row["repo"] for row in files})), note)


def by_owner(build: ServedBuild, owner: str) -> Found:
    """Files of every repository `owner` owns (files.parquet `owner`; an older build: the
    owner part of the repository's name)."""
    owner_of = "lower(f.owner)" if "owner" in build.columns else LEGACY_OWNER
    return _with_repos(build, *_files(build, f"{owner_of} = lower(?)", [owner]))


def by_repo(build: ServedBuild, repo: str) -> Found:
    """Files of the repository named `repo`, or whose name ends in `repo` (owner/name of
    host/owner/name)."""
    last_two = "array_to_string(string_split(trim(lower(f.repo), '/'), '/')[-2:], '/')"
    return _with_repos(build, *_files(build, f"(lower(f.repo) = lower(?) OR {last_two} = lower(?))", [repo, repo]))


def by_content(build: ServedBuild, text: str) -> tuple[Found, Found]:
    """(exact, near): files with the same normalized content, and files whose signature is
    near the text's (each with its `similarity`)."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    raw = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest() for t in (normalized, normalized + "\n")]
    if "normalized_sha256" in build.columns:
        exact = _files(build, "(f.normalized_sha256 = ? OR f.sha256 IN (?, ?))", [normalized_sha256(text), *raw])
    else:  # an older build: only a pasted text equal to the file's bytes matches
        exact = _files(build, "f.sha256 IN (?, ?)", raw)
    return _with_repos(build, *exact), near_matches(build, text)


def near_matches(build: ServedBuild, text: str) -> Found:
    settings = build.near
    if settings is None:
        return Found(build, [], 0, [], "this build kept no MinHash signatures (built before they were kept, or "
                                       "with near dedup off): only exact matches")
    words = minhash.tokens(text)
    if len(words) < settings["min_tokens"]:
        return Found(build, [], 0, [], f"too short for near matching: {len(words)} words, near dedup signs files of "
                                       f"{settings['min_tokens']} or more")
    signature = minhash.signatures([minhash.shingle_hashes(words, settings["shingle_size"])], settings["num_perm"],
                                   settings["seed"])
    keys = minhash.band_keys(signature, settings["bands"], settings["rows"])[0]
    signatures, bands = signature_parts(build.path / "manifest") or ([], [])
    db = duckdb.connect()
    try:
        # the candidates sharing the most bands first: the same ones on every run
        candidates = [row[0] for row in db.execute(f"""
            SELECT id FROM read_parquet({sql_list(bands)})
            WHERE list_contains(?, struct_pack(band := band, key := key))
            GROUP BY id ORDER BY count(*) DESC, id LIMIT {MAX_CANDIDATES}""",
            [[{"band": band, "key": int(key)} for band, key in enumerate(keys)]]).fetchall()]
        found = db.execute(f"""SELECT id, signature FROM read_parquet({sql_list(signatures)})
                              WHERE list_contains(?, id)""", [candidates]).fetchall() if candidates else []
    finally:
        db.close()
    similar: dict[str, float] = {}
    for file_id, values in found:
        estimate = float(minhash.jaccard_estimate(signature, np.asarray([values], dtype=np.uint32))[0])
        if estimate >= settings["threshold"]:
            similar[file_id] = estimate
    best = sorted(similar, key=lambda i: (-similar[i], i))[:MAX_NEAR]
    if not best:
        return Found(build, [], 0, [], "")
    rows, _ = _files(build, "list_contains(?, f.id)", [best])
    for row in rows:
        row["similarity"] = similar.get(row["id"])
    rows.sort(key=lambda row: (-(row["similarity"] or 0), row["repo"], row["path"]))
    return _with_repos(build, rows, len(similar))
