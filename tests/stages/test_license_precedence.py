"""License precedence (issue 16): which evidence wins when a file's own header and its
directory's license files and metadata say different things, and what unknown or conflicting
evidence gives. Repositories shaped like the real packages that leaked (paramiko, synapse,
pydevd, gmpy2, pycairo, @nextcloud/files), built end to end in-process with real ScanCode;
the rules themselves are in docs/FORMATS.md#licenses."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from corpus_core.records import SourceSpec
from corpus_core.spdx import PERMISSIVE
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import DedupConfig, NearDedupConfig
from stages.license import Evidence, Resolution, decide, file_license, resolve
from tests.conftest import APACHE_NOTICE, GPL3_HEADER, LENIENT, mit_license, program, write_tree

ALLOWED = frozenset(PERMISSIVE)
CODE = "def f():\n    return 1\n"
GPL3_TEXT = GPL3_HEADER.replace("# ", "")
LGPL_NOTICE = ("This library is free software; you can redistribute it and/or modify it under\n"
               "the terms of the GNU Lesser General Public License as published by the Free\n"
               "Software Foundation; either version 2.1 of the License, or (at your option)\n"
               "any later version.\n")
AGPL_NOTICE = ("This program is free software: you can redistribute it and/or modify\n"
               "it under the terms of the GNU Affero General Public License as\n"
               "published by the Free Software Foundation, either version 3 of the\n"
               "License, or (at your option) any later version.\n")
EPL_NOTICE = ("All rights reserved. This program and the accompanying materials are made\n"
              "available under the terms of the Eclipse Public License v1.0 which accompanies\n"
              "this distribution, and is available at http://www.eclipse.org/legal/epl-v10.html\n")
MPL_NOTICE = ('The contents of this file are subject to the Mozilla Public License Version\n'
              '1.1 (the "License"); you may not use this file except in compliance with the\n'
              'License. You may obtain a copy of the License at http://www.mozilla.org/MPL/\n')
# the Apache notice as a Python header (synapse's files from before its move to the AGPL)
APACHE_HEADER = "".join(f"# {line}".rstrip() + "\n" for line in APACHE_NOTICE.splitlines())
# a license nobody can name: ScanCode matches nothing in the first, only an unknown reference in the second
PROPRIETARY = ("Copyright 2020 Foo Corp. All rights reserved.\n\nYou may not use, copy, modify or distribute "
               "this software\nwithout the written permission of Foo Corp.\n")
FROBNICATE = "This software is licensed under the Frobnicate Public License, version 3.\n"


def spdx(expression: str, comment: str = "#") -> str:
    return f"{comment} SPDX-License-Identifier: {expression}\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build over every shape; tests read its manifests: {(repo, path): row}, {repo: row}."""
    root = tmp_path_factory.mktemp("precedence")
    repos = root / "repos"
    # the six shapes that leaked: a permissive header inside a repository whose license is not permissive
    write_tree(repos / "lgpl_apache_header", {"LICENSE": LGPL_NOTICE, "pkg/transport.py": APACHE_HEADER + CODE,
                                              "pkg/client.py": CODE})
    write_tree(repos / "agpl_apache_headers", {
        "LICENSE": AGPL_NOTICE, "pyproject.toml": '[project]\nname = "s"\nlicense = "AGPL-3.0-or-later"\n',
        "synapse/old.py": APACHE_HEADER + CODE, "synapse/older.py": APACHE_HEADER + "x = 2\n",
        "synapse/new.py": "".join(f"# {line}\n" for line in AGPL_NOTICE.splitlines()) + CODE})
    write_tree(repos / "epl_bsd_headers", {"LICENSE-EPL": EPL_NOTICE, "pydevd/attach.py": spdx("BSD-3-Clause") + CODE,
                                           "pydevd/plain.py": CODE})
    write_tree(repos / "lgpl_or_mpl", {"COPYING-LGPL-2.1": LGPL_NOTICE, "COPYING-MPL-1.1": MPL_NOTICE,
                                       "cairo/misc.c": spdx("MIT", "//") + "int x;\n"})
    write_tree(repos / "npm_agpl", {"package.json": json.dumps({"name": "@n/files", "license": "AGPL-3.0-or-later"}),
                                    "dist/index.mjs": spdx("MIT", "//") + "export const a = 1;\n"})
    # a vendored library with its own LICENSE keeps its terms; a header alone does not
    write_tree(repos / "gpl_vendored_mit", {
        "COPYING": GPL3_TEXT, "src/main.py": CODE, "vendor/lib/LICENSE": mit_license("Lib Authors"),
        "vendor/lib/lib.py": "def g():\n    return 2\n", "vendor/lib/sub/deep.py": "def h():\n    return 3\n",
        "vendor/lone/only_header.py": spdx("MIT") + "def k():\n    return 4\n"})
    # a permissive header is the only grant where no directory has evidence
    write_tree(repos / "header_only", {"a.py": spdx("MIT") + CODE, "b.py": APACHE_HEADER + "y = 2\n",
                                       "c.py": "z = 3\n"})
    # a permissive header under another permissive license: the header's, both shown
    write_tree(repos / "mit_apache_header", {"LICENSE": mit_license(), "b.py": APACHE_HEADER + "y = 22\n",
                                             "same.py": spdx("MIT") + "w = 5\n", "plain.py": "v = 6\n"})
    # conflicts: metadata among themselves, metadata against the license file
    write_tree(repos / "metadata_disagree", {
        "package.json": json.dumps({"name": "c", "license": "MIT"}),
        "setup.cfg": "[metadata]\nname = c\nlicense = GPL-3.0-only\n", "c.py": "w = 4\n",
        "h.py": spdx("MIT") + "u = 7\n"})
    write_tree(repos / "mit_file_gpl_metadata", {"LICENSE": mit_license(),
                                                 "package.json": json.dumps({"name": "m", "license": "GPL-3.0-only"}),
                                                 "m.js": "exports.m = 1;\n"})
    write_tree(repos / "mit_file_bsd_metadata", {"LICENSE": mit_license(),
                                                 "setup.cfg": "[metadata]\nname = b\nlicense = BSD-3-Clause\n",
                                                 "b.py": "t = 8\n"})
    # unknown: license files nobody can read or name, an SPDX line naming no license
    write_tree(repos / "unknown_license_file", {"LICENSE": PROPRIETARY, "code.py": spdx("MIT") + CODE,
                                                "plain.py": CODE})
    write_tree(repos / "unknown_with_metadata", {"LICENSE": FROBNICATE,
                                                 "package.json": json.dumps({"name": "f", "license": "MIT"}),
                                                 "f.js": "exports.f = 1;\n"})
    write_tree(repos / "mit_unread_vendor", {"LICENSE": mit_license(), "ok.py": CODE,
                                             "vendor/blob/LICENSE": b"\x00\x01binary\x00",
                                             "vendor/blob/code.py": "def b():\n    return 9\n",
                                             "icons/license.png": b"\x89PNG\x00\x00", "icons/icon.py": "i = 1\n"})
    write_tree(repos / "mit_headers_unknown", {
        "LICENSE": mit_license(), "frob.py": spdx("LicenseRef-Frobnicate") + CODE,
        "see.py": "# See the LICENSE file for the terms of use.\nimport os\n",
        "tool.py": 'PREFIX = "SPDX-License-Identifier: "\nimport os\n',
        "docs/license.rst": "License\n=======\n\n.. include:: ../LICENSE\n", "docs/conf.py": "project = 'p'\n"})
    # dedup off: files that share a header must each show their own decision
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(repos)),), cache_dir=str(root / "cache"),
                         dedup=DedupConfig(exact=False), near_dedup=NearDedupConfig(enabled=False),
                         execution=ExecutionConfig(executor="local"))
    build(config, root / "out", Progress(quiet=True))
    files = {(f["repo"], f["path"]): f for f in pq.read_table(root / "out/manifest/files").to_pylist()}
    repos_rows = {r["repo"]: r for r in pq.read_table(root / "out/manifest/repos.parquet").to_pylist()}
    return files, repos_rows


