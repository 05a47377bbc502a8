"""Each source kind resolves to the right units and is read; bad specs fail before work starts."""

from __future__ import annotations

import json
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.records import SourceSpec
from corpus_core.storage import sha256_file
from stages.ingest import Ingest, IngestConfig
from stages.readers import SourceError
from stages.sources import fetch_pypi, parse_git_url, repo_name_from_url, resolve_units
from tests.conftest import C_FILE, JS_FILE, PYTHON_FILE, make_git_repo, make_tar, make_zip, write_tree


def ingest_all(units, cache_dir):
    stage = Ingest(IngestConfig(), cache_dir)
    records = [r for unit in units for r in stage.run(unit)]
    return records, stage


def test_collection_directory_gives_one_unit_per_repository(tmp_path):
    root = tmp_path / "repos"
    write_tree(root / "plain", {"a.py": PYTHON_FILE})
    make_git_repo(root / "gitrepo", [{"b.c": C_FILE}])
    make_tar(root / "pkg-1.0.tar.gz", [("pkg-1.0/c.js", JS_FILE, {})])
    make_zip(root / "zipped.zip", {"z/d.py": PYTHON_FILE})
    (root / "loose.txt").write_text("a loose file\n")
    units = resolve_units([SourceSpec(str(root))])
    assert [(u.kind, u.repo) for u in units] == [
        ("git", "gitrepo"), ("archive", "pkg-1.0"), ("directory", "plain"), ("archive", "zipped"), ("loose", "repos"),
    ]
    records, stage = ingest_all(units, tmp_path / "cache")
    assert {(r.repo, r.path) for r in records} == {
        ("gitrepo", "b.c"), ("pkg-1.0", "c.js"), ("plain", "a.py"), ("zipped", "d.py"), ("repos", "loose.txt"),
    }
    assert all(r.kept for r in records)
    assert len(stage.repos["gitrepo"].commit) == 40


def test_unknown_or_missing_sources_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_units([SourceSpec(str(tmp_path / "nope"))])
    with pytest.raises(ConfigError, match="pypi:NAME==VERSION"):
        resolve_units([SourceSpec("pypi:requests")])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="not an archive"):
        resolve_units([SourceSpec(str(tmp_path / "notes.txt"))])


def test_two_sources_with_one_repository_name_are_refused(tmp_path):
    write_tree(tmp_path / "a" / "same", {"x.py": "x = 1\n"})
    write_tree(tmp_path / "b" / "same", {"y.py": "y = 1\n"})
    with pytest.raises(ConfigError, match="'same'"):
        resolve_units([SourceSpec(str(tmp_path / "a")), SourceSpec(str(tmp_path / "b"))])


def test_git_url_parsing():
    url = "git+https://github.com/psf/requests@v2.32.3"
    assert parse_git_url(url) == ("https://github.com/psf/requests", "v2.32.3")
    assert parse_git_url("git+ssh://git@github.com/o/n.git") == ("ssh://git@github.com/o/n.git", "HEAD")
    assert parse_git_url("git+file:///srv/repo@abc123") == ("file:///srv/repo", "abc123")
    assert repo_name_from_url("https://github.com/psf/requests.git") == "github.com/psf/requests"
    assert repo_name_from_url("git@github.com:o/n.git") == "github.com/o/n"


def test_git_url_is_shallow_fetched_at_the_pinned_revision(tmp_path):
    origin = make_git_repo(tmp_path / "origin", [{"a.py": "v = 1\n"}, {"a.py": "v = 2\n", "b.py": "b = 1\n"}])
    first = subprocess.run(["git", "-C", str(origin), "rev-list", "--max-parents=0", "HEAD"],
                           capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "-C", str(origin), "tag", "v1", first], check=True)
    units = resolve_units([SourceSpec(f"git+file://{origin}@v1")])
    records, stage = ingest_all(units, tmp_path / "cache")
    assert {r.path: r.content for r in records} == {"a.py": "v = 1\n"}
    (repo,) = stage.repos.values()
    assert repo.commit == first and repo.kind == "git_url"
    shallow = list((tmp_path / "cache" / "git").iterdir())[0]
    assert (shallow / "shallow").exists()


def test_archive_sha256_pin_is_checked(tmp_path):
    tar = make_tar(tmp_path / "p.tar.gz", [("p/a.py", PYTHON_FILE, {})])
    units = resolve_units([SourceSpec(str(tar), sha256="0" * 64)])
    records, stage = ingest_all(units, tmp_path / "cache")
    assert records[0].reason == reasons.SOURCE_UNREADABLE and "sha256" in records[0].detail


