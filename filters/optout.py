"""The opt-out filter: the first stage after ingest, so an opted-out file gets no further
work. The registry (manifests/optout.py) is read once per worker, on first use."""

from __future__ import annotations

from manifests import reasons
from manifests.optout import Matcher, load
from pipeline.config import OptOutConfig
from pipeline.records import FileRecord
from pipeline.stage import FileStage


class OptOutFilter(FileStage):
    name = "optout"

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
        entry = self.matcher.match(record.repo, record.path, record.sha256) if self.matcher else None
        if entry is not None:
            record.drop(reasons.OPTED_OUT, f"opt-out {entry.id} ({entry.kind})")
