"""Owners from each source's real origin (stages/origin.py): git remotes, package metadata in
archives and folders, dataset rows; the `owner` column they give files.parquet and
repos.parquet, and opt-out and lookup by owner in a real build."""

from __future__ import annotations

import json
import tarfile

import pyarrow.parquet as pq
import pytest

from corpus_core import reasons
from corpus_core.records import SourceSpec
from corpus_core.urls import repository_owner
from filters.optout import OptOutConfig
from manifests import optout
from manifests.republish import apply_optout, lookup
from pipeline.audit import audit, load_policy
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages import origin
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, git, make_git_repo, make_tar, make_zip, mit_license, program, write_tree


@pytest.mark.parametrize("url, any_host, owner", [
    ("https://github.com/psf/requests", False, "psf"),
    ("https://github.com/psf/requests.git", False, "psf"),
    ("git+https://github.com/psf/requests.git", False, "psf"),
    ("git@github.com:Octo/hello.git", False, "Octo"),
    ("ssh://git@gitlab.com:22/group/sub/project", False, "group"),
    ("github:sindresorhus/got", False, "sindresorhus"),
    ("https://git.sr.ht/~sircmpwn/hare", False, "sircmpwn"),
    ("https://github.com/psf/requests/issues", False, "psf"),
    ("https://user:token@github.com/octo/private", False, "octo"),
    ("https://docs.python.org/3/library", False, None),  # a project site is no code host
    ("https://git.example.org/team/tool", True, "team"),  # a git remote is a repository on any host
    ("https://github.com/psf", False, None),  # an account, not a repository
    ("file:///srv/git/team/tool.git", True, None),
    ("/srv/git/team/tool.git", True, None),
    ("https://github.com/-bad-/x", False, None),
    # found in review: pages of the host are no account, and a host's spellings are one host
    ("https://github.com/sponsors/psf", False, None),
    ("https://github.com/orgs/psf/people", False, None),
    ("https://gitlab.com/groups/foo/bar", False, None),
    ("https://www.github.com/psf/requests", False, "psf"),
    ("https://github.com:/psf/x", False, "psf"),
])
def test_repository_owner(url, any_host, owner):
    assert repository_owner(url, any_host) == owner


PKG_INFO = """Metadata-Version: 2.1
Name: tool
Version: 1.0
Home-page: https://tool.readthedocs.io
Project-URL: Documentation, https://tool.readthedocs.io
Project-URL: Source Code, https://github.com/toolmakers/tool
Author: Ann Author
"""


def test_owner_of_package_metadata():
    assert origin.owner_of_metadata("PKG-INFO", PKG_INFO.encode()) == "toolmakers"
    # no source label: the home page when it is on a code host, else any Project-URL that is
    assert origin.owner_of_metadata("PKG-INFO", b"Name: x\nHome-page: https://gitlab.com/gl/x\n") == "gl"
    assert origin.owner_of_metadata(
        "PKG-INFO", b"Name: x\nHome-page: https://x.dev\nProject-URL: Tracker, https://github.com/xdev/x/issues\n"
    ) == "xdev"
    assert origin.owner_of_metadata("PKG-INFO", b"Name: x\nHome-page: https://x.dev\nAuthor: A\n") is None
    for repository, owner in (("jonschlinkert/is-number", "jonschlinkert"), ("github:a-b/c", "a-b"),
                              ({"type": "git", "url": "git+https://github.com/npm/cli.git"}, "npm"),
                              ({"url": "https://example.org/x/y"}, None)):
        assert origin.owner_of_metadata("package.json", json.dumps({"repository": repository}).encode()) == owner
    assert origin.owner_of_metadata("package.json", json.dumps(
        {"homepage": "https://x.dev", "bugs": {"url": "https://github.com/bugfix/x/issues"}}).encode()) == "bugfix"
    for broken in (b"{", b"[]", json.dumps({"repository": 7}).encode(), b"\xff\xfe"):
        assert origin.owner_of_metadata("package.json", broken) is None


