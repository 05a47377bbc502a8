"""File headers at scan speed: ScanCode sees each distinct notice once, exact matchers first,
and gives the verdicts it gives on the whole header (real headers in tests/data/license_headers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from corpus_core.spdx import canonical
from pipeline.config import BuildConfig
from stages.license import (
    LONGEST_PLAIN_LINE,
    NARROWED_SCANCODE,
    LicenseDetector,
    LicenseScanner,
    MemoLexer,
    QuickParser,
    license_notice,
    load_scancode_index,
    narrow_candidates,
    quicken_copyrights,
    told_plain_text,
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


def test_the_quick_copyright_lexer_and_parser_find_what_cluecode_finds(tmp_path):
    """Copyrights, holders and authors of every real header, with cluecode's lexer and parser
    and with MemoLexer (which has seen the headers before it, as in a build) and QuickParser;
    then of every header with its years moved on, whose labels QuickParser has seen: every tree
    is a remembered shape grown with the new tokens."""
    from cluecode import copyrights
    from scancode.api import get_copyrights

    def moved_on(text: str) -> str:
        return re.sub(r"\b(19|20)(\d\d)\b", lambda m: f"{m[1]}{(int(m[2]) + 1) % 100:02}", text)

    files, later = [], []
    for case in CASES:
        text = (HEADERS / case["file"]).read_text()
        files.append(tmp_path / case["file"])
        files[-1].write_text(text)
        later.append(tmp_path / f"later-{case['file']}")
        later[-1].write_text(moved_on(text))
    quicken_copyrights(False)
    expected = [get_copyrights(str(f)) for f in files + later]
    quicken_copyrights(True)
    try:
        assert isinstance(copyrights.DETECTOR.lexer, MemoLexer)
        parser = copyrights.DETECTOR.parser
        assert isinstance(parser, QuickParser) and not parser.shapes
        found = [get_copyrights(str(f)) for f in files]
        shapes = len(parser.shapes)
        found += [get_copyrights(str(f)) for f in later]
        assert len(copyrights.DETECTOR.lexer.labels) > 100
        assert found == expected
        assert found[len(files):] != found[:len(files)]  # the years moved on
        assert shapes >= 20 and len(parser.shapes) <= shapes + 1  # one year moved on is labelled otherwise
        assert parser.remembered >= shapes - 1
        assert sum(len(e["holders"]) for e in expected) >= 40
    finally:
        quicken_copyrights(True)


# a line ScanCode could break into pieces, as libmagic's "with very long lines" makes it do
LONG_LINE = "var x = [" + ", ".join(f'"item-{n}"' for n in range(60)) + "];"


def test_scancode_told_plain_text_finds_what_it_finds_asking_libmagic(tmp_path, monkeypatch):
    """ScanCode told that a text is plain text (`told_plain_text`) gives the licenses and
    copyrights it gives asking libmagic what the file is, on every real header, without asking
    libmagic; of a text with a line over LONGEST_PLAIN_LINE bytes it asks, as always. The Type
    told is not kept."""
    from scancode.api import get_copyrights, get_licenses
    from typecode import contenttype, magic2

    asked: list[str] = []
    detect = magic2._detect
    monkeypatch.setattr(magic2, "_detect", lambda location, flags: asked.append(location) or detect(location, flags))
    quicken_copyrights(True)
    long_text = f"// Copyright (c) 2021 Jane Roe\n// Licensed under the MIT License.\n{LONG_LINE}\n"
    assert len(LONG_LINE) > LONGEST_PLAIN_LINE
    # the edge: a line of 199 bytes and its "\n" is whole whatever libmagic says; one of 200 could be broken
    edges = [f"/* MIT License */\n{'x, ' * 66}x\n", f"/* MIT License */\n{'x, ' * 66}xy\n"]
    assert [len(edge.split("\n")[1]) for edge in edges] == [LONGEST_PLAIN_LINE - 1, LONGEST_PLAIN_LINE]
    texts = [(HEADERS / case["file"]).read_text() for case in CASES] + edges + [long_text]
    told = 0  # texts read without libmagic
    for n, text in enumerate(texts):
        # typecode keeps a Type per path: one path each way
        asked_path, told_path = tmp_path / f"{n}-asked.txt", tmp_path / f"{n}-told.txt"
        for path in (asked_path, told_path):
            path.write_text(text)
        expected = get_licenses(str(asked_path)), get_copyrights(str(asked_path))
        assert str(asked_path) in asked
        asked.clear()
        with told_plain_text(str(told_path), text):
            found = get_licenses(str(told_path)), get_copyrights(str(told_path))
        assert found == expected, n
        long = max(len(line.encode()) for line in text.split("\n")) >= LONGEST_PLAIN_LINE
        assert asked == [str(told_path)] * len(asked) and bool(asked) == long, n
        assert str(told_path) not in contenttype._registry
        told += not long
    assert found[0]["license_detections"][0]["license_expression_spdx"] == "MIT"  # the long text's
    assert told >= 25


def test_a_text_libmagic_takes_for_an_image_is_read_as_text(tmp_path):
    """A C comment that opens with "/* XPM */" is an X pixmap image to libmagic, and ScanCode
    asking it reads nothing of it: told that the header is text, it finds the GPL."""
    header = "/* XPM */\n/* Copyright 2020 Jane Roe.\n * Licensed under the GNU General Public License version 2. */\n"
    asking = LicenseScanner(tmp_path / "asking", as_text=False)
    told = LicenseScanner(tmp_path / "told")
    assert asking.licenses(header)["expression"] is None and asking.holders(header) == []
    assert told.licenses(header)["expression"] == "GPL-2.0-only"
    assert told.holders(header) == ["Jane Roe"]


@pytest.mark.parametrize("collecting", [True, False])
@pytest.mark.parametrize("built", [True, False])
def test_scancode_index_loads_with_the_collector_paused_and_as_it_was_after(monkeypatch, tmp_path, collecting, built):
    """Unpickling the index makes millions of objects, none of them garbage: the collector is
    off during the load (the real one), and as it was before once the load is over. An index
    not built yet (its file missing) is built with the collector as it was: building makes
    garbage."""
    import gc

    import scancode_config
    from licensedcode import cache

    real = cache.get_cache
    real()  # the index is on disk from here on (a fresh install builds it on first use)
    if not built:
        monkeypatch.setattr(scancode_config, "licensedcode_cache_dir", str(tmp_path))
    seen = []
    monkeypatch.setattr(cache, "get_cache", lambda **kwargs: seen.append(gc.isenabled()) or real(**kwargs))
    load_scancode_index.cache_clear()
    was = gc.isenabled()
    try:
        (gc.enable if collecting else gc.disable)()
        load_scancode_index()
        load_scancode_index()  # once per process
        assert seen == [collecting and not built] and gc.isenabled() == collecting
        assert cache._LICENSE_CACHE is not None and cache._LICENSE_CACHE.index is not None
    finally:
        (gc.enable if was else gc.disable)()
        load_scancode_index.cache_clear()
