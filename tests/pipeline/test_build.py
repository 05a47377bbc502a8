"""End to end: generated sources in, shards and manifests out, on a local Ray."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus_core import reasons
from corpus_core.records import SourceSpec
from corpus_core.storage import sha256_file
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.ingest import IngestConfig
from stages.shards import ShardConfig
from tests.conftest import (
    C_FILE,
    JS_FILE,
    LENIENT,
    PYTHON_FILE,
    make_git_repo,
    make_tar,
    make_zip,
    mit_license,
    program,
    replace_lines,
    write_tree,
)

PARTITIONED_STAGES = 4  # at least duplicate_paths, license_decision, exact_dedup, the writer: a task per partition
DUPLICATE = "def shared():\n    # the same in two repositories\n    return 42\n"
NEAR = program(11, lines=40)
NEAR_COPY = replace_lines(NEAR, 0.05, 12)  # a near duplicate: alpha (1 star) keeps its copy


def make_sources(root: Path) -> list[SourceSpec]:
    alpha = write_tree(root / "collection" / "alpha", {
        "LICENSE": mit_license("Alpha"), "a.py": PYTHON_FILE, "src/util.c": C_FILE, "dup.py": DUPLICATE,
        "data.bin": b"\x00\x01binary", "big.txt": "b" * 6000, "near.py": NEAR,
    })
    os.symlink("/etc/hostname", alpha / "escape")
    beta = make_git_repo(root / "beta", [{"dup.py": "old\n", "LICENSE": mit_license("Beta")},
                                         {"dup.py": DUPLICATE, "web/b.js": JS_FILE}])
    gamma = make_tar(root / "gamma-1.0.tar.gz", [
        ("gamma-1.0/g.py", "print('gamma')\n", {}), ("gamma-1.0/../../slip.py", "x = 1\n", {}),
        ("gamma-1.0/nolicense/none.py", "# SPDX-License-Identifier: GPL-3.0-only\nn = 1\n", {}),
        ("gamma-1.0/COPYING", mit_license("Gamma"), {}),
    ])
    delta = make_zip(root / "delta.zip", {"delta/main.go": "package main\n\nfunc main() {}\n",
                                          "delta/LICENSE": mit_license("Delta"), "delta/near_copy.py": NEAR_COPY})
    dataset = root / "files.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in [
        {"repo": "ds/one", "path": "x.rs", "content": "fn main() {}\n", "license": "Apache-2.0"},
        {"repo": "ds/one", "path": "x.rs", "content": "fn other() {}\n", "license": "Apache-2.0"},
        {"repo": "ds/one", "path": "lib.ts", "content": "export const n: number = 1;\n", "license": "Apache-2.0"},
        {"repo": "ds/two", "path": "y.py", "content": "y = 1\n", "license": None},
    ]))
    # a directory without .git is a collection: each child is a repository
    return [SourceSpec(str(alpha.parent), stars=1), SourceSpec(str(beta), stars=10), SourceSpec(str(gamma)),
            SourceSpec(str(delta)), SourceSpec(str(dataset))]


def config_for(sources, workers: int, executor: str = "ray", chunk_files: int = 2000, partitions: int = 16
               ) -> BuildConfig:
    return BuildConfig(
        **LENIENT,
        sources=tuple(sources),
        ingest=IngestConfig(max_file_bytes=5000),
        shards=ShardConfig(target_bytes=200),
        execution=ExecutionConfig(executor=executor, num_workers=workers, chunk_files=chunk_files,
                                  partitions=partitions, local_below_bytes=0),  # on Ray even when small
    )


def output_bytes(out: Path) -> dict[str, bytes]:
    manifests = [out / "manifest" / name for name in ("repos.parquet", "attribution.parquet")] + [
        out / "index.json", out / "README.md", out / "NOTICE"]
    parts = [path for name in ("files", "sbom", "minhash", "minhash_bands")
             for path in sorted((out / "manifest" / name).glob("part-*"))]
    files = [*sorted((out / "shards").iterdir()), *parts, *manifests]
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


@pytest.fixture(scope="module")
def built(tmp_path_factory, ray_local):
    root = tmp_path_factory.mktemp("e2e")
    sources = make_sources(root / "src")
    run = build(config_for(sources, workers=2), root / "out", Progress(quiet=True))
    return root, sources, run


def test_every_input_file_is_accounted_for(built):
    root, _, run = built
    files = pq.read_table(root / "out" / "manifest" / "files").to_pylist()
    assert len(files) == 22
    dropped = {(f["repo"], f["path"]): f["reason"] for f in files if f["decision"] == "dropped"}
    assert dropped == {
        ("alpha", "data.bin"): reasons.BINARY, ("alpha", "big.txt"): reasons.TOO_LARGE,
        ("alpha", "escape"): reasons.LINK_ESCAPE, ("gamma-1.0", "gamma-1.0/../../slip.py"): reasons.PATH_ESCAPE,
        ("alpha", "dup.py"): "exact_duplicate", ("ds/one", "x.rs"): "duplicate_path",
        ("gamma-1.0", "nolicense/none.py"): "license_not_allowed", ("ds/two", "y.py"): "no_license",
        # license texts are evidence, never training data
        ("alpha", "LICENSE"): "license_text", ("beta", "LICENSE"): "license_text",
        ("gamma-1.0", "COPYING"): "license_text", ("delta", "LICENSE"): "license_text",
        ("delta", "near_copy.py"): "near_duplicate",
    }
    assert run["counts"]["files"] == 22 and run["counts"]["kept"] == 9
    assert run["counts"]["dropped"] == {**{r: 1 for r in dropped.values()}, "license_text": 4}
    assert all(f["reason"] is None for f in files if f["decision"] == "kept")


def test_exact_duplicate_keeps_the_starred_repository(built):
    root, _, _ = built
    rows = duckdb.sql(f"""SELECT repo, decision, id, dup_of FROM '{root}/out/manifest/files/*.parquet'
                          WHERE path = 'dup.py' ORDER BY repo""").fetchall()
    (alpha, beta) = rows
    assert alpha[0] == "alpha" and alpha[1] == "dropped" and alpha[3] == beta[2]
    assert beta[0] == "beta" and beta[1] == "kept"


def test_shards_hold_the_kept_files_and_match_the_index(built):
    root, _, run = built
    index = json.loads((root / "out/index.json").read_text())
    assert index["totals"]["rows"] == 9 and len(index["shards"]) > 1
    contents = {}
    for entry in index["shards"]:
        path = root / "out/shards" / entry["file"]
        assert sha256_file(path) == entry["sha256"] and path.stat().st_size == entry["bytes"]
        table = pq.read_table(path)
        assert table.num_rows == entry["rows"]
        contents.update(zip(zip(table.column("repo").to_pylist(), table.column("path").to_pylist(), strict=True),
                            table.column("content").to_pylist(), strict=True))
    assert contents[("alpha", "a.py")] == PYTHON_FILE
    assert contents[("beta", "dup.py")] == DUPLICATE  # HEAD, not the first commit
    assert contents[("ds/one", "x.rs")] == "fn main() {}\n"
    placed = duckdb.sql(f"""SELECT count(*) FROM '{root}/out/manifest/files/*.parquet'
                            WHERE (decision = 'kept') = (shard IS NOT NULL AND row IS NOT NULL)""").fetchall()
    assert placed == [(22,)]


def test_languages_and_repositories(built):
    root, _, run = built
    languages = run["counts"]["languages"]
    assert {"Python", "C", "JavaScript", "Go", "Rust", "TypeScript"} <= set(languages)
    repos = duckdb.sql(f"""SELECT repo, kind, files, files_kept, decision, stars, length(commit)
                           FROM '{root}/out/manifest/repos.parquet' ORDER BY repo""").fetchall()
    assert [r[:6] for r in repos] == [
        ("alpha", "directory", 8, 3, "kept", 1), ("beta", "git", 3, 2, "kept", 10),
        ("delta", "archive", 3, 1, "kept", None), ("ds/one", "dataset", 3, 2, "kept", None),
        ("ds/two", "dataset", 1, 0, "dropped", None), ("gamma-1.0", "archive", 4, 1, "kept", None),
    ]
    assert repos[1][6] == 40  # the git commit


def test_run_json_records_config_versions_and_stages(built):
    root, _, run = built
    saved = json.loads((root / "out/manifest/run.json").read_text())
    assert saved["counts"] == run["counts"]
    assert saved["versions"]["enry-python"] != "not installed"
    stages = {stage["name"]: stage for stage in saved["stages"]}
    assert list(stages) == ["ingest", "optout", "language", "notebooks", "license", "language_policy",
                            "decontamination", "quality", "comments", "pii", "duplicate_paths", "license_decision",
                            "exact_dedup", "near_dedup", "tokenize", "shards"]
    assert stages["ingest"]["dropped"] == {
        reasons.BINARY: 1, reasons.TOO_LARGE: 1, reasons.LINK_ESCAPE: 1, reasons.PATH_ESCAPE: 1,
    }
    assert stages["exact_dedup"]["dropped"] == {"exact_duplicate": 1}
    assert stages["license"]["dropped"] == {"license_text": 4}  # at the file stage: no filter sees them
    assert stages["license_decision"]["dropped"] == {"license_not_allowed": 1, "no_license": 1}
    assert stages["near_dedup"]["dropped"] == {"near_duplicate": 1}
    assert stages["near_dedup"]["notes"]["clusters"] == 1
    assert stages["language"]["files_in"] == 18 and stages["shards"]["kept"] == 9
    assert not (root / "out/_work").exists()
    # every chunk, encoding batch and partition of a corpus stage's steps is one measured task
    tasks = saved["executor"]["tasks"]
    assert tasks["tasks"] >= saved["units"]["chunks"] + 1 + PARTITIONED_STAGES * 16 and tasks["cpu_seconds"] > 0
    assert tasks["peak_rss_mb"] > 50 and saved["executor"]["driver_peak_rss_mb"] > 50


def test_same_bytes_with_one_and_two_workers_and_in_process(built, tmp_path):
    root, sources, _ = built
    one = build(config_for(sources, workers=1), tmp_path / "one", Progress(quiet=True))
    local = build(config_for(sources, workers=1, executor="local"), tmp_path / "local", Progress(quiet=True))
    reference = output_bytes(root / "out")
    assert output_bytes(tmp_path / "one") == reference
    assert output_bytes(tmp_path / "local") == reference
    assert one["input_fingerprint"] == local["input_fingerprint"]


@pytest.mark.parametrize("workers", [1, 2])
def test_repositories_cut_into_chunks_give_the_same_bytes(built, tmp_path, workers):
    """Chunks of 2 records: every repository runs as several tasks, license files in one
    chunk scoping files in another; nothing in the output may tell."""
    root, sources, reference_run = built
    run = build(config_for(sources, workers=workers, chunk_files=2), tmp_path / "chunked", Progress(quiet=True))
    assert output_bytes(tmp_path / "chunked") == output_bytes(root / "out")
    assert (tmp_path / "chunked" / "NOTICE").read_bytes() == (root / "out" / "NOTICE").read_bytes()
    assert run["units"]["chunks"] > 2 * reference_run["units"]["chunks"]
    assert run["counts"] == reference_run["counts"]


@pytest.mark.parametrize("partitions", [1, 3])
def test_corpus_stages_cut_into_partitions_give_the_same_bytes(built, tmp_path, partitions):
    """The corpus stages' partitioned work (dedup, near dedup, the license decision) over 1
    and 3 partitions instead of 16: the same bytes, and a task per partition ran."""
    root, sources, reference_run = built
    run = build(config_for(sources, workers=2, partitions=partitions), tmp_path / "cut", Progress(quiet=True))
    assert output_bytes(tmp_path / "cut") == output_bytes(root / "out")
    assert run["counts"] == reference_run["counts"]
    assert (run["executor"]["partitions"], reference_run["executor"]["partitions"]) == (partitions, 16)
    # fewer partitions, fewer tasks: at least one per partition of each partitioned stage
    assert reference_run["executor"]["tasks"]["tasks"] - run["executor"]["tasks"]["tasks"] \
        >= PARTITIONED_STAGES * (16 - partitions)


def test_a_rerun_cut_into_other_partitions_does_not_reuse_the_old_cut(built, tmp_path):
    """A rerun over kept work (as after a crash in the corpus stages) with another partition
    count recomputes the corpus stages instead of reading results cut the other way."""
    root, sources, _ = built
    config = config_for(sources, workers=1, executor="local", partitions=3)
    kept = dataclasses.replace(config, execution=dataclasses.replace(config.execution, keep_work_dir=True))
    build(kept, tmp_path / "out", Progress(quiet=True))
    assert list((tmp_path / "out" / "_work").glob("*/exact_dedup/drops-00002.parquet"))
    again = dataclasses.replace(kept, execution=dataclasses.replace(kept.execution, partitions=2))
    build(again, tmp_path / "out", Progress(quiet=True))
    assert not list((tmp_path / "out" / "_work").glob("*/exact_dedup/drops-00002.parquet"))
    assert output_bytes(tmp_path / "out") == output_bytes(root / "out")


def test_the_build_chooses_its_partitions_unless_told():
    """`execution.partitions = 0`: one in-process, four per Ray worker, and more once each
    would hold over a million files; a number given is used as it is."""
    from types import SimpleNamespace

    from pipeline.run import partition_count

    local, ray = SimpleNamespace(name="local", num_workers=1), SimpleNamespace(name="ray", num_workers=2)
    assert partition_count(0, local, 50_000_000) == 1
    assert partition_count(0, ray, 10) == 8
    assert partition_count(0, ray, 20_000_001) == 21
    assert partition_count(5, local, 10) == 5 and partition_count(5, ray, 10**9) == 5


def test_bad_config_value_fails_before_work(tmp_path):
    from pipeline.cli import main

    config = tmp_path / "c.toml"
    config.write_text("[shards]\ntarget_bytes = 'big'\n")
    assert main(["build", "--config", str(config), "--out", str(tmp_path / "o"), str(tmp_path)]) == 2
    assert not (tmp_path / "o").exists()


def test_killed_build_resumes_to_the_same_bytes(tmp_path):
    """A build killed (SIGKILL) after some units finished restarts from them, same output;
    a done unit whose source was edited in between is read again, never mixed."""
    src = tmp_path / "src"
    for number in range(24):
        write_tree(src / f"repo{number:02d}", {
            "LICENSE": mit_license(f"Owner {number}"),
            **{f"m{i}.py": program(number * 100 + i, lines=10 + 10 * (i % 7)) for i in range(40)},
        })
    config = tmp_path / "build.toml"
    config.write_text(f'sources = ["{src}"]\n[execution]\nnum_workers = 1\nlocal_below_bytes = 0\n'
                      '[shards]\ntarget_bytes = 50000\n')
    command = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(config)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # the driver kills itself (SIGKILL) once the third unit is recorded; with one worker no
    # other unit is in flight then, so exactly three are done
    killed = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], start_new_session=True,
                              env={**env, "CORPUS_KILL_AT": "units_done:3"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert killed.wait(timeout=300) == -signal.SIGKILL
    assert left_running(killed.pid, within=30) == []  # the driver's local Ray went with it
    finished = len(list((tmp_path / "killed" / "_work").glob("*/parts/*.done.json")))
    assert finished == 3
    assert not (tmp_path / "killed" / "manifest").exists()
    # one finished unit's source changes before the resume (units run in order on one worker)
    (src / "repo00" / "m0.py").write_text(program(99_999, lines=30))

    resumed = subprocess.run([*command, "--out", str(tmp_path / "killed")], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 source(s) changed since the interrupted build, read again: repo00" in resumed.stderr
    assert f"{finished - 1} already done (resuming)" in resumed.stderr
    whole = subprocess.run([*command, "--out", str(tmp_path / "whole")], env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    assert output_bytes(tmp_path / "killed") == output_bytes(tmp_path / "whole")
    run = json.loads((tmp_path / "killed" / "manifest" / "run.json").read_text())
    assert run["units"] == {"total": 24, "resumed": finished - 1, "redone": 1, "chunks": 24}
    assert run["counts"]["files"] == 24 * 41
    assert run["counts"]["kept"] > 24 * 40 // 2


def left_running(group: int, within: float) -> list[str]:
    """The processes of a process group still alive after `within` seconds (those left are killed)."""
    deadline = time.monotonic() + within
    while True:
        listing = subprocess.run(["ps", "-o", "pid=,comm=", "-g", str(group)], capture_output=True, text=True).stdout
        alive = listing.split("\n") if listing.strip() else []
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    return [line.strip() for line in alive if line.strip()]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, within: float = 180) -> None:
    """Until the head answers on `port`: `ray start` takes seconds on a quiet machine and much
    longer on a loaded one, and the build's own reachability check gives up after 30 s."""
    import socket

    deadline = time.monotonic() + within
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.5)
    raise AssertionError(f"the Ray head did not answer on port {port} within {within} s")


