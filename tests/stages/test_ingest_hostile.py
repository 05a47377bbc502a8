"""Hostile and broken input at ingest (issue 20): one bad name, row, byte or entry costs that
one file or row, which gets its own record with a reason, never its neighbours or the build."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus_core import reasons
from corpus_core.names import printable_name
from corpus_core.records import SourceSpec
from stages import ingest as ingest_module
from stages import origin, readers
from stages.ingest import UTF8_REPLACED, Ingest, IngestConfig, decode_text
from stages.readers import BAD_RECORD, read_archive
from stages.sources import Unit, resolve_units
from tests.conftest import PYTHON_FILE, git, make_tar, make_zip, write_tree

LIMITS = IngestConfig(max_file_bytes=1000)


def ingest(unit: Unit, tmp: Path, limits: IngestConfig = LIMITS, start: int = 0, stop: int | None = None):
    stage = Ingest(limits, cache_dir=tmp / "cache")
    return list(stage.run(unit, start, stop)), stage


def ingest_source(path: Path, tmp: Path, limits: IngestConfig = LIMITS):
    records = []
    for unit in resolve_units([SourceSpec(str(path))]):
        records.extend(ingest(unit, tmp, limits)[0])
    return records


def rows(records) -> dict:
    return {(r.repo, r.path): r for r in records}


# --- names that are not UTF-8 --------------------------------------------------------------


def test_printable_name_escapes_only_the_bytes_that_are_not_utf8():
    assert printable_name("plain/café.py") == "plain/café.py"
    assert printable_name(b"caf\xe9/\xff\xfe.py".decode("utf-8", "surrogateescape")) == "caf\\xe9/\\xff\\xfe.py"
    assert printable_name("lone\ud800") == "lone\\ud800"


def test_directory_file_named_in_latin1_is_read_under_an_escaped_name(tmp_path):
    repo = write_tree(tmp_path / "repo", {"ok.py": PYTHON_FILE})
    (repo / "sub").mkdir()
    Path(os.fsdecode(os.fsencode(repo) + b"/caf\xe9.py")).write_text("x = 1\n")
    Path(os.fsdecode(os.fsencode(repo) + b"/sub/\xff")).symlink_to("/etc/passwd")
    records, stage = ingest(Unit("k", "directory", str(repo), "r", SourceSpec(str(repo))), tmp_path)
    found = rows(records)
    assert found[("r", "caf\\xe9.py")].kept and found[("r", "caf\\xe9.py")].content == "x = 1\n"
    assert found[("r", "sub/\\xff")].reason == reasons.LINK_ESCAPE
    assert found[("r", "ok.py")].kept
    pa.array([r.path for r in records])  # Arrow takes every name as it is written


def test_git_file_named_in_latin1_is_read_under_an_escaped_name(tmp_path):
    repo = tmp_path / "g"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    Path(os.fsdecode(os.fsencode(repo) + b"/caf\xe9.py")).write_text("x = 1\n")
    (repo / "ok.py").write_text(PYTHON_FILE)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "names")
    records, _ = ingest(Unit("k", "git", str(repo), "g", SourceSpec(str(repo))), tmp_path)
    assert {r.path: r.content for r in records} == {"caf\\xe9.py": "x = 1\n", "ok.py": PYTHON_FILE}


def test_tar_member_named_in_latin1_is_read_under_an_escaped_name(tmp_path):
    name = b"pkg/caf\xe9.py".decode("utf-8", "surrogateescape")
    for format_ in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        path = tmp_path / f"pkg-{format_}.tar"
        with tarfile.open(path, "w", format=format_) as tar:
            for member, data in ((name, b"x = 1\n"), ("pkg/ok.py", PYTHON_FILE.encode())):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        records, _ = ingest(Unit("k", "archive", str(path), "p", SourceSpec(str(path))), tmp_path)
        assert {r.path: r.content for r in records} == {"caf\\xe9.py": "x = 1\n", "ok.py": PYTHON_FILE}


def test_zip_member_flagged_utf8_whose_name_is_not(tmp_path):
    """zipfile refuses the whole archive over one such name; only that name is mended."""
    path = make_zip(tmp_path / "z.zip", {"pkg/café.py": "x = 1\n", "pkg/ok.py": PYTHON_FILE})
    path.write_bytes(path.read_bytes().replace("café".encode(), b"caf\xe9x"))  # same length, in both headers
    records, stage = ingest(Unit("k", "archive", str(path), "z", SourceSpec(str(path))), tmp_path)
    assert {r.path: r.content for r in records} == {"caf\\xe9x.py": "x = 1\n", "ok.py": PYTHON_FILE}
    assert stage.repos["z"].error is None


def test_collection_directory_named_in_latin1(tmp_path):
    collection = tmp_path / "collection"
    repo = Path(os.fsdecode(os.fsencode(collection) + b"/r\xe9po"))
    write_tree(repo, {"a.py": PYTHON_FILE})
    records = ingest_source(collection, tmp_path)
    assert [(r.repo, r.path, r.decision) for r in records] == [("r\\xe9po", "a.py", "kept")]


# --- JSON Lines, row by row ----------------------------------------------------------------


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((line.encode() if isinstance(line, str) else line) + b"\n" for line in lines))
    return path


def test_jsonl_malformed_line_costs_only_that_line(tmp_path):
    dataset = write_lines(tmp_path / "files.jsonl", [
        json.dumps({"repo": "o/r", "path": "a.py", "content": PYTHON_FILE}),
        '{"repo": "o/r", "path": "b.py", "content": "cut here',
        json.dumps({"repo": "o/r", "path": "c.py", "content": "c = 3\n"}),
    ])
    found = rows(ingest_source(dataset, tmp_path))
    assert set(found) == {("o/r", "a.py"), ("files.jsonl", "line:2"), ("o/r", "c.py")}
    assert found[("o/r", "a.py")].kept and found[("o/r", "c.py")].content == "c = 3\n"
    bad = found[("files.jsonl", "line:2")]
    assert bad.reason == BAD_RECORD and bad.detail.startswith("line 2: not JSON")


def test_jsonl_past_one_megabyte_keeps_every_row(tmp_path):
    """pyarrow's JSON reader took its schema from the first block (1 MiB): a key first seen
    later, or a value of another type, failed the rest of the file."""
    def row(i: int) -> dict:
        extra = {"url": f"https://example.com/{i}"} if i >= 2500 else {}
        return {"repo": f"o/r{i % 7}", "path": f"f{i}.py", "content": f"value_{i} = {i}\n" * 40,
                "stars": str(i) if i >= 2000 else i, **extra}

    dataset = write_lines(tmp_path / "big.jsonl", [json.dumps(row(i)) for i in range(3000)])
    assert dataset.stat().st_size > 2_000_000
    records = ingest_source(dataset, tmp_path, IngestConfig())
    assert len(records) == 3000 and all(r.kept for r in records)
    assert [r.path for r in records] == [f"f{i}.py" for i in range(3000)]


def test_jsonl_rows_of_the_wrong_shape_are_bad_records(tmp_path):
    dataset = write_lines(tmp_path / "d.jsonl", [
        json.dumps({"repo": "o/r", "path": "int.py", "content": 42}),
        json.dumps({"repo": "o/r", "path": None, "content": "x = 1\n"}),
        json.dumps({"path": "norepo.py", "content": "x = 1\n"}),
        json.dumps({"repo": "", "path": "empty.py", "content": "x = 1\n"}),
        json.dumps({"repo": "o/r", "path": "nocontent.py"}),
        json.dumps(["o/r", "list.py", "x = 1\n"]),
        b'{"repo": "o/r", "path": "latin1.py", "content": "caf\xe9"}',
        "",
        "   ",
        json.dumps({"repo": "o/r", "path": "null.py", "content": None}),
        json.dumps({"repo": "o/r", "path": "ok.py", "content": "ok = 1\n", "stars": [1]}),
    ])
    found = rows(ingest_source(dataset, tmp_path))
    assert {key: (r.reason, r.detail) for key, r in found.items()} == {
        ("o/r", "int.py"): (BAD_RECORD, "line 1: `content` is a number, not a string"),
        ("d.jsonl", "line:2"): (BAD_RECORD, "line 2: `path` is null"),
        ("d.jsonl", "line:3"): (BAD_RECORD, "line 3: `repo` is missing"),
        ("d.jsonl", "line:4"): (BAD_RECORD, "line 4: `repo` is empty"),
        ("o/r", "nocontent.py"): (BAD_RECORD, "line 5: `content` is missing"),
        ("d.jsonl", "line:6"): (BAD_RECORD, "line 6: an array, not a JSON object"),
        ("d.jsonl", "line:7"): (BAD_RECORD, "line 7: not UTF-8 (byte 53)"),
        ("o/r", "null.py"): (reasons.UNREADABLE, "content is null"),
        ("o/r", "ok.py"): (None, None),
    }  # the blank lines 8 and 9 are no records


def test_jsonl_line_over_max_file_bytes_is_too_large_and_never_parsed(tmp_path):
    huge = json.dumps({"repo": "o/r", "path": "huge.py", "content": "x" * 50_000})
    dataset = write_lines(tmp_path / "d.jsonl", [
        json.dumps({"repo": "o/r", "path": "a.py", "content": "a = 1\n"}), huge, "[" * 5000,
        json.dumps({"repo": "o/r", "path": "b.py", "content": "b = 2\n"}),
    ])
    found = rows(ingest_source(dataset, tmp_path))
    assert found[("d.jsonl", "line:2")].reason == reasons.TOO_LARGE
    assert found[("d.jsonl", "line:2")].size == len(huge)
    assert found[("d.jsonl", "line:3")].reason == reasons.TOO_LARGE
    assert found[("o/r", "a.py")].kept and found[("o/r", "b.py")].kept


def test_jsonl_deep_nesting_and_huge_numbers_are_bad_records(tmp_path):
    dataset = write_lines(tmp_path / "d.jsonl", ["[" * 100_000, '{"repo": "o/r", "stars": ' + "9" * 5000 + "}"])
    found = rows(ingest_source(dataset, tmp_path, IngestConfig()))
    assert [found[("d.jsonl", f"line:{n}")].reason for n in (1, 2)] == [BAD_RECORD, BAD_RECORD]


def test_jsonl_stars_out_of_range_are_unknown(tmp_path):
    dataset = write_lines(tmp_path / "d.jsonl", [
        json.dumps({"repo": "o/big", "path": "a.py", "content": "a = 1\n", "stars": 2**70}),
        json.dumps({"repo": "o/text", "path": "a.py", "content": "a = 1\n", "stars": "12", "url": 5}),
    ])
    unit, = resolve_units([SourceSpec(str(dataset))])
    _, stage = ingest(unit, tmp_path)
    assert stage.repos["o/big"].stars is None
    assert stage.repos["o/text"].stars == 12 and stage.repos["o/text"].url is None


def test_jsonl_windows_read_no_further_than_they_need(tmp_path):
    """A chunk parses the rows before and inside its window (for their repositories'
    metadata), only counts the lines after, and knows the unit's length all the same."""
    lines = [json.dumps({"repo": "o/r", "path": f"f{i}.py", "content": f"v = {i}\n", "stars": i}) for i in range(6)]
    dataset = write_lines(tmp_path / "d.jsonl", [*lines[:4], "not json", *lines[4:]])
    unit, = resolve_units([SourceSpec(str(dataset))])
    whole, _ = ingest(unit, tmp_path)
    windows = []
    for start, stop in ((0, 3), (3, 5), (5, 7)):
        records, stage = ingest(unit, tmp_path, start=start, stop=stop)
        assert stage.records == 7 and stage.repos["o/r"].stars == 0
        windows.extend(records)
    assert [(r.ordinal, r.path, r.reason) for r in windows] == [(r.ordinal, r.path, r.reason) for r in whole]
    assert whole[4].path == "line:5" and whole[4].reason == BAD_RECORD


