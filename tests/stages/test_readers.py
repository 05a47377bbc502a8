"""Ingest reasons, one test each, on archives, directories and git trees made here."""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import pytest

from corpus_core import reasons
from corpus_core.records import SourceSpec
from stages.ingest import Ingest, IngestConfig, decode_text
from stages.readers import git_head, read_archive, read_directory, read_git
from stages.sources import Unit
from tests.conftest import PYTHON_FILE, git, make_git_repo, make_tar, make_zip, write_tree

LIMITS = IngestConfig(max_file_bytes=1000)


def by_path(entries) -> dict:
    return {e.path: e for e in entries}


def ingest_unit(kind: str, location: Path, repo: str = "r", limits: IngestConfig = LIMITS, tmp: Path | None = None):
    stage = Ingest(limits, cache_dir=tmp or location.parent)
    unit = Unit("k", kind, str(location), repo, SourceSpec(str(location)))
    return {r.path: r for r in stage.run(unit)}, stage


def test_tar_strips_the_common_root_and_reads_files(tmp_path):
    tar = make_tar(tmp_path / "pkg-1.0.tar.gz", [
        ("pkg-1.0", None, {"type": b"5"}),
        ("pkg-1.0/a.py", PYTHON_FILE, {}),
        ("pkg-1.0/sub/b.txt", "hello\n", {}),
    ])
    entries = by_path(read_archive(tar, LIMITS))
    assert set(entries) == {"a.py", "sub/b.txt"}
    assert entries["a.py"].data == PYTHON_FILE.encode()


def test_tar_zip_slip_member_is_path_escape(tmp_path):
    tar = make_tar(tmp_path / "evil.tar.gz", [("../../etc/evil.sh", "rm -rf /\n", {}), ("ok.txt", "fine\n", {}),
                                              ("/abs/path.txt", "x\n", {})])
    entries = by_path(read_archive(tar, LIMITS))
    assert entries["../../etc/evil.sh"].reason == reasons.PATH_ESCAPE
    assert entries["/abs/path.txt"].reason == reasons.PATH_ESCAPE
    assert entries["ok.txt"].data == b"fine\n"
    assert not (tmp_path.parent.parent / "etc" / "evil.sh").exists()


def test_zip_slip_member_is_path_escape(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"../evil.py": "x = 1\n", "good.py": "y = 2\n"})
    entries = by_path(read_archive(archive, LIMITS))
    assert entries["../evil.py"].reason == reasons.PATH_ESCAPE
    assert entries["good.py"].data == b"y = 2\n"


def test_tar_links_inside_and_outside(tmp_path):
    tar = make_tar(tmp_path / "links.tar", [
        ("real.py", PYTHON_FILE, {}),
        ("inside.py", None, {"type": b"2", "linkname": "real.py"}),
        ("outside", None, {"type": b"2", "linkname": "../../../etc/passwd"}),
        ("hard.py", None, {"type": b"1", "linkname": "real.py"}),
    ], mode="w")
    entries = by_path(read_archive(tar, LIMITS))
    assert entries["inside.py"].reason == reasons.SYMLINK
    assert entries["outside"].reason == reasons.LINK_ESCAPE
    assert entries["hard.py"].reason == reasons.SYMLINK
    assert entries["real.py"].data == PYTHON_FILE.encode()


