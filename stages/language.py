"""Language: go-enry (through `enry-python`) names each file's language and its type, and
flags vendored, generated, documentation and configuration files. It labels, it does not
drop: the quality filters decide what to do with the flags.
"""

from __future__ import annotations

import enry

from pipeline.config import LanguageConfig
from pipeline.records import FileRecord
from pipeline.stage import FileStage


def detect_language(path: str, sample: bytes) -> tuple[str | None, str | None]:
    """(language, type) as go-enry sees them; (None, None) when it has no guess."""
    language = enry.get_language(path.rsplit("/", 1)[-1], sample) or None
    if language is None:
        return None, None
    return language, enry.get_language_type(language) or None


class LanguageDetector(FileStage):
    name = "language"

    config: LanguageConfig

    def process(self, record: FileRecord) -> None:
        sample = record.content[: self.config.max_sniff_bytes].encode("utf-8", "replace")
        record.language, record.language_type = detect_language(record.path, sample)
        record.vendored = bool(enry.is_vendor(record.path))
        record.generated = bool(enry.is_generated(record.path, sample))
        record.documentation = bool(enry.is_documentation(record.path))
        record.configuration = bool(enry.is_configuration(record.path))
