"""The build's language list (stages/language.py `LanguagePolicy`): which files are training
data by their language and vendored flag; and what it leaves to the license stage."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.records import FileRecord, SourceSpec
from pipeline.config import BuildConfig, ExecutionConfig, load_config
from pipeline.progress import Progress, summary
from pipeline.run import build
from stages.language import LanguageConfig, LanguageDetector, LanguagePolicy
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, make_git_repo, mit_license, program


def verdicts(files: dict[str, str], config: LanguageConfig | None = None) -> dict[str, tuple]:
    """path -> (decision, reason, detail) after language detection and the policy."""
    config = config or LanguageConfig()
    records = [FileRecord(repo="r", path=path, size=len(text), content=text) for path, text in files.items()]
    out = LanguagePolicy(config).run(LanguageDetector(config).run(records))
    return {r.path: (r.decision, r.reason, r.detail) for r in out}


JSON_OK = json.dumps({"name": "tool", "version": "1.0.0", "scripts": {"test": "pytest -q"}}, indent=2)
KEPT = ("kept", None, None)


def test_the_default_list_keeps_code_markup_and_the_chosen_data_and_prose():
    found = verdicts({"a.py": program(1, 12), "page.html": "<html><body><p>hi</p></body></html>\n",
                      "README.md": "# Tool\n\nDoes things.\n", "package.json": JSON_OK,
                      "schema.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
                      "graph.dot": "digraph g { a -> b; }\n", "notes.data": "1 2 3\n4 5 6\n",
                      "notes.txt": "Run the tool with --fast to skip the slow checks.\n" * 3})
    assert found == {"a.py": KEPT, "page.html": KEPT, "README.md": KEPT, "package.json": KEPT, "schema.sql": KEPT,
                     "notes.txt": KEPT,
                     "graph.dot": ("dropped", reasons_of("language_not_selected"), "Graphviz (DOT)"),
                     "notes.data": ("dropped", reasons_of("language_not_selected"), "unknown")}


def reasons_of(name: str) -> str:
    assert name in reasons.REASONS  # registered, so the manifests accept it and FORMATS.md lists it
    return name


def test_include_exclude_and_types():
    files = {"a.py": program(1, 12), "README.md": "# Tool\n\nDoes things.\n", "graph.dot": "digraph g { a -> b; }\n"}
    only_python = LanguageConfig(include_types=(), include=("Python",))
    assert verdicts(files, only_python) == {"a.py": KEPT, "README.md": ("dropped", "language_not_selected", "Markdown"),
                                           "graph.dot": ("dropped", "language_not_selected", "Graphviz (DOT)")}
    # exclude wins over both; a whole type brings every language of it
    config = LanguageConfig(include_types=("programming", "data"), include=(), exclude=("Python",))
    assert verdicts(files, config) == {"a.py": ("dropped", "language_not_selected", "Python"),
                                       "README.md": ("dropped", "language_not_selected", "Markdown"),
                                       "graph.dot": KEPT}


def test_vendored_files_drop_unless_the_setting_keeps_them():
    files = {"node_modules/left-pad/index.js": "module.exports = function leftPad(s) {\n  return s;\n};\n",
             "src/index.js": "module.exports = function main() {\n  return 1;\n};\n"}
    assert verdicts(files) == {"node_modules/left-pad/index.js": ("dropped", "vendored", None), "src/index.js": KEPT}
    assert set(verdicts(files, LanguageConfig(drop_vendored=False)).values()) == {KEPT}


def test_the_policy_can_be_turned_off():
    assert set(verdicts({"notes.data": "1 2 3\n", "node_modules/x.js": "var x = 1;\n"},
                        LanguageConfig(policy=False)).values()) == {KEPT}


@pytest.mark.parametrize("table, message", [
    ('include_types = ["programming", "code"]', "unknown types ['code']"),
    ('include = "Python"', "language.include"),
])
def test_bad_language_settings_are_config_errors(tmp_path, table, message):
    path = tmp_path / "config.toml"
    path.write_text(f'sources = ["src"]\n[language]\n{table}\n')
    (tmp_path / "src").mkdir()
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path)


def test_a_build_drops_by_language_after_the_license_stage(tmp_path):
    """Files off the list get their reason (and their license columns, like every file that
    was read); the LICENSE file is the license stage's, whatever the list says."""
    make_git_repo(tmp_path / "repo", [{"LICENSE": mit_license(), "tool.py": program(1, 12),
                                       "data/points.data": "1 2\n3 4\n", "vendor/lib.js": "module.exports = 1;\n",
                                       "config.json": '{"a": 1}\n'}])
    lenient = {**LENIENT, "language": LanguageConfig()}  # quality rules off, the language list on
    config = BuildConfig(**lenient, sources=(SourceSpec(str(tmp_path / "repo")),),
                         tokenize=TokenizeConfig(vocab_size=300), execution=ExecutionConfig(executor="local"))
    run = build(config, tmp_path / "out", Progress(quiet=True))
    rows = {r["path"]: r for r in pq.read_table(tmp_path / "out/manifest/files").to_pylist()}
    assert {p: (r["reason"], r["detail"]) for p, r in rows.items()} == {
        "LICENSE": ("license_text", rows["LICENSE"]["detail"]), "tool.py": (None, None),
        "data/points.data": ("language_not_selected", "unknown"), "vendor/lib.js": ("vendored", None),
        "config.json": (None, None)}  # JSON is on the list (its size limits are the quality stage's, off here)
    assert all(r["license"] == "MIT" for r in rows.values())
    (policy,) = [s for s in run["stages"] if s["name"] == "language_policy"]
    assert policy["dropped"] == {"language_not_selected": 1, "vendored": 1}
    # files and tokens per language, in run.json and the summary
    shard_tokens = [n for p in sorted((tmp_path / "out/shards").glob("*.parquet"))
                    for n in pq.read_table(p, columns=["num_tokens"]).column("num_tokens").to_pylist()]
    assert run["counts"]["languages"] == {"Python": 1, "JSON": 1}
    assert sum(run["counts"]["language_tokens"].values()) == sum(shard_tokens) and 0 < run["counts"][
        "language_tokens"]["JSON"] < run["counts"]["language_tokens"]["Python"]
    assert f"Python 1 ({run['counts']['language_tokens']['Python']:,} tokens)" in summary(run)