def outcome(row: dict) -> tuple:
    return row["decision"], row["reason"], row["license"], row["license_source"], row["detail"]


# --- the shapes that leaked: a permissive header never overrides a license that is not permissive ----


def test_lgpl_repository_with_an_apache_headed_file(built):
    files, _ = built
    assert outcome(files[("lgpl_apache_header", "pkg/transport.py")]) == (
        "dropped", "license_not_allowed", "LGPL-2.1-or-later",
        "file:LICENSE over header:pkg/transport.py (Apache-2.0)", "not allowed: LGPL-2.1-or-later")
    assert outcome(files[("lgpl_apache_header", "pkg/client.py")]) == (
        "dropped", "license_not_allowed", "LGPL-2.1-or-later", "file:LICENSE", "not allowed: LGPL-2.1-or-later")
    row = files[("lgpl_apache_header", "pkg/transport.py")]  # the evidence shown is the one used: the LICENSE
    assert (row["license_kind"], row["license_path"], row["license_start_line"]) == ("license_file", "LICENSE", 1)


def test_agpl_repository_with_files_from_before_its_move(built):
    files, repos = built
    for path in ("synapse/old.py", "synapse/older.py"):
        assert outcome(files[("agpl_apache_headers", path)]) == (
            "dropped", "license_not_allowed", "AGPL-3.0-or-later",
            f"file:LICENSE,pyproject.toml over header:{path} (Apache-2.0)", "not allowed: AGPL-3.0-or-later"), path
    # its own AGPL header agrees with the directory: the header, nothing to name beside it
    assert outcome(files[("agpl_apache_headers", "synapse/new.py")]) == (
        "dropped", "license_not_allowed", "AGPL-3.0-or-later", "header:synapse/new.py",
        "not allowed: AGPL-3.0-or-later")
    assert (repos["agpl_apache_headers"]["decision"], repos["agpl_apache_headers"]["files_kept"]) == ("dropped", 0)


