"""The filters inside a build: default thresholds, measures in files.parquet for every file
that reached them, PII redacted in the shards, the same bytes on Ray and in-process."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from corpus_core.records import SourceSpec
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress, summary
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.tokenize import TokenizeConfig
from tests.conftest import program
from tests.pipeline.test_build import output_bytes

ROWS = [
    {"repo": "a/code", "path": "good.py", "content": program(1, 40)},
    {"repo": "a/code", "path": "nocomment.py", "content": "x = 1\ny = 2\nz = x + y\nprint(z)\n"},
    {"repo": "a/code", "path": "long.js", "content": "// a\nvar s = '" + "ab " * 400 + "';\n"},
    {"repo": "a/code", "path": "gen.py", "content": "# This file is auto-generated.\n" + program(2, 20)},
    {"repo": "a/code", "path": "keys.py", "content": program(3, 20) + 'HOST = "93.184.216.34"\n'
                                                     "# mail jane.roe@corp-mail.io\n"},
    {"repo": "a/code", "path": "data.json", "content": '{"alpha": 1, "beta": 2}\n'},
]


def test_filters_in_a_build_on_ray_and_in_process(tmp_path, ray_local):
    dataset = tmp_path / "files.jsonl"
    dataset.write_text("".join(json.dumps({**row, "license": "MIT"}) + "\n" for row in ROWS))

    def config(executor: str) -> BuildConfig:
        return BuildConfig(sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(enabled=False),
                           tokenize=TokenizeConfig(vocab_size=300),
                           execution=ExecutionConfig(executor=executor, num_workers=2, local_below_bytes=0))

    run = build(config("ray"), tmp_path / "ray", Progress(quiet=True))
    build(config("local"), tmp_path / "local", Progress(quiet=True))
    assert output_bytes(tmp_path / "ray") == output_bytes(tmp_path / "local")
    rows = {r["path"]: r for r in pq.read_table(tmp_path / "ray" / "manifest" / "files").to_pylist()}
    assert {p: r["reason"] for p, r in rows.items()} == {
        "good.py": None, "nocomment.py": "comment_ratio", "long.js": "max_line_length",
        "gen.py": "auto_generated", "keys.py": None, "data.json": "data_file_size",
    }
    assert all(r["max_line_length"] is not None and r["alphanum_fraction"] is not None for r in rows.values())
    assert rows["good.py"]["comment_lexer"] == "tree-sitter-python" and 0.01 <= rows["good.py"]["comment_ratio"] <= 0.8
    assert (rows["keys.py"]["pii_ip_address"], rows["keys.py"]["pii_email"], rows["keys.py"]["pii_redactions"]) == (
        1, 1, 2)
    (shard,) = (tmp_path / "ray" / "shards").glob("part-*.parquet")
    content = {r["path"]: r["content"] for r in pq.read_table(shard).to_pylist()}
    assert "jane.roe" not in content["keys.py"] and "<EMAIL>" in content["keys.py"]
    assert "93.184.216.34" not in content["keys.py"]
    text = summary(run)
    assert "comment_ratio      1" in text and "max_line_length    1" in text
