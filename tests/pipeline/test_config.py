"""The TOML config: defaults, the shipped default config, and errors that name the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus_core.errors import ConfigError
from pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_default_config_pins_the_sample(tmp_path):
    config = load_config(ROOT / "configs" / "default.toml")
    assert len(config.sources) == 29
    assert all(s.sha256 and len(s.sha256) == 64 for s in config.sources)
    kinds = {s.source.split(":")[0] for s in config.sources}
    assert kinds == {"pypi", "npm"}
    assert config.cache_dir == str(ROOT / ".cache" / "corpus")
    assert config.ingest.max_file_bytes == 10_000_000


@pytest.mark.parametrize("text, message", [
    ("[ingest]\nmax_file_bytes = -1\n", "ingest.max_file_bytes = -1"),
    ("[ingest]\nmax_file_byte = 5\n", "unknown key ingest.max_file_byte"),
    ("[shards]\ncompression = 'lz5'\n", "shards.compression = 'lz5'"),
    ("[execution]\nexecutor = 'spark'\n", "execution.executor = 'spark'"),
    ("[dedup]\nexact = 1\n", "dedup.exact = 1: expected true or false"),
    ("[nonsense]\n", "unknown config sections ['nonsense']"),
    ("sources = [{ src = 'x' }]\n", "expected a string or a table with 'source'"),
    ("sources = [\n", "not valid TOML"),
])
def test_config_errors_name_the_value(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_relative_sources_resolve_against_the_config_file(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "c.toml"
    path.write_text('sources = ["../repos", "pypi:six==1.17.0"]\n')
    config = load_config(path)
    assert [s.source for s in config.sources] == [str(tmp_path / "repos"), "pypi:six==1.17.0"]


def test_fingerprint_ignores_execution_settings():
    base = load_config(None)
    other = load_config(None, {"execution": {"num_workers": 7}})
    changed = load_config(None, {"shards": {"target_bytes": 5}})
    assert base.fingerprint() == other.fingerprint() != changed.fingerprint()