def test_epl_repository_with_bsd_headed_files(built):
    files, _ = built
    assert outcome(files[("epl_bsd_headers", "pydevd/attach.py")]) == (
        "dropped", "license_not_allowed", "EPL-1.0", "file:LICENSE-EPL over header:pydevd/attach.py (BSD-3-Clause)",
        "not allowed: EPL-1.0")
    assert outcome(files[("epl_bsd_headers", "pydevd/plain.py")])[:3] == ("dropped", "license_not_allowed", "EPL-1.0")


def test_lgpl_or_mpl_repository_with_an_mit_headed_file(built):
    files, _ = built
    assert outcome(files[("lgpl_or_mpl", "cairo/misc.c")]) == (
        "dropped", "license_not_allowed", "LGPL-2.1-or-later OR MPL-1.1",
        "file:COPYING-LGPL-2.1,COPYING-MPL-1.1 over header:cairo/misc.c (MIT)",
        "not allowed: LGPL-2.1-or-later, MPL-1.1")


def test_package_json_declaring_agpl_with_an_mit_headed_file(built):
    files, _ = built
    assert outcome(files[("npm_agpl", "dist/index.mjs")]) == (
        "dropped", "license_not_allowed", "AGPL-3.0-or-later", "file:package.json over header:dist/index.mjs (MIT)",
        "not allowed: AGPL-3.0-or-later")


# --- directory scopes ---------------------------------------------------------------------------


def test_a_vendored_library_with_its_own_license_keeps_its_terms(built):
    files, _ = built
    for path in ("vendor/lib/lib.py", "vendor/lib/sub/deep.py"):  # the LICENSE scopes its directory and below
        row = files[("gpl_vendored_mit", path)]
        assert outcome(row) == ("kept", None, "MIT", "file:vendor/lib/LICENSE", None), path
        assert (row["license_kind"], row["license_path"]) == ("license_file", "vendor/lib/LICENSE"), path
        assert row["copyright_holders"] == ["Lib Authors"], path
    assert outcome(files[("gpl_vendored_mit", "src/main.py")])[:3] == (
        "dropped", "license_not_allowed", "GPL-3.0-or-later")


def test_a_header_only_vendored_file_in_a_gpl_repository_is_dropped(built):
    files, _ = built
    assert outcome(files[("gpl_vendored_mit", "vendor/lone/only_header.py")]) == (
        "dropped", "license_not_allowed", "GPL-3.0-or-later",
        "file:COPYING over header:vendor/lone/only_header.py (MIT)", "not allowed: GPL-3.0-or-later")


# --- permissive headers that count ------------------------------------------------------------


def test_a_permissive_header_where_no_directory_has_evidence_keeps_the_file(built):
    files, repos = built
    assert outcome(files[("header_only", "a.py")]) == ("kept", None, "MIT", "header:a.py", None)
    assert outcome(files[("header_only", "b.py")]) == ("kept", None, "Apache-2.0", "header:b.py", None)
    assert outcome(files[("header_only", "c.py")]) == ("dropped", "no_license", None, None, None)
    assert repos["header_only"]["license"] is None


