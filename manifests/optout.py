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

Requests from the web (`corpus serve`) never reach the registry directly: they are appended
as `pending` to a requests file beside it (`optout.jsonl` -> `optout.requests.jsonl`), and a
maintainer's `corpus optout review` accepts one (it becomes a registry entry that records
who accepted it and when) or rejects it. Writers of the requests file hold a lock on it.
"""

from __future__ import annotations

import datetime
import fcntl
import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
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
    accepted_by: str | None = None  # who accepted it, for an entry that came through a request
    accepted_at: str | None = None  # when (UTC date)

    def describe(self) -> str:
        target = f"{self.repo}:{self.value}" if self.kind == "path" else self.value
        accepted = f"; accepted by {self.accepted_by} on {self.accepted_at}" if self.accepted_by else ""
        return (f"{self.id}  {self.kind:<6} {target}  (by {self.requested_by} on {self.requested_at}: "
                f"{self.reason}{accepted})")


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
            entry = replace(entry, accepted_by=data.get("accepted_by"), accepted_at=data.get("accepted_at"))
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


# --- requests from the web, reviewed before they reach the registry -------------------------

REQUEST_KINDS = ("repo", "owner", "path")  # what the web form offers; content hashes go through `add --file`
MAX_CONTACT = 200
MAX_REASON = 1000
MAX_PENDING = 10_000  # a flood of requests stops here instead of filling the disk
# what could forge lines or reorder text in a reviewer's terminal (`optout review` prints requests):
# C0 and C1 controls (8-bit CSI \x9b included), line separators, bidirectional overrides and isolates;
# a newline is allowed in a reason only
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Request:
    id: str  # the id of the registry entry it would become
    kind: str
    value: str
    repo: str | None
    contact: str  # how to reach the requester (e-mail or name), as they typed it
    reason: str
    received_at: str  # UTC, ISO 8601 to the second
    status: str = "pending"  # pending | accepted | rejected
    decided_by: str | None = None
    decided_at: str | None = None
    note: str | None = None  # the reviewer's words

    def describe(self) -> str:
        target = f"{self.repo}:{self.value}" if self.kind == "path" else self.value
        decided = f", {self.status} by {self.decided_by} on {self.decided_at}" if self.decided_by else ""
        return (f"{self.id}  {self.kind:<6} {target}  (from {self.contact} at {self.received_at}: "
                f"{self.reason}{decided})")


def requests_path(registry: str | Path) -> Path:
    """The requests file beside a registry: optout.jsonl -> optout.requests.jsonl."""
    registry = Path(registry)
    return registry.with_name(f"{registry.stem}.requests{registry.suffix or '.jsonl'}")


def check_text(value: str, what: str, limit: int, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise ConfigError(f"{what}: required")
    if len(value) > limit:
        raise ConfigError(f"{what}: at most {limit} characters (got {len(value)})")
    if CONTROL.search(value) or ("\n" in value and what not in ("reason", "note")):
        raise ConfigError(f"{what}: control characters are not allowed")
    return value


def make_request(kind: str, value: str, *, repo: str | None, contact: str, reason: str,
                 received_at: str | None = None) -> Request:
    """A pending request, validated as a registry entry would be (ConfigError names the field)."""
    if kind not in REQUEST_KINDS:
        raise ConfigError(f"kind {kind!r}: expected one of {', '.join(REQUEST_KINDS)}")
    contact = check_text(contact, "contact", MAX_CONTACT)
    reason = check_text(reason, "reason", MAX_REASON, required=False)
    entry = make_entry(kind, value.strip(), repo=repo.strip() if repo else None, requested_by=contact, reason=reason)
    when = received_at or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Request(entry.id, entry.kind, entry.value, entry.repo, contact, reason, when)


@contextmanager
def _locked(registry: str | Path) -> Iterator[Path]:
    """Hold the requests file's lock (a file beside it: the requests file itself is replaced
    on a decision) for a read-modify-write."""
    path = requests_path(registry)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)


def _read_requests(path: Path) -> list[Request]:
    if not path.exists():
        return []
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(Request(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as err:
            raise ConfigError(f"opt-out requests {path}, line {number}: not a valid request ({err})") from err
    return found


def load_requests(registry: str | Path) -> list[Request]:
    """Every request received, in the order they came."""
    with _locked(registry) as path:
        return _read_requests(path)


def submit(registry: str | Path, request: Request) -> tuple[Request, bool]:
    """Append `request` as pending; returns it and True, or the same request already
    pending (or an entry already in the registry, as a request accepted) and False."""
    present = {entry.id: entry for entry in load(registry)}
    with _locked(registry) as path:
        requests = _read_requests(path)
        if request.id in present:
            entry = present[request.id]
            return replace(request, status="accepted", decided_by=entry.accepted_by or "registry",
                           decided_at=entry.accepted_at or entry.requested_at), False
        for known in requests:
            if known.id == request.id and known.status == "pending":
                return known, False
        if sum(known.status == "pending" for known in requests) >= MAX_PENDING:
            raise ConfigError(f"{MAX_PENDING} requests are waiting for review already; try again later")
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(request), sort_keys=True) + "\n")
    return request, True


def decide(registry: str | Path, request_id: str, *, accept: bool, by: str, note: str = "") -> Request:
    """Accept a pending request (it becomes a registry entry with who accepted it and when)
    or reject it; the request keeps the decision."""
    by = check_text(by, "reviewer (--by)", MAX_CONTACT)
    note = check_text(note, "note", MAX_REASON, required=False)
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    with _locked(registry) as path:
        requests = _read_requests(path)
        pending = [i for i, known in enumerate(requests) if known.id == request_id and known.status == "pending"]
        if not pending:
            raise ConfigError(f"no pending request {request_id!r} in {path}")
        request = requests[pending[0]]
        if accept:
            entry = replace(make_entry(request.kind, request.value, repo=request.repo, requested_by=request.contact,
                                       reason=request.reason, requested_at=request.received_at[:10]),
                            accepted_by=by, accepted_at=today)
            if all(known.id != entry.id for known in load(registry)):
                save(registry, [*load(registry), entry])
        decided = replace(request, status="accepted" if accept else "rejected", decided_by=by, decided_at=today,
                          note=note or None)
        requests[pending[0]] = decided
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(asdict(r), sort_keys=True) + "\n" for r in requests), encoding="utf-8")
        os.replace(tmp, path)
    return decided
