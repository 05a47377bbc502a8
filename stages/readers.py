"""Readers of one repository's files: archives, git trees, directories, datasets.

Each yields `Entry` objects in a stable order. A reader never follows a link, never
resolves a path outside its root and never reads more than the ingest limits allow; what it
will not read comes out as an entry with a reason, so the manifest still accounts for it.
One entry's failure, foreseen or not, is that entry's `unreadable` row, never the source's.
A source that cannot be opened at all raises `SourceError`.
"""

from __future__ import annotations

import bisect
import bz2
import gzip
import io
import json
import lzma
import os
import posixpath
import stat
import struct
import subprocess
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core import reasons
from corpus_core.names import error_detail, printable_name

if TYPE_CHECKING:
    from stages.ingest import IngestConfig
    from stages.origin import TarMetadata

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
DATASET_SUFFIXES = (".parquet", ".jsonl", ".ndjson")
VCS_DIRS = frozenset({".git", ".hg", ".svn"})


BAD_RECORD = reasons.register(
    "bad_record", "ingest", "a dataset row that is not a record: a JSON Lines line that is not UTF-8, not JSON or "
    "not an object, or a row whose `repo`, `path` or `content` is missing, empty or not a string; `detail` names "
    "the line or row and what was wrong")


class SourceError(Exception):
    """The whole source could not be read; the message says why."""


@dataclass(slots=True)
class Entry:
    path: str
    size: int
    data: bytes | None = None  # None when the reader did not read it (see reason)
    reason: str | None = None
    detail: str | None = None


def _guarded(read: Callable[[], Entry | None], path: str, size: int) -> Entry | None:
    """`read()`, or an `unreadable` entry for `path` when it raises: one broken entry never
    costs its neighbours. A SourceError (the whole stream broke) still ends the source."""
    try:
        return read()
    except SourceError:
        raise
    except Exception as err:  # noqa: BLE001 - anything one entry raises is that entry's drop
        return Entry(path, size, reason=reasons.UNREADABLE, detail=error_detail(err))


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


def open_tar_stream(path: Path, limit: int) -> tarfile.TarFile:
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


class _TarScan:
    """What the first pass over a tar stream learns from the headers alone, in bounded memory:
    the common root of the members within the member limit, how many members can be read
    whole, and an entry for where reading stopped (None: the archive's end)."""

    def __init__(self) -> None:
        self.readable = 0
        self.stopped: Entry | None = None
        self._top: str | None = None
        self._one_root = True

    def add(self, member: tarfile.TarInfo, within_limit: bool) -> None:
        name = _clean_name(member.name)
        if within_limit and name and not member.isdir():
            top = name.split("/", 1)[0]
            self._one_root = self._one_root and "/" in name and self._top in (None, top)
            self._top = top
        self.readable += 1

    @property
    def root(self) -> str:
        return self._top + "/" if self._one_root and self._top is not None else ""


def _tar_scan(path: Path, limits: IngestConfig) -> _TarScan:
    """The first pass: member headers (their data is skipped, within the byte budget). A
    member counts once the header after it could be read: where the stream breaks, the last
    member seen is the one it broke in, and becomes the entry that says so."""
    scan = _TarScan()
    pending: tarfile.TarInfo | None = None
    try:
        with open_tar_stream(path, limits.max_archive_bytes) as tar:
            for index, member in enumerate(tar):
                tar.members.clear()  # stream mode keeps every header read: memory would grow with the archive
                if pending is not None:
                    scan.add(pending, index - 1 < limits.max_archive_members)
                pending = member
    except _ArchiveBudgetExceeded as err:
        if pending is None:
            raise SourceError(str(err)) from err
        scan.stopped = Entry(_clean_name(pending.name), pending.size, reason=reasons.ARCHIVE_LIMIT, detail=str(err))
        return scan
    except Exception as err:  # noqa: BLE001 - hostile headers raise more than TarError (ValueError, UnicodeError...)
        foreseen = isinstance(err, (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error))
        problem = str(err) if foreseen else error_detail(err)
        if pending is None:
            raise SourceError(f"not a readable tar archive: {problem}") from err
        detail = f"archive broken here: {problem}"
        scan.stopped = Entry(_clean_name(pending.name), pending.size, reason=reasons.UNREADABLE, detail=detail)
        return scan
    if pending is not None:
        scan.add(pending, scan.readable < limits.max_archive_members)
    return scan


