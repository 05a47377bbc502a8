"""`--out` is the build's own: what a build may write, lock and delete there.

A build writes only into an empty (or new) folder, or into one a previous build made: its
marker `.corpus-build.json` lists every file the build published, and a folder with
`manifest/run.json` but no marker (a build of an older version) counts as one. Anything
else is refused unless `--force`; an `--out` inside a source folder is always refused (the
next build would ingest its own output). For its whole run a build holds an exclusive lock
on `.corpus-build.lock`, so a second build into the same folder stops at once with a clear
error instead of corrupting the first.

Publishing moves each new file into place and then deletes the files the previous build
listed that this one did not write again; files it did not write are never deleted, under
`--force` too (a stray file left in shards/ is then what `corpus audit` reports).

`--out` may be an object store URL (`RemoteOutDir`): the same rules, with what an object
store offers instead of links, renames and locks. See `RemoteOutDir` and `RemoteLock`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pyarrow.fs as pafs

from corpus_core.errors import ConfigError
from corpus_core.locations import Store, identity, is_url, shown
from corpus_core.records import SourceSpec

MARKER = ".corpus-build.json"
LOCK = ".corpus-build.lock"
WORK = "_work"
MARKER_FORMAT = 1
PUBLISHING, PUBLISHED = "publishing", "published"  # the marker's state


# published last, in this order: a reader that finds the new index finds the new shards
COMMIT_LAST = ("manifest/run.json", "index.json")


def publish_order(names: Iterable[str]) -> list[str]:
    """The new files in the order they are put in place: data first, index and run.json last."""
    return sorted(names, key=lambda name: (COMMIT_LAST.index(name) + 1 if name in COMMIT_LAST else 0, name))


def claim_out(out: str | Path, sources: Iterable[SourceSpec], force: bool = False,
              work_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> OutDir | RemoteOutDir:
    """The build's `--out`, claimed: a local folder, or an object store URL whose work folder
    (parts, shuffles, DuckDB's spill: a filesystem's) is `work_dir`, else under `cache_dir`."""
    if not is_url(out):  # (a URL as work_dir is refused with the config: ExecutionConfig)
        if "://" in str(out):
            raise ConfigError(f"--out {shown(out)}: not a folder, nor an object store pyarrow can write "
                              "(s3://, gs://, abfs://, hdfs://)")
        return OutDir(Path(out), sources, force=force, work_dir=Path(work_dir) if work_dir else None)
    if not work_dir:
        if cache_dir is None:
            raise ConfigError(f"--out {shown(out)} is an object store: name a work folder (execution.work_dir)")
        work_dir = Path(cache_dir) / "remote-out" / hashlib.sha256(identity(out).encode()).hexdigest()[:16]
    return RemoteOutDir(str(out), Path(work_dir), force=force)


class OutDir:
    """The claimed output folder; `release()` (or the end of a `with`) drops the lock."""

    def __init__(self, path: Path, sources: Iterable[SourceSpec], force: bool = False,
                 work_dir: Path | None = None):
        self.path = path.resolve()
        self.location = str(self.path)  # what run.json records
        self.work_base = (work_dir or self.path).resolve()  # holds _work/
        self.force = force
        refuse_inside_sources(self.path, sources, "--out")
        if not force:
            _refuse_foreign(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.path)
        self._work_lock = None if self.work_base == self.path else _lock_work(self.work_base, self._lock)
        if not (self.path / MARKER).exists():
            self._write_marker(self.previous_files())

    def __enter__(self) -> OutDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        for fd in (self._work_lock, self._lock):
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self._lock = self._work_lock = None

    def previous_files(self) -> list[str]:
        """The files (relative to OUT) the previous build published."""
        marker = self.path / MARKER
        if marker.exists() and not marker.is_symlink():
            try:
                names = json.loads(marker.read_text()).get("files", [])
            except (ValueError, AttributeError):
                return []
            # the marker travels with the folder: a name it lists is trusted only inside OUT
            return [name for name in names if isinstance(name, str) and self._inside(name)]
        if (self.path / "manifest" / "run.json").exists():  # a build from before the marker
            return _legacy_outputs(self.path)
        return []  # a folder taken with --force: nothing in it is the build's

    def _inside(self, name: str) -> bool:
        """A relative name without `..` whose folder, links resolved, lies inside OUT."""
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts or "\0" in name:
            return False
        folder = (self.path / name).parent.resolve()
        return folder == self.path or self.path in folder.parents

    def publish(self, staging: Path) -> list[str]:
        """Move every file under `staging` to the same place under OUT; delete what the
        previous build published and this one did not; record the new list."""
        new, ours = self._move_in(staging)
        for name in sorted(ours - set(new)):
            stale = self.path / name
            if stale.is_file() or stale.is_symlink():
                stale.unlink()
                _remove_empty_parents(stale.parent, self.path)
        self._write_marker(new)
        return new

    def add(self, staging: Path) -> list[str]:
        """Move every file under `staging` into OUT, as `publish` does, and add them to the
        marker's list; unlike `publish`, nothing the marker lists is deleted (`corpus report`
        adds report.html to a build that has its other outputs)."""
        new, ours = self._move_in(staging)
        self._write_marker(sorted(ours | set(new)))
        return new

    def _move_in(self, staging: Path) -> tuple[list[str], set[str]]:
        """Move every file under `staging` into OUT, in publish order, once the marker lists them
        with the previous build's (a crash midway leaves nothing a later build would not clean
        up); returns the new names and the previous build's."""
        new = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        ours = set(self.previous_files())
        self._check_targets(new, ours)
        self._write_marker(sorted(ours | set(new)), state=PUBLISHING)
        for name in publish_order(new):
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, target)
        return new, ours

    def _check_targets(self, new: list[str], ours: set[str]) -> None:
        """Refuse, before anything moves, a name that would land outside OUT, on a folder, or
        on a file no build wrote (unless --force)."""
        for name in new:
            target = self.path / name
            if not self._inside(name):
                raise ConfigError(f"{target}: a link leads the build's output out of {self.path}; remove it")
            if target.is_dir() and not target.is_symlink():
                raise ConfigError(f"{target} is a folder where the build writes a file; move it away")
            if (target.exists() or target.is_symlink()) and name not in ours and not self.force:
                raise ConfigError(f"{target} exists and no build wrote it; move it away, or pass --force to "
                                  "replace it")

    def _write_marker(self, files: list[str], state: str = PUBLISHED) -> None:
        tmp = self.path / (MARKER + ".tmp")
        if tmp.is_symlink():
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(marker_text(files, state))
        os.replace(tmp, self.path / MARKER)



