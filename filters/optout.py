"""The opt-out filter: the first stage after ingest, so an opted-out file gets no further
work. The registry (manifests/optout.py) is read once per worker, on first use."""

from __future__ import annotations

from dataclasses import dataclass

from corpus_core import reasons
from corpus_core.records import FileRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import FileStage
from manifests.optout import Matcher, load


@dataclass(frozen=True)
class OptOutConfig(Settings):
    section = "optout"

    registry: str | None = setting(None, "the opt-out registry (JSON Lines, see Opt-out below; relative to the "
                                   "config); none by default", example='"optout.jsonl"', path=True)


class OptOutFilter(FileStage):
    name = "optout"
    settings_class = OptOutConfig

    config: OptOutConfig

    def __init__(self, config: OptOutConfig):
        super().__init__(config)
        self._matcher: Matcher | None = None

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            self._matcher = Matcher(load(self.config.registry) if self.config.registry else [])
        return self._matcher

    def process(self, record: FileRecord) -> None:
        entry = self.matcher.match(record.repo, record.path, record.sha256, record.owner) if self.matcher else None
        if entry is not None:
            record.drop(reasons.OPTED_OUT, f"opt-out {entry.id} ({entry.kind})")
