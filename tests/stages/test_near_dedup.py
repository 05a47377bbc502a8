"""Near dedup end to end on generated code: what MinHash LSH merges, what it must not, and
the cluster rule. One build of a dataset source (licenses given, so no ScanCode) in-process;
tests/pipeline/test_build.py checks the same bytes with one and two Ray workers."""

from __future__ import annotations

import json
import re

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus_core.errors import ConfigError
from corpus_core.records import SourceSpec
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages import minhash
from stages.dedup import DedupConfig, NearDedupConfig
from tests.conftest import LENIENT, program, replace_lines

HEADER = """# Copyright 2024 The Authors.
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
import os
import sys
import json
from typing import Any
"""


def jaccard(left: str, right: str) -> float:
    """Exact Jaccard similarity of the 5-token shingle sets."""
    def shingles(text: str) -> set[tuple[str, ...]]:
        words = minhash.tokens(text)
        return {tuple(words[i:i + 5]) for i in range(len(words) - 4)}
    a, b = shingles(left), shingles(right)
    return len(a & b) / len(a | b)


ORIGINAL = program(1)
RENAMED = re.sub(r"\bitems\b", "elements", ORIGINAL).replace("# the", "# a", 3)  # one identifier, three comments
CHAIN_A = program(2)
CHAIN_B = replace_lines(CHAIN_A, 0.07, 3)
CHAIN_C = replace_lines(CHAIN_B, 0.07, 4)
SHORT = "x = 1\ny = 2\n"  # 4 tokens: under min_tokens


@pytest.fixture(scope="module")
def near(tmp_path_factory):
    root = tmp_path_factory.mktemp("near")
    rows = [
        # exact copies (exact dedup is off here): five, more than max_bucket_size, so the star path runs
        *({"repo": f"copies/r{i}", "path": "same.py", "content": program(9), "stars": i} for i in range(5)),
        {"repo": "rename/original", "path": "lib.py", "content": ORIGINAL, "stars": 5},
        {"repo": "rename/fork", "path": "lib.py", "content": RENAMED, "stars": 50},
        {"repo": "chain/a", "path": "a.py", "content": CHAIN_A},
        {"repo": "chain/b", "path": "b.py", "content": CHAIN_B},
        {"repo": "chain/c", "path": "c.py", "content": CHAIN_C},
        {"repo": "header/one", "path": "x.py", "content": HEADER + program(5, 30)},
        {"repo": "header/two", "path": "y.py", "content": HEADER + program(6, 30)},
        {"repo": "short/one", "path": "s.py", "content": SHORT},
        {"repo": "short/two", "path": "s.py", "content": SHORT},
    ]
    dataset = root / "files.jsonl"
    dataset.write_text("".join(json.dumps({**row, "license": "MIT"}) + "\n" for row in rows))
    config = BuildConfig(
        **LENIENT,
        sources=(SourceSpec(str(dataset)),),
        dedup=DedupConfig(exact=False),
        near_dedup=NearDedupConfig(max_bucket_size=3, batch_files=4),
        execution=ExecutionConfig(executor="local"),
    )
    run = build(config, root / "out", Progress(quiet=True))
    manifest = {(r["repo"], r["path"]): r for r in duckdb.sql(
        f"SELECT repo, path, id, decision, reason, dup_of FROM '{root}/out/manifest/files/*.parquet'"
    ).to_arrow_table().to_pylist()}
    return run, manifest


def verdict(manifest, repo, path):
    row = manifest[(repo, path)]
    return row["decision"], row["reason"], row["dup_of"]


def test_exact_copies_keep_the_most_starred(near):
    _, manifest = near
    kept = manifest[("copies/r4", "same.py")]
    assert kept["decision"] == "kept"
    for i in range(4):
        assert verdict(manifest, f"copies/r{i}", "same.py") == ("dropped", "near_duplicate", kept["id"])


def test_renamed_identifier_and_edited_comments_are_caught(near):
    _, manifest = near
    assert 0.75 < jaccard(ORIGINAL, RENAMED) < 0.9  # the premise: a near copy, not an exact one
    fork = manifest[("rename/fork", "lib.py")]
    assert fork["decision"] == "kept"  # 50 stars against 5
    assert verdict(manifest, "rename/original", "lib.py") == ("dropped", "near_duplicate", fork["id"])


