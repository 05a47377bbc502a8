"""The whole flow on one page: every stage in order, its class and its scope. Each class
names its settings (its `[section]` of the TOML config) and the DuckDB tables it reads and
writes; `check_flow` below fails at import when a stage reads a table that neither the
runner nor a stage before it writes.

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
from typing import TYPE_CHECKING, Any

from corpus_core.settings import Settings
from corpus_core.stage import RUNNER_TABLES, Stage, StageContext
from filters.comments import CommentRatioFilter
from filters.decontamination import Decontamination
from filters.optout import OptOutFilter
from filters.pii import PiiRedactor
from filters.quality import QualityFilter
from stages.dedup import DuplicatePaths, ExactDedup, NearDedup
from stages.ingest import Ingest
from stages.language import LanguageDetector, LanguagePolicy
from stages.license import LicenseDetector
from stages.license_decision import LicenseDecision
from stages.notebooks import NotebookConverter
from stages.shards import ShardWriter
from stages.tokenize import Tokenize

if TYPE_CHECKING:
    from pipeline.config import BuildConfig

SCOPES = ("repository", "file", "corpus", "output")


@dataclass(frozen=True)
class StageSpec:
    name: str
    cls: type[Stage]
    scope: str

    @property
    def section(self) -> str | None:
        """The config section holding its settings (None: it has none)."""
        return self.cls.settings_class.section if self.cls.settings_class else None

    def build(self, config: BuildConfig) -> Stage:
        settings = config.section(self.section) if self.section else None
        return self.cls.from_settings(settings, StageContext(cache_dir=config.cache_dir,
                                                                  license_cache=config.execution.license_cache))


STAGES: tuple[StageSpec, ...] = (
    StageSpec("ingest", Ingest, "repository"),
    StageSpec("optout", OptOutFilter, "file"),  # first: an opted-out file gets no more work
    StageSpec("language", LanguageDetector, "file"),
    StageSpec("notebooks", NotebookConverter, "file"),  # .ipynb JSON to text before any filter reads it
    StageSpec("license", LicenseDetector, "file"),  # writes `license_evidence` per chunk
    StageSpec("language_policy", LanguagePolicy, "file"),  # after license: every file's evidence is seen
    StageSpec("decontamination", Decontamination, "file"),  # on the text as read, before any redaction
    StageSpec("quality", QualityFilter, "file"),
    StageSpec("comments", CommentRatioFilter, "file"),
    StageSpec("pii", PiiRedactor, "file"),  # a transform: redacts, never drops
    StageSpec("duplicate_paths", DuplicatePaths, "corpus"),
    StageSpec("license_decision", LicenseDecision, "corpus"),  # every read file: `licenses`, `annotations`
    StageSpec("exact_dedup", ExactDedup, "corpus"),
    StageSpec("near_dedup", NearDedup, "corpus"),
    StageSpec("tokenize", Tokenize, "corpus"),  # drops nothing: writes the view `tokens`
    StageSpec("shards", ShardWriter, "output"),  # reads `tokens`, writes `placement`
)


def stages_of(scope: str) -> tuple[StageSpec, ...]:
    return tuple(spec for spec in STAGES if spec.scope == scope)


def check_flow(stages: tuple[StageSpec, ...]) -> None:
    """Scopes in order, one repository and one output stage; every table a stage reads is
    the runner's or written by a stage before it; every section has one settings class."""
    ranks = [SCOPES.index(spec.scope) for spec in stages]
    if ranks != sorted(ranks) or ranks.count(0) != 1 or ranks.count(3) != 1:
        raise RuntimeError("STAGES must be: one repository stage, file stages, corpus stages, one output stage")
    written: dict[str, str] = {table: "the runner" for table in RUNNER_TABLES}
    for spec in stages:
        missing = [table for table in spec.cls.reads if table not in written]
        if missing:
            raise RuntimeError(f"stage {spec.name} reads {missing}, which no stage before it writes")
        for table in spec.cls.writes:
            if table in written:
                raise RuntimeError(f"stage {spec.name} writes {table!r}, already written by {written[table]}")
            written[table] = spec.name
    sections: dict[str, Any] = {}
    for spec in stages:
        if spec.section and sections.setdefault(spec.section, spec.cls.settings_class) is not spec.cls.settings_class:
            raise RuntimeError(f"section [{spec.section}] is claimed by two settings classes")


def sections_of(stages: tuple[StageSpec, ...]) -> dict[str, type[Settings]]:
    """Config section -> settings class, in flow order."""
    found: dict[str, type[Settings]] = {}
    for spec in stages:
        if spec.cls.settings_class is not None:
            found.setdefault(spec.section, spec.cls.settings_class)
    return found


check_flow(STAGES)
SECTIONS = sections_of(STAGES)
