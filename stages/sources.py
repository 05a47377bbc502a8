"""From SOURCE strings to units of work, and the fetchers behind the remote kinds.

A unit is what one Ray task ingests and what resume skips once done: one repository
(archive, git repository, directory, registry package, git URL), the loose files at the top
of a collection directory, or one dataset file (whose rows name their own repositories).
Resolving is cheap and runs on the driver; fetching runs inside the unit's task.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from corpus_core.errors import ConfigError
from corpus_core.records import SourceSpec
from corpus_core.storage import sha256_file
from corpus_core.urls import scrub_credentials
from stages.readers import VCS_DIRS, SourceError, archive_stem, git_head, is_archive, is_dataset

REMOTE_KINDS = ("pypi", "npm", "git_url")
PYPI_INDEX = "https://pypi.org/simple"
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2")  # in order of preference
FETCH_TIMEOUT = 120  # seconds without a byte before a fetch fails


@dataclass(frozen=True)
class Unit:
    key: str  # unique, file-name safe: names the unit's part files and completion marker
    kind: str  # archive | git | directory | loose | dataset | pypi | npm | git_url
    location: str  # local path, registry spec or URL
    repo: str | None  # repository name; None for datasets, whose rows carry it
    spec: SourceSpec


def _key(name: str, *identity: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:60] or "unit"
    # a name that is not UTF-8 reaches here surrogate-escaped (os.fsdecode): hash its bytes
    digest = hashlib.sha256("\x00".join(identity).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{safe}-{digest}"


def _unit(kind: str, location: str, repo: str | None, spec: SourceSpec) -> Unit:
    # keyed without credentials: part files' names hold no secret, and a new token redoes nothing
    return Unit(_key(repo or Path(location).name, kind, scrub_credentials(location)), kind, location, repo, spec)


_PYPI = re.compile(r"^pypi:(?P<name>[A-Za-z0-9._-]+)==(?P<version>[A-Za-z0-9._+!-]+)$")
_NPM = re.compile(
    r"^npm:(?P<name>(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*)@(?P<version>[A-Za-z0-9][A-Za-z0-9._+-]*)$")
# what `git+` accepts: a URL of these schemes, scp-like `user@host:path`, or a local path
_GIT_SCHEMES = ("https://", "ssh://", "file://")
_GIT_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")


def parse_git_url(source: str) -> tuple[str, str]:
    """`git+URL[@REV]` -> (URL, REV); REV defaults to HEAD. A REV cannot contain '/'."""
    body = source.removeprefix("git+")
    url, sep, rev = body.rpartition("@")
    if not sep or "/" in rev or not url or url.endswith(":"):
        return body, "HEAD"
    return url, rev


def check_git_url(source: str) -> None:
    """A `git+` source names a repository, never an option: git would take `--upload-pack=CMD`
    as one and run CMD. Only https://, ssh://, file://, `user@host:path` and local paths."""
    url, rev = parse_git_url(source)
    shown = scrub_credentials(source)
    if url.startswith("-") or rev.startswith("-"):
        raise ConfigError(f"source {shown!r}: a git URL or revision cannot start with '-'")
    if any(c in url + rev for c in "\0\n\r"):
        raise ConfigError(f"source {shown!r}: control characters in a git URL")
    lowered = url.lower()
    if "://" in url and not lowered.startswith(_GIT_SCHEMES):
        raise ConfigError(f"source {shown!r}: git+ accepts https://, ssh://, file://, user@host:path and local paths")
    if "://" not in url and not _GIT_SCP.match(url) and "::" in url:
        raise ConfigError(f"source {shown!r}: git remote helpers (transport::address) are not accepted")


def repo_name_from_url(url: str) -> str:
    """github.com/owner/name from https://github.com/owner/name.git, git@host:o/n and file paths."""
    name = re.sub(r"^[a-z+]+://", "", url)
    name = re.sub(r"^[^/]*@", "", name).replace(":", "/")  # to the last @: a password may hold one
    return name.removesuffix(".git").strip("/")


def resolve_units(specs: tuple[SourceSpec, ...] | list[SourceSpec]) -> list[Unit]:
    """Expand the source list into units; a spec that cannot work is a ConfigError now."""
    units: list[Unit] = []
    for spec in specs:
        try:
            units.extend(_units_of(spec))
        except ConfigError as err:  # `https://user:token@…` given without git+ is named without its token
            raise ConfigError(scrub_credentials(str(err))) from None
    seen: dict[str, str] = {}
    for unit in units:
        if unit.repo is None:
            continue
        if unit.repo in seen:
            raise ConfigError(scrub_credentials(
                f"two sources give the repository name {unit.repo!r}: {seen[unit.repo]} and "
                f"{unit.location}; give one a `name` in the config"
            ))
        seen[unit.repo] = unit.location
    return units