def test_parquet_windows_read_the_content_of_their_own_rows_only(tmp_path):
    """A chunk of a Parquet dataset reads the content of the row groups that hold its window,
    only the metadata columns of those before it (the first row of a repository gives its
    stars, even when that row is in another chunk), and nothing of those after; the records
    are those of the whole file read at once."""
    table = pa.table({"repo": [f"o/r{i // 4}" for i in range(12)], "path": [f"f{i}.py" for i in range(12)],
                      "content": [f"v = {i}\n" for i in range(12)], "stars": list(range(12))})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=3)
    unit, = resolve_units([SourceSpec(str(tmp_path / "d.parquet"))])
    whole, _ = ingest(unit, tmp_path)
    read: list[tuple[int, tuple[str, ...]]] = []
    original = pq.ParquetFile.iter_batches

    def recorded(self, *args, row_groups=None, columns=None, **kwargs):
        read.append((row_groups[0], tuple(columns)))
        return original(self, *args, row_groups=row_groups, columns=columns, **kwargs)

    windows = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pq.ParquetFile, "iter_batches", recorded)
        for start, stop in ((0, 5), (5, 10), (10, 12)):
            read.clear()
            records, stage = ingest(unit, tmp_path, start=start, stop=stop)
            assert stage.records == 12 and stage.repos["o/r1"].stars == 4  # its first row, f4.py
            windows.extend(records)
            with_content = sorted(group for group, columns in read if "content" in columns)
            assert with_content == list(range(start // 3, (stop - 1) // 3 + 1))
            assert sorted(group for group, _ in read) == list(range((stop - 1) // 3 + 1))
    assert [(r.ordinal, r.path, r.content) for r in windows] == [(r.ordinal, r.path, r.content) for r in whole]


def test_parquet_rows_get_the_same_checks(tmp_path):
    table = pa.table({
        "repo": ["o/r", None, "o/r", "o/r"],
        "path": ["a.py", "b.py", None, "d.py"],
        "content": pa.array([b"a = 1\n", b"b = 2\n", b"c = 3\n", None], pa.binary()),
    })
    pq.write_table(table, tmp_path / "files.parquet")
    found = rows(ingest_source(tmp_path / "files.parquet", tmp_path))
    assert {key: (r.reason, r.detail) for key, r in found.items()} == {
        ("o/r", "a.py"): (None, None),
        ("files.parquet", "row:2"): (BAD_RECORD, "row 2: `repo` is null"),
        ("files.parquet", "row:3"): (BAD_RECORD, "row 3: `path` is null"),
        ("o/r", "d.py"): (reasons.UNREADABLE, "content is null"),
    }
    assert found[("o/r", "a.py")].content == "a = 1\n"


def test_parquet_content_of_another_type_is_a_bad_record(tmp_path):
    pq.write_table(pa.table({"repo": ["o/r"], "path": ["a.py"], "content": [7]}), tmp_path / "n.parquet")
    (record,) = ingest_source(tmp_path / "n.parquet", tmp_path)
    assert (record.path, record.reason, record.detail) == ("a.py", BAD_RECORD, "row 1: `content` is a number, "
                                                                              "not a string")


# --- UTF-8 with a few bad bytes --------------------------------------------------------------

FRENCH = "# Ce module calcule les coûts de l'élève. Le résultat dépend de la période.\n" + "x = 1\n" * 200
CHINESE = "# 这是一个测试文件，用于计算总和。\n" + "def f(x):\n    return x + 1\n" * 40


@pytest.mark.parametrize("text", [FRENCH, CHINESE], ids=["french", "chinese"])
def test_utf8_with_one_bad_byte_stays_utf8(text):
    """Read as a code page today: French turns to mojibake, Chinese is dropped as not text."""
    data = text.encode()
    cut = data.index(b"\n")
    broken = data[:cut] + b"\xff" + data[cut:]
    decoded, encoding = decode_text(broken, 0.2)
    assert encoding == UTF8_REPLACED
    assert decoded == text[:text.index("\n")] + "\ufffd" + text[text.index("\n"):]


def test_utf8_with_a_character_cut_anywhere():
    data = CHINESE.encode()
    cut = data[:31] + data[32:]  # the middle byte of a three-byte character gone
    assert decode_text(cut, 0.2) == (cut.decode("utf-8", "replace"), UTF8_REPLACED)
    assert decode_text(FRENCH.encode() + "é".encode()[:1], 0.2) == (FRENCH + "\ufffd", UTF8_REPLACED)


def test_bad_sequences_past_the_limit_or_the_evidence_go_to_charset_detection():
    data = FRENCH.encode()
    evidence = sum(1 for c in FRENCH if ord(c) > 127)
    assert decode_text(b"\xff" * evidence + data, 0.2)[1] == UTF8_REPLACED
    assert decode_text(b"\xff" * (evidence + 1) + data, 0.2)[1] != UTF8_REPLACED  # more damage than evidence
    assert decode_text(b"\xff" * 17 + data * 3, 0.2)[1] != UTF8_REPLACED  # over max_utf8_errors
    assert decode_text(b"\xff" * 17 + data * 3, 0.2, max_utf8_errors=17)[1] == UTF8_REPLACED
    assert decode_text(b"\xff" + data, 0.2, max_utf8_errors=0)[1] != UTF8_REPLACED
    latin1 = ("# Copyright \u00a9 2020 Jane\n" + "x = 1\n" * 100).encode("latin-1")  # ASCII and one high byte
    assert decode_text(latin1, 0.2)[1] != UTF8_REPLACED
    text = "# Ce module calcule les coûts de l'élève.\n" * 3
    assert decode_text(text.encode("latin-1"), 0.2) == (text, "cp1252")  # Latin-1 stays Latin-1
    assert decode_text("\ufffd ok\n".encode() + b"\xff", 0.2) == ("\ufffd ok\n\ufffd", UTF8_REPLACED)


def test_ingest_records_the_replaced_encoding(tmp_path):
    repo = write_tree(tmp_path / "repo", {"a.py": FRENCH.encode()[:50] + b"\xfe" + FRENCH.encode()[50:]})
    records, _ = ingest(Unit("k", "directory", str(repo), "r", SourceSpec(str(repo))), tmp_path,
                        IngestConfig())
    assert records[0].kept and records[0].encoding == UTF8_REPLACED


# --- tar members past the member limit -------------------------------------------------------


def test_every_tar_member_past_the_limit_has_its_own_row(tmp_path):
    members = [("pkg-1/LICENSE", "MIT\n", {})] + [(f"pkg-1/src/f{i}.py", f"v = {i}\n", {}) for i in range(9)]
    tar = make_tar(tmp_path / "pkg-1.tar.gz", [*members, ("pkg-1/../../evil", "x\n", {})])
    entries = list(read_archive(tar, IngestConfig(max_archive_members=3)))
    assert [e.path for e in entries[:3]] == ["LICENSE", "src/f0.py", "src/f1.py"]
    assert all(e.data is not None for e in entries[:3])
    past = entries[3:]
    assert [e.path for e in past] == [f"src/f{i}.py" for i in range(2, 9)] + ["pkg-1/../../evil"]
    assert {e.reason for e in past[:-1]} == {reasons.ARCHIVE_LIMIT} and past[-1].reason == reasons.PATH_ESCAPE
    assert all(e.data is None and "past 3 members" in e.detail for e in past[:-1])


def test_tar_members_past_the_limit_are_streamed_not_kept(tmp_path):
    path = tmp_path / "many.tar"
    with tarfile.open(path, "w") as tar:
        for i in range(5000):
            tar.addfile(tarfile.TarInfo(f"d/f{i}"), None)
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_archive(path, IngestConfig(max_archive_members=10)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 5000
    assert peak < 1_000_000  # the 5,000 headers kept take 2.2 MB


# --- one entry's failure, whatever it is, is that entry's drop -------------------------------


def test_an_exception_decoding_one_file_drops_only_that_file(tmp_path, monkeypatch):
    repo = write_tree(tmp_path / "repo", {"a.py": "a = 1\n", "boom.py": "boom\n", "c.py": "c = 3\n"})
    real = ingest_module.decode_text

    def decode(data, *args):
        if data == b"boom\n":
            raise ZeroDivisionError("not foreseen")
        return real(data, *args)

    monkeypatch.setattr(ingest_module, "decode_text", decode)
    records, stage = ingest(Unit("k", "directory", str(repo), "r", SourceSpec(str(repo))), tmp_path)
    found = {r.path: r for r in records}
    assert found["boom.py"].reason == reasons.STAGE_ERROR
    assert found["boom.py"].detail == "ingest: ZeroDivisionError: not foreseen"
    assert found["a.py"].kept and found["c.py"].kept and stage.records == 3


@pytest.mark.parametrize("kind", ["tar", "zip", "directory"])
def test_an_exception_reading_one_entry_drops_only_that_entry(tmp_path, monkeypatch, kind):
    files = {"pkg/a.py": "a = 1\n", "pkg/boom.py": "boom\n", "pkg/c.py": "c = 3\n"}
    if kind == "tar":
        source = make_tar(tmp_path / "pkg.tar.gz", [(name, data, {}) for name, data in files.items()])
        target, unit_kind = "_tar_entry", "archive"
    elif kind == "zip":
        source, target, unit_kind = make_zip(tmp_path / "pkg.zip", files), "_zip_entry", "archive"
    else:
        source, target, unit_kind = write_tree(tmp_path / "tree", files), "read_path_entry", "directory"
    real = getattr(readers, target)

    def read(*args):
        if any("boom" in str(getattr(a, "name", getattr(a, "filename", a))) for a in args):
            raise KeyError("not foreseen")
        return real(*args)

    monkeypatch.setattr(readers, target, read)
    records, _ = ingest(Unit("k", unit_kind, str(source), "r", SourceSpec(str(source))), tmp_path)
    found = {r.path.removeprefix("pkg/"): r for r in records}
    assert found["boom.py"].reason == reasons.UNREADABLE and found["boom.py"].detail.startswith("KeyError")
    assert found["a.py"].kept and found["c.py"].kept


def test_a_reader_that_breaks_mid_stream_keeps_what_it_read(tmp_path, monkeypatch):
    def broken(root, limits, top_level_only=False):
        yield readers.Entry("first.py", 6, data=b"x = 1\n")
        raise MemoryError("out of luck")

    monkeypatch.setattr(readers, "read_directory", broken)
    repo = write_tree(tmp_path / "repo", {"a.py": "a = 1\n"})
    records, stage = ingest(Unit("k", "directory", str(repo), "r", SourceSpec(str(repo))), tmp_path)
    assert [(r.path, r.reason) for r in records] == [("first.py", None), ("", reasons.SOURCE_UNREADABLE)]
    assert records[1].detail == "MemoryError: out of luck" == stage.repos["r"].error


def test_a_source_error_is_still_one_source_unreadable_row(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x05\x06 not a zip")
    records, stage = ingest(Unit("k", "archive", str(bad), "b", SourceSpec(str(bad))), tmp_path)
    assert [(r.path, r.reason) for r in records] == [("", reasons.SOURCE_UNREADABLE)]
    assert "zip" in stage.repos["b"].error


# --- a cut unit's later chunks read the first chunk's stash -------------------------------


def chunked(unit: Unit, tmp: Path, size: int, stash: Path | None) -> tuple[list, list[Ingest]]:
    """Every chunk of `unit` in order, as process_unit runs them (the first one first)."""
    records, stages, start, total = [], [], 0, None
    while total is None or start < total:
        stage = Ingest(LIMITS, cache_dir=tmp / "cache")
        records += stage.run(unit, start, start + size, stash)
        stages.append(stage)
        total = stages[0].records
        start += size
    return records, stages


def fields(records) -> list[tuple]:
    return [(r.ordinal, r.path, r.size, r.reason, r.detail, r.content, r.sha256) for r in records]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_chunks_read_from_the_stash_give_the_records_of_the_whole_unit(tmp_path, monkeypatch, size):
    members = [(f"pkg/m{i}.py", f"x = {i}\n" * (i + 1), {}) for i in range(6)]
    members += [("pkg/big.bin", b"\x00" * 2000, {}), ("pkg/link", None, {"type": tarfile.SYMTYPE, "linkname": "m1.py"}),
                ("pkg/caf\xe9.py".encode("latin-1").decode("utf-8", "surrogateescape"), "y = 2\n", {})]
    archive = make_tar(tmp_path / "pkg.tar.gz", members)
    unit = Unit("k", "archive", str(archive), "pkg", SourceSpec(str(archive)))
    whole, whole_stage = ingest(unit, tmp_path)
    stash = tmp_path / "k.entries.parquet"
    reads = []
    real_read_archive = readers.read_archive

    def counted(path, limits, metadata=None):  # counts the reads that get past the first entry, not the readers made
        for number, entry in enumerate(real_read_archive(path, limits, metadata)):
            reads.extend([path] if number == 1 else [])
            yield entry

    monkeypatch.setattr(readers, "read_archive", counted)
    records, stages = chunked(unit, tmp_path, size, stash)
    assert fields(records) == fields(whole)
    assert all(s.records == len(whole) == 9 for s in stages)
    assert [s.repos["pkg"] for s in stages] == [whole_stage.repos["pkg"]] * len(stages)
    assert len(reads) == 1 or size >= 9  # the source is read by the first chunk alone
    assert stash.exists() == (size < 9) and not stash.with_suffix(".tmp").exists()


PKG_INFO = "Metadata-Version: 2.1\nName: pkg\nHome-page: https://github.com/acme/pkg\n"


def test_later_chunks_take_the_repository_metadata_from_the_stash(tmp_path, monkeypatch):
    """Only the first chunk reads the archive (its owner from the PKG-INFO the one-pass read
    holds, not a read of its own) and hashes it; the later chunks' repository rows are the same."""
    members = [(f"pkg-1.0/m{i}.py", f"x = {i}\n", {}) for i in range(5)]
    members.append(("pkg-1.0/PKG-INFO", PKG_INFO, {}))
    archive = make_tar(tmp_path / "pkg-1.0.tar.gz", members)
    spec = SourceSpec(str(archive), sha256=hashlib.sha256(archive.read_bytes()).hexdigest())
    unit = Unit("k", "archive", str(archive), "pkg", spec)
    whole, whole_stage = ingest(unit, tmp_path)
    assert (whole_stage.repos["pkg"].owner, whole_stage.repos["pkg"].sha256) == ("acme", spec.sha256)
    calls = []

    def counted(module, name):
        real = getattr(module, name)

        def call(*args):
            calls.append(name)
            return real(*args)
        monkeypatch.setattr(module, name, call)

    counted(origin, "owner_of_archive")
    counted(ingest_module, "verify_sha256")
    records, stages = chunked(unit, tmp_path, 2, tmp_path / "k.entries.parquet")
    assert fields(records) == fields(whole) and len(stages) == 3
    assert [s.repos["pkg"] for s in stages] == [whole_stage.repos["pkg"]] * 3
    assert calls == ["verify_sha256"]  # the first chunk's


def test_a_stash_of_older_code_without_the_repository_metadata_has_the_later_chunks_read_the_source(
        tmp_path, monkeypatch):
    """A build resumed across an upgrade finds stashes written without the metadata: their
    later chunks read the source, for the owner too (never a file without its owner)."""
    from stages import stash as stash_module

    members = [(f"pkg-1.0/m{i}.py", f"x = {i}\n", {}) for i in range(5)]
    members.append(("pkg-1.0/PKG-INFO", PKG_INFO, {}))
    archive = make_tar(tmp_path / "pkg-1.0.tar.gz", members)
    unit = Unit("k", "archive", str(archive), "pkg", SourceSpec(str(archive)))
    whole, whole_stage = ingest(unit, tmp_path)
    real_close = stash_module.StashWriter.close
    monkeypatch.setattr(stash_module.StashWriter, "close", lambda self, records, error, repo=None: real_close(
        self, records, error))
    records, stages = chunked(unit, tmp_path, 2, tmp_path / "k.entries.parquet")
    assert fields(records) == fields(whole) and {r.owner for r in records} == {"acme"}
    assert [s.repos["pkg"] for s in stages] == [whole_stage.repos["pkg"]] * 3


def test_a_stream_that_breaks_past_the_first_window_ends_the_unit_in_the_chunk_that_holds_it(tmp_path, monkeypatch):
    def broken(root, limits, top_level_only=False):
        for i in range(5):
            yield readers.Entry(f"f{i}.py", 6, data=b"x = 1\n")
        raise MemoryError("out of luck")

    monkeypatch.setattr(readers, "read_directory", broken)
    repo = write_tree(tmp_path / "repo", {"a.py": "a = 1\n"})
    unit = Unit("k", "directory", str(repo), "r", SourceSpec(str(repo)))
    whole, _ = ingest(unit, tmp_path)
    records, stages = chunked(unit, tmp_path, 2, tmp_path / "k.entries.parquet")
    assert fields(records) == fields(whole)
    assert [(r.ordinal, r.reason) for r in records][-2:] == [(4, None), (5, reasons.SOURCE_UNREADABLE)]
    assert [s.repos["r"].error for s in stages] == ["MemoryError: out of luck"] * 3


def test_without_its_stash_a_later_chunk_reads_the_source(tmp_path):
    archive = make_tar(tmp_path / "pkg.tar.gz", [(f"pkg/m{i}.py", f"x = {i}\n", {}) for i in range(4)])
    unit = Unit("k", "archive", str(archive), "pkg", SourceSpec(str(archive)))
    stash = tmp_path / "k.entries.parquet"
    first = Ingest(LIMITS, cache_dir=tmp_path / "cache")
    list(first.run(unit, 0, 2, stash))
    stash.unlink()
    later = Ingest(LIMITS, cache_dir=tmp_path / "cache")
    assert [(r.ordinal, r.path) for r in later.run(unit, 2, 4, stash)] == [(2, "m2.py"), (3, "m3.py")]
    assert later.records == 4


def test_a_first_chunk_stopped_midway_leaves_no_stash(tmp_path):
    archive = make_tar(tmp_path / "pkg.tar.gz", [(f"pkg/m{i}.py", f"x = {i}\n", {}) for i in range(4)])
    unit = Unit("k", "archive", str(archive), "pkg", SourceSpec(str(archive)))
    stash = tmp_path / "k.entries.parquet"
    records = Ingest(LIMITS, cache_dir=tmp_path / "cache")._records(unit, 0, 1, stash)
    assert next(records).path == "m0.py"
    assert next(records) is None  # past the window: its entry is stashed already
    records.close()  # as when a later stage raises
    assert not stash.exists() and not stash.with_suffix(".tmp").exists()


def test_a_first_chunk_run_again_never_leaves_the_stash_of_an_earlier_try(tmp_path, monkeypatch):
    """A try killed before its marker published a stash; the next try's stream breaks right
    past its window (nothing to stash): the later chunk must read the source, not the old stash."""
    stash = tmp_path / "k.entries.parquet"
    repo = write_tree(tmp_path / "repo", {"a.py": "a = 1\n"})
    unit = Unit("k", "directory", str(repo), "r", SourceSpec(str(repo)))

    def stream(count: int, broken: bool):
        def read(root, limits, top_level_only=False):
            for i in range(count):
                yield readers.Entry(f"f{i}.py", 6, data=b"x = 1\n")
            if broken:
                raise OSError("truncated")
        return read

    monkeypatch.setattr(readers, "read_directory", stream(6, False))
    list(Ingest(LIMITS, cache_dir=tmp_path / "cache").run(unit, 0, 2, stash))
    assert stash.exists()
    monkeypatch.setattr(readers, "read_directory", stream(2, True))
    first = Ingest(LIMITS, cache_dir=tmp_path / "cache")
    list(first.run(unit, 0, 2, stash))
    assert first.records == 3 and not stash.exists()
    later = Ingest(LIMITS, cache_dir=tmp_path / "cache")
    assert [(r.ordinal, r.reason) for r in later.run(unit, 2, 4, stash)] == [(2, reasons.SOURCE_UNREADABLE)]
    assert later.repos["r"].error == "OSError: truncated"


def test_a_stash_that_cannot_be_written_fails_the_chunk_instead_of_the_source(tmp_path, monkeypatch):
    from stages import stash as stash_module

    def full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stash_module.StashWriter, "_flush", full)
    archive = make_tar(tmp_path / "pkg.tar.gz", [(f"pkg/m{i}.py", f"x = {i}\n", {}) for i in range(40)])
    unit = Unit("k", "archive", str(archive), "pkg", SourceSpec(str(archive)))
    stash = tmp_path / "k.entries.parquet"
    with pytest.raises(OSError, match="No space left"):
        list(Ingest(LIMITS, cache_dir=tmp_path / "cache").run(unit, 0, 1, stash))
    assert not stash.exists() and not stash.with_suffix(".tmp").exists()
