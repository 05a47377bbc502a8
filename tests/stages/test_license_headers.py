"""File headers at scan speed: ScanCode sees each distinct notice once, exact matchers first,
and gives the verdicts it gives on the whole header (real headers in tests/data/license_headers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus_core.spdx import canonical
from pipeline.config import BuildConfig
from stages.license import (
    NARROWED_SCANCODE,
    LicenseDetector,
    LicenseScanner,
    MemoLexer,
    license_notice,
    memoize_copyright_lexer,
    narrow_candidates,
)

HEADERS = Path(__file__).resolve().parents[1] / "data" / "license_headers"

APACHE = """# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""


def test_files_of_one_project_share_their_notice():
    first = (f"# coding=utf-8\n# Copyright 2018 Google AI and The HuggingFace Team.\n#\n{APACHE}"
             '"""BERT."""\nimport os\n')
    second = f"#!/usr/bin/env python\n# Copyright (c) 2023 Jane Roe <jane@example.org>\n#\n{APACHE}\nfrom x import y\n"
    assert license_notice(first) == license_notice(second)
    notice = license_notice(first)
    assert notice.startswith("# Licensed under the Apache License") and "BERT" not in notice


def test_a_docstring_notice_without_its_description():
    header = '"""\n    pygments.lexers.python\n    ~~~~~~\n\n    Lexers for Python.\n\n' \
             '    :copyright: Copyright 2006-2024 by the Pygments team, see AUTHORS.\n' \
             '    :license: BSD, see LICENSE for details.\n"""\nimport re\n'
    assert license_notice(header) == 'Copyright (c) holder\n    :license: BSD, see LICENSE for details.\n"""'


def test_license_text_naming_the_copyright_holder_is_kept():
    header = ("# Copyright (c) 2020 Foo Inc. All rights reserved.\n"
              "# Redistribution and use in source and binary forms are permitted provided that:\n"
              "# 3. Neither the name of the copyright holder nor the names of its\n"
              "# contributors may be used to endorse or promote products derived from\n"
              "# this software without specific prior written permission.\n\nimport os\n")
    notice = license_notice(header).split("\n")
    assert notice[0] == "Copyright (c) holder"
    assert notice[2:] == header.split("\n")[2:5]


def test_a_license_named_in_code_makes_the_whole_header_the_query():
    assert license_notice(f"{APACHE}\nLICENSE = 'GPL-3.0'\n") is None
    assert license_notice(f"{APACHE}\nlicense_key = compute()\n") is not None  # an identifier names nothing
    assert license_notice("import os\nprint('no notice')\n") is None


@pytest.fixture(scope="module")
def scanners(tmp_path_factory):
    return LicenseScanner(tmp_path_factory.mktemp("whole")), LicenseScanner(tmp_path_factory.mktemp("notice"))


CASES = json.loads((HEADERS / "index.json").read_text())  # where each header is from, and ScanCode's verdict


def test_the_real_headers_cover_many_licenses_and_both_paths():
    assert len(CASES) >= 30
    assert len({case["scancode_on_whole_header"] for case in CASES}) >= 20
    assert any("GPL" in case["scancode_on_whole_header"] for case in CASES)
    assert sum(license_notice((HEADERS / case["file"]).read_text()) is None for case in CASES) >= 3


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_verdicts_equal_scancode_on_the_whole_header(case, scanners):
    whole, fast = scanners
    header = (HEADERS / case["file"]).read_text()
    notice = license_notice(header)
    found = fast.header_licenses(notice or header, is_notice=notice is not None)
    expected = whole.licenses(header)["expression"]
    assert expected == canonical(case["scancode_on_whole_header"])  # the ScanCode this was recorded with
    assert found["expression"] == expected


def test_header_evidence_names_the_rule_the_score_and_the_lines_of_the_file(tmp_path):
    detector = LicenseDetector(BuildConfig().license, tmp_path)
    header = f"#!/usr/bin/env python\n# Copyright 2018 Google AI and The HuggingFace Team.\n#\n{APACHE}import os\n"
    found = detector.header_license(header)  # ScanCode reads the notice; its lines map back to the file's
    assert (found.expression, found.start_line, found.end_line) == ("Apache-2.0", 4, 14)
    assert found.rule.startswith("apache-2.0") and found.score == 100.0
    spdx = detector.header_license("// Copyright (c) 2024 Jane Roe\n// SPDX-License-Identifier: MIT OR Apache-2.0\n")
    assert (spdx.expression, spdx.rule, spdx.start_line, spdx.end_line) == (
        "Apache-2.0 OR MIT", "SPDX-License-Identifier", 2, 2)


def test_narrowed_candidates_are_the_ones_scancode_ranks(tmp_path, monkeypatch):
    """ScanCode's candidate ranking run on the rules `narrow_candidates` leaves gives the
    candidates it gives on all rules, in its order, with their scores: every call of approximate
    matching on the real headers, also with a small `top` (so that the bound on rounded scores
    decides, not only the rules' minimums)."""
    from importlib import metadata

    from licensedcode import match_set

    if metadata.version("scancode-toolkit") not in NARROWED_SCANCODE:
        pytest.skip("another ScanCode version keeps its own candidate ranking (stages/license.py)")
    narrow_candidates()
    narrowed = match_set.compute_candidates
    calls: list[tuple[int, int]] = []  # (top, candidates)

    def both(query_run, idx, matchable_rids, **options):
        expected = narrowed.original(query_run, idx, matchable_rids, **options)
        for top in (options["top"], 2):
            ranked = narrowed.original(query_run, idx, matchable_rids, **{**options, "top": top})
            assert narrowed(query_run, idx, matchable_rids, **{**options, "top": top}) == ranked
            calls.append((top, len(ranked)))
        return expected

    both.original = narrowed.original
    monkeypatch.setattr(match_set, "compute_candidates", both)
    scanner = LicenseScanner(tmp_path)
    for case in CASES[::4]:
        scanner.licenses((HEADERS / case["file"]).read_text())
    assert len(calls) >= 20 and sum(1 for top, found in calls if top == 2 and found == 2) >= 2
    assert sum(found for _, found in calls) >= 140


def test_the_remembering_copyright_lexer_finds_what_cluecode_finds(tmp_path):
    """Copyrights, holders and authors of every real header, with cluecode's lexer and with
    MemoLexer (which has seen the headers before it, as in a build)."""
    from cluecode import copyrights
    from scancode.api import get_copyrights

    files = []
    for case in CASES:
        files.append(tmp_path / case["file"])
        files[-1].write_text((HEADERS / case["file"]).read_text())
    memoize_copyright_lexer(False)
    expected = [get_copyrights(str(f)) for f in files]
    memoize_copyright_lexer(True)
    try:
        assert isinstance(copyrights.DETECTOR.lexer, MemoLexer)
        found = [get_copyrights(str(f)) for f in files]
        assert len(copyrights.DETECTOR.lexer.labels) > 100
        assert found == expected
        assert sum(len(e["holders"]) for e in expected) >= 20
    finally:
        memoize_copyright_lexer(True)