def _units_of(spec: SourceSpec) -> list[Unit]:
    source = spec.source
    if match := _PYPI.match(source):
        return [_unit("pypi", source, spec.name or f"pypi/{match['name'].lower()}", spec)]
    if match := _NPM.match(source):
        return [_unit("npm", source, spec.name or f"npm/{match['name']}", spec)]
    if source.startswith(("pypi:", "npm:")):
        raise ConfigError(f"source {source!r}: write pypi:NAME==VERSION or npm:NAME@VERSION")
    if source.startswith("git+"):
        check_git_url(source)
        url, _ = parse_git_url(source)
        return [_unit("git_url", source, spec.name or repo_name_from_url(url), spec)]
    path = Path(source)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"source {source!r} does not exist")
    if path.is_file() and is_archive(path):
        return [_unit("archive", str(path), spec.name or archive_stem(path), spec)]
    if path.is_file() and is_dataset(path):
        return [_unit("dataset", str(path), None, spec)]
    if path.is_dir() and (path / ".git").exists():
        return [_unit("git", str(path), spec.name or path.resolve().name, spec)]
    if path.is_dir():
        return _collection_units(path, spec)
    raise ConfigError(
        f"source {source!r}: not an archive (.tar.gz .tgz .tar .zip ...), a dataset "
        "(.parquet .jsonl), a directory, git+URL, pypi:NAME==VER or npm:NAME@VER"
    )


def _collection_units(root: Path, spec: SourceSpec) -> list[Unit]:
    """A directory of repositories: each child directory or archive is one; loose files, one more."""
    units: list[Unit] = []
    loose = False
    for child in sorted(os.scandir(root), key=lambda e: e.name):
        child_spec = SourceSpec(source=child.path, stars=spec.stars)
        if child.is_dir(follow_symlinks=False):
            kind = "git" if os.path.exists(os.path.join(child.path, ".git")) else "directory"
            units.append(_unit(kind, child.path, child.name, child_spec))
        elif child.is_file(follow_symlinks=False) and is_archive(child.name):
            units.append(_unit("archive", child.path, archive_stem(child.name), child_spec))
        else:
            loose = True  # files and links at the top: read by the "loose" unit, never lost
    if loose:
        units.append(_unit("loose", str(root), spec.name or root.resolve().name, spec))
    return units


# --- fetchers (run on the worker, cached) ------------------------------------------------


def _run(command: list[str], what: str, cwd: Path | None = None, timeout: float = 3600) -> str:
    """Run a fixed argument list (user input only after `--`/`--end-of-options`, never a
    shell); a failure is a SourceError whose message holds no credentials."""
    what = scrub_credentials(what)
    # never wait on a password prompt; no transport beyond those `git+` accepts (not ext::)
    # ssh neither (BatchMode: no host-key question, no passphrase on /dev/tty)
    environment = {"GIT_SSH_COMMAND": "ssh -oBatchMode=yes -oConnectTimeout=30", **os.environ,
                   "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_ALLOW_PROTOCOL": "https:ssh:file"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=cwd, env=environment,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise SourceError(f"{what}: {command[0]} ran past {timeout:g} s") from err
    except FileNotFoundError as err:
        raise SourceError(f"{what}: {command[0]} is not installed") from err
    except subprocess.CalledProcessError as err:
        lines = (err.stderr or err.stdout or "").strip().splitlines()
        errors = [line for line in lines if "error" in line.lower()] or lines
        raise SourceError(scrub_credentials(f"{what} failed: {errors[-1] if errors else err.returncode}")) from err
    return done.stdout


def _fetch_once(target_dir: Path, fetch) -> Path:
    """Run `fetch(tmp_dir)` once per cache entry; concurrent units never see half a download."""
    done = target_dir / ".complete"
    if not done.exists():
        target_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target_dir.parent, prefix=".fetch-") as tmp:
            fetch(Path(tmp))
            (Path(tmp) / ".complete").write_text("")
            shutil.rmtree(target_dir, ignore_errors=True)
            os.replace(tmp, target_dir)
    return target_dir


def _single_archive(directory: Path, what: str) -> Path:
    found = [p for p in directory.iterdir() if is_archive(p)]
    if len(found) != 1:
        raise SourceError(f"{what}: expected one source archive, found {sorted(p.name for p in found)}")
    return found[0]


def package_index() -> str:
    """The package index sdists are fetched from: pip's PIP_INDEX_URL, else PyPI."""
    return os.environ.get("PIP_INDEX_URL", PYPI_INDEX).rstrip("/")


def _sdist_name(filename: str) -> tuple[str, str] | None:
    """(normalized project name, version) of an sdist file name, None for anything else."""
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            name, _, version = filename[: -len(suffix)].rpartition("-")
            return (normalize_project(name), version) if name else None
    return None


