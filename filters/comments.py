"""Comment-to-code ratio from a real lexer: Pygments, chosen by go-enry's language name.

ratio = non-whitespace characters in comment tokens / non-whitespace characters in the file

Comment tokens are Pygments' `Comment` and its subtypes, and `String.Doc` (docstrings),
except `Comment.Preproc`/`Comment.PreprocFile` (C's `#include`, `#define`: code) and
`Comment.Hashbang` (`#!/bin/sh`: an interpreter line). Files of programming languages are
kept when the ratio lies in [min_comment_ratio, max_comment_ratio] (SantaCoder's
[0.01, 0.8]); the reason otherwise is `comment_ratio`.

The lexer comes from the language, never from guessing on content: `find_lexer_class`
by name, then the lowercased name (or with spaces as dashes) as an alias. A programming
language Pygments does not know, a file over max_bytes, and every non-programming file
(data, markup, prose have no "code" to compare with) pass with comment_ratio null; for the
first kind comment_lexer is null too and the stage's notes count them per language.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

from corpus_core import reasons
from corpus_core.records import FileRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import Filter

PROGRAMMING = "programming"


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
        lexer = lexer_for(record.language)
        if lexer is None:
            self.no_lexer[record.language or "(unknown)"] += 1
            self.stats.notes["no_lexer"] = dict(sorted(self.no_lexer.items()))
            return True
        ratio = comment_ratio(record.content or "", lexer)
        record.comment_ratio, record.comment_lexer = round(ratio, 4), lexer.name
        low, high = self.config.min_comment_ratio, self.config.max_comment_ratio
        if (low is not None and ratio < low) or (high is not None and ratio > high):
            return False, COMMENT_RATIO
        return True
