"""Comment-to-code ratio from a real parser: a tree-sitter grammar where one is installed
for go-enry's language, else Pygments' lexer of that name.

ratio = non-whitespace characters in comments / non-whitespace characters in the file

Pygments' regex lexers run at a few MB/s; tree-sitter parses in C at tens of MB/s. Both
count the same things: Pygments' `Comment` tokens and `String.Doc` (docstrings), except
`Comment.Preproc`/`Comment.PreprocFile` (C's `#include`, `#define`: code) and
`Comment.Hashbang` (`#!/bin/sh`: an interpreter line); in a tree-sitter tree, the comment
nodes but a first-line `#!`, and in Python the triple-quoted strings that begin a line
(where Pygments' lexer says `String.Doc`). Per language the mean ratio of the two agrees
within 0.02 on real files (tests/data/comments). Files of programming languages are kept
when the ratio lies in [min_comment_ratio, max_comment_ratio] (SantaCoder's [0.01, 0.8]);
the reason otherwise is `comment_ratio`.

The parser comes from the language, never from guessing on content. For Pygments:
`find_lexer_class` by name, then the lowercased name (or with spaces as dashes) as an alias.
A programming language neither knows, a file over max_bytes, and every non-programming file
(data, markup, prose have no "code" to compare with) pass with comment_ratio null; for the
first kind comment_lexer is null too and the stage's notes count them per language.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

from corpus_core import reasons
from corpus_core.records import FileRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import Filter

PROGRAMMING = "programming"
# go-enry language -> (the grammar's package, its function): the per-language wheels ship
# compiled grammars (tree-sitter-language-pack 1.x downloads them at run time instead)
GRAMMARS = {
    "Python": ("tree_sitter_python", "language"),
    "JavaScript": ("tree_sitter_javascript", "language"),
    "TypeScript": ("tree_sitter_typescript", "language_typescript"),
    "TSX": ("tree_sitter_typescript", "language_tsx"),
    "C": ("tree_sitter_c", "language"),
    "C++": ("tree_sitter_cpp", "language"),
    "Java": ("tree_sitter_java", "language"),
    "Go": ("tree_sitter_go", "language"),
    "Rust": ("tree_sitter_rust", "language"),
    "Ruby": ("tree_sitter_ruby", "language"),
    "Shell": ("tree_sitter_bash", "language"),
    "C#": ("tree_sitter_c_sharp", "language"),
}
COMMENT_NODES = ("comment", "line_comment", "block_comment")
TRIPLE_QUOTED = re.compile(rb'[rRuUbBfF]{0,2}(?:"""|\'\'\')')


@dataclass(frozen=True)
class Grammar:
    name: str  # what comment_lexer records, e.g. tree-sitter-python
    parser: Any
    comments: Any  # a query capturing comment nodes (and Python's strings, as `string`)


@cache
def grammar_for(language: str | None) -> Grammar | None:
    """A tree-sitter parser and comment query for a go-enry language name, or None."""
    if language not in GRAMMARS:
        return None
    import importlib

    from tree_sitter import Language, Parser, Query

    module, function = GRAMMARS[language]
    try:
        grammar = Language(getattr(importlib.import_module(module), function)())
    except (ImportError, AttributeError, ValueError):  # not installed, or built for another tree-sitter
        return None
    kinds = [kind for kind in COMMENT_NODES if grammar.id_for_node_kind(kind, True)]
    pattern = "[" + " ".join(f"({kind})" for kind in kinds) + "] @comment"
    if language == "Python":
        pattern += " (string) @string"
    return Grammar(module.replace("_", "-"), Parser(grammar), Query(grammar, pattern))


ASCII_SPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.isspace says of ASCII


def _visible(text: str) -> int:
    """Non-whitespace characters, as Pygments' counting does (str.isspace)."""
    return sum(map(len, text.split()))


def _visible_span(data: bytes, start: int, end: int, ascii_only: bool) -> int:
    if ascii_only:  # bytes are characters: count without decoding
        return len(data[start:end].translate(None, ASCII_SPACE))
    return _visible(data[start:end].decode("utf-8", "replace"))


