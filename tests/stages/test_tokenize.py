"""The tokenizer (special tokens, lossless round trip, training sample) and tokenized shards."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from corpus_core import schema
from corpus_core.errors import ConfigError
from corpus_core.records import SourceSpec
from corpus_core.storage import sha256_file
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.shards import ShardConfig
from stages.tokenize import (
    EOS,
    FILENAME,
    GH_STARS,
    REPONAME,
    SPECIAL_TOKENS,
    TokenizeConfig,
    encode_files,
    load_tokenizer,
    train_tokenizer,
)
from tests.conftest import LENIENT, program

# one file per language of the default sample, with the whitespace and characters code has
SAMPLES = {
    "Python": 'def grüße(name: str) -> str:\n\t"""Say hello."""\r\n    return f"¡hola {name}!"  \n',
    "C": "#include <stdio.h>\n\nint main(void) {\n\tprintf(\"%s\\n\", \"\\u00e9t\\u00e9\");\n\treturn 0;\n}\n",
    "C++": "template <typename T>\nT twice(T x) { return x + x; }  // ×2\n",
    "Cython": "cdef int add(int a, int b):\n    return a + b\n",
    "Rust": "fn main() {\n    let s = \"日本語\";\n    println!(\"{}\", s);\n}\n",
    "JavaScript": "const π = 3.14159;\nexport default () => `${π}`;\u00a0\n",
    "TypeScript": "interface P { x: number }\nconst p: P = { x: 1 };\n",
    "Shell": "#!/bin/sh\nset -eu\nfor f in *.txt; do echo \"$f\"; done\n",
    "JSON": '{"emoji": "🚀", "list": [1, 2, 3]}\n',
    "YAML": "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n",
    "TOML": "[project]\nname = \"x\"\nversion = \"1.0\"\n",
    "Markdown": "# Título\n\n* one\n* two\u200b\n\n```py\nprint(1)\n```\n",
    "odd whitespace": " \t \r\n\r\n\n\x0b\x0c  trailing   \n\u2028\u3000end",
    "control look-alike": "x = '<|endoftext|>'  # <fim_prefix> in a string\n",
}


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(iter(list(SAMPLES.values()) * 3 + [program(i) for i in range(5)]), vocab_size=400)


def test_special_tokens_are_ids_0_to_18_in_order(tokenizer):
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(19))
    assert tokenizer.get_vocab_size() == 400


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_round_trip_is_lossless(tokenizer, language):
    text = SAMPLES[language]
    rows = [{"repo": "r", "path": "p", "stars": None, "id": "x", "content": text}]
    (ids,) = encode_files(tokenizer, rows, TokenizeConfig(metadata_probability=0.0))
    assert ids[-1] == EOS and EOS not in ids[:-1]  # the text's own "<|endoftext|>" is plain text
    assert FIM_TOKENS.isdisjoint(ids[:-1])
    assert tokenizer.decode(ids[:-1], skip_special_tokens=False) == text


FIM_TOKENS = set(range(1, 19))


def test_metadata_prefix_follows_the_probability_and_is_deterministic(tokenizer):
    rows = [{"repo": "owner/repo", "path": "src/a.py", "stars": 7, "id": f"id{i}", "content": "x = 1\n"}
            for i in range(200)]
    always = encode_files(tokenizer, rows[:1], TokenizeConfig(metadata_probability=1.0))[0]
    decoded = tokenizer.decode(always, skip_special_tokens=False)
    assert decoded == "<reponame>owner/repo<filename>src/a.py<gh_stars>7\nx = 1\n<|endoftext|>"
    no_stars = encode_files(tokenizer, [{**rows[0], "stars": None}], TokenizeConfig(metadata_probability=1.0))[0]
    assert GH_STARS not in no_stars and no_stars[0] == REPONAME
    assert all(FILENAME not in ids and REPONAME not in ids
               for ids in encode_files(tokenizer, rows, TokenizeConfig(metadata_probability=0.0)))
    some = encode_files(tokenizer, rows, TokenizeConfig(metadata_probability=0.2))
    with_repo = sum(ids[0] == REPONAME for ids in some)
    assert 20 <= with_repo <= 60  # about 0.2 of 200
    assert some == encode_files(tokenizer, rows, TokenizeConfig(metadata_probability=0.2))
    assert some != encode_files(tokenizer, rows, TokenizeConfig(metadata_probability=0.2, seed=1))


def test_a_tokenizer_without_the_special_tokens_at_their_ids_is_refused(tmp_path, tokenizer):
    from tokenizers import Tokenizer as HF
    from tokenizers import models

    wrong = HF(models.BPE())
    wrong.add_special_tokens(["<|endoftext|>", "<fim_middle>", "<fim_prefix>"])
    wrong.save(str(tmp_path / "wrong.json"))
    with pytest.raises(ConfigError, match="<fim_prefix> has id 2, expected 1"):
        load_tokenizer(tmp_path / "wrong.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot load"):
        load_tokenizer(tmp_path / "broken.json")
    tokenizer.save(str(tmp_path / "good.json"))
    assert load_tokenizer(tmp_path / "good.json").token_to_id("<reponame>") == 18


def test_training_is_deterministic():
    texts = list(SAMPLES.values()) * 2 + [program(i) for i in range(3)]
    assert train_tokenizer(iter(texts), 350).to_str() == train_tokenizer(iter(texts), 350).to_str()


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    rows = [{"repo": f"o/r{i % 5}", "path": f"f{i}.py", "content": program(100 + i, lines=30), "license": "MIT",
             "stars": i if i % 2 else None} for i in range(40)]
    rows += [{"repo": "o/text", "path": f"{lang}.txt", "content": text * 3, "license": "MIT"}
             for lang, text in SAMPLES.items()]
    dataset = root / "files.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = BuildConfig(
        **LENIENT,
        sources=(SourceSpec(str(dataset)),),
        near_dedup=NearDedupConfig(enabled=False),
        tokenize=TokenizeConfig(vocab_size=500, batch_files=7),
        shards=ShardConfig(target_tokens=3000, row_group_rows=8),
        execution=ExecutionConfig(executor="local"),
    )
    run = build(config, root / "out", Progress(quiet=True))
    return root / "out", run, {(r["repo"], r["path"]): r for r in rows}


def test_shards_carry_input_ids_that_decode_to_the_content(tokenized):
    out, run, rows = tokenized
    index = json.loads((out / "index.json").read_text())
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert index["tokenizer_sha256"] == sha256_file(out / "tokenizer.json") and index["vocab_size"] == 500
    assert index["input_ids"] == "uint16"
    seen = 0
    for entry in index["shards"]:
        table = pq.read_table(out / "shards" / entry["file"])
        assert table.schema.field("input_ids").type.value_type == pa.uint16()
        assert entry["tokens"] == sum(table.column("num_tokens").to_pylist())
        assert entry["tokens"] <= 3000 or entry["rows"] == 1  # shards close at target_tokens
        for row in table.to_pylist():
            ids = row["input_ids"]
            assert len(ids) == row["num_tokens"] and ids[-1] == EOS
            text = tokenizer.decode(ids, skip_special_tokens=False)
            assert text.endswith(row["content"] + "<|endoftext|>")
            seen += 1
    assert seen == len(rows) == index["totals"]["rows"]
    assert index["totals"]["tokens"] == sum(e["tokens"] for e in index["shards"]) and len(index["shards"]) > 3
    (stage,) = [s for s in run["stages"] if s["name"] == "tokenize"]
    assert stage["notes"]["tokens"] == index["totals"]["tokens"]
    assert stage["notes"]["tokenizer_sha256"] == index["tokenizer_sha256"]


def test_training_sample_spreads_the_budget_over_languages(tokenized):
    _, run, _ = tokenized
    (stage,) = [s for s in run["stages"] if s["name"] == "tokenize"]
    plan = stage["notes"]["trained_on"]
    assert set(plan) >= {"Python", "Text"}
    assert all(entry["bytes"] == entry["available"] for entry in plan.values())  # the budget covers all


@pytest.mark.parametrize(("normalizer", "encoder"), [
    (None, "tiktoken"),
    ({"type": "NFC"}, "tokenizers encode_batch: the tokenizer has a normalizer"),  # not proven equal: HF encodes
])
def test_a_given_tokenizer_is_used_as_is(tmp_path, tokenizer, normalizer, encoder):
    spec = json.loads(tokenizer.to_str())
    tokenizer = Tokenizer.from_str(json.dumps({**spec, "normalizer": normalizer}))
    tokenizer.save(str(tmp_path / "given.json"))
    dataset = tmp_path / "one.jsonl"
    dataset.write_text(json.dumps({"repo": "a/b", "path": "x.py", "content": SAMPLES["Python"], "license": "MIT"})
                       + "\n")
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),),
                         tokenize=TokenizeConfig(tokenizer=str(tmp_path / "given.json"), metadata_probability=0.0),
                         execution=ExecutionConfig(executor="local"))
    run = build(config, tmp_path / "out", Progress(quiet=True))
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == (tmp_path / "given.json").read_bytes()
    (row,) = pq.read_table(tmp_path / "out" / "shards" / "part-00000.parquet").to_pylist()
    assert row["input_ids"] == tokenizer.encode(SAMPLES["Python"]).ids + [EOS]
    (stage,) = [s for s in run["stages"] if s["name"] == "tokenize"]
    assert stage["notes"]["encoder"] == encoder


def test_sampling_budget_prefers_no_language(tmp_path):
    """With a budget smaller than the corpus, each language gets a share by the square root
    of its bytes: the small language is sampled whole, the big one partly."""
    rows = [{"repo": "r/big", "path": f"b{i}.py", "content": program(i, lines=60), "license": "MIT"}
            for i in range(30)]
    rows += [{"repo": "r/small", "path": f"s{i}.rs", "content": SAMPLES["Rust"] * 4, "license": "MIT"}
             for i in range(3)]
    dataset = tmp_path / "files.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(enabled=False),
                         tokenize=TokenizeConfig(vocab_size=300, train_bytes=20_000),
                         execution=ExecutionConfig(executor="local"))
    run = build(config, tmp_path / "out", Progress(quiet=True))
    (stage,) = [s for s in run["stages"] if s["name"] == "tokenize"]
    plan = stage["notes"]["trained_on"]
    assert plan["Rust"]["bytes"] == plan["Rust"]["available"]
    assert 0 < plan["Python"]["bytes"] < plan["Python"]["available"]
    assert sum(e["bytes"] for e in plan.values()) == 20_000


@pytest.mark.parametrize("nothing_kept", [False, True])
def test_a_tokenizer_that_learned_nothing_fails_the_build(tmp_path, nothing_kept):
    from dataclasses import replace

    from corpus_core.errors import BuildFailed
    from pipeline.config import BuildConfig, ExecutionConfig
    from pipeline.progress import Progress
    from pipeline.run import build
    from tests.conftest import LENIENT, mit_license, write_tree

    repo = write_tree(tmp_path / "repo", {"LICENSE": mit_license("Owner"), "a.py": "x\n"})
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(repo)),), execution=ExecutionConfig(executor="local"))
    config = replace(config, tokenize=replace(config.tokenize, min_frequency=1000))
    if nothing_kept:  # an empty sample, not only a small one
        config = replace(config, license=replace(config.license, allowed=("Apache-2.0",)))
    with pytest.raises(BuildFailed, match=r"tokenize: \d+ bytes of kept text taught the BPE no merge"):
        build(config, tmp_path / "out", Progress(quiet=True))
    assert not (tmp_path / "out" / "shards").exists()


def test_the_training_sample_takes_each_language_in_md5_order_until_its_share_is_spent(tmp_path):
    """The sample as the stage writes it, against the rule done by hand: per language, files in
    md5(seed:id) order (unit, ordinal on ties), each taken while the bytes taken before it are
    under the share; dropped files never; languages one after another by name."""
    import hashlib
    import random

    import duckdb

    from stages.tokenize import Tokenize

    chance = random.Random(7)
    rows = [{"unit": f"u{i % 3}", "ordinal": i, "id": f"id{i % 40}", "language": chance.choice(["Go", "C", None]),
             "size": chance.randint(1, 50), "decision": "kept" if i % 9 else "dropped", "content": f"text {i}"}
            for i in range(200)]  # ids repeat: md5 ties, broken by unit and ordinal
    db = duckdb.connect()
    db.register("rows", pa.Table.from_pylist(rows))
    db.execute("CREATE TABLE files AS SELECT * FROM rows")
    shares = {"Go": 300, "C": 10_000, "(unknown)": 1}
    stage = Tokenize(TokenizeConfig(seed=3))
    stage._write_sample(db, shares, tmp_path / "sample.parquet")

    expected = []
    for language in sorted(shares):
        spent = 0
        for row in sorted((r for r in rows if r["decision"] == "kept" and (r["language"] or "(unknown)") == language),
                          key=lambda r: (hashlib.md5(f"3:{r['id']}".encode()).hexdigest(), r["unit"], r["ordinal"])):
            if spent < shares[language]:
                spent += row["size"]
                expected.append(row["content"])
    assert pq.read_table(tmp_path / "sample.parquet").column("content").to_pylist() == expected
    assert 10 < len(expected) < sum(r["decision"] == "kept" for r in rows)  # a cut, not everything


def test_a_given_tokenizer_and_nothing_kept_write_an_empty_corpus(tmp_path, tokenizer):
    tokenizer.save(str(tmp_path / "given.json"))
    dataset = tmp_path / "gpl.jsonl"
    dataset.write_text("".join(json.dumps({"repo": "o/r", "path": f"f{i}.py", "content": SAMPLES["Python"],
                                           "license": "GPL-3.0-only"}) + "\n" for i in range(3)))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),),
                         tokenize=TokenizeConfig(tokenizer=str(tmp_path / "given.json")),
                         execution=ExecutionConfig(executor="local"))
    run = build(config, tmp_path / "out", Progress(quiet=True))
    assert run["counts"]["kept"] == 0 and run["counts"]["dropped"] == {"license_not_allowed": 3}
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["shards"] == [] and index["totals"]["rows"] == 0
    # the manifests in parts: every file in one part, no SBOM document (nothing to describe), empty signatures
    (part,) = schema.files_manifest(tmp_path / "out")
    assert pq.read_table(part).column("reason").to_pylist() == ["license_not_allowed"] * 3
    assert schema.sbom_documents(tmp_path / "out") == []
    for name in ("minhash", "minhash_bands"):
        (signatures,) = (tmp_path / "out" / "manifest" / name).iterdir()
        assert signatures.name == "part-00000.parquet" and pq.read_metadata(signatures).num_rows == 0
