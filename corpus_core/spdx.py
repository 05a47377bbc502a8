"""The SPDX allowlist policy: which license expressions a kept file may carry.

An OR-expression passes if one alternative is allowed, an AND-expression only if all are,
`A WITH exception` as A does; no license or an unknown one does not pass. Used by the
license decision at build time and by `corpus audit` on a finished build.
"""

from __future__ import annotations

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


@cache
def licensing():
    return get_spdx_licensing()


def normalize(expression: str) -> str | None:
    """The SPDX rendering of an expression, or None when it does not parse as SPDX."""
    try:
        return licensing().parse(expression, validate=True, strict=False).render()
    except ExpressionError:
        return None


def symbols(expression: str) -> set[str]:
    return set(licensing().license_keys(expression))


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
