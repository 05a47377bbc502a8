"""The opt-out registry: code owners' requests to leave the corpus, one JSON object per line
in a plain file kept under version control (`optout.registry` in the config; the default
config names configs/optout.jsonl), so every change is reviewed and dated in git.

An entry opts out, by `kind`:
  repo     one repository: `owner/name` (also matches `host/owner/name`, e.g. git URLs), or
           the name the build gave it (`pypi/six`, `npm/@scope/pkg`, a folder's name)
  owner    every repository whose origin names this owner (stages/origin.py), never a part
           of a repository's name
  path     files of one repository whose path matches a glob (fnmatch: `*` crosses `/`),
           `repo` naming the repository
  sha256   one content, wherever it appears: the sha256 of the file's bytes
with `requested_by`, `requested_at` (UTC date) and `reason`. Names compare without case
(as GitHub's do). An entry's `id` is a hash of what it matches, so adding the same request
twice is refused.

`corpus optout add|list|remove` edit the registry; the build drops matching files first,
with reason `opted_out` and the entry id in `detail`; `corpus optout apply` removes them
from a build already published (manifests/republish.py).
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from corpus_core.errors import ConfigError

KINDS = ("repo", "owner", "path", "sha256")
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9_])?$")
BUILD_NAME_PART = re.compile(r"^[A-Za-z0-9@_][A-Za-z0-9@._~-]{0,99}$")  # one part of a repository name
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str
    value: str  # owner/name, owner, glob or sha256
    repo: str | None  # the repository of a path entry
    requested_by: str
    requested_at: str
    reason: str

    def describe(self) -> str:
        target = f"{self.repo}:{self.value}" if self.kind == "path" else self.value
        return f"{self.id}  {self.kind:<6} {target}  (by {self.requested_by} on {self.requested_at}: {self.reason})"


def check_repo(value: str) -> str:
    """`owner/name`, or a name a build gives a repository that has no owner/name of its own:
    `pypi/six`, `npm/@scope/pkg`, `host/owner/name`, an archive's or folder's name."""
    parts = value.split("/")
    if not (1 <= len(parts) <= 4 and all(BUILD_NAME_PART.match(part) and part not in (".", "..") for part in parts)):
        raise ConfigError(f"repository {value!r}: expected owner/name (e.g. octocat/hello-world) or the name a build "
                          "gave it (pypi/six, npm/@scope/name, a folder's name)")
    return value


def check_owner(value: str) -> str:
    if not OWNER.match(value):
        raise ConfigError(f"owner {value!r}: expected a user or organization name, e.g. octocat")
    return value


def check_glob(value: str) -> str:
    if not value or value.startswith("/") or "\x00" in value or ".." in value.split("/"):
        raise ConfigError(f"path glob {value!r}: expected a relative pattern inside the repository, e.g. src/*.py")
    return value


def check_sha256(value: str) -> str:
    if not SHA256.match(value):
        raise ConfigError(f"sha256 {value!r}: expected 64 lowercase hex digits")
    return value


def entry_id(kind: str, value: str, repo: str | None) -> str:
    return hashlib.sha256(f"{kind}\x00{value.lower()}\x00{(repo or '').lower()}".encode()).hexdigest()[:12]


def make_entry(kind: str, value: str, *, repo: str | None = None, requested_by: str, reason: str,
               requested_at: str | None = None) -> Entry:
    if kind == "repo":
        check_repo(value)
    elif kind == "owner":
        check_owner(value)
    elif kind == "path":
        check_glob(value)
        if repo is None:
            raise ConfigError("a path opt-out needs the repository it applies to (--repo owner/name)")
        check_repo(repo)
    elif kind == "sha256":
        check_sha256(value)
    else:
        raise ConfigError(f"opt-out kind {kind!r}: expected one of {', '.join(KINDS)}")
    if not requested_by.strip():
        raise ConfigError("an opt-out needs who asked for it (--by)")
    date = requested_at or datetime.datetime.now(datetime.UTC).date().isoformat()
    return Entry(entry_id(kind, value, repo), kind, value, repo if kind == "path" else None, requested_by.strip(),
                 date, reason.strip())


def load(path: str | Path) -> list[Entry]:
    path = Path(path)
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            entry = make_entry(data["kind"], data["value"], repo=data.get("repo"), requested_by=data["requested_by"],
                               reason=data.get("reason", ""), requested_at=data.get("requested_at"))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ConfigError(f"opt-out registry {path}, line {number}: not a valid entry ({err})") from err
        except ConfigError as err:
            raise ConfigError(f"opt-out registry {path}, line {number}: {err}") from err
        entries.append(entry)
    return entries


def save(path: str | Path, entries: list[Entry]) -> None:
    """Entries sorted by id (stable diffs), written to a temporary file and renamed."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    lines = [json.dumps({k: v for k, v in asdict(e).items() if v is not None}, sort_keys=True)
             for e in sorted(entries, key=lambda e: e.id)]
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def add(path: str | Path, entry: Entry) -> None:
    entries = load(path)
    if any(e.id == entry.id for e in entries):
        raise ConfigError(f"already in the registry as {entry.id}")
    save(path, [*entries, entry])


def remove(path: str | Path, entry_id_: str) -> Entry:
    entries = load(path)
    found = [e for e in entries if e.id == entry_id_]
    if not found:
        raise ConfigError(f"no opt-out {entry_id_!r} in {path}")
    save(path, [e for e in entries if e.id != entry_id_])
    return found[0]


def owner_name(repo: str) -> str | None:
    """The owner/name a repository name stands for: itself, or the last two parts of
    host/owner/name; None for a name without an owner (an archive's stem)."""
    parts = repo.lower().strip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


class Matcher:
    """Which entry, if any, a file falls under. Built once per worker from the registry."""

    def __init__(self, entries: list[Entry]):
        self.repos = {e.value.lower(): e for e in entries if e.kind == "repo"}
        self.owners = {e.value.lower(): e for e in entries if e.kind == "owner"}
        self.hashes = {e.value: e for e in entries if e.kind == "sha256"}
        self.paths: dict[str, list[Entry]] = {}
        for e in entries:
            if e.kind == "path":
                self.paths.setdefault(e.repo.lower(), []).append(e)

    def __bool__(self) -> bool:
        return bool(self.repos or self.owners or self.hashes or self.paths)

    def match(self, repo: str, path: str, sha256: str | None, owner: str | None) -> Entry | None:
        """The entry for a file of repository `repo` (its name in the build) owned by `owner`
        (the account its origin names, stages/origin.py; None: none is known). A repository
        entry matches the name, or its last two parts (`github.com/o/n` is `o/n`); an owner
        entry matches the owner only, never a part of the name: `npm/left-pad` is not npm's."""
        full = owner_name(repo)
        keys = {repo.lower(), full} - {None}
        for key in keys:
            if key in self.repos:
                return self.repos[key]
        if owner and owner.lower() in self.owners:
            return self.owners[owner.lower()]
        for key in keys:
            for entry in self.paths.get(key, ()):
                if fnmatch.fnmatchcase(path, entry.value):
                    return entry
        if sha256 and sha256 in self.hashes:
            return self.hashes[sha256]
        return None
