"""Language: go-enry (through `enry-python`) names each file's language and its type, and
flags vendored, generated, documentation and configuration files. It labels, it does not
drop: the quality filters decide what to do with the flags.
"""

from __future__ import annotations

from dataclasses import dataclass

import enry

from corpus_core.records import FileRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import FileStage


def detect_language(path: str, sample: bytes) -> tuple[str | None, str | None]:
    """(language, type) as go-enry sees them; (None, None) when it has no guess."""
    language = enry.get_language(path.rsplit("/", 1)[-1], sample) or None
    if language is None:
        return None, None
    return language, enry.get_language_type(language) or None


@dataclass(frozen=True)
class LanguageConfig(Settings):
    section = "language"

    max_sniff_bytes: int = setting(64 * 1024, "content bytes go-enry's classifier sees (ambiguous extensions)")


class LanguageDetector(FileStage):
    name = "language"
    settings_class = LanguageConfig

    config: LanguageConfig

    def process(self, record: FileRecord) -> None:
        sample = record.content[: self.config.max_sniff_bytes].encode("utf-8", "replace")
        record.language, record.language_type = detect_language(record.path, sample)
        record.vendored = bool(enry.is_vendor(record.path))
        record.generated = bool(enry.is_generated(record.path, sample))
        record.documentation = bool(enry.is_documentation(record.path))
        record.configuration = bool(enry.is_configuration(record.path))
