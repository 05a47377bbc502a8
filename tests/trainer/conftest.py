"""What the trainer's tests share: shards built from generated code, and a small run's config."""

from __future__ import annotations

import dataclasses
import json

import pytest

from corpus_core.records import SourceSpec
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, program


@pytest.fixture(scope="session")
def shards(tmp_path_factory):
    """60 generated Python files, built and tokenized with a 300-token vocabulary."""
    root = tmp_path_factory.mktemp("train")
    dataset = root / "files.jsonl"
    dataset.write_text("".join(json.dumps({"repo": f"o/r{i}", "path": "m.py", "content": program(900 + i, 15),
                                           "license": "MIT"}) + "\n" for i in range(60)))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(enabled=False),
                         tokenize=TokenizeConfig(vocab_size=300), execution=ExecutionConfig(executor="local"))
    build(config, root / "out", Progress(quiet=True))
    return root / "out"


def small(shards, out, **changes):
    from trainer.train import TrainConfig

    base = TrainConfig(data=str(shards), out_dir=str(out), model="tiny", seq_len=32, micro_batch=2, max_steps=6,
                       warmup_steps=2, eval_every=3, eval_batches=1, checkpoint_every=3, log_every=1, holdout=0.2)
    return dataclasses.replace(base, **changes)


