"""Names and messages as the manifests write them: text that Arrow and Parquet accept, on
one line, whatever bytes a crawled name or an exception's message holds."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def printable_name(name: str) -> str:
    """A name as the manifests and shards write it: itself when it is valid Unicode (nearly
    always), else with each byte that is not UTF-8 written `\\xNN` (two lower-case hex digits,
    as Python's `backslashreplace` writes it), e.g. `caf\\xe9.py` for a Latin-1 `café.py`.

    Names are bytes on disk, in git trees and in tar headers; Python hands undecodable bytes
    on as lone surrogates, which Arrow, Parquet and go-enry refuse, so one such name used to
    fail the whole build. The file itself is read and judged like any other: its content is
    no worse for its name, and dropping every file of an old Latin-1 or Shift-JIS tree would
    lose real code for a cosmetic reason. The rendering is deterministic, keeps the valid
    part readable (and the extension, which language detection reads) and gives the bytes
    back; a valid name can only look the same by holding a literal backslash, `x` and two hex
    digits, and should two names of one repository meet so, each still has its own manifest
    row (`duplicate_path` drops the second kept one). A lone surrogate that arrived as such
    (a `\\ud800` escape in a JSON dataset) is written `\\ud800`.
    """
    if not _SURROGATE.search(name):
        return name
    return _SURROGATE.sub(_escape_surrogate, name)


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def error_detail(err: BaseException) -> str:
    """`ExceptionClass: message` of an unforeseen failure, on one line of at most 200 characters."""
    message = " ".join(printable_name(str(err)).split())[:200]
    return type(err).__name__ + (f": {message}" if message else "")
