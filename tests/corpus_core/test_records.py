"""The normalized hash: its one-scan path gives the hash of its definition, line by line."""

from __future__ import annotations

import hashlib
import random
import sys

from corpus_core.records import normalized_sha256

# every character str.isspace knows (what str.rstrip strips), newline aside
SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) not in "\n\r"]


def by_definition(text: str) -> str:
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return hashlib.sha256("\n".join(line.rstrip() for line in lines).rstrip("\n")
                          .encode("utf-8", "surrogatepass")).hexdigest()


def test_the_normalized_hash_is_its_definition_for_every_kind_of_space():
    assert len(SPACES) >= 20  # \t \x0b \x0c \x1c-\x1f, NEL, NBSP, the Unicode spaces, ...
    texts = ["", "\n\n", "\ufeffx = 1\r\n", "def f():\n    return 1\n", "a\n\n\n", "\ud800 lone \n"]
    for space in SPACES:  # at a line's end, at the text's end, and inside lines (kept)
        texts += [f"a{space}\nb\n", f"a\nb{space}", f"a{space}b\n", f"{space}\n{space}{space}\r\nc"]
    rng = random.Random(0)
    alphabet = ["a", " ", "\t", "\n", "\r", "\r\n", "\x0c", "\u2028", "\xa0", "\ufeff", "é"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(30))) for _ in range(2000)]
    for text in texts:
        assert normalized_sha256(text) == by_definition(text), repr(text)
    assert normalized_sha256("x = 1\n") == normalized_sha256("x = 1   \r\n\r\n")  # what copying changes
    assert normalized_sha256("x = 1\n") != normalized_sha256(" x = 1\n")  # and what it does not
