"""The whole flow on one page: every stage in order, its class, its config section, its scope.

Scopes say where a stage runs:
- "repository": reads one unit of sources (a Ray task per unit);
- "file": looks at one file at a time, inside the same task, right after ingest;
- "corpus": needs every file at once (DuckDB over the parts, after all units are done);
- "output": writes the shards; the manifests follow it.

The runner needs no change for a new stage: it is a line here. Tokenization is the last
corpus stage: it must see exactly the kept files (to train on them and count tokens before
the writer cuts shards by tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.comments import CommentRatioFilter
from filters.optout import OptOutFilter
from filters.pii import PiiRedactor
from filters.quality import QualityFilter
from pipeline.config import BuildConfig
from pipeline.stage import Stage
from stages.dedup import DuplicatePaths, ExactDedup, NearDedup
from stages.ingest import Ingest
from stages.language import LanguageDetector
from stages.license import LicenseDecision, LicenseDetector
from stages.shards import ShardWriter
from stages.tokenize import Tokenize

SCOPES = ("repository", "file", "corpus", "output")


@dataclass(frozen=True)
class StageSpec:
    name: str
    cls: type[Stage]
    section: str | None  # the BuildConfig field holding its settings
    scope: str

    def build(self, config: BuildConfig) -> Stage:
        return self.cls.from_config(config, self.section)


STAGES: tuple[StageSpec, ...] = (
    StageSpec("ingest", Ingest, "ingest", "repository"),
    StageSpec("optout", OptOutFilter, "optout", "file"),  # first: an opted-out file gets no more work
    StageSpec("language", LanguageDetector, "language", "file"),
    StageSpec("license", LicenseDetector, "license", "file"),
    StageSpec("quality", QualityFilter, "quality", "file"),
    StageSpec("comments", CommentRatioFilter, "comments", "file"),
    StageSpec("pii", PiiRedactor, "pii", "file"),  # a transform: redacts, never drops
    StageSpec("duplicate_paths", DuplicatePaths, None, "corpus"),
    StageSpec("license_decision", LicenseDecision, "license", "corpus"),
    StageSpec("exact_dedup", ExactDedup, "dedup", "corpus"),
    StageSpec("near_dedup", NearDedup, "near_dedup", "corpus"),
    StageSpec("tokenize", Tokenize, "tokenize", "corpus"),  # drops nothing: leaves the view `tokens`
    StageSpec("shards", ShardWriter, "shards", "output"),
)


def stages_of(scope: str) -> tuple[StageSpec, ...]:
    return tuple(spec for spec in STAGES if spec.scope == scope)


def _check_order() -> None:
    ranks = [SCOPES.index(spec.scope) for spec in STAGES]
    if ranks != sorted(ranks) or ranks.count(0) != 1 or ranks.count(3) != 1:
        raise RuntimeError("STAGES must be: one repository stage, file stages, corpus stages, one output stage")


_check_order()