def test_a_permissive_header_under_another_permissive_license_is_recorded_with_both(built):
    files, _ = built
    row = files[("mit_apache_header", "b.py")]
    assert outcome(row) == ("kept", None, "Apache-2.0", "header:b.py over file:LICENSE (MIT)", None)
    assert (row["license_kind"], row["license_path"], row["license_start_line"], row["license_end_line"]) == (
        "header", "b.py", 3, 13)  # the notice after the copyright line
    assert row["copyright_holders"] == ["Jane Doe", "The Authors"]  # the header's, and the directory's still
    assert outcome(files[("mit_apache_header", "same.py")]) == ("kept", None, "MIT", "header:same.py", None)
    assert outcome(files[("mit_apache_header", "plain.py")]) == ("kept", None, "MIT", "file:LICENSE", None)


# --- conflicts ------------------------------------------------------------------------------------


def test_metadata_that_disagree_drop_every_file_with_both_declarations(built):
    files, repos = built
    assert outcome(files[("metadata_disagree", "c.py")]) == (
        "dropped", "license_conflict", "GPL-3.0-only AND MIT", "file:package.json,setup.cfg",
        "repository metadata disagree: package.json: MIT; setup.cfg: GPL-3.0-only")
    assert outcome(files[("metadata_disagree", "h.py")]) == (  # a permissive header does not settle it
        "dropped", "license_conflict", "GPL-3.0-only AND MIT", "file:package.json,setup.cfg over header:h.py (MIT)",
        "repository metadata disagree: package.json: MIT; setup.cfg: GPL-3.0-only")
    assert repos["metadata_disagree"]["license_conflict"] == "unresolved"


def test_a_permissive_license_file_with_metadata_declaring_a_refused_license_is_a_conflict(built):
    files, repos = built
    assert outcome(files[("mit_file_gpl_metadata", "m.js")]) == (
        "dropped", "license_conflict", "MIT", "file:LICENSE",
        "license files and metadata disagree: LICENSE: MIT; package.json: GPL-3.0-only")
    assert (repos["mit_file_gpl_metadata"]["license"], repos["mit_file_gpl_metadata"]["license_conflict"]) == (
        "MIT", "resolved")


def test_metadata_naming_another_permissive_license_leaves_the_license_file_in_charge(built):
    files, repos = built
    assert outcome(files[("mit_file_bsd_metadata", "b.py")]) == ("kept", None, "MIT", "file:LICENSE", None)
    assert repos["mit_file_bsd_metadata"]["license_conflict"] == "resolved"


# --- unknown --------------------------------------------------------------------------------------


def test_a_license_file_scancode_identifies_nothing_in_is_unknown(built):
    files, repos = built
    assert outcome(files[("unknown_license_file", "plain.py")]) == (
        "dropped", "license_unknown", "LicenseRef-scancode-unknown", "file:LICENSE",
        "LICENSE: no license ScanCode identifies")
    assert outcome(files[("unknown_license_file", "code.py")]) == (  # its MIT header is not the only grant
        "dropped", "license_unknown", "LicenseRef-scancode-unknown", "file:LICENSE over header:code.py (MIT)",
        "LICENSE: no license ScanCode identifies")
    assert repos["unknown_license_file"]["license"] == "LicenseRef-scancode-unknown"
    evidence = json.loads(repos["unknown_license_file"]["license_evidence"])
    assert [(e["file"], e["kind"], e["expression"], e["holders"]) for e in evidence] == [
        ("LICENSE", "license_file", "LicenseRef-scancode-unknown", ["Foo Corp."])]


def test_an_unknown_license_file_names_the_metadata_beside_it(built):
    files, _ = built
    row = files[("unknown_with_metadata", "f.js")]
    assert outcome(row) == ("dropped", "license_unknown", "LicenseRef-scancode-unknown", "file:LICENSE",
                            "LICENSE: no license ScanCode identifies; package.json: MIT")
    assert row["license_rule"].startswith("unknown-license-reference")  # what ScanCode did match, for a reviewer