def test_ingest_takes_the_owner_from_a_one_pass_read_as_owner_of_archive_finds_it(tmp_path, monkeypatch):
    """The owner ingest gives a tar's files without reading it again for its metadata file
    (`origin.TarMetadata` handed the members a one-pass read holds) is `owner_of_archive`'s,
    and where the read holds no answer (its data unread, two passes), that is asked."""
    from stages.ingest import Ingest, IngestConfig
    from stages.sources import Unit

    monkeypatch.setattr(origin, "MAX_MEMBERS_SCANNED", 4)
    code = [(f"t-1.0/m{i}.py", "x = 1\n", {}) for i in range(3)]
    pkg_info = ("t-1.0/PKG-INFO", PKG_INFO, {})
    cases = {
        "first": [pkg_info, *code], "last": [*code, pkg_info], "none": code,
        "past the members scanned": [*code, ("t-1.0/m3.py", "x = 1\n", {}), pkg_info],
        "nested": [*code, ("t-1.0/vendor/dep/PKG-INFO", PKG_INFO, {})],
        "another top folder": [*code, ("docs/PKG-INFO", PKG_INFO, {})],
        "a folder first": [("t-1.0/", None, {"type": tarfile.DIRTYPE}), *code[:2], pkg_info],
        "npm": [("package/index.js", "x = 1\n", {}),
                ("package/package.json", json.dumps({"repository": "npmco/t"}), {})],
        "a link named PKG-INFO": [*code, ("t-1.0/PKG-INFO", None, {"type": tarfile.SYMTYPE, "linkname": "m0.py"})],
    }
    # what the metadata rules give (the rest: None)
    OWNERS = {"first": "toolmakers", "last": "toolmakers", "a folder first": "toolmakers", "npm": "npmco",
              "data not read": "toolmakers", "two passes": "toolmakers"}
    asked = []
    real = origin.owner_of_archive
    monkeypatch.setattr(origin, "owner_of_archive", lambda *args: asked.append(args[0].name) or real(*args))
    for limits, name, members in [(IngestConfig(), name, members) for name, members in cases.items()] + [
            (IngestConfig(max_file_bytes=len(PKG_INFO)), "data not read", [*code, pkg_info]),
            (IngestConfig(max_archive_members=2), "two passes", [*code, pkg_info])]:
        archive = make_tar(tmp_path / f"{name}.tar.gz", members)
        ingest = Ingest(limits, cache_dir=tmp_path / "cache")
        records = list(ingest.run(Unit("k", "archive", str(archive), "t", SourceSpec(str(archive)))))
        expected = OWNERS.get(name)
        assert real(archive, limits.max_archive_bytes) == expected, name
        assert {r.owner for r in records} == {expected} and ingest.repos["t"].owner == expected, name
    assert asked == ["data not read.tar.gz", "two passes.tar.gz"]


def test_owner_of_archives_and_folders(tmp_path):
    sdist = make_tar(tmp_path / "tool-1.0.tar.gz", [("tool-1.0/tool.py", "x = 1\n", {}),
                                                     ("tool-1.0/PKG-INFO", PKG_INFO, {})])
    assert origin.owner_of_archive(sdist, 10**9) == "toolmakers"
    # metadata deeper than the top (a vendored package's) is not the archive's
    nested = make_tar(tmp_path / "n.tar.gz", [("n-1.0/vendor/dep/PKG-INFO", PKG_INFO, {})])
    assert origin.owner_of_archive(nested, 10**9) is None
    # only the root folder's (the one the first member is in): not another top folder's
    other = make_tar(tmp_path / "o.tar.gz", [("o-1.0/o.py", "x = 1\n", {}),
                                            ("docs/package.json", json.dumps({"repository": "docsco/x"}), {})])
    assert origin.owner_of_archive(other, 10**9) is None
    npm = make_zip(tmp_path / "pkg.zip", {"package/package.json": json.dumps({"repository": "zipco/pkg"})})
    assert origin.owner_of_archive(npm, 10**9) == "zipco"
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b not gzip")
    assert origin.owner_of_archive(tmp_path / "broken.tar.gz", 10**9) is None
    folder = write_tree(tmp_path / "folder", {"package.json": json.dumps({"repository": "dirco/folder"})})
    assert origin.owner_of_directory(folder) == "dirco"
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "package.json").symlink_to(folder / "package.json")  # never followed
    assert origin.owner_of_directory(linked) is None
    assert origin.owner_of_dataset_row("octo/hello", None) == "octo"
    assert origin.owner_of_dataset_row("github.com/acme/tools", None) == "acme"
    assert origin.owner_of_dataset_row("just-a-name", None) is None
    assert origin.owner_of_dataset_row("x/y", "https://gitlab.com/real/y") == "real"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """An sdist named like a PyPI source, an npm tarball named like an npm source, a git clone
    with a GitHub remote, and a folder without metadata."""
    root = tmp_path_factory.mktemp("origin")
    mit = mit_license()
    make_tar(root / "tool-1.0.tar.gz", [("tool-1.0/PKG-INFO", PKG_INFO, {}), ("tool-1.0/LICENSE", mit, {}),
                                        ("tool-1.0/tool.py", program(1, 12), {})])
    make_tar(root / "left-pad-1.3.0.tgz", [
        ("package/package.json", json.dumps({"name": "left-pad", "repository": "stevemao/left-pad"}), {}),
        ("package/LICENSE", mit, {}), ("package/index.js", program(4, 12), {})])
    clone = make_git_repo(root / "hello", [{"hello.py": program(2, 12), "LICENSE": mit}])
    git(clone, "remote", "add", "origin", "https://github.com/Octo/hello.git")
    write_tree(root / "plain", {"plain.py": program(3, 12), "LICENSE": mit})
    return [SourceSpec(str(root / "tool-1.0.tar.gz"), name="pypi/tool"),
            SourceSpec(str(root / "left-pad-1.3.0.tgz"), name="npm/left-pad"),
            SourceSpec(str(clone)), SourceSpec(str(root / "plain"))]