def test_a_shared_license_header_and_imports_do_not_merge(near):
    _, manifest = near
    assert jaccard(HEADER + program(5, 30), HEADER + program(6, 30)) < 0.2
    assert manifest[("header/one", "x.py")]["decision"] == "kept"
    assert manifest[("header/two", "y.py")]["decision"] == "kept"


def test_a_chain_is_one_cluster_even_where_its_ends_differ(near):
    """A~B and B~C, A and C below the threshold: connected components put all three in one
    cluster; the first in keep order (no stars: smallest repo) stays, C goes as A's duplicate."""
    _, manifest = near
    assert jaccard(CHAIN_A, CHAIN_B) > 0.75 and jaccard(CHAIN_B, CHAIN_C) > 0.75
    assert jaccard(CHAIN_A, CHAIN_C) < 0.67
    a = manifest[("chain/a", "a.py")]
    assert a["decision"] == "kept"
    assert verdict(manifest, "chain/b", "b.py") == ("dropped", "near_duplicate", a["id"])
    assert verdict(manifest, "chain/c", "c.py") == ("dropped", "near_duplicate", a["id"])


def test_files_under_min_tokens_are_never_near_duplicates(near):
    _, manifest = near
    assert manifest[("short/one", "s.py")]["decision"] == "kept"
    assert manifest[("short/two", "s.py")]["decision"] == "kept"


def test_run_json_records_settings_and_figures(near):
    run, _ = near
    (stage,) = [s for s in run["stages"] if s["name"] == "near_dedup"]
    assert stage["dropped"] == {"near_duplicate": 7}
    notes = stage["notes"]
    assert notes["settings"] == "5ng_256p_25b10r_t0.7" and (notes["bands"], notes["rows"]) == (25, 10)
    assert notes["files"] == 14 and notes["signed"] == 12 and notes["too_few_tokens"] == 2
    assert notes["clusters"] == 3 and notes["largest_cluster"] == 5
    assert run["config"]["near_dedup"]["num_perm"] == 256


def test_without_verification_weak_pairs_would_count_too(tmp_path):
    """verify=false keeps every LSH candidate: with one-row bands, any shared shingle minimum
    makes a pair, and the header files merge; verification is what keeps them apart."""
    dataset = tmp_path / "files.jsonl"
    dataset.write_text("".join(json.dumps({"repo": repo, "path": "x.py", "content": content, "license": "MIT"}) + "\n"
                               for repo, content in [("h/one", HEADER + program(5, 30)),
                                                     ("h/two", HEADER + program(6, 30))]))

    def dropped(verify: bool) -> int:
        config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),),
                             near_dedup=NearDedupConfig(bands=256, rows=1, verify=verify),
                             execution=ExecutionConfig(executor="local"))
        run = build(config, tmp_path / f"out-{verify}", Progress(quiet=True))
        return run["counts"]["dropped"].get("near_duplicate", 0)

    assert dropped(verify=False) == 1
    assert dropped(verify=True) == 0


@pytest.mark.parametrize("values, message", [
    ({"bands": 20}, "give both, or neither"),
    ({"bands": 30, "rows": 10}, "exceed num_perm"),
    ({"threshold": 1.5}, "expected a number in"),
])
def test_bad_settings_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        NearDedupConfig(**values)


