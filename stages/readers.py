"""Readers of one repository's files: archives, git trees, directories, datasets.

Each yields `Entry` objects in a stable order. A reader never follows a link, never
resolves a path outside its root and never reads more than the ingest limits allow; what it
will not read comes out as an entry with a reason, so the manifest still accounts for it.
A source that cannot be opened at all raises `SourceError`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import posixpath
import stat
import subprocess
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from corpus_core import reasons

if TYPE_CHECKING:
    from stages.ingest import IngestConfig

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
DATASET_SUFFIXES = (".parquet", ".jsonl", ".ndjson")
VCS_DIRS = frozenset({".git", ".hg", ".svn"})


class SourceError(Exception):
    """The whole source could not be read; the message says why."""


@dataclass(slots=True)
class Entry:
    path: str
    size: int
    data: bytes | None = None  # None when the reader did not read it (see reason)
    reason: str | None = None
    detail: str | None = None


def is_archive(path: str | Path) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def is_dataset(path: str | Path) -> bool:
    return str(path).lower().endswith(DATASET_SUFFIXES)


def archive_stem(path: str | Path) -> str:
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _escapes(path: str) -> bool:
    """True when a relative POSIX path climbs above its root or is absolute."""
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return True
    normal = posixpath.normpath(path)
    return normal == ".." or normal.startswith("../")


def _link_entry(path: str, target: str, hard: bool = False) -> Entry:
    """An entry for a link: `symlink` when its target stays inside the root, else `link_escape`."""
    resolved = target if hard else posixpath.join(posixpath.dirname(path), target)
    kind = "hard link" if hard else "symbolic link"
    if _escapes(target if target.startswith("/") else resolved):
        return Entry(path, 0, reason=reasons.LINK_ESCAPE, detail=f"{kind} to {target}")
    return Entry(path, 0, reason=reasons.SYMLINK, detail=f"{kind} to {posixpath.normpath(resolved)}")


def _common_root(names: list[str]) -> str:
    """The single top-level directory every member lives under (GitHub tarballs, sdists, npm)."""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        return tops.pop() + "/"
    return ""


def _clean_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


# --- tar ---------------------------------------------------------------------------------


class _BoundedReader(io.RawIOBase):
    """Counts decompressed bytes and stops a decompression bomb at the archive budget."""

    def __init__(self, inner: io.BufferedIOBase, limit: int):
        self.inner, self.limit, self.read_bytes = inner, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        data = self.inner.read(len(buffer))
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            raise _ArchiveBudgetExceeded(f"archive holds more than {self.limit} uncompressed bytes")
        buffer[: len(data)] = data
        return len(data)


class _ArchiveBudgetExceeded(Exception):
    pass


def _open_tar_stream(path: Path, limit: int) -> tarfile.TarFile:
    with open(path, "rb") as raw:
        magic = raw.read(6)
    if magic.startswith(b"\x1f\x8b"):
        inner = gzip.open(path, "rb")
    elif magic.startswith(b"BZh"):
        inner = bz2.open(path, "rb")
    elif magic.startswith(b"\xfd7zXZ"):
        inner = lzma.open(path, "rb")
    else:
        inner = open(path, "rb")
    # tarfile's stream mode reads in records of 10 KiB: the budget is exact to that grain
    return tarfile.open(fileobj=_BoundedReader(inner, limit), mode="r|")


def _tar_members(path: Path, limits: IngestConfig) -> tuple[list[tarfile.TarInfo], Entry | None]:
    """First pass: member headers up to the limits, and an entry for where reading stopped."""
    members: list[tarfile.TarInfo] = []
    try:
        with _open_tar_stream(path, limits.max_archive_bytes) as tar:
            for member in tar:
                if len(members) >= limits.max_archive_members:
                    detail = f"archive has more than {limits.max_archive_members} members; the rest not read"
                    stopped = Entry(_clean_name(member.name), member.size, reason=reasons.ARCHIVE_LIMIT, detail=detail)
                    return members, stopped
                members.append(member)
    except _ArchiveBudgetExceeded as err:
        if not members:
            raise SourceError(str(err)) from err
        last = members.pop()
        return members, Entry(_clean_name(last.name), last.size, reason=reasons.ARCHIVE_LIMIT, detail=str(err))
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error) as err:
        if not members:
            raise SourceError(f"not a readable tar archive: {err}") from err
        last = members.pop()
        detail = f"archive broken here: {err}"
        return members, Entry(_clean_name(last.name), last.size, reason=reasons.UNREADABLE, detail=detail)
    return members, None


def read_tar(path: Path, limits: IngestConfig) -> Iterator[Entry]:
    members, stopped = _tar_members(path, limits)
    root = _common_root([_clean_name(m.name) for m in members if _clean_name(m.name) and not m.isdir()])
    wanted = len(members)
    if wanted:
        with _open_tar_stream(path, limits.max_archive_bytes) as tar:
            for index, member in enumerate(tar):
                if index >= wanted:
                    break
                entry = _tar_entry(tar, member, root, limits)
                if entry is not None:
                    yield entry
    if stopped is not None:
        stopped.path = stopped.path.removeprefix(root)
        yield stopped


def _tar_entry(tar: tarfile.TarFile, member: tarfile.TarInfo, root: str, limits: IngestConfig) -> Entry | None:
    name = _clean_name(member.name)
    path = name.removeprefix(root) if root and name.startswith(root) else name
    if _escapes(name):
        return Entry(name, member.size, reason=reasons.PATH_ESCAPE, detail=f"member name {member.name!r}")
    if member.isdir() or not path:
        return None
    if member.issym():
        return _link_entry(path, member.linkname)
    if member.islnk():
        target = _clean_name(member.linkname)
        return _link_entry(path, target.removeprefix(root) if not _escapes(target) else target, hard=True)
    if not member.isfile():
        return Entry(path, 0, reason=reasons.SPECIAL_FILE, detail="device, FIFO or other special member")
    if member.size >= limits.max_file_bytes:
        return Entry(path, member.size, reason=reasons.TOO_LARGE)
    try:
        extracted = tar.extractfile(member)
        data = extracted.read() if extracted is not None else None
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error, _ArchiveBudgetExceeded) as err:
        return Entry(path, member.size, reason=reasons.UNREADABLE, detail=f"archive broken here: {err}")
    if data is None:
        return Entry(path, member.size, reason=reasons.UNREADABLE, detail="member has no data")
    return Entry(path, member.size, data=data)


# --- zip ---------------------------------------------------------------------------------


def read_zip(path: Path, limits: IngestConfig) -> Iterator[Entry]:
    try:
        archive = zipfile.ZipFile(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise SourceError(f"not a readable zip archive: {err}") from err
    with archive:
        names = [_clean_name(i.filename) for i in infos if not i.is_dir()]
        root = _common_root([n for n in names if n])
        budget = limits.max_archive_bytes
        for index, info in enumerate(infos):
            entry = _zip_entry(archive, info, index, root, budget, limits)
            if entry is not None:
                budget -= len(entry.data or b"")
                yield entry


def _zip_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, index: int, root: str, budget: int, limits: IngestConfig
) -> Entry | None:
    name = _clean_name(info.filename)
    path = name.removeprefix(root) if root and name.startswith(root) else name
    size = info.file_size
    if _escapes(name):
        return Entry(name, size, reason=reasons.PATH_ESCAPE, detail=f"member name {info.filename!r}")
    if info.is_dir() or not path:
        return None
    if index >= limits.max_archive_members:
        return Entry(path, size, reason=reasons.ARCHIVE_LIMIT, detail=f"past {limits.max_archive_members} members")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        try:
            target = archive.read(info)[:4096].decode("utf-8", "replace")
        except (zipfile.BadZipFile, RuntimeError, OSError) as err:
            return Entry(path, size, reason=reasons.UNREADABLE, detail=str(err))
        return _link_entry(path, target)
    if size >= limits.max_file_bytes:
        return Entry(path, size, reason=reasons.TOO_LARGE)
    ratio = size / max(info.compress_size, 1)
    if size > 1 << 20 and ratio > limits.max_compression_ratio:
        return Entry(path, size, reason=reasons.ARCHIVE_LIMIT, detail=f"compression ratio {ratio:.0f}:1")
    if size > budget:
        return Entry(path, size, reason=reasons.ARCHIVE_LIMIT, detail="archive byte budget spent")
    if info.flag_bits & 0x1:
        return Entry(path, size, reason=reasons.UNREADABLE, detail="encrypted member")
    try:
        with archive.open(info) as member:
            data = member.read(limits.max_file_bytes)
    except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, NotImplementedError, zlib.error) as err:
        return Entry(path, size, reason=reasons.UNREADABLE, detail=f"corrupt member: {err}")
    return Entry(path, size, data=data)


def read_archive(path: Path, limits: IngestConfig) -> Iterator[Entry]:
    if not path.is_file():
        raise SourceError(f"archive {path} does not exist")
    if str(path).lower().endswith(".zip"):
        return read_zip(path, limits)
    return read_tar(path, limits)


# --- directory ---------------------------------------------------------------------------


def read_directory(root: Path, limits: IngestConfig, top_level_only: bool = False) -> Iterator[Entry]:
    """Every file below `root` in sorted order; links are reported, never followed."""
    if not root.is_dir():
        raise SourceError(f"{root} is not a directory")
    real_root = root.resolve()
    stack = [""]
    while stack:
        prefix = stack.pop()
        try:
            children = sorted(os.scandir(root / prefix), key=lambda e: e.name)
        except OSError as err:
            yield Entry(prefix or ".", 0, reason=reasons.UNREADABLE, detail=f"cannot list directory: {err.strerror}")
            continue
        subdirs = []
        for child in children:
            rel = f"{prefix}/{child.name}" if prefix else child.name
            if child.is_dir(follow_symlinks=False):
                if child.name not in VCS_DIRS and not top_level_only:
                    subdirs.append(rel)
                continue
            if top_level_only and is_archive(child.name):
                continue  # archives at a collection's top level are repositories of their own
            yield read_path_entry(root, real_root, rel, limits)
        stack.extend(reversed(subdirs))


def read_path_entry(root: Path, real_root: Path, rel: str, limits: IngestConfig) -> Entry:
    """One file below `root` (whose resolved path is `real_root`), read without following links."""
    full = root / rel
    try:
        info = os.lstat(full)
    except OSError as err:
        return Entry(rel, 0, reason=reasons.UNREADABLE, detail=err.strerror)
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(full)
        real_target = Path(os.path.realpath(full))
        inside = real_target == real_root or real_root in real_target.parents
        if not inside:
            return Entry(rel, 0, reason=reasons.LINK_ESCAPE, detail=f"symbolic link to {target}")
        return Entry(rel, 0, reason=reasons.SYMLINK, detail=f"symbolic link to {real_target.relative_to(real_root)}")
    if not stat.S_ISREG(info.st_mode):
        return Entry(rel, 0, reason=reasons.SPECIAL_FILE, detail="device, FIFO or socket")
    if info.st_size >= limits.max_file_bytes:
        return Entry(rel, info.st_size, reason=reasons.TOO_LARGE)
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limits.max_file_bytes)
    except OSError as err:
        return Entry(rel, info.st_size, reason=reasons.UNREADABLE, detail=err.strerror)
    return Entry(rel, len(data), data=data)


# --- git ---------------------------------------------------------------------------------


def _git(repo: Path, *args: str, input_bytes: bytes | None = None) -> bytes:
    command = ["git", "-c", f"safe.directory={repo}", "-C", str(repo), *args]
    try:
        done = subprocess.run(command, input=input_bytes, capture_output=True, check=True)
    except FileNotFoundError as err:
        raise SourceError("git is not installed") from err
    except subprocess.CalledProcessError as err:
        message = err.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SourceError(f"git {args[0]} failed: {message[-1] if message else err.returncode}") from err
    return done.stdout


def git_head(repo: Path, rev: str = "HEAD") -> str:
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()


def git_remote_url(repo: Path) -> str | None:
    try:
        return _git(repo, "config", "--get", "remote.origin.url").decode().strip() or None
    except SourceError:
        return None


def read_git(repo: Path, limits: IngestConfig, commit: str) -> Iterator[Entry]:
    """The tree of `commit` (not the work tree); blobs streamed through `cat-file --batch`."""
    listing = _git(repo, "ls-tree", "-r", "-z", "--long", "--full-tree", commit)
    plan: list[tuple[str, str, str, int]] = []  # (path, mode, object id, size) of each tree entry
    for raw in listing.split(b"\0"):
        if raw:
            meta, _, raw_path = raw.partition(b"\t")
            mode, kind, object_id, size = meta.decode().split()
            path = raw_path.decode("utf-8", "surrogateescape")
            plan.append((path, "commit" if kind == "commit" else mode, object_id, 0 if size == "-" else int(size)))
    to_read = [
        o for _, mode, o, size in plan if mode != "commit" and (mode == "120000" or size < limits.max_file_bytes)
    ]
    blobs = _stream_blobs(repo, to_read)
    for path, mode, object_id, size in plan:
        if mode == "commit":
            yield Entry(path, 0, reason=reasons.SUBMODULE, detail=f"submodule at {object_id}")
        elif mode == "120000":
            yield _link_entry(path, next(blobs).decode("utf-8", "surrogateescape"))
        elif size >= limits.max_file_bytes:
            yield Entry(path, size, reason=reasons.TOO_LARGE)
        else:
            yield Entry(path, size, data=next(blobs))


def _stream_blobs(repo: Path, object_ids: list[str]) -> Iterator[bytes]:
    """Blob contents in the order asked, without holding the whole repository in memory."""
    if not object_ids:
        return
    command = ["git", "-c", f"safe.directory={repo}", "-C", str(repo), "cat-file", "--batch"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    feeder = threading.Thread(target=_feed, args=(process.stdin, object_ids), daemon=True)
    feeder.start()
    try:
        for _ in object_ids:
            header = process.stdout.readline().split()
            if len(header) != 3:
                raise SourceError(f"git cat-file gave an unexpected header {header!r}")
            data = process.stdout.read(int(header[2]))
            process.stdout.read(1)  # the newline after each object
            yield data
    finally:
        process.stdout.close()
        process.wait()
        feeder.join()


def _feed(stdin: io.BufferedWriter, object_ids: list[str]) -> None:
    try:
        for object_id in object_ids:
            stdin.write(f"{object_id}\n".encode())
        stdin.close()
    except BrokenPipeError:
        pass
