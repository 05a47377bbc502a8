"""One file adds a quality rule: its setting, its reason and its docs appear without any
other change, and a build drops by it."""

from __future__ import annotations

import importlib
import json
import sys

import pyarrow.parquet as pq
import pytest

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.records import SourceSpec
from filters import quality
from filters.quality import QualityConfig
from pipeline import docs
from pipeline.config import BuildConfig, ExecutionConfig, load_config
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.tokenize import TokenizeConfig
from tests.conftest import program

MODULE = "tests.filters.tab_rule"


@pytest.fixture
def tab_rule(monkeypatch):
    """The rule registered for one test: the registries are restored afterwards."""
    monkeypatch.setattr(quality, "RULES", dict(quality.RULES))
    monkeypatch.setattr(reasons, "REASONS", dict(reasons.REASONS))
    sys.modules.pop(MODULE, None)
    yield importlib.import_module(MODULE)
    sys.modules.pop(MODULE, None)


def test_without_the_rule_its_setting_is_unknown(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[quality]\nmax_tab_lines = 2\n")
    with pytest.raises(ConfigError, match="unknown key quality.max_tab_lines"):
        load_config(toml)
    assert "tab_indented" not in reasons.REASONS


def test_a_rule_in_one_file_reaches_config_reasons_and_docs(tab_rule, tmp_path):
    assert QualityConfig().max_tab_lines == 100
    toml = tmp_path / "c.toml"
    toml.write_text("[quality]\nmax_tab_lines = 2\n[quality.extensions.mk]\nmax_tab_lines = false\n")
    loaded = load_config(toml).quality
    assert loaded.max_tab_lines == 2 and loaded.extensions == {"mk": {"max_tab_lines": None}}
    assert reasons.REASONS["tab_indented"].stage == "quality"
    assert list(quality.RULES)[-1] == "max_tab_lines"  # checked after the built-in rules
    assert "| `tab_indented` | quality | more than `max_tab_lines` lines start with a tab |" in docs.reasons_table()
    assert "max_tab_lines = 100" in docs.config_reference()


def test_a_build_drops_by_the_new_rule(tab_rule, tmp_path):
    rows = [{"repo": "a/code", "path": "spaces.py", "content": program(1, 40)},
            {"repo": "a/code", "path": "tabs.py", "content": program(2, 40).replace("    ", "\t")}]
    dataset = tmp_path / "files.jsonl"
    dataset.write_text("".join(json.dumps({**row, "license": "MIT"}) + "\n" for row in rows))
    config = BuildConfig(sources=(SourceSpec(str(dataset)),), quality=QualityConfig(max_tab_lines=3),
                         near_dedup=NearDedupConfig(enabled=False), tokenize=TokenizeConfig(enabled=False),
                         execution=ExecutionConfig(executor="local"))
    run = build(config, tmp_path / "out", Progress(quiet=True))
    files = {r["path"]: r["reason"] for r in pq.read_table(tmp_path / "out" / "manifest" / "files").to_pylist()}
    assert files == {"spaces.py": None, "tabs.py": "tab_indented"}
    assert run["counts"]["dropped"] == {"tab_indented": 1}
    assert run["config"]["quality"]["max_tab_lines"] == 3
