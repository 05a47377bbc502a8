"""Where a build's outputs and shared license cache live: a local folder, or an object store
URL (`s3://bucket/prefix`, `gs://…`, `abfs://…`, `hdfs://…`) read and written through
pyarrow's filesystems (never DuckDB's httpfs, which downloads an extension at run time).

A `Store` names objects relative to its root. Writing an object is one PUT: an object store
shows a reader the whole object or nothing (pyarrow's multipart upload completes at close),
and a local folder gets the same from a temporary name and a rename. Object stores have no
rename, so nothing here depends on one: what must change together is ordered instead, and a
small commit record written last says what holds (pipeline/outdir.py).

An S3 endpoint and credentials come from the usual AWS settings (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, …) or the URL's query (`?endpoint_override=host:port&scheme=http`);
the URL is recorded and printed without its query and credentials.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from corpus_core.errors import ConfigError
from corpus_core.urls import scrub_credentials

OBJECT_STORES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs")


def is_url(location: str | Path) -> bool:
    """An object store URL (a scheme pyarrow has a filesystem for), not a local path."""
    scheme, sep, _ = str(location).partition("://")
    return bool(sep) and scheme.lower() in OBJECT_STORES


def shown(location: str | Path) -> str:
    """A location as recorded and printed: no query, no `key:secret@` (S3, GCS), no
    `:password` (`abfs://container@account…` keeps its container, `hdfs://user@host` its user)."""
    location = str(location).partition("?")[0]
    if not is_url(location):
        return scrub_credentials(location) or ""
    scheme, _, rest = location.partition("://")
    # the userinfo ends at the first `@` (an `@` of a key is percent-encoded): a raw `/` in a secret is common
    userinfo, at, host = rest.partition("@")
    if not at or not (":" in userinfo or "/" not in userinfo):
        return location  # no `@`, or one in the path
    user = "" if scheme.lower() in ("s3", "gs", "gcs") else userinfo.partition(":")[0]
    return f"{scheme}://{user + '@' if user else ''}{host}"


def identity(location: str | Path) -> str:
    """What tells two locations apart, without keys: `shown` and the query (an S3 endpoint)."""
    query = str(location).partition("?")[2]
    return shown(location) + (f"?{query}" if query else "")


def _scrubbed(message: str) -> str:
    """An error's text without the URL's keys or query, which pyarrow's messages repeat."""
    message = re.sub(r"://[^\s'\"]*@", "://***@", message)
    return re.sub(r"\?[^\s'\"]*", "?…", message)


@dataclass(frozen=True)
class Entry:
    name: str  # relative to the store's root, `/`-separated
    is_file: bool
    mtime_ns: int | None  # the store's own clock (an object's last write)


class Store:
    """Named objects under a root folder or prefix."""

    def __init__(self, location: str | Path):
        location = str(location)
        self.location = shown(location)
        self.remote = is_url(location)
        if "://" in location and not self.remote:
            raise ConfigError(f"{self.location}: not a local path, nor an object store pyarrow can open "
                              f"({', '.join(s + '://' for s in OBJECT_STORES)})")
        if self.remote:
            if "/" not in self.location.partition("://")[2].strip("/"):
                # a bucket's top: a build's output, its lock and its stale-file deletion need a prefix of their own
                raise ConfigError(f"{self.location}: name a folder inside the bucket (s3://bucket/corpus), not the "
                                  "bucket")
            try:
                self.fs, root = pafs.FileSystem.from_uri(location)
            except (pa.ArrowException, OSError, ValueError) as err:
                reason = _scrubbed(str(err))
                hint = " (a key holding `/` or `@` must be percent-encoded)" if "parse" in reason.lower() else ""
                raise ConfigError(f"cannot open {self.location}: {reason}{hint}") from None
            self.root = root.rstrip("/")
        else:
            self.fs = pafs.LocalFileSystem()
            self.root = str(Path(location).resolve()).rstrip("/") or "/"

    def path(self, name: str) -> str:
        return posixpath.join(self.root, name) if name else self.root

    def read_bytes(self, name: str) -> bytes | None:
        """The object's bytes; None when there is none."""
        try:
            with self.fs.open_input_stream(self.path(name)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            try:
                if self.info(name).type == pafs.FileType.NotFound:
                    return None
            except OSError:
                pass
            raise OSError(f"cannot read {self.location}/{name}: {_scrubbed(str(err))}") from None

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write the whole object at once: no reader sees a part of it."""
        if self.remote:
            with self.fs.open_output_stream(self.path(name)) as stream:
                stream.write(data)
            return
        target = Path(self.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, target)

    def upload(self, source: Path, name: str) -> None:
        """Copy a local file to the object `name` (a multipart upload for a big one: the object
        appears when the upload completes, whole). Only an object store's: a folder's OutDir moves."""
        pafs.copy_files(str(source), self.path(name), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    def delete(self, name: str) -> None:
        try:
            self.fs.delete_file(self.path(name))
        except FileNotFoundError:
            pass

    def info(self, name: str) -> pafs.FileInfo:
        return self.fs.get_file_info(self.path(name))

    def list(self, prefix: str = "", recursive: bool = False) -> list[Entry]:
        """What lies under `prefix` (the root when empty), by name."""
        selector = pafs.FileSelector(self.path(prefix), recursive=recursive, allow_not_found=True)
        entries = []
        for info in self.fs.get_file_info(selector):
            name = posixpath.relpath(info.path, self.root)
            entries.append(Entry(name, info.type == pafs.FileType.File, info.mtime_ns))
        return sorted(entries, key=lambda entry: entry.name)
