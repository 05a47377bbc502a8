"""Settings: each stage owns one frozen section of the TOML config, declared beside it.

A section is a `Settings` dataclass whose fields come from `setting(default, doc)`, so the
doc of every key lives next to its default; validation (`from_table`), run.json
(`to_dict`) and the generated reference in docs/FORMATS.md are all derived from the same
declarations. `OpenSettings` is the variant for a section whose keys are contributed by
registered rules (the quality filter's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from corpus_core.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One key of a section: its default, what it means, and its value type."""

    name: str
    default: Any
    doc: str
    kind: type  # bool, int, float, str, tuple (of strings) or dict (a table)
    optional: bool = False  # `false` in TOML turns it off (None here)
    example: str | None = None  # shown, commented out, in the docs when the default is None
    path: bool = False  # a file path: relative to the config file it was read from


def setting(default: Any, doc: str, *, example: str | None = None, path: bool = False) -> Any:
    """A dataclass field of a settings section; tuples and dicts are copied per instance."""
    metadata = {"doc": doc, "example": example, "path": path}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_KINDS = {"bool": bool, "int": int, "float": float, "str": str, "tuple": tuple, "dict": dict}


def _kind_of(annotation: str) -> tuple[type, bool]:
    """(value type, optional) from a field's annotation string, e.g. 'int | None'."""
    optional = "None" in annotation
    for name, kind in _KINDS.items():
        if annotation.replace(" ", "").split("|")[0].split("[")[0] == name:
            return kind, optional
    raise TypeError(f"settings field annotated {annotation!r}: use bool, int, float, str, tuple or dict")


def validate(declared: Mapping[str, Setting], values: Any, section: str) -> dict[str, Any]:
    """TOML values checked against the declarations; `false` for an optional key becomes None."""
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table, got {values!r}")
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in declared:
            raise ConfigError(f"unknown key {section}.{key} (known: {', '.join(sorted(declared))})")
        checked[key] = _checked(declared[key], value, f"{section}.{key}")
    return checked


def _checked(declared: Setting, value: Any, where: str) -> Any:
    kind = declared.kind
    if declared.optional and (value is False or value is None) and kind is not bool:
        return None  # TOML has no null: false turns an optional rule off
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r}: expected true or false")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} = {value!r}: expected a number")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where} = {value!r}: expected a non-negative integer")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {value!r}: expected a string")
        return value
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} = {value!r}: expected a list of strings")
        return tuple(value)
    if not isinstance(value, dict):
        raise ConfigError(f"{where} = {value!r}: expected a table")
    return value


class Settings:
    """Base of a stage's settings dataclass (frozen); `section` is its TOML table."""

    section: ClassVar[str]

    @classmethod
    def declared(cls) -> dict[str, Setting]:
        found = {}
        for f in dataclasses.fields(cls):
            kind, optional = _kind_of(f.type if isinstance(f.type, str) else f.type.__name__)
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            found[f.name] = Setting(f.name, default, f.metadata.get("doc", ""), kind, optional,
                                    f.metadata.get("example"), f.metadata.get("path", False))
        return found

    @classmethod
    def from_table(cls, values: Any) -> Settings:
        """The section from its TOML table: every key known, every value of its type."""
        return cls(**validate(cls.declared(), values, cls.section))

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self.declared()}

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class OpenSettings(Settings):
    """A section whose keys are declared at run time (`declared()` is overridden): e.g. the
    quality filter's, whose thresholds come from its registered rules. Frozen like a
    dataclass section; keys read as attributes."""

    __slots__ = ("_values",)

    def __init__(self, **values: Any):
        declared = self.declared()
        unknown = set(values) - set(declared)
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)} in [{self.section}] (known: {', '.join(declared)})")
        merged = {name: values[name] if name in values else _fresh(s.default) for name, s in declared.items()}
        object.__setattr__(self, "_values", merged)
        self.__post_init__()

    def __post_init__(self) -> None:
        """Checks across keys, as a dataclass section's __post_init__."""

    @classmethod
    def declared(cls) -> dict[str, Setting]:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(f"[{self.section}] has no setting {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to {name}: settings are frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._values.items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def __reduce__(self) -> tuple:
        # restored as sent: a worker need not know a rule registered only on the driver
        return _restore, (type(self), dict(self._values))

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(value) for name, value in self._values.items()}

    def replace(self, **changes: Any) -> OpenSettings:
        return type(self)(**{**self._values, **changes})


def _fresh(default: Any) -> Any:
    return dict(default) if isinstance(default, dict) else default


def _restore(cls: type[OpenSettings], values: dict[str, Any]) -> OpenSettings:
    settings = object.__new__(cls)
    object.__setattr__(settings, "_values", values)
    return settings