def test_ray_address_runs_the_same_build_on_a_cluster(tmp_path):
    """A Ray head started apart (as on a cluster), reached with --ray-address: same bytes as local."""
    sources = make_sources(tmp_path / "src")
    config = tmp_path / "build.toml"
    config.write_text(
        "sources = [" + ", ".join(f'{{ source = "{s.source}", stars = {s.stars or 0} }}' for s in sources) + "]\n"
        "[ingest]\nmax_file_bytes = 5000\n[shards]\ntarget_bytes = 200\n"
    )
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = free_port()
    ray_bin = Path(sys.executable).parent / "ray"
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, head)
        command = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(config)]
        on_cluster = subprocess.run([*command, "--out", str(tmp_path / "cluster"), "--ray-address",
                                     f"127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=180)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        # `ray stop` would remove the address the head left behind, but it stops every Ray here
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    assert on_cluster.returncode == 0, on_cluster.stderr
    local = subprocess.run([*command, "--out", str(tmp_path / "local"), "--executor", "local"],
                           env=env, capture_output=True, text=True)
    assert local.returncode == 0, local.stderr
    assert output_bytes(tmp_path / "cluster") == output_bytes(tmp_path / "local")


def test_small_local_inputs_build_in_process_and_large_ones_on_ray(tmp_path):
    from pipeline.run import _input_below
    from stages.sources import resolve_units

    repo = write_tree(tmp_path / "repo", {"LICENSE": mit_license("Owner"), "a.py": PYTHON_FILE, "b.bin": b"\0" * 5000})
    units = resolve_units([SourceSpec(str(repo))])
    assert _input_below(units, 10_000) and not _input_below(units, 5_000)
    assert not _input_below(resolve_units([SourceSpec("pypi:six==1.16.0")]), 10**12)  # size unknown: Ray

    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(repo)),))  # executor "ray", the default
    run = build(config, tmp_path / "out", Progress(quiet=True))
    assert run["executor"]["kind"] == "local" and run["counts"]["kept"] == 1  # LICENSE is no training data


