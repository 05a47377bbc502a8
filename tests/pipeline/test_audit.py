"""`corpus audit` passes on a clean build and fails, with a clear line, on each tampering."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from corpus_core.records import SourceSpec
from manifests.audit import audit
from pipeline.cli import main
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from tests.conftest import GPL3_HEADER, LENIENT, PYTHON_FILE, mit_license, write_tree


@pytest.fixture()
def out(tmp_path):
    write_tree(tmp_path / "repos" / "mit", {"LICENSE": mit_license(), "a.py": PYTHON_FILE, "b.py": "x = 1\n"})
    write_tree(tmp_path / "repos" / "gpl", {"COPYING": GPL3_HEADER.replace("# ", ""), "g.py": "y = 2\n"})
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(tmp_path / "repos")),), cache_dir=str(tmp_path / "cache"),
                         execution=ExecutionConfig(executor="local"))
    build(config, tmp_path / "out", Progress(quiet=True))
    return tmp_path / "out"


def rewrite_files(out, change) -> None:
    path = out / "manifest" / "files.parquet"
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        change(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)


def test_clean_build_passes(out, capsys):
    report = audit(out)
    assert report.passed, report.failures
    assert {r["license"]: r["files"] for r in report.licenses} == {"MIT": 3}
    assert main(["audit", str(out)]) == 0
    assert "audit passed" in capsys.readouterr().out


def test_a_kept_gpl_file_fails(out, capsys):
    def keep_gpl(row):
        if row["repo"] == "gpl" and row["path"] == "g.py":
            row.update(decision="kept", reason=None)
    rewrite_files(out, keep_gpl)
    assert main(["audit", str(out), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["passed"]
    assert "1 kept file(s) under 'GPL-3.0-or-later', which the allowlist does not allow" in report["failures"]


def test_a_kept_file_without_evidence_fails(out):
    def strip(row):
        if row["path"] == "b.py":
            row["license_source"] = None
    rewrite_files(out, strip)
    assert audit(out).failures[0] == "kept file without license evidence: mit/b.py"


def test_a_shard_whose_bytes_changed_fails(out):
    index = json.loads((out / "shards" / "index.json").read_text())
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


def test_sql_over_the_manifests(out, capsys):
    assert main(["audit", str(out), "--json", "--sql",
                 "SELECT repo, count(*) AS n FROM files WHERE decision = 'kept' GROUP BY repo"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"repo": "mit", "n": 3}]
    assert main(["audit", str(out), "--sql", "SELECT nope FROM files"]) == 2
    assert "the query failed" in capsys.readouterr().err


def test_not_a_build(tmp_path, capsys):
    assert main(["audit", str(tmp_path)]) == 2
    assert "is missing" in capsys.readouterr().err
