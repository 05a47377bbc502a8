"""Comment-to-code ratio from a real parser: a tree-sitter grammar where one is installed
for go-enry's language, else Pygments' lexer of that name.

ratio = non-whitespace characters in comments / non-whitespace characters in the file

Pygments' regex lexers run at a few MB/s; tree-sitter at 3 to 7 MB/s, nearly all of it
parsing. Python, most of the code we see, is not parsed when it need not be: which
characters are comments and docstrings is lexical, and one regular expression finds
tree-sitter-python's comment and string nodes at ~50 MB/s (`python_scan_ratio`, equal to
`tree_sitter_ratio` on every Python file of bench/e2e.py's sources; bench/comments.py
counts any difference); a file the scan cannot be sure of (a string that does not end, an
f-string with `#`, a line break or its own quote in a field) is parsed. The record names
tree-sitter-python either way: the figure is the same. Both count the same things:
Pygments' `Comment` tokens and `String.Doc` (docstrings), except
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
    if text.isascii():  # deleting bytes is several times faster than splitting
        return len(text.encode("ascii").translate(None, ASCII_SPACE))
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


# Python's tokens as tree-sitter-python's scanner finds them. One match skips code and the
# plain one-line strings (possessive, so no backtracking), then takes the next token that
# matters: a comment, a triple-quoted string (a docstring if it begins a line), an f-string
# (checked by _plain_fstring), a string that does not end, a stray backslash, or the end.
PYTHON_TOKEN = re.compile(r'''
    (?:[^\#"'fF\\]++ | [fF](?![rRbB]?["']) | \\\r?\n
      | "(?!"")[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"
      | '(?!'')[^'\\\n]*+(?:\\.[^'\\\n]*+)*+')*+
    ( \#[^\n]*+
    | [fF]?[rRbB]?(?: """[^"\\]*+(?:(?:\\.|"(?!""))[^"\\]*+)*+(?:"""|\Z)
                    | \'\'\'[^'\\]*+(?:(?:\\.|'(?!''))[^'\\]*+)*+(?:\'\'\'|\Z)
                    | "[^"\\\n]*+(?:\\.[^"\\\n]*+)*+(?:"|\n|\Z)
                    | '[^'\\\n]*+(?:\\.[^'\\\n]*+)*+(?:'|\n|\Z) )
    | ["'\\] | \Z )''', re.S | re.X)  # a quote no string form took: one that does not end
CLOSED_STRING = re.compile(r'''
      """[^"\\]*+(?:(?:\\.|"(?!""))[^"\\]*+)*+"""
    | \'\'\'[^'\\]*+(?:(?:\\.|'(?!''))[^'\\]*+)*+\'\'\'
    | "[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"
    | '[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'
    ''', re.S | re.X)  # the same strings, closed
STRING_PREFIX = frozenset("rRuUbBfF")
TRIPLE_QUOTED_TEXT = re.compile(TRIPLE_QUOTED.pattern.decode())
SURROGATE = re.compile("[\ud800-\udfff]")
BYTES_STRIP = " \t\n\r\x0b\x0c"  # what bytes.strip() strips (tree_sitter_ratio's line-start test)


def _plain_fstring(body: str) -> bool:
    """Whether an f-string's replacement fields are what the scan reads right: balanced,
    on one line, without `#`. A comment or a docstring-like string inside a field, or a
    quote like the string's own (Python 3.12), only the parser sees."""
    body = body.replace("{{", "").replace("}}", "")
    depth = field = 0
    for at, character in enumerate(body):
        if character == "{":
            field = at if depth == 0 else field
            depth += 1
        elif character == "}":
            depth -= 1
            if depth < 0 or (depth == 0 and ("#" in body[field:at] or "\n" in body[field:at])):
                return False
    return depth == 0


def python_scan_ratio(content: str) -> float | None:
    """`tree_sitter_ratio(content, grammar_for("Python"))` without parsing, or None when the
    scan cannot be sure of it (the caller parses then)."""
    if "\0" in content or "\x0b" in content or (not content.isascii() and SURROGATE.search(content)):
        # NUL ends tree-sitter's input; a vertical tab is whitespace to it where the scan does not
        # know (a fuzz found it); lone surrogates are counted as decoded bytes
        return None
    counted = []
    for match in PYTHON_TOKEN.finditer(content):
        token = match.group(1)
        if not token:
            break  # the end of the text
        if token == "\\":
            return None  # a backslash in code but before a line break: what the parser makes of it varies
        start, end = match.span(1)
        if token[0] == "#":
            if start or not token.startswith("#!"):  # not the interpreter line
                counted.append(token)
            continue
        quote_at = start + (token[0] not in "\"'") + (token[1:2] not in "\"'")
        quotes = 3 if content.startswith(content[quote_at] * 3, quote_at) else 1
        if end - quote_at < 2 * quotes or (
                (end == len(content) or token[-1] == "\n") and not CLOSED_STRING.fullmatch(content, quote_at, end)):
            return None  # a string that does not end (at the text's end, its last quote may be escaped)
        is_fstring = quote_at > start or content[start - 1:start] in ("f", "F")
        if is_fstring and not _plain_fstring(content[quote_at + quotes:end - quotes]):
            return None
        if quotes == 1:
            continue
        prefix = quote_at  # the string node begins at its prefix (r, b, u, f)
        while prefix and content[prefix - 1] in STRING_PREFIX:
            prefix -= 1
        line_start = content.rfind("\n", 0, prefix) + 1
        if not content[line_start:prefix].strip(BYTES_STRIP) and TRIPLE_QUOTED_TEXT.match(content, prefix):
            counted.append(content[quote_at:end])  # a docstring, from its quotes
    total = _visible(content)
    return _visible("".join(counted)) / total if total else 0.0


# languages whose comments a scan finds exactly as their tree-sitter grammar does
SCANNERS = {"Python": python_scan_ratio}


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


def measure(content: str, language: str | None) -> tuple[float, str] | None:
    """The comment ratio of a file and the name of what measured it (the grammar, else the
    lexer), or None when neither knows the language."""
    grammar = grammar_for(language)
    if grammar is not None:
        scan = SCANNERS.get(language or "")
        ratio = scan(content) if scan else None
        return (tree_sitter_ratio(content, grammar) if ratio is None else ratio), grammar.name
    lexer = lexer_for(language)
    return None if lexer is None else (comment_ratio(content, lexer), lexer.name)


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
        measured = measure(record.content or "", record.language)
        if measured is None:
            self.no_lexer[record.language or "(unknown)"] += 1
            self.stats.notes["no_lexer"] = dict(sorted(self.no_lexer.items()))
            return True
        ratio, record.comment_lexer = measured
        record.comment_ratio = round(ratio, 4)
        low, high = self.config.min_comment_ratio, self.config.max_comment_ratio
        if record.path.endswith(self.config.no_minimum_for):
            low = None
        if (low is not None and ratio < low) or (high is not None and ratio > high):
            return False, COMMENT_RATIO
        return True