# what `read_tar` holds to read an archive in one pass (its members' data, their headers); more is read in two
ONE_PASS_BYTES = 128 * 1024**2
ONE_PASS_MEMBERS = 20_000  # headers of ~0.5 KB each


def read_tar(path: Path, limits: IngestConfig, metadata: TarMetadata | None = None) -> Iterator[Entry]:
    """Every member in order, named from the archive's common root (`_TarScan`), which only
    the last header settles. Members past `max_archive_members` each get an `archive_limit`
    entry from their header alone; where the byte budget or a corruption stops the stream,
    one entry says where.

    One pass where the members' data and headers fit in ONE_PASS_BYTES, they number at most
    ONE_PASS_MEMBERS and `max_archive_members`, and the stream reads through cleanly
    (`_tar_in_one_pass`): the data is held until the root is known. Otherwise two, in memory
    that does not grow with the archive: headers first (the root, and where the stream ends),
    then every member.

    `metadata` (`origin.TarMetadata`), when given, is handed the members of a one-pass read,
    before the first entry comes out."""
    held = _tar_in_one_pass(path, limits, metadata)
    if held is not None:
        yield from held
        return
    scan = _tar_scan(path, limits)
    root, stopped = scan.root, scan.stopped
    if scan.readable:
        index = -1
        try:
            with open_tar_stream(path, limits.max_archive_bytes) as tar:
                for index, member in enumerate(tar):
                    tar.members.clear()
                    if index >= scan.readable:
                        break
                    past_limit = index >= limits.max_archive_members
                    entry = _member_entry(member, root, limits, past_limit, lambda m=member: member_data(tar, m))
                    if entry is not None:
                        yield entry
        except Exception as err:  # noqa: BLE001 - the first pass read this far; should the second not, say where
            if index + 1 < scan.readable:
                stopped = Entry(f"member {index + 1}", 0, reason=reasons.UNREADABLE,
                                detail=f"archive broken here: {error_detail(err)}")
    if stopped is not None:
        stopped.path = stopped.path.removeprefix(root) if root and stopped.path.startswith(root) else stopped.path
        yield stopped


def _tar_in_one_pass(path: Path, limits: IngestConfig, metadata: TarMetadata | None = None) -> list[Entry] | None:
    """`read_tar`'s entries from one pass over the stream, or None where it takes two: the
    members' data and headers over ONE_PASS_BYTES, more than ONE_PASS_MEMBERS or
    `max_archive_members` members, or anything but a clean read to the end (a broken stream,
    the byte budget, one member's failure), whose entries the two passes give. Each member
    goes through `_tar_entry` twice: during the pass without a root, to read its data exactly
    when the entry would (that depends on the header alone), and after it with the root,
    taking the data read. The entries are the two passes' (tests/stages/test_readers.py
    compares them)."""
    scan = _TarScan()
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    held = 0  # bytes of data and of headers (a pax or GNU long name can be large)
    try:
        if path.stat().st_size > ONE_PASS_BYTES:  # its data could not fit, however it is compressed
            return None
        with open_tar_stream(path, limits.max_archive_bytes) as tar:
            for index, member in enumerate(tar):
                tar.members.clear()
                if index >= min(limits.max_archive_members, ONE_PASS_MEMBERS):
                    return None
                scan.add(member, True)
                read: list[bytes | None] = []  # the data, where the entry read it
                entry = _tar_entry(member, "", limits, False,
                                   lambda m=member, r=read: r.append(member_data(tar, m)) or r[0])
                if entry is not None and entry.reason == reasons.UNREADABLE:  # the member's data broke
                    return None
                data = read[0] if read else None
                held += len(data or b"") + member.offset_data - member.offset
                if held > ONE_PASS_BYTES:
                    return None
                members.append((member, data))
    except Exception:  # noqa: BLE001 - whatever broke, the two passes say what and where
        return None
    if metadata is not None:
        for member, data in members:
            if metadata.add(member, lambda d=data: d):
                break
        metadata.finish()
    root = scan.root
    entries = (_member_entry(member, root, limits, False, lambda d=data: d) for member, data in members)
    return [entry for entry in entries if entry is not None]