def test_manifests_in_parts_are_the_one_manifest_cut_between_repositories(built, tmp_path, monkeypatch):
    """With parts of about 3 files, manifest/files/ holds several parts (written by tasks on
    2 Ray workers, and in-process: the same bytes) that together are the one-part manifest,
    each a range of whole repositories cut where a repository's first file passes the next
    multiple of 3; one valid SPDX document per part, together the one-part document's files;
    and the readers (audit, lookup, report, optout apply) read every part."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    from corpus_core import schema
    from manifests import optout
    from manifests.report import write_report
    from manifests.republish import apply_optout, lookup
    from manifests.writer import ROW_GROUP_ROWS
    from pipeline.audit import audit

    root, sources, reference_run = built
    monkeypatch.setattr("manifests.writer.PART_FILES", 3)  # the cut is the driver's: no worker reads it
    run = build(config_for(sources, workers=2), tmp_path / "parts", Progress(quiet=True))
    build(config_for(sources, workers=1, executor="local"), tmp_path / "local", Progress(quiet=True))
    assert output_bytes(tmp_path / "local") == output_bytes(tmp_path / "parts")
    assert run["counts"] == reference_run["counts"]

    (whole,) = schema.files_manifest(root / "out")
    reference = pq.read_table(whole)
    parts = schema.files_manifest(tmp_path / "parts")
    tables = [pq.read_table(path) for path in parts]
    assert [path.name for path in parts] == [f"part-{n:05d}.parquet" for n in range(len(parts))]
    assert pa.concat_tables(tables).equals(reference)
    assert all(pq.ParquetFile(p).metadata.num_row_groups == 1 for p in parts)  # under ROW_GROUP_ROWS each
    repos = reference.column("repo").to_pylist()
    first = {repo: repos.index(repo) for repo in dict.fromkeys(repos)}  # a repository's first row
    expected: dict[int, list[str]] = {}
    for repo, row in first.items():
        expected.setdefault(row // 3, []).append(repo)
    assert [sorted(set(t.column("repo").to_pylist())) for t in tables] == list(expected.values())
    assert len(parts) == len(expected) > 3 and ROW_GROUP_ROWS > reference.num_rows

    # an SPDX document per part that keeps a file, named as its part
    kept = [{r["repo"] for r in table.to_pylist() if r["decision"] == "kept"} for table in tables]
    documents = schema.sbom_documents(tmp_path / "parts")
    assert [d.name for d in documents] == [f"part-{n:05d}.spdx.json" for n in range(len(parts)) if kept[n]]
    assert 0 < len(documents) < len(parts)  # some parts keep nothing (the dataset's rows, the GPL file)
    one = json.loads(schema.sbom_documents(root / "out")[0].read_text())
    entries = []
    for document in documents:
        assert validate_full_spdx_document(parse_file(str(document))) == []
        data = json.loads(document.read_text())
        assert {p["name"] for p in data["packages"]} == kept[int(document.name[5:10])]
        entries += data["files"]
    assert sorted(map(json.dumps, entries)) == sorted(map(json.dumps, one["files"]))

    assert audit(tmp_path / "parts").failures == audit(root / "out").failures
    assert {r["path"] for r in lookup(tmp_path / "parts", repo="delta")} == {"main.go", "LICENSE", "near_copy.py"}
    assert "files read" in write_report(tmp_path / "parts", tmp_path / "report.html").read_text()
    registry = tmp_path / "optout.jsonl"
    optout.add(registry, optout.make_entry("repo", "delta", requested_by="a@b.c", reason=""))
    removed = apply_optout(tmp_path / "parts", registry, tmp_path / "v2")["removed"]
    assert {r["path"] for r in removed} == {"main.go"} | ({"near_copy.py"} & {
        r["path"] for r in lookup(root / "out", repo="delta") if r["decision"] == "kept"})
    republished = schema.files_manifest(tmp_path / "v2")
    assert [p.name for p in republished] == [p.name for p in parts]
    # delta's part keeps nothing now: its document goes; the others validate, untouched ones byte for byte
    delta = next(n for n, t in enumerate(tables) if "delta" in t.column("repo").to_pylist())
    assert kept[delta] == {"delta"}
    again = schema.sbom_documents(tmp_path / "v2")
    assert [d.name for d in again] == [d.name for d in documents if d.name != f"part-{delta:05d}.spdx.json"]
    for document in again:
        assert validate_full_spdx_document(parse_file(str(document))) == []
        assert document.read_bytes() == (tmp_path / "parts" / "manifest" / "sbom" / document.name).read_bytes()
    assert audit(tmp_path / "v2").failures == audit(tmp_path / "parts").failures
