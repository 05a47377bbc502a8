"""Settings sections: TOML values checked against their declarations, `false` turning an
optional key off, every error naming the key."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from corpus_core.errors import ConfigError
from corpus_core.settings import Settings, setting


@dataclass(frozen=True)
class Example(Settings):
    section = "example"

    max_size: int | None = setting(100, "bytes at most")
    ratio: float = setting(0.5, "a share")
    enabled: bool = setting(True, "a switch")
    names: tuple[str, ...] = setting(("a",), "a list")
    path: str | None = setting(None, "a file", example='"x.txt"', path=True)


def test_declarations_carry_defaults_docs_and_kinds():
    declared = Example.declared()
    assert list(declared) == ["max_size", "ratio", "enabled", "names", "path"]
    assert (declared["max_size"].kind, declared["max_size"].optional, declared["max_size"].doc) == (
        int, True, "bytes at most")
    assert (declared["ratio"].kind, declared["ratio"].optional) == (float, False)
    assert declared["path"].path and declared["path"].example == '"x.txt"'


def test_values_are_checked_and_converted():
    loaded = Example.from_table({"max_size": False, "ratio": 1, "names": ["b", "c"]})
    assert loaded == Example(max_size=None, ratio=1.0, names=("b", "c"))
    assert isinstance(loaded.ratio, float)
    assert loaded.to_dict() == {"max_size": None, "ratio": 1.0, "enabled": True, "names": ["b", "c"], "path": None}


@pytest.mark.parametrize(("table", "message"), [
    ({"max_sise": 3}, r"unknown key example\.max_sise \(known: enabled, max_size, names, path, ratio\)"),
    ({"max_size": -1}, r"example\.max_size = -1: expected a non-negative integer"),
    ({"max_size": True}, r"example\.max_size = True: expected a non-negative integer"),
    ({"ratio": "half"}, r"example\.ratio = 'half': expected a number"),
    ({"enabled": 1}, r"example\.enabled = 1: expected true or false"),
    ({"names": "a"}, r"example\.names = 'a': expected a list of strings"),
    ({"ratio": False}, r"example\.ratio = False: expected a number"),  # not optional: false is no "off"
])
def test_a_wrong_value_names_its_key(table, message):
    with pytest.raises(ConfigError, match=message):
        Example.from_table(table)
