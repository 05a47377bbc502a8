"""NOTICE and the SPDX SBOM of a small build: the holders of license files and of kept files'
headers, each required license text once, and a document spdx-tools accepts, the same bytes
from the same input."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from corpus_core.records import SourceSpec
from manifests import optout
from manifests.republish import apply_optout
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from tests.conftest import APACHE_NOTICE, GPL3_HEADER, LENIENT, mit_license, write_tree

HEADED = "# Copyright (c) 2021 Richard Roe\n\n\ndef double(x):\n    return 2 * x\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("attribution")
    repos = root / "repos"
    write_tree(repos / "mit_lib", {"LICENSE": mit_license("Jane Doe"), "lib.py": HEADED,
                                   "util.py": "def half(x):\n    return x / 2\n"})
    write_tree(repos / "apache_app", {"LICENSE": APACHE_NOTICE, "app.py": "def main():\n    return 0\n"})
    write_tree(repos / "zero_bsd", {"main.c": "// SPDX-License-Identifier: 0BSD\nint main(void) { return 0; }\n"})
    write_tree(repos / "gpl_tool", {"COPYING": GPL3_HEADER.replace("# ", ""), "tool.py": "def t():\n    return 1\n"})
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(repos)),), cache_dir=str(root / "cache"),
                         execution=ExecutionConfig(executor="local"))
    build(config, root / "out", Progress(quiet=True))
    return root, config


def test_notice_names_the_holders_of_license_files_and_of_kept_headers(built):
    root, _ = built
    notice = (root / "out" / "NOTICE").read_text()
    section = notice.split("== mit_lib ==\n", 1)[1].split("\n\n", 1)[0]
    assert "License: MIT\n" in section
    assert "Copyright: Jane Doe; Richard Roe\n" in section  # the LICENSE's and lib.py's header's
    assert "License texts below: MIT" in section
    assert "== gpl_tool ==" not in notice  # only kept repositories are attributed


def test_notice_holds_each_required_license_text_once(built):
    root, _ = built
    notice = (root / "out" / "NOTICE").read_text()
    texts = notice.split("==== License texts ====\n", 1)[1]
    assert [line for line in texts.splitlines() if line.startswith("---- ")] == [
        "---- Apache-2.0 ----", "---- MIT ----"]  # 0BSD asks for no text; the GPL file was not kept
    assert texts.count("Permission is hereby granted, free of charge") == 1  # ScanCode's MIT text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in texts  # Apache-2.0's full text
    assert "License texts below: (none required)" in notice.split("== zero_bsd ==\n", 1)[1]


def test_the_sbom_is_valid_spdx_and_lists_what_was_kept(built):
    root, _ = built
    path = root / "out" / "manifest" / "sbom" / "part-00000.spdx.json"  # one part: the build is small
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    assert {p.name for p in document.packages} == {"apache_app", "mit_lib", "zero_bsd"}
    kept = {(f["repo"], f["path"]): f for f in pq.read_table(root / "out/manifest/files").to_pylist()
            if f["decision"] == "kept"}
    assert {f.name for f in document.files} == {f"./{path}" for _, path in kept}
    data = json.loads(path.read_text())
    (lib,) = [f for f in data["files"] if f["fileName"] == "./lib.py"]
    assert {c["algorithm"]: c["checksumValue"] for c in lib["checksums"]} == {
        "SHA1": hashlib.sha1(HEADED.encode()).hexdigest(), "SHA256": hashlib.sha256(HEADED.encode()).hexdigest()}
    assert (lib["licenseConcluded"], lib["copyrightText"]) == ("MIT", "Jane Doe\nRichard Roe")
    (mit,) = [p for p in data["packages"] if p["name"] == "mit_lib"]
    assert (mit["licenseConcluded"], mit["licenseDeclared"]) == ("MIT", "NOASSERTION")
    contains = {(r["spdxElementId"], r["relatedSpdxElement"]) for r in data["relationships"]
                if r["relationshipType"] == "CONTAINS"}
    assert (mit["SPDXID"], lib["SPDXID"]) in contains and len(contains) == len(kept)


def test_an_opt_out_applied_after_the_build_leaves_the_sbom_valid_and_without_its_files(built, tmp_path):
    root, _ = built
    registry = tmp_path / "optout.jsonl"
    optout.add(registry, optout.make_entry("repo", "mit_lib", requested_by="a@b.c", reason=""))
    optout.add(registry, optout.make_entry("path", "*", repo="zero_bsd", requested_by="a@b.c", reason=""))
    removed = apply_optout(root / "out", registry, tmp_path / "v2")["removed"]
    assert {r["repo"] for r in removed} == {"mit_lib", "zero_bsd"}
    before = json.loads((root / "out/manifest/sbom/part-00000.spdx.json").read_text())
    path = tmp_path / "v2" / "manifest" / "sbom" / "part-00000.spdx.json"
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    assert {p.name for p in document.packages} == {"apache_app"}  # the packages left with no file are gone
    kept = {f"./{f['path']}" for f in pq.read_table(tmp_path / "v2/manifest/files").to_pylist()
            if f["decision"] == "kept"}
    assert {f.name for f in document.files} == kept and len(kept) == len(before["files"]) - len(removed)
    data = json.loads(path.read_text())
    assert data["documentNamespace"] != before["documentNamespace"]
    (app,) = data["packages"]
    assert f"; {len(kept)} of its files are in this corpus;" in app["sourceInfo"]
    related = {r["relatedSpdxElement"] for r in data["relationships"]}
    assert not related & {f"SPDXRef-File-{r['id']}" for r in removed}


def test_the_same_input_gives_the_same_sbom_and_notice(built, tmp_path):
    root, config = built
    build(config, tmp_path / "again", Progress(quiet=True))
    for name in ("manifest/sbom/part-00000.spdx.json", "NOTICE"):
        assert (tmp_path / "again" / name).read_bytes() == (root / "out" / name).read_bytes(), name


def test_row_groups_are_exact_whatever_the_batches():
    """The files manifest's parts are streamed in row groups of exactly ROW_GROUP_ROWS rows, so its bytes do
    not depend on how DuckDB cut its result into batches."""
    import pyarrow as pa

    from manifests.writer import row_groups

    values = list(range(35))
    for cut in (1, 4, 7, 35):
        batches = [pa.record_batch({"x": values[i:i + cut]}) for i in range(0, len(values), cut)]
        groups = list(row_groups(iter(batches), 10))
        assert [g.num_rows for g in groups] == [10, 10, 10, 5]
        assert [x for g in groups for x in g.column("x").to_pylist()] == values
    assert list(row_groups(iter([]), 10)) == []