def _build(sources, out, registry=None):
    config = BuildConfig(**LENIENT, sources=tuple(sources), optout=OptOutConfig(registry=registry),
                         tokenize=TokenizeConfig(vocab_size=300), execution=ExecutionConfig(executor="local"))
    build(config, out, Progress(quiet=True))
    files = pq.read_table(out / "manifest" / "files").to_pylist()
    repos = {r["repo"]: r for r in pq.read_table(out / "manifest" / "repos.parquet").to_pylist()}
    return files, repos


def test_every_file_and_repository_carries_its_origins_owner(sources, tmp_path):
    files, repos = _build(sources, tmp_path / "out")
    expected = {"pypi/tool": "toolmakers", "npm/left-pad": "stevemao", "hello": "Octo", "plain": None}
    assert {name: row["owner"] for name, row in repos.items()} == expected
    assert {(r["repo"], r["owner"]) for r in files} == set(expected.items())
    # lookup by owner finds the repositories the owner owns, whatever the build named them
    assert {r["repo"] for r in lookup(tmp_path / "out", owner="stevemao")} == {"npm/left-pad"}
    assert {r["repo"] for r in lookup(tmp_path / "out", owner="octo")} == {"hello"}
    assert lookup(tmp_path / "out", owner="npm") == [] and lookup(tmp_path / "out", owner="pypi") == []


def test_opt_out_by_owner_uses_the_origin_never_the_name(sources, tmp_path):
    registry = tmp_path / "optout.jsonl"
    for owner in ("npm", "pypi", "toolmakers", "octo"):  # owner entries compare without case
        optout.add(registry, optout.make_entry("owner", owner, requested_by="a@b.c", reason=""))
    files, _ = _build(sources, tmp_path / "out", str(registry))
    opted = {r["repo"] for r in files if r["reason"] == reasons.OPTED_OUT}
    assert opted == {"pypi/tool", "hello"}  # npm/left-pad stays: its owner is stevemao, not npm
    kept = {r["repo"] for r in files if r["decision"] == "kept"}
    assert "npm/left-pad" in kept and "plain" in kept


def test_audit_and_republish_match_owners_from_files_parquet(sources, tmp_path):
    """A build published before a code owner asked: `optout apply` and the audit's policy
    registry find that owner's files by the manifest's owner column."""
    out = tmp_path / "out"
    _build(sources, out)
    registry = tmp_path / "policy" / "optout.jsonl"
    registry.parent.mkdir()
    optout.add(registry, entry := optout.make_entry("owner", "stevemao", requested_by="a@b.c", reason=""))
    optout.add(registry, optout.make_entry("owner", "npm", requested_by="a@b.c", reason=""))
    (tmp_path / "policy" / "policy.toml").write_text('[optout]\nregistry = "optout.jsonl"\n')
    report = audit(out, policy=load_policy(tmp_path / "policy" / "policy.toml"), pii_sample=0)
    problems = [p for check in report.checks if check.name == "optout" for p in check.problems]
    # left-pad's kept files (its package.json is JSON like any other: only PKG-INFO-like metadata is not data)
    kept = {(r["repo"], r["path"]) for r in lookup(out, owner="stevemao") if r["decision"] == "kept"}
    assert kept == {("npm/left-pad", "index.js"), ("npm/left-pad", "package.json")}
    assert sorted(p.split(": ")[1] for p in problems) == ["npm/left-pad/index.js", "npm/left-pad/package.json"]
    assert all(p.endswith(f"opted out by {entry.id} (owner) in {registry}") for p in problems)
    removed = apply_optout(out, registry, tmp_path / "v2")["removed"]
    assert {(r["repo"], r["path"]) for r in removed} == kept
