"""Repository documents (`[shards] group_by = "repository"`, StarCoder2): a repository's files
in consecutive rows in path order, joined by the loader into one document with `<reponame>`
and `<filename>` markers, FIM inside files only; the default leaves shards as they were."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from corpus_core.records import SourceSpec
from corpus_core.storage import sha256_file
from corpus_core.tokens import EOS, FILENAME, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, REPONAME
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.shards import ShardConfig
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, program
from trainer.data import LoaderState, ShardLoader
from trainer.fim import FimConfig

FILES = {
    "o/alpha": ["setup.py", "src/b.py", "src/a.py", "README.py"],
    "o/beta": ["z.py", "m/y.py"],
    "o/gamma": ["only.py"],
    "o/delta": ["d1.py", "d2.py", "d3.py"],
}
CONTENT = {(repo, path): program(300 + 7 * i + j, 6) for i, (repo, paths) in enumerate(FILES.items())
           for j, path in enumerate(paths)}


def make_build(root, **shards) -> tuple:
    dataset = root / "files.jsonl"
    dataset.write_text("".join(json.dumps({"repo": repo, "path": path, "content": text, "license": "MIT"}) + "\n"
                               for (repo, path), text in CONTENT.items()))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(enabled=False),
                         tokenize=TokenizeConfig(vocab_size=300, metadata_probability=0.5),
                         shards=ShardConfig(**shards), execution=ExecutionConfig(executor="local"))
    build(config, root / "out", Progress(quiet=True))
    return root / "out"


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    return make_build(tmp_path_factory.mktemp("grouped"), group_by="repository", max_rows=6)


def expected_document(repo: str) -> str:
    return (f"<reponame>{repo}\n"
            + "".join(f"<filename>{path}\n{CONTENT[repo, path]}" for path in sorted(FILES[repo]))
            + "<|endoftext|>")


def test_a_repositorys_files_are_consecutive_rows_in_path_order_one_row_per_file(grouped):
    index = json.loads((grouped / "index.json").read_text())
    assert index["group_by"] == "repository" and index["totals"]["documents"] == len(FILES)
    assert index["totals"]["rows"] == len(CONTENT)
    for entry in index["shards"]:
        rows = pq.read_table(grouped / "shards" / entry["file"]).to_pylist()
        repos = [r["repo"] for r in rows]
        runs = [repo for i, repo in enumerate(repos) if i == 0 or repos[i - 1] != repo]
        assert len(runs) == len(set(runs)) == entry["documents"]  # no repository split: each fits a shard
        for repo in runs:
            assert [r["path"] for r in rows if r["repo"] == repo] == sorted(FILES[repo])
        assert all(r["content"] == CONTENT[r["repo"], r["path"]] for r in rows)
        assert entry["tokens"] == sum(r["num_tokens"] for r in rows)


def test_the_loader_joins_each_repository_into_one_document_that_decodes_to_its_files(grouped):
    tokenizer = Tokenizer.from_file(str(grouped / "tokenizer.json"))
    loader = ShardLoader(grouped, columns=("id", "path", "input_ids"))
    docs = [doc for doc, _ in loader.documents(epochs=1)]
    assert sorted(doc["id"] for doc in docs) == sorted(FILES) and loader.documents_per_epoch == len(FILES)
    for doc in docs:
        ids = doc["input_ids"]
        assert tokenizer.decode(ids.tolist(), skip_special_tokens=False) == expected_document(doc["id"])
        assert ids[0] == REPONAME and list(ids).count(REPONAME) == 1 and ids[-1] == EOS
        assert list(ids).count(EOS) == 1 and list(ids).count(FILENAME) == len(FILES[doc["id"]])
        assert doc["paths"] == sorted(FILES[doc["id"]])
        for (start, end), path in zip(doc["files"], doc["paths"], strict=True):
            assert tokenizer.decode(ids[start:end].tolist()) == CONTENT[doc["id"], path]


def headers(ids: np.ndarray, files: list[tuple[int, int]]) -> list[list[int]]:
    """What lies between files' contents: <reponame> REPO, <filename> PATH, ..."""
    ends = [0] + [end for _, end in files[:-1]]
    return [ids[end:start].tolist() for end, (start, _) in zip(ends, files, strict=True)]


