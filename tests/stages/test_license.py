"""The license stage on generated repositories, built end to end in-process with real ScanCode."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from corpus_core.records import SourceSpec
from filters.quality import QualityConfig
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.license import Evidence, LicenseScanner, is_allowed, normalize, resolve
from tests.conftest import APACHE_NOTICE, GPL3_HEADER, LENIENT, PYTHON_FILE, mit_license, write_tree

CODE = "def f():\n    return 1\n"
GPL3_TEXT = GPL3_HEADER.replace("# ", "")
LONG_LINE = "x = '" + "y" * 200 + "'\n"  # fails max_line_length = 120
# simplejson's LICENSE.txt opens so: one file stating a choice, then the texts of its alternatives
DUAL_STATEMENT = ("simplejson is dual-licensed software. It is available under the terms\n"
                  "of the MIT license, or the Academic Free License version 2.1. The full\n"
                  "text of each license agreement is included below. This code is also\n"
                  "licensed to the Python Software Foundation (PSF) under a Contributor\n"
                  "Agreement.\n\n")


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
                                  "vendor/gnu/COPYING": GPL3_TEXT, "vendor/gnu/g.c": "int g;\n"})
    write_tree(repos / "dual_named", {"LICENSE-MIT": mit_license("Ann Example"), "LICENSE-APACHE": APACHE_NOTICE,
                                      "src/lib.rs": "pub fn f() -> u32 { 1 }\n"})
    write_tree(repos / "dual_readme", {"LICENSE": mit_license() + "\n\n" + APACHE_NOTICE,
                                       "README.md": "# d\n\n## License\n\nDual-licensed under MIT OR Apache-2.0.\n",
                                       "d.py": "def d():\n    return 2\n"})
    write_tree(repos / "dual_statement", {"LICENSE.txt": DUAL_STATEMENT + mit_license("Bob Ippolito"),
                                          "s.py": "def s():\n    return 2\n"})
    write_tree(repos / "gpl_metadata", {
        "COPYING": GPL3_TEXT, "g.py": "def g():\n    return 2\n",
        "setup.py": "from setuptools import setup\n\nsetup(name='g', license='MIT')\n",
        "PKG-INFO": "Metadata-Version: 2.1\nName: g\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT "
                    "License\n\nA package.\n"})
    write_tree(repos / "texts_and_metadata", {
        "LICENSE": mit_license(), "NOTICE": "Texts Inc. product\nCopyright 2022 Texts Inc.\n",
        "t.py": "def t():\n    return 2\n",
        "PKG-INFO": "Metadata-Version: 2.1\nName: t\nLicense: MIT\n\nT.\n", "t.egg-info/SOURCES.txt": "t.py\n",
        "t.egg-info/top_level.txt": "t\n", "license.py": "def describe():\n    return 3\n"})
    write_tree(repos / "filtered", {"LICENSE": mit_license(), "long.py": LONG_LINE, "blob.bin": b"\x00\x01"})
    write_tree(repos / "filtered_gpl", {"COPYING": GPL3_TEXT, "long.py": LONG_LINE, "blob.bin": b"\x00\x01",
                                        "ok.py": CODE})
    lenient_but_long_lines = QualityConfig(**{name: False if s.kind is bool else None
                                              for name, s in QualityConfig.thresholds().items()}
                                           | {"max_line_length": 120})
    config = BuildConfig(**{**LENIENT, "quality": lenient_but_long_lines}, sources=(SourceSpec(str(repos)),),
                         cache_dir=str(root / "cache"), execution=ExecutionConfig(executor="local"))
    run = build(config, root / "out", Progress(quiet=True))
    files = {(f["repo"], f["path"]): f for f in pq.read_table(root / "out/manifest/files").to_pylist()}
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
    # the header wins over the directory's license, and the source names what it won over
    assert gpl["license"] == "GPL-3.0-or-later"
    assert gpl["license_source"] == "header:gpl.py over file:LICENSE (Apache-2.0)"
    # the evidence a reviewer checks: ScanCode's rule and score, and the lines of the file it matched
    assert (gpl["license_kind"], gpl["license_path"], gpl["license_start_line"], gpl["license_end_line"]) == (
        "header", "gpl.py", 1, 4)
    assert gpl["license_rule"].endswith(".RULE") and gpl["license_score"] > 90


def test_dual_or_is_kept(licensed):
    _, _, files, _ = licensed
    row = files[("dual_or", "index.js")]
    assert (row["decision"], row["license"]) == ("kept", "GPL-3.0-only OR MIT")  # license-expression's order


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
    assert (repos["no_license"]["decision"], repos["no_license"]["reason"]) == ("dropped", "no_license")
    # a LICENSE that states no license ScanCode knows: some license applies, nobody can say which
    unknown = files[("license_not_a_license", "m.py")]
    assert (unknown["reason"], unknown["license"], unknown["license_source"], unknown["detail"]) == (
        "license_unknown", "LicenseRef-scancode-unknown", "file:LICENSE", "LICENSE: no license ScanCode identifies")
    assert repos["license_not_a_license"]["license"] == "LicenseRef-scancode-unknown"


def test_metadata_that_disagrees_is_a_conflict(licensed):
    _, _, files, repos = licensed
    assert files[("metadata_conflict", "c.py")]["reason"] == "license_conflict"
    assert files[("metadata_conflict", "c.py")]["detail"].startswith("repository metadata disagree: ")
    assert repos["metadata_conflict"]["license_conflict"] == "unresolved"
    # the metadata files themselves are licensed as their directory, not by what they declare
    assert files[("metadata_conflict", "package.json")]["reason"] == "license_conflict"


def test_the_nearest_license_file_wins(licensed):
    _, _, files, _ = licensed
    assert files[("nested", "src/m.py")]["license"] == "MIT"
    assert files[("nested", "src/m.py")]["copyright_holders"] == ["Jane Doe"]
    vendored = files[("nested", "vendor/gnu/g.c")]
    assert vendored["reason"] == "license_not_allowed" and vendored["license_source"] == "file:vendor/gnu/COPYING"


def test_license_files_named_after_their_licenses_offer_a_choice(licensed):
    _, _, files, repos = licensed
    row = files[("dual_named", "src/lib.rs")]
    assert (row["decision"], row["license"]) == ("kept", "Apache-2.0 OR MIT")
    assert (row["license_source"], row["license_kind"]) == ("file:LICENSE-APACHE,LICENSE-MIT", "license_file")
    assert repos["dual_named"]["license"] == "Apache-2.0 OR MIT"


def test_a_readme_stating_the_choice_lends_its_structure(licensed):
    _, _, files, repos = licensed
    row = files[("dual_readme", "d.py")]  # one LICENSE holding both texts: AND, until the README says OR
    assert (row["decision"], row["license"]) == ("kept", "Apache-2.0 OR MIT")
    assert repos["dual_readme"]["license_source"] == "LICENSE,README.md"


def test_a_license_file_stating_a_choice_then_the_texts_is_the_choice(licensed):
    _, _, files, repos = licensed
    assert repos["dual_statement"]["license"] == "AFL-2.1 OR MIT OR Python-2.0"
    row = files[("dual_statement", "s.py")]
    assert (row["decision"], row["license"], row["license_path"]) == ("kept", "AFL-2.1 OR MIT OR Python-2.0",
                                                                       "LICENSE.txt")


def test_metadata_saying_mit_in_a_gpl_repository_is_gpl(licensed):
    _, _, files, repos = licensed
    for path in ("setup.py", "PKG-INFO", "g.py"):
        row = files[("gpl_metadata", path)]
        assert (row["license"], row["license_source"], row["license_kind"]) == (
            "GPL-3.0-or-later", "file:COPYING", "license_file"), path
        assert row["reason"] == "license_not_allowed", path
    assert files[("gpl_metadata", "PKG-INFO")]["detail"] == "not allowed: GPL-3.0-or-later; also package_metadata"
    assert repos["gpl_metadata"]["license_conflict"] == "resolved"  # the metadata's MIT is recorded, not used
    assert {e["expression"] for e in json.loads(repos["gpl_metadata"]["license_evidence"])} == {
        "GPL-3.0-or-later", "MIT"}


def test_license_texts_and_package_metadata_are_not_training_data(licensed):
    _, _, files, _ = licensed
    reasons = {path: files[("texts_and_metadata", path)]["reason"] for path in (
        "LICENSE", "NOTICE", "PKG-INFO", "t.egg-info/SOURCES.txt", "t.egg-info/top_level.txt", "t.py",
        "license.py")}
    assert reasons == {"LICENSE": "license_text", "NOTICE": "license_text", "PKG-INFO": "package_metadata",
                       "t.egg-info/SOURCES.txt": "package_metadata", "t.egg-info/top_level.txt": "package_metadata",
                       "t.py": None, "license.py": None}  # code named like a license file is code
    for path in ("LICENSE", "PKG-INFO", "t.egg-info/SOURCES.txt"):  # dropped, still with their license
        assert files[("texts_and_metadata", path)]["license"] == "MIT", path


def test_a_file_a_filter_dropped_has_its_license_and_the_license_reason_comes_first(licensed):
    _, run, files, _ = licensed
    long = files[("filtered", "long.py")]
    assert (long["reason"], long["license"], long["license_kind"], long["license_path"]) == (
        "max_line_length", "MIT", "license_file", "LICENSE")
    assert long["license_rule"] and long["license_score"] > 90 and long["license_start_line"] >= 1
    assert long["copyright_holders"] == ["Jane Doe"]
    assert (files[("filtered", "blob.bin")]["reason"], files[("filtered", "blob.bin")]["license"]) == ("binary", "MIT")
    for path, earlier in (("long.py", "max_line_length"), ("blob.bin", "binary")):
        row = files[("filtered_gpl", path)]
        assert (row["reason"], row["license"]) == ("license_not_allowed", "GPL-3.0-or-later"), path
        assert row["detail"] == f"not allowed: GPL-3.0-or-later; also {earlier}", path
    # every row of a repository that is not permissive has its license and a license reason
    assert {(f["license"], f["reason"]) for (repo, _), f in files.items() if repo == "filtered_gpl"} == {
        ("GPL-3.0-or-later", "license_not_allowed")}
    decision = next(s for s in run["stages"] if s["name"] == "license_decision")
    assert decision["notes"]["relabelled"]["max_line_length"] >= 1  # the quality stage's count is unchanged


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


def test_scancode_results_are_cached_by_content(tmp_path, monkeypatch):
    from stages import license as license_module

    monkeypatch.setattr(license_module, "_MEMOS", {})
    scanner = LicenseScanner(tmp_path)
    assert scanner.licenses(mit_license())["expression"] == "MIT"
    stored = list((tmp_path / "license-cache").glob("*/*.json"))
    assert len(stored) == 1
    monkeypatch.setattr(license_module, "_MEMOS", {})  # a later build: a new process, the same cache directory
    again = LicenseScanner(tmp_path)
    assert again.licenses(mit_license())["expression"] == "MIT"
    assert (scanner.misses, again.hits, again.misses) == (1, 1, 0)
    stored[0].unlink()  # the same process's next task: the worker's memory answers
    third = LicenseScanner(tmp_path)
    assert third.licenses(mit_license())["expression"] == "MIT" and (third.hits, third.misses) == (1, 0)


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


def test_scancode_writes_nothing_outside_the_cache_dir(tmp_path):
    """ScanCode's first import makes a folder in the system's temp dir and one in the user's
    home; a process that scans and reads license texts leaves them under the cache dir."""
    import os
    import subprocess
    import sys

    home, temp, cache = tmp_path / "home", tmp_path / "temp", tmp_path / "cache"
    for folder in (home, temp):
        folder.mkdir()
    script = (
        "import sys\n"
        "from stages.license import LicenseScanner\n"
        "from manifests.attribution import license_text\n"
        "scanner = LicenseScanner(sys.argv[1])\n"
        "assert scanner.licenses('Licensed under the MIT license.')['expression'] == 'MIT'\n"
        "assert scanner.holders('Copyright (c) 2020 Jane Roe') == ['Jane Roe']\n"
        "assert 'Permission is hereby granted' in license_text('MIT')\n"
    )
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(temp), "PYTHONPATH": os.getcwd()}
    for name in ("SCANCODE_TEMP", "SCANCODE_CACHE"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", script, str(cache)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in temp.iterdir() if "scancode" in p.name] == []
    assert list(home.rglob("*scancode*")) == []
    assert len(list((cache / "license-cache" / "scancode" / "tmp").glob("scancode-tk-*"))) == 1
