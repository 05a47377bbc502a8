"""The writer's layout: OUT/shards/ holds only the Parquet shards, which pyarrow.dataset and
Hugging Face `datasets` read as they are; the index is OUT/index.json. A build of the older
layout (shards/index.json) still passes the audit and takes opt-outs."""

from __future__ import annotations

import json
import shutil

import pyarrow.dataset
import pytest

from corpus_core.records import SourceSpec
from corpus_core.storage import sha256_file
from manifests import optout
from manifests.republish import apply_optout
from pipeline.audit import audit
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.outdir import MARKER
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.shards import ShardConfig
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, program

DOCS = 12
CONTENT = {f"o/r{i}": program(700 + i, 10) for i in range(DOCS)}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    dataset = root / "files.jsonl"
    dataset.write_text("".join(json.dumps({"repo": repo, "path": "m.py", "content": content, "license": "MIT"}) + "\n"
                               for repo, content in CONTENT.items()))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(enabled=False),
                         tokenize=TokenizeConfig(vocab_size=300), shards=ShardConfig(max_rows=5),
                         cache_dir=str(root / "cache"), execution=ExecutionConfig(executor="local"))
    build(config, root / "out", Progress(quiet=True))
    return root / "out"


def test_the_shard_folder_holds_only_the_shards_and_the_index_lies_beside_it(out):
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == 3 and index["shard_dir"] == "shards"
    assert sorted(p.name for p in (out / "shards").iterdir()) == [entry["file"] for entry in index["shards"]]
    assert len(index["shards"]) == 3 and index["totals"]["rows"] == DOCS
    assert index["tokenizer"] == "tokenizer.json" and sha256_file(out / "tokenizer.json") == index["tokenizer_sha256"]
    published = json.loads((out / MARKER).read_text())["files"]
    assert {"index.json", "README.md", "tokenizer.json"} <= set(published)
    assert not any(name.startswith("shards/") and not name.endswith(".parquet") for name in published)


def test_pyarrow_dataset_reads_the_shard_folder(out):
    table = pyarrow.dataset.dataset(out / "shards").to_table()
    assert table.num_rows == DOCS
    rows = {row["repo"]: row for row in table.to_pylist()}
    assert rows["o/r3"]["content"] == CONTENT["o/r3"] and rows["o/r3"]["path"] == "m.py"
    assert rows["o/r3"]["num_tokens"] == len(rows["o/r3"]["input_ids"]) > 0


def test_datasets_loads_the_shards_offline(out, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)  # in case it was imported before
    loaded = datasets.load_dataset("parquet", data_dir=str(out / "shards"), split="train",
                                   cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == DOCS
    (row,) = [row for row in loaded if row["repo"] == "o/r5"]
    assert row["content"] == CONTENT["o/r5"] and row["license"] == "MIT"
    assert loaded.features["input_ids"].feature.dtype == "uint16"
    # the folder itself: the card's `configs` name the shards as the data
    whole = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert whole.num_rows == DOCS and sorted(whole["id"]) == sorted(loaded["id"])


def older_layout(out, target):
    """The build as an earlier version wrote it: the index in shards/, format 2, no card."""
    shutil.copytree(out, target)
    index = json.loads((target / "index.json").read_text())
    del index["shard_dir"]
    index["format"] = 2
    (target / "shards" / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (target / "index.json").unlink()
    (target / "README.md").unlink()
    return target


def test_an_older_build_is_audited_and_republished_in_the_new_layout(out, tmp_path):
    old = older_layout(out, tmp_path / "old")
    report = audit(old, pii_sample=0)
    assert report.passed, report.failures
    checks = {check.name: check for check in report.checks}
    assert checks["shard_index"].checked == 3 and checks["tokenizer"].checked == 1
    (old / "tokenizer.json").write_text("{}")
    assert audit(old, pii_sample=0).failures == [
        f"{old / 'tokenizer.json'}: sha256 differs from index.json's tokenizer_sha256"]
    shutil.copyfile(out / "tokenizer.json", old / "tokenizer.json")

    registry = tmp_path / "optout.jsonl"
    optout.add(registry, optout.make_entry("repo", "o/r4", requested_by="owner@r4.dev", reason="form #1"))
    new = tmp_path / "new"
    apply_optout(old, registry, new)
    index = json.loads((new / "index.json").read_text())
    assert index["format"] == 3 and index["totals"]["rows"] == DOCS - 1
    assert sorted(p.name for p in (new / "shards").iterdir()) == [entry["file"] for entry in index["shards"]]
    assert audit(new, pii_sample=0).passed
    assert "| optout | `opted_out` | −1 |" in (new / "README.md").read_text()