def test_fim_is_applied_inside_each_file_never_across_files(grouped):
    plain = {doc["id"]: doc for doc, _ in ShardLoader(grouped).documents(epochs=1)}
    fim = ShardLoader(grouped, fim=FimConfig(fim_rate=1.0, fim_spm_rate=0.0))  # every file, PSM
    for doc, _ in fim.documents(epochs=1):
        ids, original = doc["input_ids"], plain[doc["id"]]
        assert list(ids).count(FIM_PREFIX) == len(doc["files"])
        assert headers(ids, doc["files"]) == headers(original["input_ids"], original["files"])
        for (start, end), (o_start, o_end) in zip(doc["files"], original["files"], strict=True):
            part = list(ids[start:end])  # <fim_prefix> P <fim_suffix> S <fim_middle> M, inside one file
            assert part[0] == FIM_PREFIX and FILENAME not in part and REPONAME not in part
            s, m = part.index(FIM_SUFFIX), part.index(FIM_MIDDLE)
            restored = part[1:s] + part[m + 1:] + part[s + 1:m]
            assert restored == list(original["input_ids"][o_start:o_end])
    again = [doc["input_ids"] for doc, _ in fim.documents(epochs=1)]
    assert all(np.array_equal(a, b["input_ids"]) for a, b in zip(again, (d for d, _ in fim.documents(epochs=1)),
                                                                 strict=True))


def test_blocks_and_resume_work_on_repository_documents(grouped):
    loader = ShardLoader(grouped, columns=("input_ids",))
    blocks = list(zip(range(6), loader.blocks(40), strict=False))
    (_, (_, state)) = blocks[2]
    resumed = [block for _, (block, _) in zip(range(3), ShardLoader(grouped, columns=("input_ids",)).blocks(
        40, LoaderState.from_dict(state.to_dict())), strict=False)]
    assert all(np.array_equal(a, b) for a, (_, (b, _)) in zip(resumed, blocks[3:], strict=True))


def test_a_repository_larger_than_a_shard_is_split_and_each_part_is_a_document(tmp_path):
    out = make_build(tmp_path, group_by="repository", max_rows=2)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    docs = [doc for doc, _ in ShardLoader(out, columns=("id", "path", "input_ids")).documents(epochs=1)]
    assert sorted(path for doc in docs for path in doc["paths"]) == sorted(p for _, p in CONTENT)
    for doc in docs:
        text = tokenizer.decode(doc["input_ids"].tolist(), skip_special_tokens=False)
        assert text == (f"<reponame>{doc['id']}\n" + "".join(f"<filename>{p}\n{CONTENT[doc['id'], p]}"
                                                              for p in doc["paths"]) + "<|endoftext|>")


# sha256 of the default build's shard, as the writer wrote it before `group_by` existed
# (commit bf5c55f, same input and config)
BEFORE = ["1ce74bdfb935fb9284da5bf941d83239adefe9220fbe8796493f054faa272e98"]


def test_the_default_leaves_shards_as_they_were(tmp_path):
    out = make_build(tmp_path)
    index = json.loads((out / "index.json").read_text())
    assert "group_by" not in index and "documents" not in index["totals"]
    assert "content_start" not in pq.read_schema(out / "shards" / "part-00000.parquet").names
    assert [sha256_file(out / "shards" / e["file"]) for e in index["shards"]] == BEFORE


def test_the_trainer_applies_fim_inside_files_on_repository_documents(grouped, tmp_path):
    """trainer.train's batches: on repository documents the loader transforms each file and
    the packed blocks are not transformed again (FIM never spans two files)."""
    pytest.importorskip("torch")
    from trainer.train import Batches, TrainConfig

    config = TrainConfig(data=str(grouped), out_dir=str(tmp_path), model="tiny", seq_len=64, micro_batch=2,
                         fim_rate=1.0)
    batches = Batches(config, rank=0, world_size=1, split="train")
    assert batches.loader.grouped and batches.loader.fim == FimConfig(1.0, config.fim_spm_rate)
    assert batches.fim.fim_rate == 0.0
    x, _, _ = batches.next()
    middles = int((x == FIM_MIDDLE).sum())
    assert middles > 0  # transformed, by the loader


def test_an_opt_out_on_a_published_grouped_build_is_refused_not_half_done(grouped, tmp_path):
    from corpus_core.errors import ConfigError
    from manifests import optout
    from manifests.republish import apply_optout

    registry = tmp_path / "optout.jsonl"
    optout.add(registry, optout.make_entry("repo", "o/beta", requested_by="a@b.c", reason=""))
    with pytest.raises(ConfigError, match="does not rewrite repository documents"):
        apply_optout(grouped, registry, tmp_path / "v2")
    assert not (tmp_path / "v2").exists()


def test_notebooks_in_both_forms_cannot_go_into_repository_documents():
    from corpus_core.errors import ConfigError
    from stages.notebooks import NotebookConfig

    with pytest.raises(ConfigError, match='notebooks.form = "both" cannot go with shards.group_by = "repository"'):
        BuildConfig(notebooks=NotebookConfig(form="both"), shards=ShardConfig(group_by="repository"))
    assert BuildConfig(notebooks=NotebookConfig(form="structured"), shards=ShardConfig(group_by="repository"))
