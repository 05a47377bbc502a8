"""Opt-out: the registry and its validation, the build dropping each kind of entry first,
`optout apply` on a published build, and `lookup` for code owners."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.records import SourceSpec
from filters.optout import OptOutConfig
from manifests import optout
from pipeline.audit import audit
from pipeline.cli import main
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, program

FILES = {  # repo -> {path: content}
    "octo/hello": {"a.py": program(1, 12), "b.py": program(2, 12)},
    "octo/other": {"c.py": program(3, 12)},
    "github.com/acme/tools": {"src/x.py": program(4, 12), "internal/secret.py": program(5, 12),
                              "internal/deep/more.py": program(6, 12)},
    "zed/lib": {"copy.py": program(7, 12), "own.py": program(8, 12)},
}
SHA_OF_COPY = hashlib.sha256(program(7, 12).encode()).hexdigest()


def dataset(root):
    path = root / "files.jsonl"
    path.write_text("".join(json.dumps({"repo": repo, "path": p, "content": c, "license": "MIT"}) + "\n"
                            for repo, files in FILES.items() for p, c in files.items()))
    return path


def run_cli(*args: str) -> int:
    return main(list(args))


def test_registry_add_list_remove_and_validation(tmp_path, capsys):
    registry = str(tmp_path / "optout.jsonl")
    assert run_cli("optout", "add", "--registry", registry, "--repo", "octo/hello", "--by", "octo@cat.dev",
                   "--reason", "form #1") == 0
    assert run_cli("optout", "add", "--registry", registry, "--repo", "octo/hello", "--by", "x") == 2
    assert "already in the registry" in capsys.readouterr().err
    for bad, message in ((["--repo", "not a repo"], "expected owner/name"), (["--owner=-bad-"], "expected a user"),
                         (["--sha256", "abc"], "64 lowercase hex"), (["--path", "/etc/*", "--repo", "a/b"], "relative"),
                         (["--path", "src/*"], "needs the repository")):
        assert run_cli("optout", "add", "--registry", registry, *bad, "--by", "x") == 2
        assert message in capsys.readouterr().err
    capsys.readouterr()
    assert run_cli("optout", "list", "--registry", registry, "--json") == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["kind"] == "repo" and entry["value"] == "octo/hello" and entry["requested_by"] == "octo@cat.dev"
    assert run_cli("optout", "remove", "--registry", registry, entry["id"]) == 0
    assert optout.load(registry) == []
    (tmp_path / "broken.jsonl").write_text('{"kind": "repo", "value": "x"}\n')
    with pytest.raises(ConfigError, match="line 1"):
        optout.load(tmp_path / "broken.jsonl")


def test_matcher_kinds():
    entries = [optout.make_entry("repo", "Octo/Hello", requested_by="a", reason=""),
               optout.make_entry("owner", "acme", requested_by="a", reason=""),
               optout.make_entry("path", "internal/*", repo="zed/lib", requested_by="a", reason=""),
               optout.make_entry("sha256", "0" * 64, requested_by="a", reason="")]
    matcher = optout.Matcher(entries)
    assert matcher.match("octo/hello", "a.py", None, None).kind == "repo"  # names compare without case
    assert matcher.match("github.com/octo/hello", "a.py", None, None).kind == "repo"
    # an owner entry matches the owner the origin names, never a part of the repository's name
    assert matcher.match("github.com/acme/tools", "x", None, "acme").kind == "owner"
    assert matcher.match("pypi/tools", "x", None, "ACME").kind == "owner"
    assert matcher.match("acme/tools", "x", None, None) is None
    assert optout.Matcher([optout.make_entry("owner", "npm", requested_by="a", reason="")]).match(
        "npm/left-pad", "index.js", None, "stevemao") is None
    assert matcher.match("zed/lib", "internal/a/b.py", None, None).kind == "path"  # * crosses /
    assert matcher.match("zed/lib", "src/internal/b.py", None, None) is None
    assert matcher.match("else/where", "f", "0" * 64, None).kind == "sha256"
    assert matcher.match("octo/hellox", "a.py", None, None) is None


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("optout")
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset(root))),),
                         tokenize=TokenizeConfig(vocab_size=300), execution=ExecutionConfig(executor="local"))
    build(config, root / "out", Progress(quiet=True))
    return root


def test_the_build_drops_each_kind_first(published, tmp_path):
    registry = tmp_path / "optout.jsonl"
    for entry in (optout.make_entry("repo", "octo/hello", requested_by="a", reason=""),
                  optout.make_entry("path", "internal/*", repo="acme/tools", requested_by="a", reason=""),
                  optout.make_entry("sha256", SHA_OF_COPY, requested_by="a", reason="")):
        optout.add(registry, entry)
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset(tmp_path))),),
                         optout=OptOutConfig(registry=str(registry)), tokenize=TokenizeConfig(vocab_size=300),
                         execution=ExecutionConfig(executor="local"))
    run = build(config, tmp_path / "out", Progress(quiet=True))
    rows = pq.read_table(tmp_path / "out" / "manifest" / "files").to_pylist()
    opted = {(r["repo"], r["path"]) for r in rows if r["reason"] == reasons.OPTED_OUT}
    assert opted == {("octo/hello", "a.py"), ("octo/hello", "b.py"), ("github.com/acme/tools", "internal/secret.py"),
                     ("github.com/acme/tools", "internal/deep/more.py"), ("zed/lib", "copy.py")}
    assert all(r["language"] is None for r in rows if r["reason"] == reasons.OPTED_OUT)  # no further work on them
    assert all(r["detail"].startswith("opt-out ") for r in rows if r["reason"] == reasons.OPTED_OUT)
    assert run["stages"][1]["name"] == "optout" and run["stages"][1]["dropped"] == {reasons.OPTED_OUT: 5}
    # the registry is part of the fingerprint: a changed registry never reuses old parts
    before = config.fingerprint()
    optout.add(registry, optout.make_entry("owner", "zed", requested_by="a", reason=""))
    assert config.fingerprint() != before


def test_apply_removes_exactly_the_matching_files_as_a_new_version(published, tmp_path, capsys):
    out = published / "out"
    before = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    registry = tmp_path / "optout.jsonl"
    optout.add(registry, optout.make_entry("owner", "acme", requested_by="legal@acme.io", reason="request"))
    optout.add(registry, optout.make_entry("sha256", SHA_OF_COPY, requested_by="zed", reason=""))
    new = tmp_path / "v2"
    assert run_cli("optout", "apply", str(out), "--registry", str(registry), "--to", str(new)) == 0
    printed = capsys.readouterr().out
    assert "4 file(s) removed" in printed and "removed zed/lib/copy.py" in printed
    assert {p.name: p.read_bytes() for p in (out / "shards").iterdir()} == before  # the old version is intact
    rows = {(r["repo"], r["path"]): r for r in pq.read_table(new / "manifest" / "files").to_pylist()}
    removed = {k for k, r in rows.items() if r["reason"] == reasons.OPTED_OUT}
    assert removed == {("github.com/acme/tools", p) for p in FILES["github.com/acme/tools"]} | {("zed/lib", "copy.py")}
    shard_rows = []
    for shard in sorted((new / "shards").glob("part-*.parquet")):
        shard_rows += [(r["repo"], r["path"]) for r in pq.read_table(shard, columns=["repo", "path"]).to_pylist()]
    kept = {k for k, r in rows.items() if r["decision"] == "kept"}
    assert sorted(shard_rows) == sorted(kept) and len(kept) == 8 - 4
    for (_repo, path), row in rows.items():
        if row["decision"] == "kept":
            table = pq.read_table(new / "shards" / f"part-{row['shard']:05d}.parquet")
            assert table.slice(row["row"], 1).column("path")[0].as_py() == path
    report = audit(new)
    assert report.passed, report.failures
    run = json.loads((new / "manifest" / "run.json").read_text())
    assert run["republished"][0]["removed"] == 4 and run["counts"]["kept"] == 4
    assert "acme/tools" not in (new / "NOTICE").read_text()
    repos = {r["repo"]: r for r in pq.read_table(new / "manifest" / "repos.parquet").to_pylist()}
    assert repos["github.com/acme/tools"]["decision"] == "dropped"
    assert repos["github.com/acme/tools"]["reason"] == reasons.OPTED_OUT
    assert run_cli("optout", "apply", str(out), "--registry", str(registry), "--to", str(new)) == 2  # never overwrites


def test_lookup_by_repository_owner_and_file(published, tmp_path, capsys):
    out = str(published / "out")
    assert run_cli("lookup", out, "--repo", "acme/tools", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["path"] for r in rows) == sorted(FILES["github.com/acme/tools"])
    assert all(r["decision"] == "kept" and r["shard"] is not None for r in rows)
    assert run_cli("lookup", out, "--owner", "octo") == 0
    assert "octo: 3 file(s)" in capsys.readouterr().out
    mine = tmp_path / "mine.py"
    mine.write_text(program(7, 12))
    assert run_cli("lookup", out, "--file", str(mine)) == 0
    printed = capsys.readouterr().out
    assert "zed/lib/copy.py\tshard" in printed and "1 file(s)" in printed
    assert run_cli("lookup", out) == 2
