"""The SPDX allowlist policy and the one way expressions are written.

An OR-expression passes if one alternative is allowed, an AND-expression only if all are,
`A WITH exception` as A does; no license or an unknown one does not pass. Used by the
license decision at build time and by `corpus audit` on a finished build.

Every expression the build records goes through license-expression (whose SPDX licensing
is built from ScanCode's license index, `LicenseRef-scancode-*` keys included): parsed,
simplified (duplicates and absorbed terms removed, terms in a fixed order) and rendered, so
that one license is one string whatever the order or nesting it was found in.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing

# The Stack's permissive set, widened to close relatives that impose no copyleft: see
# docs/FORMATS.md#licenses for the list's sources and what was left out (and why).
PERMISSIVE = (
    "0BSD", "AFL-3.0", "Apache-2.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-2-Clause-Patent", "BSD-3-Clause",
    "BSD-3-Clause-Clear", "BSL-1.0", "CC0-1.0", "CNRI-Python", "ECL-2.0", "ISC", "MIT", "MIT-0", "NCSA",
    "PSF-2.0", "Python-2.0", "Unlicense", "UPL-1.0", "WTFPL", "X11", "Zlib",
)
# permissive licenses that ask for no notice or text to accompany copies; every other license
# a kept file is used under has its full text in NOTICE
NO_NOTICE = ("0BSD", "CC0-1.0", "MIT-0", "Unlicense", "WTFPL")


@cache
def licensing():
    return get_spdx_licensing()


def _simplified(parsed: Any) -> str:
    return parsed.simplify().render()


@cache
def normalize(expression: str) -> str | None:
    """The canonical rendering of an SPDX expression as people write it (an SPDX line, a
    package's metadata), or None when it does not parse as SPDX."""
    try:
        return _simplified(licensing().parse(expression, validate=True, strict=False))
    except ExpressionError:
        return None


@cache
def canonical(expression: str) -> str:
    """The canonical rendering of an expression ScanCode gave: not validated, since ScanCode's
    own license list may be newer than license-expression's."""
    return _simplified(licensing().parse(expression))


def combine(expressions: Iterable[str]) -> str:
    """All of `expressions` at once (AND), simplified."""
    parts = sorted(set(expressions))
    if len(parts) == 1:
        return canonical(parts[0])
    return canonical(" AND ".join(f"({part})" for part in parts))


def any_of(expressions: Iterable[str]) -> str:
    """A choice between `expressions` (OR), simplified."""
    parts = sorted(set(expressions))
    if len(parts) == 1:
        return canonical(parts[0])
    return canonical(" OR ".join(f"({part})" for part in parts))


def is_choice(expression: str) -> bool:
    """True when the expression, at its top, offers alternatives (`A OR B`)."""
    return isinstance(licensing().parse(expression), licensing().OR)


def together(expressions: Iterable[str]) -> str:
    """What several statements found in one place say together. A choice that names every
    license the others name is the choice, the others being the texts of its alternatives
    ("dual-licensed under MIT or AFL-2.1" followed by both texts is `AFL-2.1 OR MIT`);
    otherwise all of them apply (AND)."""
    parts = sorted(set(expressions))
    covered = frozenset().union(*(symbols(part) for part in parts))
    for choice in sorted((p for p in parts if is_choice(p)), key=lambda p: (len(symbols(p)), p)):
        if symbols(choice) >= covered:
            return canonical(choice)
    return combine(parts)


@cache
def symbols(expression: str) -> frozenset[str]:
    """The license (and exception) keys an expression names."""
    return frozenset(licensing().license_keys(expression))


@cache
def is_allowed(expression: str, allowed: frozenset[str]) -> bool:
    """OR passes if one side passes, AND if all do, `A WITH exception` as A does."""
    parsed = licensing().parse(expression)

    def passes(node: Any) -> bool:
        name = type(node).__name__
        if name == "OR":
            return any(passes(arg) for arg in node.args)
        if name == "AND":
            return all(passes(arg) for arg in node.args)
        if name == "LicenseWithExceptionSymbol":
            return node.license_symbol.key in allowed
        return getattr(node, "key", None) in allowed

    return passes(parsed)


def attribution_licenses(expression: str, allowed: frozenset[str] = frozenset(PERMISSIVE)) -> set[str]:
    """The licenses a file under `expression` is used under and whose text must accompany it:
    of a choice, the alternatives `allowed` passes (all of them where none does); of an AND,
    every part; `A WITH exception` as A; less the licenses in NO_NOTICE."""
    def used(node: Any) -> set[str]:
        name = type(node).__name__
        if name == "OR":
            passing = [arg for arg in node.args if is_allowed(arg.render(), allowed)]
            return set().union(*(used(arg) for arg in passing or node.args))
        if name == "AND":
            return set().union(*(used(arg) for arg in node.args))
        if name == "LicenseWithExceptionSymbol":
            return {node.license_symbol.key}
        return {node.key}

    return used(licensing().parse(expression)) - set(NO_NOTICE)