def test_a_license_file_that_could_not_be_read_is_unknown_for_its_directory(built):
    files, _ = built
    assert outcome(files[("mit_unread_vendor", "vendor/blob/code.py")]) == (
        "dropped", "license_unknown", "LicenseRef-scancode-unknown", "file:vendor/blob/LICENSE",
        "vendor/blob/LICENSE: a license file not read: binary")
    assert files[("mit_unread_vendor", "vendor/blob/code.py")]["license_rule"] == "not read: binary"
    assert files[("mit_unread_vendor", "vendor/blob/LICENSE")]["reason"] == "license_unknown"  # "also binary"
    assert outcome(files[("mit_unread_vendor", "ok.py")]) == ("kept", None, "MIT", "file:LICENSE", None)
    # an image called license.png is no license document: its directory keeps the root's license
    assert outcome(files[("mit_unread_vendor", "icons/icon.py")]) == ("kept", None, "MIT", "file:LICENSE", None)


def test_an_spdx_line_naming_no_known_license_is_unknown_and_wins(built):
    files, _ = built
    row = files[("mit_headers_unknown", "frob.py")]
    assert outcome(row) == ("dropped", "license_unknown", "LicenseRef-scancode-unknown-spdx",
                            "header:frob.py over file:LICENSE (MIT)",
                            "frob.py: line 1 has an SPDX-License-Identifier naming no known license")
    assert (row["license_kind"], row["license_rule"], row["license_start_line"]) == (
        "header", "SPDX-License-Identifier", 1)


def test_a_header_referring_to_the_license_file_takes_the_directory_license(built):
    files, _ = built
    assert outcome(files[("mit_headers_unknown", "see.py")]) == ("kept", None, "MIT", "file:LICENSE", None)
    # an SPDX prefix inside code, not a comment, declares nothing
    assert outcome(files[("mit_headers_unknown", "tool.py")]) == ("kept", None, "MIT", "file:LICENSE", None)
    # a docs page that includes the LICENSE states no terms of its own: its directory keeps the root's
    assert outcome(files[("mit_headers_unknown", "docs/conf.py")]) == ("kept", None, "MIT", "file:LICENSE", None)


# --- the precedence table, without a build -------------------------------------------------------


def scope(expression: str, conflict: str | None = None, others: tuple = ()) -> dict[str, Resolution]:
    return {"": Resolution(expression, "LICENSE", conflict, Evidence("LICENSE", "license_file", expression),
                           ("Holder",), others)}


def header(expression: str) -> Evidence:
    return Evidence("a.py", "header", expression, 100.0, "SPDX-License-Identifier", 1, 1)


@pytest.mark.parametrize("own, directory, expected", [
    # a header that refuses the file always wins
    ("GPL-3.0-only", scope("MIT"), ("GPL-3.0-only", "header:a.py over file:LICENSE (MIT)", "license_not_allowed")),
    ("GPL-3.0-only", scope("EPL-1.0"), ("GPL-3.0-only", "header:a.py over file:LICENSE (EPL-1.0)",
                                        "license_not_allowed")),
    ("LicenseRef-scancode-unknown-spdx", scope("MIT"), (
        "LicenseRef-scancode-unknown-spdx", "header:a.py over file:LICENSE (MIT)", "license_unknown")),
    # a permissive header never overrides a directory that refuses the file
    ("MIT", scope("LGPL-2.1-only"), ("LGPL-2.1-only", "file:LICENSE over header:a.py (MIT)", "license_not_allowed")),
    ("MIT", scope("LicenseRef-scancode-unknown"), (
        "LicenseRef-scancode-unknown", "file:LICENSE over header:a.py (MIT)", "license_unknown")),
    ("MIT", scope("GPL-3.0-only AND MIT", "unresolved", (("package.json", "MIT"), ("setup.cfg", "GPL-3.0-only"))), (
        "GPL-3.0-only AND MIT", "file:LICENSE over header:a.py (MIT)", "license_conflict")),
    ("BSD-3-Clause", scope("MIT", "resolved", (("package.json", "GPL-3.0-only"),)), (
        "MIT", "file:LICENSE over header:a.py (BSD-3-Clause)", "license_conflict")),
    # a permissive header counts where the directory's license passes, or where there is none
    ("Apache-2.0", scope("MIT"), ("Apache-2.0", "header:a.py over file:LICENSE (MIT)", None)),
    ("MIT", scope("MIT"), ("MIT", "header:a.py", None)),
    ("MIT", scope("Apache-2.0 OR GPL-2.0-only"), ("MIT", "header:a.py over file:LICENSE (Apache-2.0 OR GPL-2.0-only)",
                                                  None)),
    ("MIT", {}, ("MIT", "header:a.py", None)),
    (None, scope("MIT"), ("MIT", "file:LICENSE", None)),
    (None, {}, (None, None, "no_license")),
])
def test_precedence(own, directory, expected):
    found = file_license("a.py", None if own is None else header(own), directory, ALLOWED)
    assert (found.license, found.shown_source, decide(found, ALLOWED)[0]) == expected
    assert found.holders == (("Holder",) if directory else ())


