"""Hostile sources through whole builds (issue 20). Hypothesis makes random trees (names with
bytes that are not UTF-8, very long names, `..`, control characters, newlines; links out of
the tree), JSON Lines files (missing fields, wrong types, broken, blank and huge lines) and
archives (tar or zip, truncated, nested, links, past the member limit); each is built
in-process. The build never raises, and every input file or row has exactly one row in
manifest/files.parquet, counted from what was made. A few fixed hostile cases also run on Ray
with one and two workers and give the same bytes as in-process.

PII and tokenization are off: they do not read names, and importing Presidio costs seconds.
"""

from __future__ import annotations

import gzip
import json
import os
import tarfile
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus_core.records import SourceSpec
from filters.pii import PiiConfig
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.ingest import IngestConfig
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, PYTHON_FILE, make_tar, mit_license, write_tree

MAX_FILE_BYTES = 2048
MAX_MEMBERS = 4
TREE, ARCHIVE, DATASET = "tree", "arc", "rows.jsonl"  # repository names: the dataset's bad rows go under its name


def config_for(sources: list[SourceSpec], cache: Path, executor: str = "local", workers: int = 1,
               chunk_files: int = 0) -> BuildConfig:
    return BuildConfig(
        **LENIENT,
        sources=tuple(sources),
        cache_dir=str(cache),
        ingest=IngestConfig(max_file_bytes=MAX_FILE_BYTES, max_archive_members=MAX_MEMBERS,
                            max_archive_bytes=256 * 1024),
        pii=PiiConfig(enabled=False),
        near_dedup=NearDedupConfig(enabled=False),
        tokenize=TokenizeConfig(enabled=False),
        execution=ExecutionConfig(executor=executor, num_workers=workers, chunk_files=chunk_files,
                                  local_below_bytes=0),  # on Ray even when small
    )


def manifest_rows(out: Path) -> list[dict]:
    return pq.read_table(out / "manifest" / "files", columns=["repo", "path", "decision", "reason"]).to_pylist()


# --- what the strategies draw ----------------------------------------------------------------

# name pieces: plain, punctuation and shell-hostile characters, control characters, a newline,
# bytes that are not UTF-8 (a lone Latin-1 byte, a cut multi-byte character) and valid UTF-8
NAME_PIECES = [b"a", b"B", b"7", b".", b"..", b"-", b"_", b" ", b"~", b"$", b"'", b'"', b"*", b"?", b":", b"\\",
               b"\n", b"\t", b"\x01", b"\x1b", b"\x7f", b"\xff", b"\xe9", b"\xe2\x82", b"\xc3\xa9", b"\xf0\x9f\x98\x80"]
RESERVED = {b".", b"..", b".git", b".hg", b".svn"}

names = st.one_of(
    st.lists(st.sampled_from(NAME_PIECES), min_size=1, max_size=8).map(b"".join),
    st.integers(200, 255).map(lambda n: b"L" * n),  # near the 255-byte limit of one name
).filter(lambda name: name not in RESERVED and len(name) <= 255)
contents = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.just(PYTHON_FILE.encode()),
    st.just(b"z" * (MAX_FILE_BYTES + 10)),  # too large
)


@dataclass
class Plan:
    """What an example made, and how many manifest rows each source must give."""

    sources: list[SourceSpec] = field(default_factory=list)
    expected: Counter = field(default_factory=Counter)  # repository group -> rows
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)  # a cut archive: rows in this range


def make_tree(root: Path, files: list[tuple[list[bytes], bytes]], links: list[tuple[bytes, bytes]], plan: Plan) -> None:
    """A collection holding one repository `tree`; every file or link made is one row."""
    repo = write_tree(root / "tree" / TREE, {"ok.py": PYTHON_FILE})  # a readable file, so that the build has one
    made = 1
    base = os.fsencode(repo)
    for parts, data in files:
        path = base + b"/" + b"/".join(parts)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "xb") as handle:
                handle.write(data)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue  # a name already taken, as a file or a directory
        made += 1
    for name, target in links:
        try:
            os.symlink(target, base + b"/" + name)
        except FileExistsError:
            continue
        made += 1
    plan.sources.append(SourceSpec(str(root / "tree")))
    plan.expected[TREE] += made


