"""Who owns a repository: the account its source comes from, for opt-out by owner and lookup.

The repository's name says where the build read it (`pypi/six`, `npm/left-pad`, a folder's
name), not who owns it: an opt-out by owner "npm" must not remove every npm package. So the
owner comes from the source's real origin, before any of its files is read (the opt-out
filter, the first file stage, needs it for the unit's first file):

  git URL, local git clone   the remote's account: `github.com/psf/requests` -> `psf`, on any
                             host (a git remote is a repository wherever it is)
  package (PyPI sdist, npm   the repository URL in its metadata, on a code host
  tarball, any archive or    (urls.CODE_HOSTS): PKG-INFO's `Project-URL` labelled as the
  folder that holds one)     source, else its `Home-page`, else any `Project-URL`;
                             package.json's `repository`, else `homepage`, else `bugs`
  dataset row                its `url`, else its `repo` when that is `owner/name` (the form
                             The Stack's rows use) or `host/owner/name`

None where the origin names no owner: a local folder without metadata, a package whose
URLs are all off the code hosts (its home page on its own site), a `file://` remote. Such a
repository is opted out by its name (`--repo pypi/six`), never by an owner it does not have.
The metadata read here is one member of at most METADATA_BYTES at the archive's top (sdists:
`name-1.0/PKG-INFO`, npm: `package/package.json`); reading it never fails a source: a
broken or missing file is no owner.
"""

from __future__ import annotations

import email.parser
import json
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpus_core.urls import ACCOUNT, repository_owner
from stages.readers import member_data, open_tar_stream

METADATA_FILES = ("PKG-INFO", "package.json")
METADATA_BYTES = 1 << 20
MAX_MEMBERS_SCANNED = 10_000  # an sdist's PKG-INFO comes early; a top-level file past these is none
# PKG-INFO's Project-URL labels that name the repository (compared lowercased, without spaces, dashes and underscores)
SOURCE_LABELS = ("source", "sourcecode", "repository", "code", "github", "gitlab", "homepage", "home")


def owner_of_git(remote_url: str | None) -> str | None:
    return repository_owner(remote_url, any_host=True)


def owner_of_dataset_row(repo: str, url: str | None) -> str | None:
    """A dataset row's owner: its repository URL's, else its name's when that is `owner/name`
    or `host/owner/name`."""
    if url:
        return repository_owner(url, any_host=True)
    parts = repo.split("/")
    if len(parts) == 3 and "." in parts[0]:
        parts = parts[1:]
    return parts[0] if len(parts) == 2 and parts[1] and ACCOUNT.match(parts[0]) else None


def owner_of_metadata(name: str, data: bytes) -> str | None:
    """The owner named by a package's metadata file (`PKG-INFO` or `package.json`)."""
    for url in (_pkg_info_urls(data) if name == "PKG-INFO" else _package_json_urls(data)):
        owner = repository_owner(url, any_host=False)
        if owner is not None:
            return owner
    return None


def _pkg_info_urls(data: bytes) -> list[str]:
    """Candidate URLs in order: Project-URLs labelled as the source, Home-page, Download-URL,
    then every other Project-URL (a bug tracker on GitHub names the owner too)."""
    headers = email.parser.BytesHeaderParser().parsebytes(data)
    labelled: list[tuple[str, str]] = []
    for value in headers.get_all("Project-URL") or []:
        label, _, url = str(value).partition(",")
        labelled.append((label.strip().lower().replace(" ", "").replace("-", "").replace("_", ""), url.strip()))
    first = [url for label, url in labelled if label in SOURCE_LABELS]
    plain = [str(headers.get(name, "")).strip() for name in ("Home-page", "Download-URL")]
    return [url for url in first + plain + [url for _, url in labelled] if url and url.upper() != "UNKNOWN"]


def _package_json_urls(data: bytes) -> list[str]:
    """`repository` (a string, `{url}`, or npm's `owner/name` and `github:owner/name`
    shorthands), `homepage`, `bugs`."""
    try:
        package = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(package, dict):
        return []
    urls = []
    for key in ("repository", "homepage", "bugs"):
        value: Any = package.get(key)
        if isinstance(value, dict):
            value = value.get("url")
        if not isinstance(value, str):
            continue
        if key == "repository" and value.count("/") == 1 and ":" not in value:
            value = "github:" + value  # npm reads a bare owner/name as GitHub's
        urls.append(value)
    return urls


