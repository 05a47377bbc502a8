"""`corpus audit` passes on a clean build and fails, with a clear line, on each tampering:
against the policy it is given (or the shipped defaults), never the build's own run.json."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from corpus_core import schema
from corpus_core.records import SourceSpec
from corpus_core.spdx import PERMISSIVE
from corpus_core.storage import sha256_file
from manifests import optout
from pipeline.audit import audit
from pipeline.cli import main
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.license import LicenseConfig
from tests.conftest import GPL3_HEADER, LENIENT, PYTHON_FILE, mit_license, write_tree

CHECKS = ["licenses", "evidence", "shard_index", "tokenizer", "shard_rows", "optout", "pii"]
GITHUB_TOKEN = "ghp_" + "R8x2Kq9ZmW4vT7bN1cY6" + "pL3sD5fG0hJ2kA9eU4iO"  # made up, GitHub's shape


def build_repos(tmp_path, **sections):
    """mit: LICENSE, a.py, b.py and c.py (b.py's duplicate, so dropped); gpl: COPYING, g.py."""
    write_tree(tmp_path / "repos" / "mit", {"LICENSE": mit_license(), "a.py": PYTHON_FILE, "b.py": "x = 1\n",
                                            "c.py": "x = 1\n"})
    write_tree(tmp_path / "repos" / "gpl", {"COPYING": GPL3_HEADER.replace("# ", ""), "g.py": "y = 2\n"})
    config = BuildConfig(**{**LENIENT, **sections}, sources=(SourceSpec(str(tmp_path / "repos")),),
                         cache_dir=str(tmp_path / "cache"), execution=ExecutionConfig(executor="local"))
    build(config, tmp_path / "out", Progress(quiet=True))
    return tmp_path / "out"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_repos(tmp_path_factory.mktemp("built"))


@pytest.fixture()
def out(built, tmp_path):
    """A copy of the module's build, for one test to tamper with."""
    return shutil.copytree(built, tmp_path / "out")


def rewrite_files(out, change) -> None:
    (path,) = schema.files_manifest(out)  # one part: the build is small
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        change(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)


def files_row(out, path: str) -> dict:
    rows = pq.read_table(out / "manifest" / "files").to_pylist()
    return next(row for row in rows if row["path"] == path)


def rewrite_shard(out, change) -> str:
    """Apply `change` to the rows of the (only) shard and mend index.json to match, as a
    careful tamperer would: only a check that reads the rows can see it. Returns the shard's name."""
    index_path = out / "index.json"
    index = json.loads(index_path.read_text())
    (entry,) = index["shards"]
    shard = out / "shards" / entry["file"]
    table = pq.read_table(shard)
    rows = table.to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard, compression="zstd")
    entry.update(rows=len(rows), bytes=shard.stat().st_size, sha256=sha256_file(shard),
                 content_bytes=sum(len(row["content"].encode()) for row in rows))
    index["totals"].update(rows=len(rows), bytes=entry["bytes"], content_bytes=entry["content_bytes"])
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return entry["file"]


def shard_row(rows: list[dict], path: str) -> int:
    return next(number for number, row in enumerate(rows) if row["path"] == path)


def run_json(capsys, *argv) -> tuple[int, dict]:
    status = main(["audit", *map(str, argv), "--json"])
    return status, json.loads(capsys.readouterr().out)