def test_a_rerun_recomputes_only_the_partitions_without_a_result(tmp_path):
    """Resume: after a crash that lost one partition's signatures and another's drops, a rerun
    runs exactly those two tasks (every task writes its result last, and every other one is
    untouched) and ends with the same manifest bytes."""
    dataset = tmp_path / "files.jsonl"
    dataset.write_text("".join(json.dumps({"repo": f"r/{i}", "path": "a.py", "license": "MIT",
                                           "content": program(i % 6, lines=20) + f"# {i}\n"}) + "\n"
                               for i in range(12)))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(batch_files=5),
                         execution=ExecutionConfig(executor="local", keep_work_dir=True, partitions=3))
    first = build(config, tmp_path / "out", Progress(quiet=True))
    manifest = (tmp_path / "out" / "manifest" / "files" / "part-00000.parquet").read_bytes()
    (folder,) = (tmp_path / "out" / "_work").glob("*/near_dedup")
    results = sorted(folder.glob("*-0000?.parquet"))
    assert {path.name for path in results} >= {"signatures-00001.parquet", "drops-00002.parquet"}
    lost = [folder / "signatures-00001.parquet", folder / "drops-00002.parquet"]
    for path in lost:
        path.unlink()
    rerun = [*lost, folder / "clusters-00002.parquet"]  # the drops task writes its clusters' counts too
    stamps = {path: path.stat().st_mtime_ns for path in results if path not in rerun}
    second = build(config, tmp_path / "out", Progress(quiet=True))
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps
    assert all(path.exists() for path in lost)
    assert (tmp_path / "out" / "manifest" / "files" / "part-00000.parquet").read_bytes() == manifest
    assert second["counts"] == first["counts"] and first["counts"]["dropped"] == {"near_duplicate": 6}


def test_the_same_bytes_over_partition_counts(tmp_path, monkeypatch):
    """Near-duplicate families (copies past max_bucket_size, chains, pairs) over 1, 2 and 5
    partitions: the same drops, manifests and signatures, byte for byte, and the same figures;
    and with the signatures cut into many parts (written by 1 task or 16), the same parts,
    which read in order are the one-part tables."""
    rows = []
    for family in range(8):
        base = program(100 + family, lines=30)
        members = [base, replace_lines(base, 0.07, family)]
        if family % 2:
            members.append(replace_lines(members[-1], 0.07, family + 50))  # a chain
        if family % 3 == 0:
            members += [base] * 4  # a bucket bigger than max_bucket_size: star + chain
        rows += [{"repo": f"f{family}/m{k}", "path": "x.py", "content": text, "stars": k % 3 or None}
                 for k, text in enumerate(members)]
    rows += [{"repo": f"alone/{i}", "path": "y.py", "content": program(200 + i, lines=25)} for i in range(6)]
    dataset = tmp_path / "files.jsonl"
    dataset.write_text("".join(json.dumps({**row, "license": "MIT"}) + "\n" for row in rows))

    def built(count: int, tag: str = "") -> tuple[dict, dict[str, bytes]]:
        config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), dedup=DedupConfig(exact=False),
                             near_dedup=NearDedupConfig(max_bucket_size=3, batch_files=4),
                             execution=ExecutionConfig(executor="local", partitions=count))
        out = tmp_path / f"out-{count}{tag}"
        run = build(config, out, Progress(quiet=True))
        (stage,) = [s for s in run["stages"] if s["name"] == "near_dedup"]
        return {**stage["notes"], "dropped": stage["dropped"]}, {
            str(path.relative_to(out)): path.read_bytes() for name in ("files", "minhash", "minhash_bands")
            for path in sorted((out / "manifest" / name).iterdir())}

    notes, files = built(1)
    # as the driver-only stage found before it was partitioned: one chain end stays out of its family
    assert notes["dropped"] == {"near_duplicate": 23} and notes["clusters"] == 8 and notes["largest_cluster"] == 7
    assert (notes["candidate_pairs"], notes["edges"], notes["rounds"]) == (37, 36, 2)
    for count in (2, 5):
        assert built(count) == (notes, files), count

    monkeypatch.setattr("stages.dedup.SIGNATURE_PART_ROWS", 4)  # the cut is the driver's: tasks are told it
    one_task, parts = built(1, "-parts")  # 16 partitions: 16 writing tasks; 1: one
    assert built(16, "-parts") == (one_task, parts) and one_task == notes
    for name, rows in (("minhash", notes["files"]), ("minhash_bands", notes["files"] * 25)):
        names = sorted(key for key in parts if key.startswith(f"manifest/{name}/"))
        assert len(names) == 16 ** len(f"{(rows - 1) // 4:x}") > 1  # the fewest 16^k parts of 4 rows on average
        whole = pa.concat_tables([pq.read_table(pa.BufferReader(parts[key])) for key in names])
        assert whole.equals(pq.read_table(pa.BufferReader(files[f"manifest/{name}/part-00000.parquet"])))