def owner_of_archive(path: Path, max_bytes: int) -> str | None:
    """The owner named by the metadata file at the top of an archive (under its one root
    folder, or at its root), if any; reading at most `max_bytes` uncompressed (ingest's
    archive budget: a bomb costs no more here than it does to ingest)."""
    try:
        found = _zip_metadata(path) if str(path).lower().endswith(".zip") else _tar_metadata(path, max_bytes)
    except Exception:  # noqa: BLE001 - a broken archive is no owner; ingest reports it when it reads the files
        return None
    return owner_of_metadata(*found) if found else None


def owner_of_directory(root: Path) -> str | None:
    """The owner named by a metadata file at the folder's root (a regular file, never a link)."""
    for name in METADATA_FILES:
        try:
            fd = os.open(root / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                continue
            owner = owner_of_metadata(name, handle.read(METADATA_BYTES))
        if owner is not None:
            return owner
    return None


def _top_metadata_name(member_name: str, root: str | None) -> str | None:
    """`PKG-INFO` or `package.json` at the archive's root, or in its root folder: the folder
    its first member is in (sdists and npm tarballs hold everything under one), never another
    folder's (`docs/package.json`, a vendored dependency's)."""
    parts = [p for p in member_name.split("/") if p not in ("", ".")]
    if parts and parts[-1] in METADATA_FILES and (len(parts) == 1 or (len(parts) == 2 and parts[0] == root)):
        return parts[-1]
    return None


def _root_of(member_name: str) -> str | None:
    parts = [p for p in member_name.split("/") if p not in ("", ".")]
    return parts[0] if len(parts) > 1 or member_name.rstrip("/") != member_name else None


class TarMetadata:
    """The search for a tar's metadata file over its members in order: the first
    `_top_metadata_name` among the first MAX_MEMBERS_SCANNED that is a file of at most
    METADATA_BYTES. `owner_of_archive` reads the archive for it; a reader that holds the
    members already (`readers.read_tar` in one pass) hands them here instead, and calls
    `finish` once it has handed them all, so the archive is not read again for its owner
    (numpy's sdist has its PKG-INFO last: about 1 s)."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.seen = 0
        self.found: tuple[str, bytes] | None = None  # (file name, its data)
        self.over = False  # the search is over: `found` is its answer
        self.unread = False  # the file was there, but what handed it over had not read it

    def add(self, member: tarfile.TarInfo, read: Callable[[], bytes | None]) -> bool:
        """The next member, and how to read its data; True once the search is over."""
        if self.over or self.seen >= MAX_MEMBERS_SCANNED:
            self.over = True
            return True
        if self.seen == 0:
            self.root = _root_of(member.name + ("/" if member.isdir() else ""))
        self.seen += 1
        name = _top_metadata_name(member.name, self.root)
        if name is not None and member.isfile() and member.size <= METADATA_BYTES:
            data = read()
            self.found = None if data is None else (name, data)
            self.unread, self.over = data is None, True
        return self.over

    def finish(self) -> None:
        """Every member was handed over."""
        self.over = True

    def owner(self, path: Path, max_bytes: int) -> str | None:
        """The owner the metadata file handed over names; where none gave an answer (the search
        not over, the file's data unread), `owner_of_archive`'s."""
        if not self.over or self.unread:
            return owner_of_archive(path, max_bytes)
        return owner_of_metadata(*self.found) if self.found else None


def _tar_metadata(path: Path, max_bytes: int) -> tuple[str, bytes] | None:
    search = TarMetadata()
    with open_tar_stream(path, max_bytes) as tar:
        for member in tar:
            tar.members.clear()
            if search.add(member, lambda m=member: member_data(tar, m)):  # a file of at most METADATA_BYTES
                break
    return search.found


def _zip_metadata(path: Path) -> tuple[str, bytes] | None:
    with zipfile.ZipFile(path) as archive:  # a zip whose names its flags misstate is read, by ingest, without an owner
        infos = archive.infolist()[:MAX_MEMBERS_SCANNED]
        root = _root_of(infos[0].filename) if infos else None
        for info in infos:
            name = _top_metadata_name(info.filename, root)
            # a member's stated size bounds what is read: `read(METADATA_BYTES)` stops a lie
            if name is not None and not info.is_dir() and info.file_size <= METADATA_BYTES:
                with archive.open(info) as handle:
                    return name, handle.read(METADATA_BYTES)
    return None