def _member_entry(member: tarfile.TarInfo, root: str, limits: IngestConfig, past_limit: bool,
                  read: Callable[[], bytes | None]) -> Entry | None:
    """`_tar_entry`, with whatever it raises made the member's `unreadable` entry (`_guarded`)."""
    return _guarded(lambda: _tar_entry(member, root, limits, past_limit, read), _clean_name(member.name),
                    member.size)


def member_data(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    """A member's data, as long as its header says (None: not a file with data)."""
    extracted = tar.extractfile(member)
    return extracted.read() if extracted is not None else None


def _tar_entry(member: tarfile.TarInfo, root: str, limits: IngestConfig, past_limit: bool,
               read: Callable[[], bytes | None]) -> Entry | None:
    """The entry of one member named from `root`; `read()` gives its data, and is called
    only for a regular file within the limits."""
    name = _clean_name(member.name)
    path = name.removeprefix(root) if root and name.startswith(root) else name
    if _escapes(name):
        return Entry(name, member.size, reason=reasons.PATH_ESCAPE, detail=f"member name {member.name!r}")
    if member.isdir():
        return None
    if not path:
        return Entry(member.name, member.size, reason=reasons.UNREADABLE, detail="member without a name")
    if past_limit:
        return Entry(path, member.size, reason=reasons.ARCHIVE_LIMIT,
                     detail=f"past {limits.max_archive_members} members; not read")
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
        data = read()
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error, _ArchiveBudgetExceeded) as err:
        return Entry(path, member.size, reason=reasons.UNREADABLE, detail=f"archive broken here: {err}")
    if data is None:
        return Entry(path, member.size, reason=reasons.UNREADABLE, detail="member has no data")
    return Entry(path, member.size, data=data)


# --- zip ---------------------------------------------------------------------------------


def read_zip(path: Path, limits: IngestConfig) -> Iterator[Entry]:
    try:
        archive = _open_zip(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, struct.error) as err:
        raise SourceError(f"not a readable zip archive: {err}") from err
    mended = archive.fp if isinstance(archive.fp, _FlagMendedFile) else None  # ZipFile leaves a file it is given open
    try:
        with archive:
            names = [_clean_name(i.filename) for i in infos if not i.is_dir()]
            root = _common_root([n for n in names if n])
            budget = limits.max_archive_bytes
            for index, info in enumerate(infos):
                entry = _guarded(lambda i=info, n=index, b=budget: _zip_entry(archive, i, n, root, b, limits),
                                 _clean_name(info.filename), info.file_size)
                if entry is not None:
                    budget -= len(entry.data or b"")
                    yield entry
    finally:
        if mended is not None:
            mended.close()


def _open_zip(path: Path) -> zipfile.ZipFile:
    """The archive, its member names as their bytes say. A name flagged UTF-8 that is not
    (Python's zipfile then refuses the whole archive) is read with the flag cleared in the
    central directory and in its local header, and named by its bytes (surrogate-escaped, as
    a tar or directory name; `printable_name` writes it)."""
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError:
        pass
    handle = _FlagMendedFile(path)
    try:
        misnamed = handle.mend_flags()
        archive = zipfile.ZipFile(handle)
    except BaseException:
        handle.close()
        raise
    for info, raw in zip(archive.infolist(), misnamed, strict=False):
        if raw is not None:
            info.filename = raw.decode("utf-8", "surrogateescape")
    return archive