def make_dataset(path: Path, lines: list[tuple[bytes, bool]], plan: Plan) -> None:
    """JSON Lines; each line that is not blank is one record (one row)."""
    path.write_bytes(b"".join(line + b"\n" for line, _ in lines))
    plan.sources.append(SourceSpec(str(path)))
    plan.expected[DATASET] += sum(1 for _, is_record in lines if is_record)


def make_archive(root: Path, kind: str, members: list[tuple[bytes, str, bytes]], damage: str, plan: Plan) -> None:
    """A tar (gz or plain) or zip; each member is one row. A cut archive gives one row per
    member it still shows plus one for where it broke, at most one per member made, at least
    one when it had any (none or one when it had none: a plain tar of zeros is empty still)."""
    if kind == "zip":
        path = root / f"{ARCHIVE}.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, member_kind, data in members:
                info = zipfile.ZipInfo(name.decode("utf-8", "replace").replace("\x00", "_"), (2020, 1, 1, 0, 0, 0))
                if member_kind == "symlink":
                    info.external_attr = 0o120777 << 16
                archive.writestr(info, data)
    else:
        path = root / f"{ARCHIVE}.{kind}"
        entries = []
        for name, member_kind, data in members:
            attrs = {"symlink": {"type": tarfile.SYMTYPE, "linkname": data.decode("utf-8", "surrogateescape")},
                     "hardlink": {"type": tarfile.LNKTYPE, "linkname": data.decode("utf-8", "surrogateescape")},
                     "fifo": {"type": tarfile.FIFOTYPE}}.get(member_kind, {})
            entries.append((name.decode("utf-8", "surrogateescape"), None if attrs else data, attrs))
        make_tar(path, entries, mode="w:gz" if kind == "tar.gz" else "w")
    if damage == "bomb":  # a second archive, past the byte budget in its first member
        bomb = root / f"{ARCHIVE}-bomb.tar.gz"
        make_tar(bomb, [("zeros.bin", b"\0" * 400_000, {}), ("after.py", "x = 1\n", {})])
        plan.sources.append(SourceSpec(str(bomb), name="bomb"))
        plan.expected["bomb"] += 1  # the first member is past the budget: the archive's one row
    if damage == "cut":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
        plan.bounds[ARCHIVE] = (1, len(members)) if members else (0, 1)
    else:
        plan.expected[ARCHIVE] += len(members)
    plan.sources.append(SourceSpec(str(path)))


# paths inside an archive: names joined by "/", sometimes climbing out or absolute
member_paths = st.tuples(st.sampled_from([b"", b"", b"", b"pkg/", b"../", b"/", b"pkg/../../"]),
                         st.lists(names, min_size=1, max_size=3)).map(lambda t: t[0] + b"/".join(t[1]))
nested_tar = gzip.compress(b"\0" * 1024)  # an (empty) archive inside the archive: just a file
members = st.lists(
    st.tuples(member_paths, st.sampled_from(["file", "file", "file", "symlink", "hardlink", "fifo"]),
              st.one_of(contents, st.just(nested_tar), st.sampled_from([b"../../../etc/passwd", b"/etc/hostname"]))),
    max_size=9, unique_by=lambda m: m[0],
)

json_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                        st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                               max_size=2))
repo_names = st.one_of(st.text(min_size=1, max_size=20), st.sampled_from(["o/r", "o/s"])).filter(
    lambda name: name not in (TREE, ARCHIVE, DATASET, "bomb"))