def marker_text(files: list[str], state: str) -> str:
    """The commit record: every file a build may have put in OUT, and whether its publishing
    ended (`published`: exactly these) or is under way or was cut short (`publishing`: the
    previous build's and this one's; a reader should wait, the next build cleans up)."""
    return json.dumps({"format": MARKER_FORMAT, "state": state, "files": files}, indent=1) + "\n"


def _relative_inside(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not name.startswith("/") and ".." not in parts and "\0" not in name and "\\" not in name


class RemoteOutDir:
    """`--out` on an object store. The rules are the local folder's: only an empty prefix or a
    previous build's is written without `--force`; the marker lists what the build published;
    files no build wrote are never replaced without `--force` nor ever deleted. What differs:

    - **No rename.** Each file is uploaded to its final name: one PUT, seen whole or not at
      all. The marker is the commit record: written first with `state: publishing` and the
      union of the old and new lists, then every file (data first, index.json and run.json
      last), then the stale files are deleted, then the marker with `state: published` and
      the new list. A build cut short leaves a marker whose list covers everything it wrote,
      so the next build deletes what it does not write again, as locally.
    - **No links**, so no name can lead out of the prefix; a name is only checked to be
      relative without `..`.
    - **No flock:** `RemoteLock`.
    - **No local work:** `_work/` (parts, shuffles, DuckDB's spill) needs a filesystem; it
      lives in `work_base`, a folder every node sees (`execution.work_dir`, by default
      `cache_dir/remote-out/<hash of the URL>/`).
    """

    def __init__(self, url: str, work_base: Path, force: bool = False):
        self.store = Store(url)
        self.location = self.store.location
        self.path = None  # no local folder: commands that read a local build refuse a URL
        self.work_base = work_base.resolve()
        self.force = force
        try:
            if not force:
                self._refuse_foreign()
        except OSError as err:
            raise ConfigError(f"cannot reach --out {self.location}: {err}") from None
        self._lock: RemoteLock | None = None
        self._work_lock: int | None = None
        try:
            self._lock = RemoteLock(self.store)
            # builds into other URLs may share a work folder: theirs must not be removed under them
            self._work_lock = _lock_work(self.work_base)
            if self.store.read_bytes(MARKER) is None:
                self._write_marker([], PUBLISHED)
        except BaseException:
            self.release()
            raise

    def __enter__(self) -> RemoteOutDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._work_lock is not None:
            fcntl.flock(self._work_lock, fcntl.LOCK_UN)
            os.close(self._work_lock)
            self._work_lock = None

    def _refuse_foreign(self) -> None:
        if self.store.read_bytes(MARKER) is not None:
            return
        present = [entry.name for entry in self.store.list() if entry.name != LOCK]
        if present:
            shown_names = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
            raise ConfigError(f"--out {self.location} holds objects no build made ({shown_names}); choose an empty "
                              "prefix, or pass --force to write into it (objects of other names are left alone)")

    def previous_files(self) -> list[str]:
        data = self.store.read_bytes(MARKER)
        try:
            names = json.loads(data).get("files", []) if data else []
        except (ValueError, AttributeError):
            return []
        return [name for name in names if isinstance(name, str) and _relative_inside(name)
                and name != MARKER and name.split("/")[0] != LOCK]

    def publish(self, staging: Path) -> list[str]:
        """Upload every file under `staging`; delete what the previous build published and this
        one did not; record the new list. (No `add`: `corpus report` works on a local copy.)"""
        new = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        ours = set(self.previous_files())
        self._check_targets(new, ours)
        self._lock.check()
        self._write_marker(sorted(ours | set(new)), PUBLISHING)
        for name in publish_order(new):
            self.store.upload(staging / name, name)
        self._lock.check()  # before deleting anything: no other build may have taken over
        for name in sorted(ours - set(new)):
            try:
                self.store.delete(name)
            except OSError:
                pass  # a folder now, or gone: a build never deletes what is not a file it wrote
        self._write_marker(new, PUBLISHED)
        return new

    def _check_targets(self, new: list[str], ours: set[str]) -> None:
        for name in new:
            if not _relative_inside(name):
                raise ConfigError(f"{name!r}: not a name inside {self.location}")
            if name not in ours and not self.force and self.store.info(name).type != pafs.FileType.NotFound:
                raise ConfigError(f"{self.location}/{name} exists and no build wrote it; move it away, or pass "
                                  "--force to replace it")

    def _write_marker(self, files: list[str], state: str) -> None:
        self.store.write_bytes(MARKER, marker_text(files, state).encode())


class RemoteLock:
    """The `--out` lock on an object store, which has neither flock nor an atomic create-if-absent
    that every store and pyarrow offer. Each build writes its own lock object
    `.corpus-build.lock/<id>`, then lists the folder: it goes on only if its object is the only
    live one, else it deletes its own and stops. With a store that lists what was written
    before (S3, GCS and Azure are strongly consistent), two builds that start together both
    see each other and both stop; they never both go on. A running build rewrites its object
    every `BEAT_S`; an object not rewritten for `LEASE_S` by the store's clock (compared
    with the new object's own time, so no two machines' clocks are compared) is a crashed
    build's and is deleted."""

    BEAT_S = 30.0
    LEASE_S = 300.0

    def __init__(self, store: Store):
        self.store = store
        self.name = f"{LOCK}/{uuid.uuid4().hex}"
        self.body = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
        try:
            self._take()
        except OSError as err:
            raise ConfigError(f"cannot take the lock in {store.location}: {err}") from None
        self.last_beat = time.monotonic()  # of the last write that reached the store
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beating, name="corpus-out-lock", daemon=True)
        self._beat.start()

    def _take(self) -> None:
        self.store.write_bytes(self.name, self.body)
        ours = self.store.info(self.name).mtime_ns
        for entry in self.store.list(LOCK):
            if entry.name == self.name or not entry.is_file:
                continue
            if ours is not None and entry.mtime_ns is not None and entry.mtime_ns < ours - self.LEASE_S * 1e9:
                self.store.delete(entry.name)  # its build stopped beating long ago
                continue
            holder = (self.store.read_bytes(entry.name) or b"")[:200].decode("utf-8", "replace")
            self.store.delete(self.name)
            raise ConfigError(f"another build is writing into {self.store.location} ({holder or 'holder unknown'}); "
                              f"wait for it to end, or choose another --out")

    def _beating(self) -> None:
        while not self._stop.wait(self.BEAT_S):
            try:
                if self.store.read_bytes(self.name) is None:
                    return  # deleted: another build took the lock as lapsed; `check` fails from now on
                self.store.write_bytes(self.name, self.body)
                self.last_beat = time.monotonic()
            except Exception:  # noqa: BLE001 - the next beat tries again; `check` sees a lease run out
                pass

    def check(self) -> None:
        """Before publishing or deleting: the lease is still ours (a beat reached the store within
        most of a lease), so no other build can have taken the lock as lapsed."""
        silent = time.monotonic() - self.last_beat
        if silent > self.LEASE_S * 0.8:
            raise ConfigError(f"lost the lock on {self.store.location}: no beat reached the store for {silent:.0f} s, "
                              "so another build may be writing there; nothing more was published or deleted")

    def release(self) -> None:
        self._stop.set()
        self._beat.join(timeout=self.BEAT_S)
        try:
            self.store.delete(self.name)
        except OSError:
            pass  # unreachable: the lock lapses after its lease


