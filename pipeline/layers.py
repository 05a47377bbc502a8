"""Which of the project's packages import which, read from the code with `ast` (imports
inside functions included). The import-layer test checks the result against the table in
docs/ARCHITECTURE.md, and the Ray executor derives from it the packages that must travel to
workers that do not have the project installed."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("corpus_core", "manifests", "stages", "filters", "trainer", "pipeline")


def _module_file(module: str, root: Path = ROOT) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def imported_modules(path: Path) -> tuple[tuple[int, str], ...]:
    """(line, module) of every project module a file imports, wherever the import stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from stages import readers` imports the module stages.readers
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names
                                     if _module_file(f"{node.module}.{alias.name}", ROOT) is not None]
        else:
            continue
        found.extend((node.lineno, name) for name in names if name.split(".")[0] in PACKAGES)
    return tuple(found)


def package_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the 'file:line module' places, between
    different packages only."""
    edges: dict[tuple[str, str], list[str]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path):
                target = module.split(".")[0]
                if target != package:
                    edges.setdefault((package, target), []).append(f"{path.relative_to(root)}:{line} {module}")
    return edges


def travelling_packages(modules: Iterable[str]) -> list[str]:
    """The top-level packages that `modules` need, following their imports transitively."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module)
        if path is not None:
            todo.extend(name for _, name in imported_modules(path))
    return sorted({module.split(".")[0] for module in seen})