@st.composite
def jsonl_lines(draw) -> tuple[bytes, bool]:
    """(line, is it a record)."""
    kind = draw(st.sampled_from(["row", "row", "row", "junk", "blank", "huge", "deep"]))
    if kind == "blank":
        return draw(st.sampled_from([b"", b"  ", b"\t", b"\r"])), False
    if kind == "junk":
        junk = draw(st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"\n", b""))
                    .filter(lambda b: not b.startswith(b"\xef\xbb\xbf")))  # a byte-order mark is no content
        return junk, bool(junk.strip())
    if kind == "huge":
        return json.dumps({"repo": "o/r", "path": "huge.py", "content": "x" * (MAX_FILE_BYTES * 3)}).encode(), True
    if kind == "deep":
        return b"[" * 1500, True  # past the JSON parser's recursion limit, within max_file_bytes
    row = {}
    for key, good in (("repo", repo_names), ("path", st.text(min_size=1, max_size=30)),
                      ("content", st.text(max_size=100))):
        choice = draw(st.sampled_from(["good", "good", "good", "missing", "other"]))
        if choice == "good":
            row[key] = draw(good)
        elif choice == "other":
            row[key] = draw(json_values)
    for key in ("stars", "url", "license"):
        if draw(st.booleans()):
            row[key] = draw(json_values)
    ascii_only = draw(st.booleans())
    line = json.dumps(row, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    return line + draw(st.sampled_from([b"", b"\r"])), True


@st.composite
def plans(draw, root: Path) -> Plan:
    plan = Plan()
    (root / "src").mkdir()
    files = draw(st.lists(st.tuples(st.lists(names, min_size=1, max_size=3), contents), max_size=8))
    links = draw(st.lists(st.tuples(names, st.sampled_from([b"/etc/passwd", b"../../outside", b"ok.py", b"gone"])),
                          max_size=3))
    make_tree(root / "src", files, links, plan)
    make_dataset(root / "src" / DATASET, draw(st.lists(jsonl_lines(), max_size=12)), plan)
    make_archive(root / "src", draw(st.sampled_from(["tar.gz", "tar", "zip"])), draw(members),
                 draw(st.sampled_from(["none", "none", "none", "cut", "bomb"])), plan)
    return plan


def group(repo: str) -> str:
    return repo if repo in (TREE, ARCHIVE, "bomb") else DATASET


@settings(max_examples=40, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), chunk_files=st.sampled_from([0, 3]))
def test_a_build_of_hostile_sources_never_raises_and_accounts_for_every_input(tmp_path_factory, data, chunk_files):
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as scratch:
        root = Path(scratch)
        plan = data.draw(plans(root))
        build(config_for(plan.sources, tmp_path_factory.getbasetemp() / "fuzz-cache", chunk_files=chunk_files),
              root / "out", Progress(quiet=True))
        rows = manifest_rows(root / "out")
        found = Counter(group(row["repo"]) for row in rows)
        for name, (least, most) in plan.bounds.items():
            assert least <= found.pop(name, 0) <= most, name
        assert found == plan.expected
        assert all((row["decision"] == "dropped") == (row["reason"] is not None) for row in rows)


# --- fixed hostile cases, in-process and on Ray ------------------------------------------------


def hostile_sources(root: Path) -> list[SourceSpec]:
    """One of each: a name that is not UTF-8 (tree and tar), a broken JSON line, a content that
    is a number, a null path, a link out of the tree, a member past the limit."""
    repo = write_tree(root / "tree" / TREE, {"LICENSE": mit_license("Owner"), "ok.py": PYTHON_FILE,
                                             "sub/b.py": "b = 2\n"})
    (Path(os.fsdecode(os.fsencode(repo) + b"/caf\xe9.py"))).write_text("cafe = 1\n")
    os.symlink("/etc/hostname", repo / "escape")
    dataset = root / DATASET
    dataset.write_bytes(b"\n".join([
        json.dumps({"repo": "o/r", "path": "a.py", "content": "a = 1\n"}).encode(),
        b'{"repo": "o/r", "path": "broken.py", "content": "cut',
        json.dumps({"repo": "o/r", "path": "n.py", "content": 12}).encode(),
        json.dumps({"repo": "o/r", "path": None, "content": "x = 1\n"}).encode(),
        json.dumps({"repo": "o/r", "path": "ok2.py", "content": "u = '\u00e9'\n"}).encode(),
    ]) + b"\n")
    tar = make_tar(root / f"{ARCHIVE}.tar.gz", [
        (f"{ARCHIVE}/m{i}\udce9.py", f"m{i} = {i}\n", {}) for i in range(MAX_MEMBERS + 2)
    ])
    return [SourceSpec(str(root / "tree")), SourceSpec(str(dataset)), SourceSpec(str(tar))]