class _FlagMendedFile(io.RawIOBase):
    """The archive's bytes with chosen bytes replaced (the UTF-8 flags of misnamed members)."""

    def __init__(self, path: Path):
        self._file = open(path, "rb")  # closed with this object: by read_zip, or by _open_zip on failure
        self._offsets: list[int] = []
        self._bytes: list[int] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        start = self._file.tell()
        count = self._file.readinto(buffer)
        first = bisect.bisect_left(self._offsets, start)
        for at, value in zip(self._offsets[first:], self._bytes[first:], strict=True):
            if at >= start + count:
                break
            buffer[at - start] = value
        return count

    def close(self) -> None:
        self._file.close()
        super().close()

    def _patch_flags(self, offset: int) -> None:
        """Clear the UTF-8 bit (0x800) of the 16-bit flags at `offset`, if set."""
        self._file.seek(offset)
        field = self._file.read(2)
        if len(field) == 2 and field[1] & 0x08:
            position = bisect.bisect_left(self._offsets, offset + 1)
            self._offsets.insert(position, offset + 1)
            self._bytes.insert(position, field[1] & ~0x08)

    def mend_flags(self) -> list[bytes | None]:
        """Walk the central directory (zipfile's own layout constants); per member, its raw
        name where that is not UTF-8, else None."""
        end = zipfile._EndRecData(self._file)
        if not end:
            raise zipfile.BadZipFile("File is not a zip file")
        size, offset = end[zipfile._ECD_SIZE], end[zipfile._ECD_OFFSET]
        concat = end[zipfile._ECD_LOCATION] - size - offset
        if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
            concat -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
        self._file.seek(offset + concat)
        directory = self._file.read(size)
        names: list[bytes | None] = []
        at = 0
        while at + zipfile.sizeCentralDir <= len(directory):
            record = struct.unpack(zipfile.structCentralDir, directory[at: at + zipfile.sizeCentralDir])
            if record[zipfile._CD_SIGNATURE] != zipfile.stringCentralDir:
                break
            name_end = at + zipfile.sizeCentralDir + record[zipfile._CD_FILENAME_LENGTH]
            raw = directory[at + zipfile.sizeCentralDir: name_end]
            try:
                raw.decode("utf-8")
                names.append(None)
            except UnicodeDecodeError:
                names.append(raw)
                self._patch_flags(offset + concat + at + 8)  # flags: after signature and versions
                self._patch_flags(record[zipfile._CD_LOCAL_HEADER_OFFSET] + concat + 6)
            at = name_end + record[zipfile._CD_EXTRA_FIELD_LENGTH] + record[zipfile._CD_COMMENT_LENGTH]
        self._file.seek(0)
        return names


def _zip_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, index: int, root: str, budget: int, limits: IngestConfig
) -> Entry | None:
    name = _clean_name(info.filename)
    path = name.removeprefix(root) if root and name.startswith(root) else name
    size = info.file_size
    if _escapes(name):
        return Entry(name, size, reason=reasons.PATH_ESCAPE, detail=f"member name {info.filename!r}")
    if info.is_dir():
        return None
    if not path:
        return Entry(info.filename, size, reason=reasons.UNREADABLE, detail="member without a name")
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


def read_archive(path: Path, limits: IngestConfig, metadata: TarMetadata | None = None) -> Iterator[Entry]:
    """A zip's or a tar's entries; `metadata`: see `read_tar`."""
    if not path.is_file():
        raise SourceError(f"archive {path} does not exist")
    if str(path).lower().endswith(".zip"):
        return read_zip(path, limits)
    return read_tar(path, limits, metadata)


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
            try:
                is_dir = child.is_dir(follow_symlinks=False)
            except OSError as err:
                yield Entry(rel, 0, reason=reasons.UNREADABLE, detail=err.strerror)
                continue
            if is_dir:
                if child.name not in VCS_DIRS and not top_level_only:
                    subdirs.append(rel)
                continue
            if top_level_only and is_archive(child.name):
                continue  # archives at a collection's top level are repositories of their own
            yield _guarded(lambda r=rel: read_path_entry(root, real_root, r, limits), rel, 0)
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
        return _git(repo, "config", "--get", "remote.origin.url").decode("utf-8", "replace").strip() or None
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
            target = next(blobs)  # read whatever happens: the stream of blobs stays in step
            yield _guarded(lambda p=path, t=target: _link_entry(p, t.decode("utf-8", "surrogateescape")), path, 0)
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


# --- datasets ----------------------------------------------------------------------------


