"""The license stage on generated repositories, built end to end in-process with real ScanCode."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from corpus_core.records import SourceSpec
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.license import Evidence, LicenseScanner, is_allowed, normalize, resolve
from tests.conftest import APACHE_NOTICE, GPL3_HEADER, LENIENT, PYTHON_FILE, mit_license, write_tree

CODE = "def f():\n    return 1\n"


@pytest.fixture(scope="module")
def licensed(tmp_path_factory):
    """One build over every case; tests read its manifests."""
    root = tmp_path_factory.mktemp("licenses")
    repos = root / "repos"
    write_tree(repos / "mit_root", {"LICENSE": mit_license(), "a.py": PYTHON_FILE})
    write_tree(repos / "apache_gpl_header", {"LICENSE": APACHE_NOTICE, "ok.py": CODE,
                                             "gpl.py": GPL3_HEADER + "import os\n"})
    write_tree(repos / "dual_or", {"package.json": json.dumps({"name": "d", "license": "MIT OR GPL-3.0-only"}),
                                   "index.js": "module.exports = 1;\n"})
    write_tree(repos / "gpl_and_mit", {"LICENSE": mit_license(),
                                       "both.c": "// SPDX-License-Identifier: GPL-2.0-only AND MIT\nint x;\n"})
    write_tree(repos / "spdx_only", {"tagged.py": "# SPDX-License-Identifier: BSD-3-Clause\nx = 1\n",
                                     "untagged.py": "y = 2\n"})
    write_tree(repos / "package_json_only", {"package.json": json.dumps({"name": "p", "license": "ISC"}),
                                             "lib.js": "exports.x = 1;\n"})
    write_tree(repos / "no_license", {"main.py": CODE + "# nothing here\n"})
    write_tree(repos / "license_not_a_license", {
        "LICENSE": "Project notes\n\nRun make to build. See the docs folder for more.\n", "m.py": "z = 3\n"})
    write_tree(repos / "metadata_conflict", {
        "package.json": json.dumps({"name": "c", "license": "MIT"}),
        "setup.cfg": "[metadata]\nname = c\nlicense = GPL-3.0-only\n", "c.py": "w = 4\n"})
    write_tree(repos / "nested", {"LICENSE": mit_license(), "src/m.py": "v = 5\n",
                                  "vendor/gnu/COPYING": GPL3_HEADER.replace("# ", ""), "vendor/gnu/g.c": "int g;\n"})
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(repos)),), cache_dir=str(root / "cache"),
                         execution=ExecutionConfig(executor="local"))
    run = build(config, root / "out", Progress(quiet=True))
    files = {(f["repo"], f["path"]): f for f in pq.read_table(root / "out/manifest/files.parquet").to_pylist()}
    repos_rows = {r["repo"]: r for r in pq.read_table(root / "out/manifest/repos.parquet").to_pylist()}
    return root, run, files, repos_rows


def test_mit_at_the_root(licensed):
    _, _, files, repos = licensed
    row = files[("mit_root", "a.py")]
    assert (row["decision"], row["license"], row["license_source"]) == ("kept", "MIT", "file:LICENSE")
    assert repos["mit_root"]["license"] == "MIT" and repos["mit_root"]["copyright_holders"] == ["Jane Doe"]
    evidence = json.loads(repos["mit_root"]["license_evidence"])
    assert evidence[0]["file"] == "LICENSE" and evidence[0]["rule"] and evidence[0]["score"] > 0


def test_apache_root_with_a_gpl_header_file(licensed):
    _, _, files, _ = licensed
    assert files[("apache_gpl_header", "ok.py")]["license"] == "Apache-2.0"
    assert files[("apache_gpl_header", "ok.py")]["decision"] == "kept"
    gpl = files[("apache_gpl_header", "gpl.py")]
    assert (gpl["decision"], gpl["reason"]) == ("dropped", "license_not_allowed")
    assert gpl["license"] == "GPL-3.0-or-later" and gpl["license_source"] == "header:gpl.py"


def test_dual_or_is_kept(licensed):
    _, _, files, _ = licensed
    row = files[("dual_or", "index.js")]
    assert (row["decision"], row["license"]) == ("kept", "MIT OR GPL-3.0-only")


def test_and_with_gpl_is_dropped(licensed):
    _, _, files, _ = licensed
    row = files[("gpl_and_mit", "both.c")]
    assert (row["reason"], row["license"]) == ("license_not_allowed", "GPL-2.0-only AND MIT")
    assert row["detail"] == "not allowed: GPL-2.0-only"  # a corpus-scope drop says why too


def test_spdx_header_only(licensed):
    _, _, files, _ = licensed
    assert files[("spdx_only", "tagged.py")]["license"] == "BSD-3-Clause"
    assert files[("spdx_only", "tagged.py")]["decision"] == "kept"
    assert files[("spdx_only", "untagged.py")]["reason"] == "no_license"


def test_license_only_in_package_json(licensed):
    _, _, files, repos = licensed
    assert files[("package_json_only", "lib.js")]["license"] == "ISC"
    assert files[("package_json_only", "lib.js")]["decision"] == "kept"
    assert repos["package_json_only"]["license_source"] == "package.json"


def test_no_license_and_a_license_file_that_is_not_one(licensed):
    _, _, files, repos = licensed
    assert files[("no_license", "main.py")]["reason"] == "no_license"
    assert files[("license_not_a_license", "m.py")]["reason"] == "no_license"
    assert (repos["no_license"]["decision"], repos["no_license"]["reason"]) == ("dropped", "no_license")
    assert repos["license_not_a_license"]["license"] is None


def test_metadata_that_disagrees_is_a_conflict(licensed):
    _, _, files, repos = licensed
    assert files[("metadata_conflict", "c.py")]["reason"] == "license_conflict"
    assert files[("metadata_conflict", "c.py")]["detail"].startswith("repository metadata disagree: ")
    assert repos["metadata_conflict"]["license_conflict"] == "unresolved"


def test_the_nearest_license_file_wins(licensed):
    _, _, files, _ = licensed
    assert files[("nested", "src/m.py")]["license"] == "MIT"
    vendored = files[("nested", "vendor/gnu/g.c")]
    assert vendored["reason"] == "license_not_allowed" and vendored["license_source"] == "file:vendor/gnu/COPYING"


def test_every_kept_file_has_evidence_and_the_notice_names_it(licensed):
    root, run, files, _ = licensed
    kept = [f for f in files.values() if f["decision"] == "kept"]
    assert kept and all(f["license"] and f["license_source"] for f in kept)
    notice = (root / "out" / "NOTICE").read_text()
    assert "== mit_root ==\nLicense: MIT\n" in notice and "Copyright: Jane Doe" in notice
    assert "no_license" not in notice  # only kept repositories are attributed
    attribution = pq.read_table(root / "out/manifest/attribution.parquet").to_pylist()
    assert {(a["repo"], a["license"]) for a in attribution} == {(f["repo"], f["license"]) for f in kept}
    assert sum(a["files"] for a in attribution) == len(kept)


def test_scancode_results_are_cached_by_content(tmp_path):
    scanner = LicenseScanner(tmp_path)
    assert scanner.licenses(mit_license())["expression"] == "MIT"
    again = LicenseScanner(tmp_path)  # a later build: a new process, the same cache directory
    assert again.licenses(mit_license())["expression"] == "MIT"
    assert (scanner.misses, again.hits, again.misses) == (1, 1, 0)


@pytest.mark.parametrize("expression, expected", [
    ("MIT", True), ("MIT OR GPL-3.0-only", True), ("GPL-2.0-only AND MIT", False),
    ("Apache-2.0 WITH LLVM-exception", True), ("GPL-2.0-only WITH Classpath-exception-2.0", False),
    ("MPL-2.0", False), ("EPL-2.0", False), ("LicenseRef-scancode-unknown", False),
    ("(MIT OR Apache-2.0) AND BSD-3-Clause", True),
])
def test_allowlist_logic(expression, expected):
    allowed = frozenset({"MIT", "Apache-2.0", "BSD-3-Clause"})
    assert is_allowed(expression, allowed) is expected


def test_resolution_prefers_license_files_and_keeps_metadata_structure():
    dual = resolve([Evidence("LICENSE-MIT", "license_file", "MIT"), Evidence("Cargo.toml", "metadata",
                                                                            "MIT OR Apache-2.0")])
    assert (dual.license, dual.conflict) == ("MIT OR Apache-2.0", None)
    disagree = resolve([Evidence("LICENSE", "license_file", "GPL-3.0-only"), Evidence("package.json", "metadata",
                                                                                     "MIT")])
    assert (disagree.license, disagree.conflict) == ("GPL-3.0-only", "resolved")
    assert normalize("mit") == "MIT" and normalize("MIT License") is None
