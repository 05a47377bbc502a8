"""The packages stand in layers: every import between them (inside functions too) is one
that docs/ARCHITECTURE.md's table allows, and the allowed graph has no loop."""

from __future__ import annotations

import re
import tomllib

from pipeline.layers import PACKAGES, ROOT, package_edges, travelling_packages

ARCHITECTURE = (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def allowed_imports() -> dict[str, set[str]]:
    table = ARCHITECTURE.split("<!-- layers:", 1)[1].split("<!-- end of layers -->", 1)[0]
    allowed = {}
    for row in re.findall(r"^\| `(\w+)` \|.*\| (.+) \|$", table, re.MULTILINE):
        allowed[row[0]] = set(re.findall(r"`(\w+)`", row[1]))
    return allowed


def has_loop(graph: dict[str, set[str]]) -> bool:
    done: set[str] = set()
    path: set[str] = set()

    def visit(node: str) -> bool:
        if node in path:
            return True
        if node in done:
            return False
        path.add(node)
        looped = any(visit(target) for target in graph.get(node, ()))
        path.discard(node)
        done.add(node)
        return looped

    return any(visit(node) for node in graph)


def test_the_table_names_every_package_and_has_no_loop():
    allowed = allowed_imports()
    assert set(allowed) == set(PACKAGES)
    assert allowed["corpus_core"] == set()
    assert not has_loop(allowed)
    installed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert set(installed) == set(PACKAGES)


def test_every_import_between_packages_is_allowed():
    allowed = allowed_imports()
    forbidden = {f"{a} -> {b}": places for (a, b), places in package_edges().items() if b not in allowed[a]}
    assert forbidden == {}
    graph: dict[str, set[str]] = {}
    for a, b in package_edges():
        graph.setdefault(a, set()).add(b)
    assert not has_loop(graph)


def test_the_reader_sees_imports_inside_functions(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "late.py").write_text(
        "import os\n\n\ndef run():\n    from pipeline.config import load_config\n    return load_config\n")
    assert package_edges(tmp_path) == {("stages", "pipeline"): ["stages/late.py:5 pipeline.config"]}


def test_workers_get_every_package_the_stages_need():
    travelling = travelling_packages(["pipeline.run"])
    assert {"corpus_core", "filters", "manifests", "pipeline", "stages"} <= set(travelling)
    assert "trainer" not in travelling  # the unit task never trains
    assert travelling_packages(["filters.optout"]) == ["corpus_core", "filters", "manifests"]