def checks(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def failed(report: dict) -> dict[str, list[str]]:
    return {check["name"]: check["problems"] for check in report["checks"] if check["problems"]}


def write_policy(tmp_path, text: str):
    policy = tmp_path / "policy" / "compliance.toml"
    policy.parent.mkdir(exist_ok=True)
    policy.write_text(text)
    return policy


def test_clean_build_passes_with_the_default_policy(out, capsys):
    report = audit(out)
    assert report.passed, report.failures
    assert {r["license"]: r["files"] for r in report.licenses} == {"MIT": 2}
    assert main(["audit", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "policy: the project's shipped defaults (allowlist of 23 license(s)" in printed
    for name in CHECKS:  # a line per check: its name, what it looked at, its outcome
        assert re.search(rf"^  {name} +\d+ [a-z ]+ passed", printed, re.MULTILINE), name
    assert "audit passed: 7 checks passed" in printed
    status, report = run_json(capsys, out)
    assert status == 0 and report["passed"] and report["policy"]["source"] is None
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert checks(report)["shard_rows"]["checked"] == 2 and checks(report)["pii"]["checked"] == 2


def test_a_build_with_a_widened_allowlist_fails_the_default_policy(tmp_path, capsys):
    out = build_repos(tmp_path, license=LicenseConfig(allowed=(*PERMISSIVE, "GPL-3.0-or-later")))
    assert "GPL-3.0-or-later" in json.loads((out / "manifest" / "run.json").read_text())["config"]["license"]["allowed"]
    status, report = run_json(capsys, out)
    assert status == 1
    # COPYING itself is a license text, never training data, so only the code file is kept
    assert failed(report) == {"licenses": ["gpl/g.py: 'GPL-3.0-or-later' is not allowed by the policy"]}
    # the compliance team's own policy is what decides, not the build's
    policy = write_policy(tmp_path, f"[license]\nallowed = {json.dumps([*PERMISSIVE, 'GPL-3.0-or-later'])}\n")
    status, report = run_json(capsys, out, "--policy", policy)
    assert status == 0, report["failures"]
    assert report["policy"]["source"] == str(policy)
    narrow = write_policy(tmp_path, '[license]\nallowed = ["Apache-2.0"]\n')
    status, report = run_json(capsys, out, "--policy", narrow)
    assert status == 1 and len(failed(report)["licenses"]) == 3  # every kept file: MIT is not allowed either


def test_a_kept_gpl_file_fails(out, capsys):
    def keep_gpl(row):
        if row["repo"] == "gpl" and row["path"] == "g.py":
            row.update(decision="kept", reason=None)
    rewrite_files(out, keep_gpl)
    status, report = run_json(capsys, out)
    assert status == 1 and not report["passed"]
    assert failed(report) == {"licenses": ["gpl/g.py: 'GPL-3.0-or-later' is not allowed by the policy"],
                              "shard_rows": ["gpl/g.py: kept in files.parquet, in no shard"]}


def test_a_kept_file_without_evidence_fails(out):
    def strip(row):
        if row["path"] == "b.py":
            row["license_source"] = None
    rewrite_files(out, strip)
    assert audit(out).failures == ["kept file without license evidence: mit/b.py"]


def test_a_shard_row_the_manifest_drops_fails(out, capsys):
    dropped = files_row(out, "c.py")
    assert dropped["reason"] == "exact_duplicate"

    def add_the_duplicate(rows):
        twin = rows[shard_row(rows, "b.py")]  # same bytes, same tokens: only its id and path differ
        rows.append({**twin, "id": dropped["id"], "path": "c.py"})
    shard = rewrite_shard(out, add_the_duplicate)
    status, report = run_json(capsys, out)
    assert status == 1
    assert failed(report) == {"shard_rows": [f"{shard} row 2: mit/c.py: files.parquet drops it (exact_duplicate)"]}


def test_a_shard_row_whose_sha256_differs_fails(out, capsys):
    position = {}

    def change_hash(rows):
        position["a.py"] = shard_row(rows, "a.py")
        rows[position["a.py"]]["sha256"] = hashlib.sha256(b"other bytes").hexdigest()
    shard = rewrite_shard(out, change_hash)
    status, report = run_json(capsys, out)
    assert status == 1
    assert failed(report) == {
        "shard_rows": [f"{shard} row {position['a.py']}: mit/a.py: sha256 differs from files.parquet's"]}


def test_an_opted_out_file_in_the_shards_fails_the_policy_registry(out, tmp_path, capsys):
    registry = tmp_path / "policy" / "optout.jsonl"
    registry.parent.mkdir()
    entry = optout.make_entry("sha256", hashlib.sha256(PYTHON_FILE.encode()).hexdigest(), requested_by="owner@a.io",
                              reason="form #3")
    optout.add(registry, entry)
    policy = write_policy(tmp_path, '[optout]\nregistry = "optout.jsonl"\n')  # relative to the policy file
    assert run_json(capsys, out)[0] == 0  # the build's manifests alone know nothing of it
    status, report = run_json(capsys, out, "--policy", policy)
    assert status == 1
    row = files_row(out, "a.py")
    assert failed(report) == {"optout": [f"part-{row['shard']:05d}.parquet row {row['row']}: mit/a.py: opted out by "
                                         f"{entry.id} (sha256) in {registry}"]}
    assert report["policy"]["optout"] == {"registry": str(registry), "entries": 1}


def test_a_shard_row_the_manifest_opted_out_fails(out, capsys):
    def opt_out(row):
        if row["path"] == "a.py":
            row.update(decision="dropped", reason="opted_out", detail="opt-out 3f1c0a9b2e4d (repo)")
    rewrite_files(out, opt_out)
    status, report = run_json(capsys, out)
    assert status == 1
    paths = pq.read_table(out / "shards" / "part-00000.parquet").column("path").to_pylist()
    where = f"part-00000.parquet row {paths.index('a.py')}"
    assert failed(report) == {
        "shard_rows": [f"{where}: mit/a.py: files.parquet drops it (opted_out)"],
        "optout": [f"{where}: mit/a.py: files.parquet says opted out (opt-out 3f1c0a9b2e4d (repo))"],
    }


def test_a_secret_left_in_a_shard_row_fails_the_pii_check(out, capsys):
    position = {}

    def plant(rows):
        position["a.py"] = shard_row(rows, "a.py")
        rows[position["a.py"]]["content"] += f'GITHUB_TOKEN = "{GITHUB_TOKEN}"\n'
    shard = rewrite_shard(out, plant)
    assert main(["audit", str(out)]) == 1
    printed = capsys.readouterr().out
    assert f"{shard} row {position['a.py']}: mit/a.py: KEY on line 7" in printed
    status, report = run_json(capsys, out)
    assert status == 1
    assert failed(report) == {"pii": [f"{shard} row {position['a.py']}: mit/a.py: KEY on line 7"]}
    assert GITHUB_TOKEN not in printed and GITHUB_TOKEN not in json.dumps(report)
    status, report = run_json(capsys, out, "--pii-sample", 0)
    assert status == 0 and checks(report)["pii"]["skipped"] == "--pii-sample 0"


def test_a_shard_whose_bytes_changed_fails(out):
    index = json.loads((out / "index.json").read_text())
    shard = out / "shards" / index["shards"][0]["file"]
    table = pq.read_table(shard)
    changed = table.set_column(table.schema.get_field_index("content"), "content",
                               pc.utf8_upper(table.column("content")))
    pq.write_table(changed, shard)
    failures = audit(out).failures
    assert failures == [f"shard {shard.name}: bytes differ from index.json (sha256 mismatch)"]


def test_a_tokenizer_that_did_not_make_the_shards_fails(out):
    tokenizer = out / "tokenizer.json"
    data = json.loads(tokenizer.read_text())
    data["model"]["vocab"]["zzz-extra"] = len(data["model"]["vocab"]) + 19
    tokenizer.write_text(json.dumps(data))
    assert audit(out).failures == [f"{tokenizer}: sha256 differs from index.json's tokenizer_sha256"]
    tokenizer.unlink()
    assert audit(out).failures == [f"{tokenizer} is missing (index.json names it)"]


@pytest.mark.parametrize(("policy", "says"), [
    ("[license\nallowed = []\n", "is not valid TOML"),
    ('[license]\nallowed = "MIT"\n', "license.allowed = 'MIT': expected a list of strings"),
    ('[license]\nallow = ["MIT"]\n', "unknown key license.allow"),
    ('[licence]\nallowed = ["MIT"]\n', "unknown section(s) ['licence']"),
    ('[optout]\nregistry = "nowhere.jsonl"\n', "nowhere.jsonl does not exist"),
    ('[optout]\nregistry = "compliance.toml"\n', "line 1: not a valid entry"),  # itself: no JSON Lines
    ('[pii]\nmin_secret_length = -1\n', "pii.min_secret_length = -1"),
    (None, "cannot be read"),
])
def test_a_malformed_policy_is_a_one_line_config_error(tmp_path, capsys, policy, says):
    path = tmp_path / "missing.toml" if policy is None else write_policy(tmp_path, policy)
    assert main(["audit", str(tmp_path / "no-build"), "--policy", str(path)]) == 2  # before OUT is read
    error = capsys.readouterr().err
    assert error.startswith(f"corpus: error: policy {path}") and error.count("\n") == 1
    assert says in error


def test_sql_over_the_manifests(out, capsys):
    assert main(["audit", str(out), "--json", "--sql",
                 "SELECT repo, count(*) AS n FROM files WHERE decision = 'kept' GROUP BY repo"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"repo": "mit", "n": 2}]
    assert main(["audit", str(out), "--sql", "SELECT nope FROM files"]) == 2
    assert "the query failed" in capsys.readouterr().err


def test_not_a_build(tmp_path, capsys):
    assert main(["audit", str(tmp_path)]) == 2
    assert "is missing" in capsys.readouterr().err


def test_a_stray_file_in_the_shard_folder_fails(out):
    (out / "shards" / "notes.txt").write_text("loaders would choke on this\n")
    (out / "shards" / "old").mkdir()
    pq.write_table(pq.read_table(next((out / "shards").glob("*.parquet"))), out / "shards" / "old" / "x.parquet")
    failures = audit(out).failures
    assert failures == ["shards/notes.txt is not a shard of index.json (loaders would read it)",
                        "shards/old/x.parquet is not a shard of index.json (loaders would read it)"]