@dataclass(slots=True)
class DatasetRow:
    """One row of a file-level dataset: the repository it names, its file (an entry with a
    reason when the row is not a usable record) and the repository's metadata it carries."""

    repo: str
    entry: Entry
    url: str | None = None
    commit: str | None = None
    stars: int | None = None
    license: str | None = None


_MISSING = object()  # a field the row does not have (JSON Lines; a Parquet file lacks the column for every row)


def read_dataset(path: Path, limits: IngestConfig, stop: int | None = None, start: int = 0
                 ) -> Iterator[DatasetRow | None]:
    """Each record of a dataset file (Parquet, JSON Lines) in order, then None for each record
    past the first `stop`: those are counted, not parsed (a chunk needs only its window, the
    rows before it for their repositories' metadata, and the unit's length). A Parquet row
    before `start` comes without its content (`unreadable`, "content is null"): it is outside
    the chunk's window, and only its repository's metadata is used.

    A row that is not a usable record is still one record, dropped with a reason. Where its
    `repo` and `path` are non-empty strings it keeps them; otherwise it is filed under the
    dataset file's name as repository and `line:N` (JSON Lines, N counted from 1 as editors
    and `sed -n Np` count) or `row:N` (Parquet, also from 1) as path, and `detail` starts with
    the same line or row. Blank lines of a JSON Lines file are no records."""
    if path.suffix.lower() == ".parquet":
        return _parquet_rows(path, limits, start, stop)
    return _jsonl_rows(path, limits, stop)


def _jsonl_rows(path: Path, limits: IngestConfig, stop: int | None) -> Iterator[DatasetRow | None]:
    """Line by line, each line held once and bounded by `max_file_bytes`: a longer line is a
    `too_large` record (its length counted while it is skipped, never parsed)."""
    label = printable_name(path.name)
    try:
        handle = open(path, "rb")
    except OSError as err:
        raise SourceError(f"dataset {label} is not readable: {err.strerror}") from err
    with handle:
        records = 0
        for number, line, size in _jsonl_lines(handle, limits.max_file_bytes):
            if line is not None and not line.strip():
                continue  # a blank line
            records += 1
            if stop is not None and records > stop:
                yield None
                continue
            yield _guarded_row(lambda n=number, li=line, si=size: _jsonl_row(label, n, li, si, limits),
                               label, f"line:{number}", size)