def tree_sitter_ratio(content: str, grammar: Grammar) -> float:
    from tree_sitter import QueryCursor

    data = content.encode("utf-8", "surrogatepass")
    ascii_only = len(data) == len(content)
    tree = grammar.parser.parse(data)
    captures = QueryCursor(grammar.comments).captures(tree.root_node)
    comment = 0
    for node in captures.get("comment", ()):
        if node.start_byte == 0 and data.startswith(b"#!"):
            continue  # the interpreter line
        comment += _visible_span(data, node.start_byte, node.end_byte, ascii_only)
    for node in captures.get("string", ()):
        start = node.start_byte
        line_start = data.rfind(b"\n", 0, start) + 1
        if data[line_start:start].strip() or not TRIPLE_QUOTED.match(data, start):
            continue  # Pygments' String.Doc: a triple-quoted string that begins a line
        opening = TRIPLE_QUOTED.match(data, start).end() - 3  # the prefix (r, b, f) is not the doc
        comment += _visible_span(data, opening, node.end_byte, ascii_only)
    total = _visible(content)
    return comment / total if total else 0.0


@cache
def lexer_for(language: str | None) -> Any:
    """A Pygments lexer instance for a go-enry language name, or None."""
    if not language:
        return None
    from pygments.lexers import find_lexer_class, get_lexer_by_name
    from pygments.util import ClassNotFound

    found = find_lexer_class(language)
    if found is not None:
        return found(stripnl=False, stripall=False, ensurenl=False)
    name = language.lower()
    for alias in dict.fromkeys((name, name.replace(" ", "-"), name.replace(" ", ""))):
        try:
            return get_lexer_by_name(alias, stripnl=False, stripall=False, ensurenl=False)
        except ClassNotFound:
            continue
    return None


@cache
def _is_comment(token_type: Any) -> bool:
    from pygments.token import Comment, String

    if token_type in Comment.Preproc or token_type in Comment.PreprocFile or token_type in Comment.Hashbang:
        return False
    return token_type in Comment or token_type in String.Doc


def comment_ratio(content: str, lexer: Any) -> float:
    comment = total = 0
    for token_type, value in lexer.get_tokens(content):
        characters = len(value) - sum(1 for c in value if c.isspace())
        total += characters
        if characters and _is_comment(token_type):
            comment += characters
    return comment / total if total else 0.0


COMMENT_RATIO = reasons.register("comment_ratio", "comments", "comment-to-code ratio outside "
                                 "[`min_comment_ratio`, `max_comment_ratio`]")


@dataclass(frozen=True)
class CommentsConfig(Settings):
    """Comment-to-code ratio, SantaCoder's bounds."""

    section = "comments"

    min_comment_ratio: float | None = setting(0.01, "SantaCoder's lower bound")
    max_comment_ratio: float | None = setting(0.8, "SantaCoder's upper bound")
    max_bytes: int = setting(1_000_000, "larger files are not lexed (kept, ratio null)")
    no_minimum_for: tuple[str, ...] = setting((".pyi", ".d.ts"), "file-name endings judged by the upper bound only: "
                                              "type stubs and declaration files hold signatures, seldom comments")


class CommentRatioFilter(Filter):
    name = "comments"
    settings_class = CommentsConfig

    config: CommentsConfig

    def __init__(self, config: CommentsConfig):
        super().__init__(config)
        self.no_lexer: Counter[str] = Counter()

    def keep(self, record: FileRecord) -> bool | tuple[bool, str]:
        if record.language_type != PROGRAMMING or len(record.content or "") > self.config.max_bytes:
            return True
        grammar = grammar_for(record.language)
        if grammar is not None:
            ratio, record.comment_lexer = tree_sitter_ratio(record.content or "", grammar), grammar.name
        else:
            lexer = lexer_for(record.language)
            if lexer is None:
                self.no_lexer[record.language or "(unknown)"] += 1
                self.stats.notes["no_lexer"] = dict(sorted(self.no_lexer.items()))
                return True
            ratio, record.comment_lexer = comment_ratio(record.content or "", lexer), lexer.name
        record.comment_ratio = round(ratio, 4)
        low, high = self.config.min_comment_ratio, self.config.max_comment_ratio
        if record.path.endswith(self.config.no_minimum_for):
            low = None
        if (low is not None and ratio < low) or (high is not None and ratio > high):
            return False, COMMENT_RATIO
        return True