def output_bytes(out: Path) -> dict[str, bytes]:
    manifests = [out / "manifest" / name for name in ("repos.parquet", "attribution.parquet")] + [
        out / "index.json", out / "README.md", out / "NOTICE"]
    parts = [path for name in ("files", "sbom", "minhash", "minhash_bands")
             for path in sorted((out / "manifest" / name).glob("part-*"))]
    files = [*sorted((out / "shards").iterdir()), *parts, *manifests]
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The fixed hostile sources and their in-process build (which failed outright before)."""
    root = tmp_path_factory.mktemp("hostile")
    sources = hostile_sources(root / "src")
    build(config_for(sources, root / "cache"), root / "local", Progress(quiet=True))
    return root, sources


def test_hostile_sources_build_in_process_with_a_row_each(hostile):
    root, _ = hostile
    rows = {(r["repo"], r["path"]): r["reason"] for r in manifest_rows(root / "local")}
    assert len(rows) == 5 + 5 + MAX_MEMBERS + 2
    assert rows[(TREE, "caf\\xe9.py")] is None  # read, named by its bytes, kept like any other
    assert rows[(TREE, "escape")] == "link_escape"
    assert rows[(DATASET, "line:2")] == rows[(DATASET, "line:4")] == rows[("o/r", "n.py")] == "bad_record"
    assert rows[(ARCHIVE, "m0\\xe9.py")] == "no_license"
    assert [rows[(ARCHIVE, f"m{i}\\xe9.py")] for i in range(MAX_MEMBERS, MAX_MEMBERS + 2)] == ["archive_limit"] * 2


@pytest.mark.ray
@pytest.mark.parametrize("workers", [1, 2])
def test_hostile_sources_give_the_same_bytes_on_ray(hostile, ray_local, tmp_path, workers):
    root, sources = hostile
    build(config_for(sources, root / "cache", executor="ray", workers=workers, chunk_files=2), tmp_path / "out",
          Progress(quiet=True))
    assert output_bytes(tmp_path / "out") == output_bytes(root / "local")


def test_a_zip_member_with_a_hostile_name_is_one_row(tmp_path):
    """zip names are Unicode (or cp437); a flagged name that is not UTF-8 is mended by the reader."""
    path = tmp_path / "src" / "z.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("z/ok.py", PYTHON_FILE)
        archive.writestr("z/\u00e9\n\x01.py", "e = 1\n")
    path.write_bytes(path.read_bytes().replace("\u00e9".encode(), b"\xe9\xe9"))
    build(config_for([SourceSpec(str(path))], tmp_path / "cache"), tmp_path / "out", Progress(quiet=True))
    assert sorted(r["path"] for r in manifest_rows(tmp_path / "out")) == ["\\xe9\\xe9\n\x01.py", "ok.py"]


def test_the_counting_by_construction(tmp_path):
    """What the fuzz test trusts: a tar of two files and a link is three rows to expect."""
    plan = Plan()
    make_archive(tmp_path, "tar", [(b"a.py", "file", b"a"), (b"b/c.py", "file", b"c"), (b"l", "symlink", b"a.py")],
                 "none", plan)
    assert plan.expected == Counter({ARCHIVE: 3})
    with tarfile.open(tmp_path / f"{ARCHIVE}.tar") as tar:
        assert [(m.name, m.type) for m in tar] == [("a.py", tarfile.REGTYPE), ("b/c.py", tarfile.REGTYPE),
                                                   ("l", tarfile.SYMTYPE)]
