"""Language: go-enry (through `enry-python`) names each file's language and its type, and
flags vendored, generated, documentation and configuration files (`LanguageDetector`, which
labels and never drops); the build's language list then decides which files are training
data (`LanguagePolicy`, after the license stage, so every file's license evidence is seen
first).

The language list (`[language]`), after The Stack v2, which kept go-enry's programming and
markup languages and a short list of data and prose ones:
- `include_types`: every language of these go-enry types (programming, markup);
- `include`: these languages whatever their type: the data and prose languages a code model
  learns from (JSON, YAML, TOML, CSV, SQL, Protocol Buffer, Markdown, reStructuredText, Text);
- `exclude`: these never, whatever the two above say.
A file with no language, or one off the list, is `language_not_selected` (`detail`: the
language, or "unknown"); go-enry's vendored flag drops the file as `vendored`
(`drop_vendored`). The data languages' own size and line limits are the quality stage's
(`data_file_size`, `data_file_lines`: StarCoder's 100 to 5,000 characters for its
`data_languages`, StarCoder2's 512 lines for data and text files), generated files drop there
too (`auto_generated`); license texts and package metadata have their own reasons at the
license stage whatever this list says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import enry

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.records import FileRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import FileStage, Filter

NOT_SELECTED = reasons.register(
    "language_not_selected", "language_policy", "its language is not on the build's language list "
    "(`language.include_types`, `include`, `exclude`), or go-enry names none; `detail` holds the language or "
    "\"unknown\"")
VENDORED = reasons.register("vendored", "language_policy", "go-enry flags its path as vendored third-party code "
                            "(`language.drop_vendored`)")
TYPES = ("programming", "markup", "data", "prose")


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
    policy: bool = setting(True, "false: no file is dropped for its language or its vendored flag (the settings "
                           "below are then unused)")
    include_types: tuple = setting(("programming", "markup"), "go-enry types whose every language is kept "
                                   "(programming, markup, data, prose)")
    include: tuple = setting(("JSON", "YAML", "TOML", "CSV", "SQL", "Protocol Buffer", "Markdown", "reStructuredText",
                              "Text"), "languages kept whatever their type (go-enry's names)")
    exclude: tuple = setting((), "languages never kept, whatever the two above say", example='["Text", "CSV"]')
    drop_vendored: bool = setting(True, "drop what go-enry flags as vendored (node_modules/, third_party/, ...)")

    def __post_init__(self) -> None:
        unknown = set(self.include_types) - set(TYPES)
        if unknown:
            raise ConfigError(f"language.include_types: unknown types {sorted(unknown)} (known: {', '.join(TYPES)})")

    def selects(self, language: str | None, language_type: str | None) -> bool:
        if language is None or language in self.exclude:
            return False
        return language in self.include or language_type in self.include_types


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


class LanguagePolicy(Filter):
    """The build's language list: which files are training data (see the module docstring)."""

    name = "language_policy"
    settings_class = LanguageConfig

    config: LanguageConfig

    def keep(self, record: FileRecord) -> bool | tuple[Any, ...]:
        if not self.config.policy:
            return True
        if self.config.drop_vendored and record.vendored:
            return False, VENDORED
        if not self.config.selects(record.language, record.language_type):
            return False, NOT_SELECTED, record.language or "unknown"
        return True

