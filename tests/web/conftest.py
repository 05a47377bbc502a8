"""One small corpus for the web tests, built once: a kept repository, one dropped for its
license, a repository and a file named with HTML in them, and the same build served twice
under two names (two versions side by side)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpus_core.records import SourceSpec
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, program

HOSTILE_REPO = "evil/<script>alert(1)</script>"
HOSTILE_PATH = "<img src=x onerror=alert(2)>.py"
KEPT_REPO = "octo/hello"
DROPPED_REPO = "gnu/thing"
ROWS = [
    *({"repo": KEPT_REPO, "path": f"src/f{i}.py", "content": program(i, 60), "license": "MIT"} for i in range(1, 5)),
    {"repo": DROPPED_REPO, "path": "main.py", "content": program(20, 60), "license": "GPL-3.0-only"},
    {"repo": HOSTILE_REPO, "path": HOSTILE_PATH, "content": program(30, 60), "license": "MIT",
     "url": "https://github.com/evil/scripts"},  # its owner comes from the URL
]


def near_copy(text: str) -> str:
    """The text as a browser sends it (CRLF) with a few words changed: a near copy, never exact."""
    changed = text.replace("total", "grand_total", 3).replace("count", "tally", 2)
    return changed.replace("\n", "\r\n")


@dataclass(frozen=True)
class Corpus:
    root: Path
    out: Path  # the build, served as "corpus"
    second: Path  # a copy of it, served as "corpus-v2"
    registry: Path  # the opt-out registry (absent until something is accepted)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("web")
    dataset = root / "files.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), tokenize=TokenizeConfig(vocab_size=300),
                         execution=ExecutionConfig(executor="local"))
    build(config, root / "corpus", Progress(quiet=True))
    shutil.copytree(root / "corpus", root / "corpus-v2")
    return Corpus(root, root / "corpus", root / "corpus-v2", root / "optout.jsonl")