def _jsonl_lines(handle: io.BufferedReader, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, its bytes without the newline, its length); None for the bytes of a line
    of `limit` bytes or more, which is skipped, not held."""
    number = 0
    while line := handle.readline(limit + 1):
        number += 1
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]  # a UTF-8 byte-order mark, as Windows tools write
        complete = line.endswith(b"\n")
        body = line[:-1] if complete else line
        size = len(body)
        if not complete and len(line) > limit:  # read on to the line's end, counting
            while chunk := handle.readline(1 << 20):
                size += len(chunk) - chunk.endswith(b"\n")
                if chunk.endswith(b"\n"):
                    break
        yield number, (body if size < limit else None), size


def _jsonl_row(label: str, number: int, line: bytes | None, size: int, limits: IngestConfig) -> DatasetRow:
    locator, where = f"line:{number}", f"line {number}"
    if line is None:
        return DatasetRow(label, Entry(locator, size, reason=reasons.TOO_LARGE,
                                       detail=f"{where}: {size} bytes, at or over ingest.max_file_bytes; not parsed"))
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as err:
        return _bad_row(label, locator, size, f"{where}: not UTF-8 (byte {err.start + 1})")
    except (ValueError, RecursionError) as err:  # int digits over Python's limit are a ValueError too
        return _bad_row(label, locator, size, f"{where}: not JSON ({error_detail(err)})")
    if not isinstance(value, dict):
        return _bad_row(label, locator, size, f"{where}: {_kind(value)}, not a JSON object")
    return _dataset_row(label, locator, where, value, size, binary_content=False)


def _parquet_rows(path: Path, limits: IngestConfig, start: int, stop: int | None) -> Iterator[DatasetRow | None]:
    """The rows before `start` are read without their content (a chunk needs only their
    repositories' metadata), row groups wholly past `stop` not at all (the file's metadata
    counts them): a chunk of a big dataset file reads its own window's content, not the file's."""
    label = printable_name(path.name)
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        missing = {"repo", "path", "content"} - set(names)
        if missing:
            raise SourceError(f"dataset {label} lacks the columns {sorted(missing)}")
        columns_read = ("repo", "path", "content", "url", "commit", "stars", "license")
        wanted = [name for name in columns_read if name in names]
        records = 0
        for group in range(parquet.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if stop is not None and records >= stop:
                yield from (None for _ in range(rows))  # past the window: counted, not read
                records += rows
                continue
            before = records + rows <= start  # wholly before the window: metadata only
            columns = [name for name in wanted if name != "content"] if before else wanted
            for batch in parquet.iter_batches(batch_size=1024, row_groups=[group], columns=columns):
                values = batch.to_pydict()
                for index in range(batch.num_rows):
                    records += 1
                    if stop is not None and records > stop:
                        yield None
                        continue
                    fields = {name: column[index] for name, column in values.items()}
                    if before:
                        fields["content"] = None  # not read: the row is outside the window
                    yield _guarded_row(lambda f=fields, n=records: _dataset_row(label, f"row:{n}", f"row {n}", f, 0,
                                                                                True), label, f"row:{records}", 0)
    except (pa.ArrowException, OSError) as err:
        raise SourceError(f"dataset {label} is not readable: {error_detail(err)}") from err


def _guarded_row(read: Callable[[], DatasetRow], label: str, locator: str, size: int) -> DatasetRow:
    try:
        return read()
    except Exception as err:  # noqa: BLE001 - one row's failure is that row's drop
        return DatasetRow(label, Entry(locator, size, reason=reasons.UNREADABLE, detail=error_detail(err)))


def _bad_row(label: str, locator: str, size: int, detail: str) -> DatasetRow:
    return DatasetRow(label, Entry(locator, size, reason=BAD_RECORD, detail=detail))


def _dataset_row(label: str, locator: str, where: str, fields: dict[str, Any], size: int,
                 binary_content: bool) -> DatasetRow:
    """The checks every dataset row gets, JSON or Parquet: `repo` and `path` non-empty strings,
    `content` a string (or bytes, in Parquet); null content is `unreadable`, as before."""
    repo, path = fields.get("repo", _MISSING), fields.get("path", _MISSING)
    problems = [p for p in (_name_problem("repo", repo), _name_problem("path", path)) if p]
    if problems:
        return _bad_row(label, locator, size, f"{where}: {'; '.join(problems)}")
    repo, path = printable_name(repo), printable_name(path)
    content = fields.get("content", _MISSING)
    if isinstance(content, str):
        data = content.encode("utf-8", "surrogatepass")  # a JSON `\ud800` escape: bytes decode_text judges
        entry = Entry(path, len(data), data=data)
    elif binary_content and isinstance(content, bytes):
        entry = Entry(path, len(content), data=content)
    elif content is None:
        entry = Entry(path, 0, reason=reasons.UNREADABLE, detail="content is null")
    else:
        shown = "missing" if content is _MISSING else f"{_kind(content)}, not a string"
        entry = Entry(path, size, reason=BAD_RECORD, detail=f"{where}: `content` is {shown}")
    return DatasetRow(repo, entry, url=_text(fields.get("url")), commit=_text(fields.get("commit")),
                      stars=_count(fields.get("stars")), license=_text(fields.get("license")))


def _name_problem(field: str, value: Any) -> str | None:
    if value is _MISSING:
        return f"`{field}` is missing"
    if value is None:
        return f"`{field}` is null"
    if not isinstance(value, str):
        return f"`{field}` is {_kind(value)}, not a string"
    return None if value else f"`{field}` is empty"


def _kind(value: Any) -> str:
    """A value's kind in JSON's words."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    kinds = {str: "a string", list: "an array", dict: "an object", bytes: "bytes", type(None): "null"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _text(value: Any) -> str | None:
    """Optional metadata (url, commit, license): a string, else ignored."""
    return printable_name(value) if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    """Stars: a whole number (or its digits as a string) that fits int64, else unknown."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    return None