def test_the_nearest_directory_is_the_one_a_header_is_weighed_against():
    scopes = {"": scope("GPL-3.0-only")[""], "vendor/lib": Resolution(
        "MIT", "vendor/lib/LICENSE", None, Evidence("vendor/lib/LICENSE", "license_file", "MIT"))}
    found = file_license("vendor/lib/x/a.py", header("BSD-3-Clause"), scopes, ALLOWED)
    assert (found.license, found.shown_source) == ("BSD-3-Clause", "header:a.py over file:vendor/lib/LICENSE (MIT)")
    assert decide(found, ALLOWED) == (None, None)


def test_resolution_of_unknown_and_disagreeing_evidence():
    unknown = Evidence("LICENSE", "license_file", "LicenseRef-scancode-unknown")
    mit = Evidence("LICENSE.txt", "license_file", "MIT")
    assert resolve([unknown, mit]).license == "MIT"  # a license file that says a license settles the directory
    alone = resolve([unknown, Evidence("package.json", "metadata", "MIT")])
    assert (alone.license, alone.source, alone.others) == ("LicenseRef-scancode-unknown", "LICENSE",
                                                           (("package.json", "MIT"),))
    lent = resolve([Evidence("LICENSE-MIT", "license_file", "MIT"), Evidence("Cargo.toml", "metadata",
                                                                             "MIT OR Apache-2.0")])
    assert (lent.license, lent.others) == ("MIT OR Apache-2.0", ())  # it lent its structure: no disagreement
    choice = resolve([Evidence("LICENSE", "license_file", "Apache-2.0"),
                      Evidence("package.json", "metadata", "MIT OR GPL-2.0-only")])
    assert (choice.license, choice.others) == ("Apache-2.0", (("package.json", "MIT OR GPL-2.0-only"),))
    assert decide(choice, ALLOWED) == (None, None)  # a declared choice that passes: no conflict
    refused = resolve([mit, Evidence("setup.py", "metadata", "GPL-2.0-only")])
    assert (refused.license, refused.conflict, refused.others) == ("MIT", "resolved", (("setup.py", "GPL-2.0-only"),))


def test_a_license_file_opted_out_or_linked_is_unknown_never_no_evidence(tmp_path):
    """A GPL repository whose LICENSE an opt-out removed, or whose LICENSE is a link: no file
    may fall back to its own permissive header (the review found pkg/a.py kept as MIT)."""
    from filters.optout import OptOutConfig
    from manifests.optout import make_entry, save

    code = "def f():\n    return 1\n"
    gpl = GPL3_HEADER.replace("# ", "")
    write_tree(tmp_path / "src" / "optedout", {"LICENSE": gpl, "pkg/a.py": spdx("MIT") + code})
    linked = write_tree(tmp_path / "src" / "linked", {"docs/GPL.txt": gpl, "pkg/a.py": spdx("MIT") + code})
    (linked / "LICENSE").symlink_to("docs/GPL.txt")
    write_tree(tmp_path / "src" / "mit", {"LICENSE": mit_license(), "m.py": program(1, 30)})  # something to keep
    registry = tmp_path / "optout.jsonl"
    save(registry, [make_entry("path", "LICENSE", repo="optedout", requested_by="a@b.c", reason="")])
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(tmp_path / "src")),),
                         near_dedup=NearDedupConfig(enabled=False), optout=OptOutConfig(registry=str(registry)),
                         execution=ExecutionConfig(executor="local"))
    build(config, tmp_path / "out", Progress(quiet=True))
    rows = {(r["repo"], r["path"]): r for r in pq.read_table(tmp_path / "out/manifest/files").to_pylist()}
    for repo in ("optedout", "linked"):
        row = rows[repo, "pkg/a.py"]
        assert (row["decision"], row["reason"], row["license"]) == ("dropped", "license_unknown",
                                                                    "LicenseRef-scancode-unknown"), (repo, row)
    assert rows["optedout", "LICENSE"]["reason"] == "opted_out"
    assert rows["mit", "m.py"]["decision"] == "kept"