def refuse_inside_sources(folder: Path, sources: Iterable[SourceSpec], what: str) -> None:
    """A folder the build writes (`--out`, `cache_dir`) must lie outside every source folder:
    the next build would read what this one wrote as training data."""
    folder = folder.resolve()
    for spec in sources:
        source = Path(spec.source)
        if spec.source.startswith(("git+", "pypi:", "npm:")) or not source.is_dir():
            continue
        root = source.resolve()
        if folder == root or root in folder.parents:
            raise ConfigError(f"{what} {folder} is inside the source {spec.source}: the next build would read what "
                              f"this one writes there; choose a folder outside every source")


def _refuse_foreign(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    if (out / MARKER).exists() or (out / "manifest" / "run.json").exists():
        return
    present = sorted(p.name for p in out.iterdir() if p.name not in (LOCK, MARKER + ".tmp"))
    if present:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise ConfigError(f"--out {out} holds files no build made ({shown}); choose an empty folder, or pass --force "
                          "to write into it (files of other names are left alone)")


def _lock(out: Path) -> int:
    try:
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)  # never truncate a link's target
    except OSError as err:
        raise ConfigError(f"cannot take the lock {out / LOCK}: {err.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        raise ConfigError(f"another build is writing into {out} ({holder or 'pid unknown'}); wait for it to end, or "
                          "choose another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    return fd


def _lock_work(work_base: Path, out_lock: int | None = None) -> int:
    """The lock of a work folder that is not OUT: builds into different OUTs that share it
    must not remove each other's `_work/` (`WorkDir.prepare` clears other fingerprints')."""
    work_base.mkdir(parents=True, exist_ok=True)
    try:
        return _lock(work_base)
    except ConfigError as err:
        if out_lock is not None:
            fcntl.flock(out_lock, fcntl.LOCK_UN)
            os.close(out_lock)
        raise ConfigError(f"execution.work_dir {work_base}: {err}") from None


def _legacy_outputs(out: Path) -> list[str]:
    """What a build from before the marker published, by the names older builds wrote."""
    fixed = ["NOTICE", "tokenizer.json", "shards/index.json",
             *(f"manifest/{name}" for name in ("files.parquet", "repos.parquet", "attribution.parquet", "run.json"))]
    shards = sorted(f"shards/{p.name}" for p in (out / "shards").glob("part-*.parquet")) if (out / "shards").is_dir() \
        else []
    return [name for name in fixed if (out / name).is_file()] + shards


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def remove_work(out: Path, keep: str | None = None) -> None:
    """Remove the build's work folders under OUT/_work (all but `keep`): only folders whose
    layout is a build's (a `parts/` inside), never anything else put there."""
    root = out / WORK
    if not root.is_dir():
        return
    for child in root.iterdir():
        if child.name != keep and child.is_dir() and not child.is_symlink() and (child / "parts").is_dir():
            shutil.rmtree(child, ignore_errors=True)
    if not any(root.iterdir()):
        root.rmdir()
