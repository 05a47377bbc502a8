"""docs/FORMATS.md stays true: it lists every drop reason and every config setting."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from manifests.reasons import REASONS
from pipeline.config import _SECTIONS, BuildConfig

FORMATS = (Path(__file__).resolve().parents[2] / "docs" / "FORMATS.md").read_text()


def test_every_reason_is_documented():
    missing = [reason for reason in REASONS if f"| `{reason}` |" not in FORMATS]
    assert missing == []


def test_every_setting_is_documented():
    config = BuildConfig()
    for section in _SECTIONS:
        assert f"[{section}]" in FORMATS
        for field in dataclasses.fields(getattr(config, section)):
            assert f"{field.name} = " in FORMATS, f"{section}.{field.name}"