def test_zip_bomb_ratio_is_archive_limit(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.txt", b"\0" * (8 << 20))
    limits = IngestConfig(max_file_bytes=16 << 20, max_compression_ratio=100)
    (entry,) = read_archive(path, limits)
    assert entry.reason == reasons.ARCHIVE_LIMIT and "ratio" in entry.detail
    assert entry.data is None


def test_tar_byte_budget_stops_a_gzip_bomb(tmp_path):
    tar = make_tar(tmp_path / "bomb.tar.gz", [("a.txt", "a" * 500, {}), ("big.bin", b"\0" * 4_000_000, {}),
                                              ("after.txt", "never read\n", {})])
    limits = IngestConfig(max_file_bytes=10_000_000, max_archive_bytes=1_000_000)
    entries = by_path(read_archive(tar, limits))
    assert entries["a.txt"].data == b"a" * 500
    assert entries["big.bin"].reason == reasons.ARCHIVE_LIMIT
    assert "after.txt" not in entries  # past the budget nothing is read, and the row above says so


def test_tar_member_count_limit(tmp_path):
    tar = make_tar(tmp_path / "many.tar", [(f"f{i}.txt", "x\n", {}) for i in range(5)], mode="w")
    entries = list(read_archive(tar, IngestConfig(max_archive_members=3)))
    assert [e.path for e in entries] == ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt"]
    assert [e.reason for e in entries[3:]] == [reasons.ARCHIVE_LIMIT] * 2  # each past the limit: its own row


def test_too_large_file_in_each_reader(tmp_path):
    big = "x" * 2000
    tar = make_tar(tmp_path / "t.tar.gz", [("big.txt", big, {}), ("small.txt", "s\n", {})])
    archive = make_zip(tmp_path / "z.zip", {"big.txt": big, "small.txt": "s\n"})
    directory = write_tree(tmp_path / "d", {"big.txt": big, "small.txt": "s\n"})
    for entries in (read_archive(tar, LIMITS), read_archive(archive, LIMITS), read_directory(directory, LIMITS)):
        found = by_path(entries)
        assert found["big.txt"].reason == reasons.TOO_LARGE and found["big.txt"].data is None
        assert found["big.txt"].size == 2000
        assert found["small.txt"].data == b"s\n"


def test_corrupt_archive_is_source_unreadable(tmp_path):
    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes(b"\x1f\x8bthis is not gzip at all")
    records, stage = ingest_unit("archive", bad, tmp=tmp_path)
    assert list(records) == [""]
    assert records[""].reason == reasons.SOURCE_UNREADABLE
    assert stage.repos["r"].error


def test_truncated_archive_keeps_what_was_read(tmp_path):
    tar = make_tar(tmp_path / "t.tar.gz", [("a.txt", "alpha\n" * 50, {}), ("b.txt", os.urandom(20000).hex(), {})])
    data = gzip.decompress(tar.read_bytes())
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(gzip.compress(data[: len(data) // 2]))
    entries = by_path(read_archive(truncated, IngestConfig(max_file_bytes=10**6)))
    assert entries["a.txt"].data == b"alpha\n" * 50
    assert entries["b.txt"].reason == reasons.UNREADABLE


def test_directory_symlink_out_of_the_repository(tmp_path):
    outside = write_tree(tmp_path / "secret", {"key.txt": "do not read\n"})
    repo = write_tree(tmp_path / "repo", {"a.py": PYTHON_FILE})
    os.symlink(outside / "key.txt", repo / "leak.txt")
    os.symlink("a.py", repo / "alias.py")
    os.symlink(outside, repo / "dirlink")
    entries = by_path(read_directory(repo, LIMITS))
    assert entries["leak.txt"].reason == reasons.LINK_ESCAPE and entries["leak.txt"].data is None
    assert entries["dirlink"].reason == reasons.LINK_ESCAPE
    assert entries["alias.py"].reason == reasons.SYMLINK
    assert entries["a.py"].data == PYTHON_FILE.encode()


def test_directory_fifo_is_special_file(tmp_path):
    repo = write_tree(tmp_path / "repo", {"a.py": PYTHON_FILE})
    os.mkfifo(repo / "pipe")
    assert by_path(read_directory(repo, LIMITS))["pipe"].reason == reasons.SPECIAL_FILE


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_directory_unreadable_file(tmp_path):
    repo = write_tree(tmp_path / "repo", {"locked.py": PYTHON_FILE})
    (repo / "locked.py").chmod(0)
    assert by_path(read_directory(repo, LIMITS))["locked.py"].reason == reasons.UNREADABLE


def test_git_repository_is_read_at_head_not_the_work_tree(tmp_path):
    repo = make_git_repo(tmp_path / "g", [{"a.py": "v = 1\n", "old.txt": "old\n"}, {"a.py": "v = 2\n"}])
    git(repo, "rm", "-q", "old.txt")
    git(repo, "commit", "-q", "-m", "drop old")
    (repo / "a.py").write_text("uncommitted = 3\n")
    (repo / "untracked.py").write_text("x = 4\n")
    entries = by_path(read_git(repo, LIMITS, git_head(repo)))
    assert set(entries) == {"a.py"}
    assert entries["a.py"].data == b"v = 2\n"


def test_git_links_and_large_blobs(tmp_path):
    repo = make_git_repo(tmp_path / "g", [{"a.py": PYTHON_FILE, "big.txt": "y" * 5000}])
    os.symlink("../../outside", repo / "escape")
    os.symlink("a.py", repo / "alias.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "links")
    entries = by_path(read_git(repo, LIMITS, git_head(repo)))
    assert entries["escape"].reason == reasons.LINK_ESCAPE
    assert entries["alias.py"].reason == reasons.SYMLINK
    assert entries["big.txt"].reason == reasons.TOO_LARGE
    assert entries["a.py"].data == PYTHON_FILE.encode()


def test_broken_git_repository_is_source_unreadable(tmp_path):
    repo = tmp_path / "broken"
    (repo / ".git").mkdir(parents=True)
    records, stage = ingest_unit("git", repo, tmp=tmp_path)
    assert records[""].reason == reasons.SOURCE_UNREADABLE
    assert "git" in stage.repos["r"].error


def test_binary_and_encodings():
    assert decode_text(b"ab\x00cd", 0.2) == (None, reasons.BINARY)
    assert decode_text("héllo wörld".encode("utf-16"), 0.2) == ("héllo wörld", "utf-16")
    text = (
        "# Ce module calcule les coûts de l'élève. Le résultat dépend de la période choisie.\n"
        "def coût_total(élèves):\n    return sum(é.coût for é in élèves)\n"
    ) * 3
    assert decode_text(text.encode("latin-1"), 0.2) == (text, "cp1252")
    assert decode_text(bytes(range(1, 256)) * 4, 0.2) == (None, reasons.NOT_TEXT)


def test_ingest_records_every_entry_with_hash_and_reason(tmp_path):
    repo = write_tree(tmp_path / "repo", {"a.py": PYTHON_FILE, "b.bin": b"\x00\x01\x02", "big.txt": "z" * 5000})
    records, stage = ingest_unit("directory", repo, tmp=tmp_path)
    assert records["a.py"].kept and records["a.py"].content == PYTHON_FILE and records["a.py"].encoding == "utf-8"
    assert records["b.bin"].reason == reasons.BINARY and records["b.bin"].sha256
    assert records["big.txt"].reason == reasons.TOO_LARGE and records["big.txt"].sha256 is None
    assert stage.stats.files_in == 3 and stage.stats.kept == 1
    assert dict(stage.stats.dropped) == {reasons.BINARY: 1, reasons.TOO_LARGE: 1}


def test_file_gone_between_listing_and_reading_is_unreadable(tmp_path):
    from stages.readers import read_path_entry

    entry = read_path_entry(tmp_path, tmp_path.resolve(), "vanished.py", LIMITS)
    assert entry.reason == reasons.UNREADABLE and "No such file" in entry.detail


def test_a_tar_read_in_one_pass_gives_the_two_passes_entries(tmp_path, monkeypatch):
    """`read_tar` reads an archive whose data fits in ONE_PASS_BYTES and whose stream reads
    through in one pass, holding the data until the last header settles the root; the entries
    are the two passes' (headers first, then every member), field by field. A broken stream,
    the byte budget, members past the limit or data over ONE_PASS_BYTES take the two passes."""
    from stages import readers

    gz = {"mode": "w:gz"}
    archives = {  # name: (members, make_tar's options, limits, one pass?)
        "rooted": ([("pkg-1.0/a.py", PYTHON_FILE, {}), ("pkg-1.0/sub", None, {"type": b"5"}),
                    ("pkg-1.0/sub/b.txt", "b\n", {}), ("pkg-1.0/big.txt", "x" * 2000, {}),
                    ("pkg-1.0/in.py", None, {"type": b"2", "linkname": "a.py"}),
                    ("pkg-1.0/hard.py", None, {"type": b"1", "linkname": "pkg-1.0/a.py"}),
                    ("pkg-1.0/out", None, {"type": b"2", "linkname": "../../etc/passwd"}),
                    ("pkg-1.0/fifo", None, {"type": b"6"}), ("./pkg-1.0/dot.txt", "d\n", {})], gz, LIMITS, True),
        "no root": ([("a.py", PYTHON_FILE, {}), ("pkg/b.py", "b = 2\n", {}),
                     ("pkg/link", None, {"type": b"2", "linkname": "../a.py"})], gz, LIMITS, True),
        "two tops": ([("one/a.py", "a\n", {}), ("two/b.py", "b\n", {})], {"mode": "w"}, LIMITS, True),
        "escape": ([("r/ok.txt", "fine\n", {}), ("../../etc/evil.sh", "rm -rf /\n", {})], gz, LIMITS, True),
        "members past the limit": ([(f"r/f{i}.txt", "x\n", {}) for i in range(5)], gz,
                                   IngestConfig(max_archive_members=3), False),
        "byte budget": ([("a.txt", "a" * 500, {}), ("big.bin", b"\0" * 4_000_000, {}), ("after.txt", "n\n", {})],
                        gz, IngestConfig(max_file_bytes=10_000_000, max_archive_bytes=1_000_000), False),
    }
    scans: list[Path] = []
    scan = readers._tar_scan
    monkeypatch.setattr(readers, "_tar_scan", lambda path, limits: scans.append(path) or scan(path, limits))
    for name, (members, options, limits, one_pass) in archives.items():
        tar = make_tar(tmp_path / f"{name}.tar", members, **options)
        scans.clear()
        found = list(readers.read_tar(tar, limits))
        assert bool(scans) != one_pass, name
        monkeypatch.setattr(readers, "ONE_PASS_BYTES", 0)  # the two passes, always
        assert found == list(readers.read_tar(tar, limits)), name
        monkeypatch.setattr(readers, "ONE_PASS_BYTES", 128 * 1024**2)
        assert found, name
    # data over ONE_PASS_BYTES in an archive under it: the two passes, the same entries
    tar = make_tar(tmp_path / "held.tar.gz", [("r/a.txt", "a" * 900, {}), ("r/b.txt", "b" * 900, {})])
    expected = list(readers.read_tar(tar, LIMITS))
    monkeypatch.setattr(readers, "ONE_PASS_BYTES", 1000)
    assert tar.stat().st_size < 1000
    scans.clear()
    assert list(readers.read_tar(tar, LIMITS)) == expected and scans == [tar]
    assert [e.data for e in expected] == [b"a" * 900, b"b" * 900]
    # headers count too: long names (pax) over ONE_PASS_BYTES, with no data at all
    tar = make_tar(tmp_path / "names.tar.gz", [(f"r/{n}" + "x" * 600, "", {}) for n in range(3)])
    monkeypatch.setattr(readers, "ONE_PASS_BYTES", 128 * 1024**2)
    scans.clear()
    expected = list(readers.read_tar(tar, LIMITS))
    assert not scans and tar.stat().st_size < 1000
    monkeypatch.setattr(readers, "ONE_PASS_BYTES", 1000)
    assert list(readers.read_tar(tar, LIMITS)) == expected and scans == [tar]
    assert [e.path for e in expected] == [f"{n}" + "x" * 600 for n in range(3)]
    # a stream cut short: the two passes say where
    data = gzip.decompress(make_tar(tmp_path / "t.tar.gz", [("a.txt", "alpha\n" * 50, {}),
                                                             ("b.txt", os.urandom(20000).hex(), {})]).read_bytes())
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(gzip.compress(data[: len(data) // 2]))
    monkeypatch.setattr(readers, "ONE_PASS_BYTES", 128 * 1024**2)
    scans.clear()
    entries = by_path(readers.read_tar(cut, IngestConfig(max_file_bytes=10**6)))
    assert scans == [cut] and entries["b.txt"].reason == reasons.UNREADABLE