def normalize_project(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def fetch_pypi(source: str, cache_dir: Path) -> Path:
    """The sdist of pypi:NAME==VERSION, fetched as a file from the package index's JSON API
    (PEP 691) and checked against the sha256 the index lists. Nothing is built: pip would
    run the package's build backend (meson, Cython) just to read its metadata."""
    match = _PYPI.match(source)
    project = normalize_project(match["name"])
    target = cache_dir / "pypi" / f"{match['name'].lower()}-{match['version']}"

    def download(tmp: Path) -> None:
        listing = _index_listing(f"{package_index()}/{project}/", source)
        found = [f for f in listing.get("files", [])
                 if _sdist_name(f.get("filename", "")) == (project, match["version"]) and not f.get("yanked")]
        if not found:
            raise SourceError(f"{source}: the index has no source distribution of version {match['version']}")
        chosen = min(found, key=lambda f: SDIST_SUFFIXES.index(next(s for s in SDIST_SUFFIXES
                                                                    if f["filename"].endswith(s))))
        _download(urllib.parse.urljoin(f"{package_index()}/{project}/", chosen["url"]),
                  tmp / chosen["filename"], chosen.get("hashes", {}).get("sha256"), source)

    _fetch_once(target, download)
    return _single_archive(target, source)


def _index_listing(url: str, source: str) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
            return json.load(response)
    except (OSError, ValueError) as err:  # URLError, HTTPError and timeouts are OSErrors
        raise SourceError(f"{source}: cannot read the index at {url}: {err}") from err


def _download(url: str, path: Path, sha256: str | None, source: str) -> None:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response, open(path, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    except OSError as err:
        raise SourceError(f"{source}: download of {url} failed: {err}") from err
    if sha256 and digest.hexdigest() != sha256:
        raise SourceError(f"{source}: the index lists sha256 {sha256}, the download has {digest.hexdigest()}")


def fetch_npm(source: str, cache_dir: Path) -> Path:
    """The package tarball of npm:NAME@VERSION, as `npm pack` fetches it from the registry."""
    match = _NPM.match(source)
    target = cache_dir / "npm" / f"{match['name'].replace('/', '__')}-{match['version']}"
    command = ["npm", "pack", "--silent", "--pack-destination"]
    _fetch_once(target, lambda tmp: _run([*command, str(tmp), "--", f"{match['name']}@{match['version']}"], source,
                                         cwd=tmp))
    return _single_archive(target, source)


def fetch_git(source: str, cache_dir: Path) -> tuple[Path, str]:
    """A shallow fetch of one revision into a bare cache repository; returns (repo, commit)."""
    check_git_url(source)
    url, rev = parse_git_url(source)
    # keyed by the URL without credentials: the cache's folder names hold no secret, not even hashed
    target = cache_dir / "git" / _key(repo_name_from_url(url), scrub_credentials(url), rev)

    def clone(tmp: Path) -> None:
        _run(["git", "init", "--quiet", "--bare", "--", str(tmp)], source)
        # a server that stalls (under 1 KB/s for FETCH_TIMEOUT seconds) fails the fetch
        _run(["git", "-c", "http.lowSpeedLimit=1000", "-c", f"http.lowSpeedTime={FETCH_TIMEOUT}", "-C", str(tmp),
              "fetch", "--quiet", "--depth", "1", "--end-of-options", url, rev], source)
        _run(["git", "-C", str(tmp), "update-ref", "refs/corpus/pinned", "FETCH_HEAD"], source)

    _fetch_once(target, clone)
    return target, git_head(target, "refs/corpus/pinned")


def verify_sha256(path: Path, expected: str | None, source: str) -> str:
    actual = sha256_file(path)
    if expected and actual != expected.lower():
        raise SourceError(f"{source}: sha256 is {actual}, the config pins {expected}")
    return actual


def source_fingerprint(unit: Unit) -> str | None:
    """What a resumed build compares to know a unit's input is the one its parts were made
    from: sha256 (with size) of an archive or dataset, the commit of a git repository, the
    names, sizes and modification times of a directory's files. None for registry packages
    and git URLs, which are pinned (a version, a fetched commit in the cache)."""
    location = Path(unit.location)
    if unit.kind in ("archive", "dataset"):
        if not location.is_file():
            return "missing"
        return f"sha256:{sha256_file(location)}:{location.stat().st_size}"
    if unit.kind == "git":
        try:
            return f"commit:{git_head(location)}"
        except SourceError as err:
            return f"unreadable:{err}"
    if unit.kind in ("directory", "loose"):
        digest = hashlib.sha256()
        for path, size, mtime in _tree_stats(location, top_level_only=unit.kind == "loose"):
            digest.update(f"{path}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        return f"tree:{digest.hexdigest()}"
    return None


def _tree_stats(root: Path, top_level_only: bool) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every entry below `root`, links not followed, sorted."""
    found: list[tuple[str, int, int]] = []
    stack = [""]
    while stack:
        prefix = stack.pop()
        try:
            children = list(os.scandir(root / prefix))
        except OSError:
            found.append((prefix, -1, -1))
            continue
        for child in children:
            rel = f"{prefix}/{child.name}" if prefix else child.name
            try:
                info = child.stat(follow_symlinks=False)
            except OSError:
                found.append((rel, -1, -1))
                continue
            if child.is_dir(follow_symlinks=False):
                if not top_level_only and child.name not in VCS_DIRS:
                    stack.append(rel)
                continue
            found.append((rel, info.st_size, info.st_mtime_ns))
    return sorted(found)
