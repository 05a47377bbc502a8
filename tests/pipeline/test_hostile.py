"""Hostile and broken input at the build's edges (docs/SECURITY.md lists these tests): sources
that try to be options, credentials in URLs, an --out that is not the build's, a stage that
raises on one file, builds that read nothing. In-process builds: seconds each."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus_core import reasons
from corpus_core.errors import BuildFailed, ConfigError
from corpus_core.records import FileRecord, SourceSpec
from corpus_core.stage import FileStage, stage_error_detail
from corpus_core.urls import scrub_credentials
from pipeline.cli import main
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.outdir import LOCK, MARKER
from pipeline.progress import Progress
from pipeline.run import build
from stages.shards import ShardConfig
from stages.sources import resolve_units
from tests.conftest import LENIENT, PYTHON_FILE, make_git_repo, mit_license, program, write_tree


def local_config(sources, **execution) -> BuildConfig:
    return BuildConfig(**LENIENT, sources=tuple(sources), shards=ShardConfig(target_bytes=2000),
                       execution=ExecutionConfig(executor="local", **execution))


def small_repo(root: Path, files: int = 3) -> Path:
    programs = {f"m{i}.py": program(i, lines=12) for i in range(files)}
    return write_tree(root, {"LICENSE": mit_license("Owner"), **programs})


# --- sources are data, never options -----------------------------------------------------

@pytest.mark.parametrize("source", [
    "git+--upload-pack=touch pwned;false",
    "git+https://example.org/repo@--upload-pack=touch pwned",
    "git+ext::sh -c touch% pwned",
    "git+ftp://example.org/repo",
])
def test_git_sources_that_would_be_options_are_refused(tmp_path, source, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="git"):
        resolve_units([SourceSpec(source)])
    assert main(["build", "--out", str(tmp_path / "out"), source]) == 2
    assert not (tmp_path / "pwned").exists()


def test_a_git_fetch_never_reads_the_url_as_an_option(tmp_path, monkeypatch):
    """Past the check too: git gets `--end-of-options` before the URL and revision."""
    from stages import sources

    calls = []
    monkeypatch.setattr(sources, "_run", lambda command, what, cwd=None: calls.append(command) or "")
    monkeypatch.setattr(sources, "git_head", lambda repo, rev="HEAD": "0" * 40)
    sources.fetch_git("git+file:///srv/repo@v1", tmp_path)
    fetch = next(c for c in calls if "fetch" in c)
    assert fetch[fetch.index("--end-of-options") + 1:] == ["file:///srv/repo", "v1"]


def test_credentials_in_a_source_url_are_written_nowhere(tmp_path, monkeypatch, capsys):
    origin = make_git_repo(tmp_path / "origin", [{"LICENSE": mit_license("Origin"), "a.py": PYTHON_FILE}])
    source = f"git+file://user:s3cr3t@t0ken@{origin}"  # a password with an @ of its own; file:// ignores it
    monkeypatch.chdir(tmp_path)  # the default cache_dir, ./.cache/corpus, is looked at too
    out = tmp_path / "out"
    assert main(["build", "--executor", "local", "--keep-work", "--out", str(out), source]) == 0
    printed = capsys.readouterr()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(origin)]
    assert any(".cache" in p.parts for p in written) and any("_work" in p.parts for p in written)
    assert [p for p in written if "s3cr3t" in str(p) or b"s3cr3t" in p.read_bytes()] == []
    assert "s3cr3t" not in printed.out + printed.err
    repos = pq.read_table(out / "manifest" / "repos.parquet").to_pylist()
    assert repos[0]["source"] == f"git+file://***@{origin}"
    assert main(["build", "--out", str(tmp_path / "o2"), "https://user:s3cr3t@example.org/o/r"]) == 2
    assert "s3cr3t" not in capsys.readouterr().err  # `git+` forgotten: the error names it without the token


def test_a_failed_fetch_names_the_url_without_its_credentials(tmp_path, capsys):
    source = f"git+file://user:s3cr3t-t0ken@{tmp_path}/no-such-repo"
    out = tmp_path / "out"
    assert main(["build", "--executor", "local", "--out", str(out), source]) == 1  # every source failed
    assert "s3cr3t" not in capsys.readouterr().err
    assert scrub_credentials("see https://a:b@h/x and ssh://tok@h/y") == "see https://***@h/x and ssh://***@h/y"


# --- --out is the build's own --------------------------------------------------------------

def test_an_out_folder_holding_other_files_is_refused_and_left_alone(tmp_path):
    repo = small_repo(tmp_path / "src" / "repo")
    out = write_tree(tmp_path / "mine", {"shards/holiday.jpg": b"\xff\xd8", "NOTICE": "my notes\n"})
    with pytest.raises(ConfigError, match="holds files no build made"):
        build(local_config([SourceSpec(str(repo))]), out, Progress(quiet=True))
    assert (out / "shards" / "holiday.jpg").read_bytes() == b"\xff\xd8"
    assert sorted(p.name for p in out.iterdir()) == ["NOTICE", "shards"]

    # --force writes the build's outputs and still deletes nothing it did not write
    build(local_config([SourceSpec(str(repo))]), out, Progress(quiet=True), force=True)
    assert (out / "shards" / "holiday.jpg").exists() and (out / "manifest" / "files" / "part-00000.parquet").exists()
    assert (out / "NOTICE").read_text() != "my notes\n"  # an output of the same name is replaced
    marker = json.loads((out / MARKER).read_text())
    assert "shards/holiday.jpg" not in marker["files"] and "manifest/run.json" in marker["files"]


def test_a_rebuild_replaces_only_what_the_previous_build_wrote(tmp_path):
    repo = small_repo(tmp_path / "src" / "repo", files=12)
    out = tmp_path / "out"
    config = replace(local_config([SourceSpec(str(repo))]), shards=ShardConfig(target_bytes=200))
    build(config, out, Progress(quiet=True))
    many = sorted(p.name for p in (out / "shards").glob("*.parquet"))
    (out / "shards" / "README.txt").write_text("a note the team keeps here\n")
    build(replace(config, shards=ShardConfig(target_bytes=10**7)), out, Progress(quiet=True))  # one shard now
    left = sorted(p.name for p in (out / "shards").glob("*.parquet"))
    listed = [shard["file"] for shard in json.loads((out / "index.json").read_text())["shards"]]
    assert len(many) > 1 and left == listed == ["part-00000.parquet"]  # the old part-00001 is gone
    assert (out / "shards" / "README.txt").exists()


def test_an_out_inside_a_source_is_refused(tmp_path):
    repo = small_repo(tmp_path / "repo")
    with pytest.raises(ConfigError, match="inside the source"):
        build(local_config([SourceSpec(str(repo))]), repo / "out", Progress(quiet=True))
    assert not (repo / "out").exists()


def test_a_second_build_into_the_same_out_stops_at_once(tmp_path):
    repo = small_repo(tmp_path / "src" / "repo")
    out = tmp_path / "out"
    out.mkdir()
    holder = os.open(out / LOCK, os.O_RDWR | os.O_CREAT)  # what a running build holds
    os.write(holder, b"pid 4242\n")
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(ConfigError, match=r"another build is writing into .* \(pid 4242\)"):
            build(local_config([SourceSpec(str(repo))]), out, Progress(quiet=True))
    finally:
        os.close(holder)
    build(local_config([SourceSpec(str(repo))]), out, Progress(quiet=True))  # the lock is free again
    assert (out / "manifest" / "run.json").exists()


# --- loud failures, quiet isolation --------------------------------------------------------

def test_a_missing_opt_out_registry_is_an_error(tmp_path):
    repo = small_repo(tmp_path / "repo")
    config = BuildConfig(**{**LENIENT}, sources=(SourceSpec(str(repo)),),
                         execution=ExecutionConfig(executor="local"))
    config = replace(config, optout=replace(config.optout, registry=str(tmp_path / "missing.jsonl")))
    with pytest.raises(ConfigError, match="missing.jsonl.* does not exist"):
        build(config, tmp_path / "out", Progress(quiet=True))


def test_a_build_whose_every_source_failed_exits_non_zero(tmp_path, capsys):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b\x08 not really gzip")
    assert main(["build", "--executor", "local", "--out", str(tmp_path / "out"), str(broken)]) == 1
    err = capsys.readouterr().err
    assert "build failed: every source failed: broken" in err and "not a readable tar archive" in err
    assert not (tmp_path / "out" / "manifest").exists()


def test_a_build_that_read_no_text_fails(tmp_path):
    binaries = write_tree(tmp_path / "bin", {"a.bin": b"\x00\x01", "b.bin": b"\x00\x02"})
    with pytest.raises(BuildFailed, match="no file could be read as text \\(2 binary\\)"):
        build(local_config([SourceSpec(str(binaries))]), tmp_path / "out", Progress(quiet=True))


class Flaky(FileStage):
    name = "flaky"

    def process(self, record: FileRecord) -> None:
        if record.path == "m1.py":
            raise ValueError("cannot handle\nthis one")


def test_a_stage_raising_on_one_file_drops_that_file_with_its_reason():
    records = [FileRecord(repo="r", path=f"m{i}.py", size=1, content="x") for i in range(3)]
    out = list(Flaky().run(records))
    assert [r.reason for r in out] == [None, reasons.STAGE_ERROR, None]
    assert out[1].detail == "flaky: ValueError: cannot handle this one" and out[1].content is None
    assert [r.kept for r in out] == [True, False, True]
    # a message naming a file that is not UTF-8 is written as its name is, or Parquet refuses it
    assert stage_error_detail("s", OSError(b"caf\xe9".decode("utf-8", "surrogateescape"))) == "s: OSError: caf\\xe9"


def test_stage_errors_past_the_configured_share_fail_the_build(tmp_path, monkeypatch):
    from filters.pii import PiiRedactor

    original = PiiRedactor.process

    def process(self, record):
        if record.path == "m1.py":
            raise RuntimeError("a bug")
        original(self, record)

    monkeypatch.setattr(PiiRedactor, "process", process)
    repo = small_repo(tmp_path / "src" / "repo", files=4)
    with pytest.raises(BuildFailed, match=r"stage pii raised on 1 of 4 files"):
        build(local_config([SourceSpec(str(repo))]), tmp_path / "strict", Progress(quiet=True))

    build(local_config([SourceSpec(str(repo))], max_stage_error_share=0.5), tmp_path / "lenient", Progress(quiet=True))
    rows = {r["path"]: r for r in pq.read_table(tmp_path / "lenient" / "manifest" / "files").to_pylist()}
    assert rows["m1.py"]["reason"] == reasons.STAGE_ERROR
    assert rows["m1.py"]["detail"] == "pii: RuntimeError: a bug"
    assert rows["m0.py"]["decision"] == "kept" and len(rows) == 5


def test_git_subprocesses_never_prompt():
    """A fetch that needs a password fails at once instead of waiting on a terminal, and git
    speaks no transport beyond those `git+` accepts (ext:: would run a command)."""
    from stages.sources import _run

    _run(["sh", "-c", 'test "$GIT_TERMINAL_PROMPT" = 0 && test "$GIT_ALLOW_PROTOCOL" = https:ssh:file'], "env")


def readable(path: Path) -> str:
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    return path.read_bytes().decode("utf-8", "replace")


def test_a_secret_in_a_source_file_reaches_no_output_work_file_or_cache(tmp_path):
    token = "ghp_" + "R8x2Kq9ZmW4vT7bN1cY6" + "pL3sD5fG0hJ2kA9eU4iO"  # made up, GitHub's shape
    repo = write_tree(tmp_path / "src" / "repo", {
        "LICENSE": mit_license("Owner"),
        "client.py": f'# talks to the API\nTOKEN = "{token}"\n\n\ndef call():\n    return TOKEN\n',
    })
    config = replace(local_config([SourceSpec(str(repo))], keep_work_dir=True), cache_dir=str(tmp_path / "cache"))
    config = replace(config, pii=replace(config.pii, enabled=True))
    build(config, tmp_path / "out", Progress(quiet=True))
    written = [p for root in (tmp_path / "out", tmp_path / "cache") for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in written) and (tmp_path / "out" / "_work").exists()
    assert [p for p in written if token in readable(p)] == []  # Parquet is compressed: read it
    shard_text = "".join(readable(p) for p in (tmp_path / "out" / "shards").glob("*.parquet"))
    assert 'TOKEN = \\"<KEY>' in shard_text
    rows = pq.read_table(tmp_path / "out" / "manifest" / "files").to_pylist()
    assert {r["path"]: r["pii_key"] for r in rows}["client.py"] == 1


def test_a_marker_naming_files_outside_out_deletes_nothing_there(tmp_path):
    repo = small_repo(tmp_path / "src" / "repo")
    victim = write_tree(tmp_path / "home", {"notes.txt": "mine\n", "deep/x.txt": "mine too\n"})
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim / "deep", out / "linked")  # a folder link inside OUT leads out of it
    (out / MARKER).write_text(json.dumps({"format": 1, "files": [
        str(victim / "notes.txt"), "../home/notes.txt", "linked/x.txt"]}))  # a marker that came with the folder
    build(local_config([SourceSpec(str(repo))]), out, Progress(quiet=True))
    assert (victim / "notes.txt").read_text() == "mine\n" and (victim / "deep" / "x.txt").exists()
    assert set(json.loads((out / MARKER).read_text())["files"]) >= {"manifest/run.json", "index.json"}


def test_a_file_no_build_wrote_is_never_replaced_without_force(tmp_path):
    repo = small_repo(tmp_path / "src" / "repo")
    out = tmp_path / "out"
    build(local_config([SourceSpec(str(repo))]), out, Progress(quiet=True))
    marker = json.loads((out / MARKER).read_text())
    (out / MARKER).write_text(json.dumps({**marker, "files": [f for f in marker["files"] if f != "README.md"]}))
    (out / "README.md").write_text("the team's own notes\n")  # as if an older build had not written one
    with pytest.raises(ConfigError, match="README.md exists and no build wrote it"):
        build(local_config([SourceSpec(str(repo))]), out, Progress(quiet=True))
    assert (out / "README.md").read_text() == "the team's own notes\n"