def test_parquet_and_jsonl_datasets(tmp_path):
    rows = [
        {"repo": "o/one", "path": "a.py", "content": PYTHON_FILE, "stars": 5, "url": "https://example.com/o/one"},
        {"repo": "o/two", "path": "b.js", "content": JS_FILE, "stars": None, "url": None},
        {"repo": "o/two", "path": "null.txt", "content": None, "stars": None, "url": None},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "files.parquet")
    (tmp_path / "files.jsonl").write_text("".join(json.dumps({**r, "repo": r["repo"] + "-j"}) + "\n" for r in rows))
    for name, suffix in (("files.parquet", ""), ("files.jsonl", "-j")):
        (unit,) = resolve_units([SourceSpec(str(tmp_path / name))])
        records, stage = ingest_all([unit], tmp_path / "cache")
        assert {(r.repo, r.path, r.decision, r.reason) for r in records} == {
            ("o/one" + suffix, "a.py", "kept", None),
            ("o/two" + suffix, "b.js", "kept", None),
            ("o/two" + suffix, "null.txt", "dropped", reasons.UNREADABLE),
        }
        assert stage.repos["o/one" + suffix].stars == 5
        assert [r.detail for r in records if r.path == "null.txt"] == ["content is null"]


def test_dataset_without_the_required_columns(tmp_path):
    pq.write_table(pa.table({"repo": ["r"], "text": ["x"]}), tmp_path / "bad.parquet")
    records, stage = ingest_all(resolve_units([SourceSpec(str(tmp_path / "bad.parquet"))]), tmp_path / "cache")
    assert records[0].reason == reasons.SOURCE_UNREADABLE and "['content', 'path']" in records[0].detail


# The registry kinds fetch with pip and npm from the real registries (the smallest pinned
# packages of the sample); they skip where the registry cannot be reached.
SIX = ("pypi:six==1.17.0", "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81")
IS_NUMBER = ("npm:is-number@7.0.0", "7b75c1057198cf97696909a9bee176c9c5e9bcb5b03bf3ecef2f484defadd51e")


@pytest.mark.parametrize("source, sha256, expected, owner", [(*SIX, "six.py", "benjaminp"),
                                                              (*IS_NUMBER, "index.js", "jonschlinkert")])
def test_registry_packages_are_fetched_and_checked(tmp_path, source, sha256, expected, owner):
    if source.startswith("npm:") and shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    records, stage = ingest_all(resolve_units([SourceSpec(source, sha256=sha256)]), tmp_path / "cache")
    offline = ("connection", "network", "resolve", "timed out", "unreachable", "ENOTFOUND", "EAI_AGAIN")
    if records[0].reason == reasons.SOURCE_UNREADABLE and any(w in records[0].detail for w in offline):
        pytest.skip(f"registry unreachable here: {records[0].detail}")
    (repo,) = stage.repos.values()
    assert repo.sha256 == sha256 and repo.commit == source.split("==" if "==" in source else "@")[-1]
    assert expected in {r.path for r in records if r.kept}
    # the owner is the repository's account that the package's metadata names, on every file
    assert repo.owner == owner and {r.owner for r in records} == {owner}
    # a second ingest is served from the cache
    again, _ = ingest_all(resolve_units([SourceSpec(source, sha256=sha256)]), tmp_path / "cache")
    assert [r.sha256 for r in again] == [r.sha256 for r in records]


def test_pypi_sources_are_fetched_as_files_without_building(tmp_path, monkeypatch):
    """PyYAML's sdist builds with Cython: pip would build the backend just to read metadata.
    The fetcher runs no process at all and checks the index's sha256."""
    def no_process(*args, **kwargs):
        raise AssertionError(f"a process was started: {args[0]!r}")

    monkeypatch.setattr(subprocess, "run", no_process)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    try:
        archive = fetch_pypi("pypi:PyYAML==6.0.2", tmp_path / "cache")
    except SourceError as err:
        if "cannot read the index" in str(err):
            pytest.skip(f"registry unreachable here: {err}")
        raise
    assert archive.name == "pyyaml-6.0.2.tar.gz"
    assert sha256_file(archive) == "d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e"
    with pytest.raises(SourceError, match="no source distribution of version 0.0.0.404"):
        fetch_pypi("pypi:PyYAML==0.0.0.404", tmp_path / "cache")
