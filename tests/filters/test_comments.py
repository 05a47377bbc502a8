"""Comment-to-code ratio by tree-sitter and by Pygments, checked against files counted by
hand and against each other on real files.

Each case: (comment characters, all characters), both without whitespace. Not comments:
C's #include (a preprocessor line) and shebangs; comments: line, block and doc comments
and Python docstrings (a string at a statement's start), not other triple-quoted strings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus_core.records import FileRecord
from filters.comments import (
    CommentRatioFilter,
    CommentsConfig,
    comment_ratio,
    grammar_for,
    lexer_for,
    measure,
    python_scan_ratio,
    tree_sitter_ratio,
)

HAND_COUNTED = {
    # shebang 21 (code), docstring 10, "# one" 4, "x=1" 3 + "#two" 4, 's="""notdoc"""' 14
    "Python": ('#!/usr/bin/env python3\n"""Doc."""\n# one\nx = 1  # two\ns = """not doc"""\n', 18, 56),
    # #include 17 (code), block 16, "int main(void) {" 14 + "//line" 6, "return 0;" 8, "}" 1
    "C": ("#include <stdio.h>\n/* block\n   comment */\nint main(void) { // line\n    return 0;\n}\n", 22, 62),
    # "//a" 3, "const x = 1;" 9 + "/*b*/" 5, "/**doc*/" 8, the function 21
    "JavaScript": ("// a\nconst x = 1; /* b */\n/** doc */\nfunction f() { return x; }\n", 16, 46),
    # "package main" 11, "// Add adds." 10, the func 29 + "/*end*/" 7
    "Go": ("package main\n\n// Add adds.\nfunc Add(a, b int) int { return a + b } /* end */\n", 17, 57),
    # "/// Doc comment." 14, "fn main() {" 9, "let x = 1;" 7 + "//note" 6, "}" 1
    "Rust": ("/// Doc comment.\nfn main() {\n    let x = 1; // note\n}\n", 20, 37),
    # "/*header*/" 10, "public class A {" 13, "//field" 7, "int x = 1;" 7, "}" 1
    "Java": ("/* header */\npublic class A {\n    // field\n    int x = 1;\n}\n", 17, 38),
    # "#!/bin/sh" 9 (code), "#sayhi" 6, 'echo "hi"' 8 + "#inline" 7
    "Shell": ('#!/bin/sh\n# say hi\necho "hi" # inline\n', 13, 30),
}


@pytest.mark.parametrize("language", sorted(HAND_COUNTED))
def test_ratio_matches_the_hand_count(language):
    content, comment, total = HAND_COUNTED[language]
    assert comment_ratio(content, lexer_for(language)) == pytest.approx(comment / total)
    assert tree_sitter_ratio(content, grammar_for(language)) == pytest.approx(comment / total)


def run(content: str, language: str = "Python", language_type: str = "programming",
        config: CommentsConfig | None = None) -> FileRecord:
    record = FileRecord("o/r", "f", len(content), content=content, language=language, language_type=language_type)
    CommentRatioFilter(config or CommentsConfig()).process(record)
    return record


def test_bounds_from_both_sides():
    # 1 comment character of 100: exactly 0.01 is kept, less is not
    assert run("#\n" + "x=1;" * 24 + "y=1\n").kept
    dropped = run("#\n" + "x=1;" * 25 + "\n")
    assert dropped.reason == "comment_ratio" and dropped.comment_ratio == round(1 / 101, 4)
    # 80 of 100 is kept, 81 of 100 is not
    assert run("#" + "c" * 79 + "\n" + "x=1;" * 5 + "\n").kept
    assert run("#" + "c" * 80 + "\n" + "x=1;" * 4 + "y=1\n").reason == "comment_ratio"
    assert run("x = 1\n", config=CommentsConfig(min_comment_ratio=None)).kept  # None: no lower bound


def test_type_stubs_are_judged_by_the_upper_bound_only():
    stub = "from typing import overload\n\n@overload\ndef parse(text: str) -> int: ...\n"
    for path, language in (("pkg/core.pyi", "Python"), ("types/index.d.ts", "TypeScript")):
        record = FileRecord("o/r", path, len(stub), content=stub, language=language, language_type="programming")
        CommentRatioFilter(CommentsConfig()).process(record)
        assert record.kept and record.comment_ratio == 0.0
    assert run(stub).reason == "comment_ratio"  # the same text as a .py file is judged as before
    all_comment = "# " + "c" * 99 + "\n"
    record = FileRecord("o/r", "a.pyi", 101, content=all_comment, language="Python", language_type="programming")
    CommentRatioFilter(CommentsConfig()).process(record)
    assert record.reason == "comment_ratio"


def test_the_parser_comes_from_the_language_and_is_recorded():
    record = run("// c\nint x = 1;\n", language="C++")
    assert record.kept and record.comment_lexer == "tree-sitter-cpp" and record.comment_ratio == round(3 / 10, 4)
    pygments_only = run("-- c\nx = 1\n", language="Lua")  # no grammar installed: Pygments measures
    assert pygments_only.comment_lexer == "Lua" and pygments_only.comment_ratio == 0.5
    assert lexer_for("Shell").name == "Bash" and grammar_for("Shell").name == "tree-sitter-bash"


def test_no_lexer_and_non_programming_files_pass_unmeasured():
    stage = CommentRatioFilter(CommentsConfig())
    unknown = FileRecord("o/r", "f.zz", 5, content="zz zz", language="Zzlang", language_type="programming")
    stage.process(unknown)
    assert unknown.kept and unknown.comment_ratio is None and unknown.comment_lexer is None
    assert stage.stats.notes == {"no_lexer": {"Zzlang": 1}}
    prose = run("Just words, no comments at all.\n", language="Markdown", language_type="prose")
    assert prose.kept and prose.comment_ratio is None


FIXTURES = Path(__file__).resolve().parents[1] / "data" / "comments"


def test_tree_sitter_agrees_with_pygments_per_language_on_real_files():
    """Real files of 9 languages (tests/data/comments/index.json says where each is from)."""
    by_language: dict[str, list[tuple[float, float]]] = {}
    for case in json.loads((FIXTURES / "index.json").read_text()):
        text = (FIXTURES / case["file"]).read_text()
        grammar, lexer = grammar_for(case["language"]), lexer_for(case["language"])
        assert grammar is not None and lexer is not None, case["language"]
        by_language.setdefault(case["language"], []).append(
            (tree_sitter_ratio(text, grammar), comment_ratio(text, lexer)))
    assert len(by_language) >= 8
    for language, pairs in by_language.items():
        ours, theirs = (sum(p[i] for p in pairs) / len(pairs) for i in (0, 1))
        assert abs(ours - theirs) <= 0.02, (language, ours, theirs)


def test_docstrings_count_and_the_interpreter_line_does_not():
    text = '#!/usr/bin/env python\n"""A module docstring."""\n\n\ndef f():\n    """Its doc."""\n    return 1  # one\n'
    grammar = grammar_for("Python")
    assert tree_sitter_ratio(text, grammar) == pytest.approx(comment_ratio(text, lexer_for("Python")))
    assert tree_sitter_ratio(text, grammar) == pytest.approx((len('"""Amoduledocstring."""') + len('"""Itsdoc."""')
                                                              + len("#one")) / len("".join(text.split())))


def test_the_filter_names_the_parser_that_measured():
    record = FileRecord("r", "a.c", 30, content="// hi\nint main() { return 0; }\n", language="C",
                        language_type="programming")
    CommentRatioFilter(CommentsConfig()).process(record)
    assert record.comment_lexer == "tree-sitter-c" and record.comment_ratio == round(4 / 23, 4)


# what `measure` gave on each fixture before Python was scanned instead of parsed (commit
# 6fc2911, tree-sitter for all of them): the fast paths must not move any of these
BEFORE_THE_SCAN = {
    "javascript-0.js": 0.15331010452961671, "javascript-1.js": 0.09316303531179564,
    "javascript-2.js": 0.14935064935064934, "javascript-3.js": 0.09212121212121212,
    "python-0.py": 0.28794992175273865, "python-1.py": 0.48314606741573035,
    "python-2.py": 0.7529021558872305, "python-3.py": 0.5171957671957672,
    "shell-0.sh": 0.0, "shell-1.sh": 0.3113207547169811, "shell-2.sh": 0.4932781799379524,
    "shell-3.sh": 0.40875912408759124,
    "c-0.h": 0.9456928838951311, "c-1.h": 0.5409680480860487, "c-2.h": 0.7916787896421298, "c-3.c": 0.0,
    "cpp-0.h": 0.5666443402545212, "cpp-1.h": 0.5216346153846154, "cpp-2.h": 0.23972753241045924,
    "cpp-3.h": 0.33563887877684745,
    "csharp-0.cs": 0.0, "csharp-1.cs": 0.0, "csharp-2.cs": 0.0, "csharp-3.cs": 0.0,
    "java-0.java": 0.0, "java-1.java": 0.0, "java-2.java": 0.0, "java-3.java": 0.0,
    "rust-0.rs": 0.23674911660777384, "rust-1.rs": 0.1662531017369727, "rust-2.rs": 0.2851063829787234,
    "rust-3.rs": 0.0,
    "typescript-0.ts": 0.5928792569659442, "typescript-1.ts": 0.4608855242027988,
    "typescript-2.ts": 0.47946859903381644, "typescript-3.mts": 0.8260869565217391,
}


def test_the_ratio_on_the_fixtures_is_exactly_what_it_was():
    cases = json.loads((FIXTURES / "index.json").read_text())
    assert sorted(case["file"] for case in cases) == sorted(BEFORE_THE_SCAN)
    for case in cases:
        ratio, measured_by = measure((FIXTURES / case["file"]).read_text(), case["language"])
        assert (case["file"], ratio) == (case["file"], BEFORE_THE_SCAN[case["file"]])
        assert measured_by == grammar_for(case["language"]).name


# (source, whether the scan answers): where it answers, it equals tree-sitter exactly
PYTHON_SCAN_CASES = [
    ('#!/usr/bin/env python\n"""Doc."""\nx = 1  # one\n', True),
    ('def f():\n    r"""raw doc"""\n    return 1\n', True),
    ('class A:\n    u"""u doc"""\n    b"""bytes doc"""\n    x = f"""{a}"""\n', True),
    ('x = (\n  """begins a line, so it counts"""\n)\ny = """not at a line start"""\n', True),
    ("s = '# not a comment' + \"it's\"  # but this is\n", True),
    ('s = "a \\" # still the string"  # comment\n', True),
    ("x = f\"{d['k']!r:>10}\"  # c\n", True),
    ('x = ur"""a"""\n  Rb"""x"""\nfur"""y"""\n', True),
    ("# a\rx = 1\r# b\r", True),
    ("x=1 # a\u2028b = 2\n\ufeff# c\n", True),
    ("x = 1 \\\n  # after a continuation\n", True),
    ("x = '''never closed\n", False),
    ("x = 'one line, never closed\n# c\n", False),
    ('x = rb"', False),  # a quote that is the last character
    ('x = """=\\', False),  # the backslash at the end escapes nothing: the string never ends
    ("x = '# \\", False),  # nor here, and the `#` inside it is no comment
    ('x = 1 \\ # a backslash in code', False),
    ('x = f"{a # no}"  # c\n', False),
    ('x = f"{d["k"]}"  # the quote of the string itself (3.12)\n', False),
    ('f"""\n{\n"""doc"""}"""\n', False),
    ("# \ud800 lone surrogate\nx = 1\n", False),
    ("x = 1\0 # NUL\n", False),
]


@pytest.mark.parametrize(("source", "answers"), PYTHON_SCAN_CASES)
def test_the_python_scan_equals_tree_sitter_or_declines(source, answers):
    parsed = tree_sitter_ratio(source, grammar_for("Python"))
    scanned = python_scan_ratio(source)
    assert (scanned is not None) == answers
    assert scanned in (None, parsed)
    assert measure(source, "Python") == (parsed, "tree-sitter-python")


def test_the_python_scan_equals_tree_sitter_on_the_real_files():
    for case in json.loads((FIXTURES / "index.json").read_text()):
        if case["language"] == "Python":
            text = (FIXTURES / case["file"]).read_text()
            assert python_scan_ratio(text) == tree_sitter_ratio(text, grammar_for("Python")), case["file"]
