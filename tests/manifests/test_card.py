"""The dataset card OUT/README.md: a YAML header Hugging Face reads (the licenses of the kept
files in the Hub's identifiers, languages, size, the shards as the data), the sections a
reader needs, and the same bytes for the same build."""

from __future__ import annotations

import json

import pytest

from corpus_core.records import SourceSpec
from manifests.card import hub_license, size_category, used_licenses
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.tokenize import TokenizeConfig
from tests.conftest import JS_FILE, LENIENT, program

ROWS = [  # repo, path, license, content
    ("acme/web", "add.js", "MIT", JS_FILE),
    ("acme/core", "core.py", "Apache-2.0", program(11, 10)),
    ("acme/dual", "dual.py", "MIT OR GPL-3.0-only", program(12, 10)),  # used under MIT
    ("py/stdlib", "lib.py", "PSF-2.0", program(13, 10)),  # not a Hub id: `other`
    ("gnu/tool", "tool.py", "GPL-3.0-only", program(14, 10)),  # dropped
]


def build_card(root, name: str):
    dataset = root / "files.jsonl"
    dataset.write_text("".join(json.dumps({"repo": repo, "path": path, "license": license, "content": content}) + "\n"
                               for repo, path, license, content in ROWS))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(enabled=False),
                         tokenize=TokenizeConfig(enabled=False), cache_dir=str(root / "cache"),
                         execution=ExecutionConfig(executor="local"))
    build(config, root / name, Progress(quiet=True))
    return root / name / "README.md"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("card")


@pytest.fixture(scope="module")
def card(root):
    return build_card(root, "out")


def test_the_header_parses_and_names_the_kept_files_licenses(card):
    from huggingface_hub import DatasetCard

    meta = DatasetCard.load(card).data.to_dict()
    assert meta["license"] == ["apache-2.0", "mit", "other"]  # no gpl: dropped, or the unchosen alternative
    assert meta["license_name"] == "psf-2.0" and meta["license_link"] == "https://spdx.org/licenses/PSF-2.0.html"
    assert meta["language"] == ["code"] and meta["programming_language"] == ["JavaScript", "Python"]
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    data_files = [{"split": "train", "path": "shards/*.parquet"}]
    assert meta["configs"] == [{"config_name": "default", "data_files": data_files}]


def test_the_body_has_sources_filters_optout_funnel_and_licenses(card):
    text = card.read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == ["## Files and loading", "## Sources", "## Filters", "## Opting out", "## Funnel",
                        "## Licenses"]
    assert "| gnu/tool | dataset | files.jsonl |" in text and "0 (license_not_allowed)" in text
    assert "[license]\nallowed = [" in text and "min_comment_ratio" not in text  # LENIENT turned it off
    assert "corpus optout add --config CONFIG --repo OWNER/NAME" in text
    sizes = {repo: len(content.encode()) for repo, _, _, content in ROWS}
    assert f"| read | | 5 | {sum(sizes.values()):,} |" in text
    assert f"| license_decision | `license_not_allowed` | −1 | −{sizes['gnu/tool']:,} |" in text
    assert f"| **kept** | | **4** | **{sum(sizes.values()) - sizes['gnu/tool']:,}** |" in text
    assert "| GPL-3.0-only OR MIT | 1 | 1 |" in text and "| PSF-2.0 | 1 | 1 |" in text


def test_the_same_build_gives_the_same_card(card, root):
    again = build_card(root, "again")  # another folder, another run: other wall times in run.json
    assert again.read_bytes() == card.read_bytes()
    assert "seconds" not in card.read_text() and str(root) not in card.read_text()


def test_license_ids_for_the_hub():
    allowed = frozenset({"MIT", "Apache-2.0", "PSF-2.0"})
    assert used_licenses("MIT OR GPL-3.0-only", allowed) == {"MIT"}
    assert used_licenses("GPL-2.0-only OR GPL-3.0-only", allowed) == {"GPL-2.0-only", "GPL-3.0-only"}
    assert used_licenses("Apache-2.0 WITH LLVM-exception AND (MIT OR PSF-2.0)", allowed) == {
        "Apache-2.0", "MIT", "PSF-2.0"}
    assert [hub_license(spdx) for spdx in ("MIT", "BSD-3-Clause", "GPL-2.0-or-later", "0BSD", "PSF-2.0")] == [
        "mit", "bsd-3-clause", "gpl-2.0", None, None]
    assert [size_category(rows) for rows in (0, 999, 1000, 123_456, 10**13)] == [
        "n<1K", "n<1K", "1K<n<10K", "100K<n<1M", "n>1T"]
