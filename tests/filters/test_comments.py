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
