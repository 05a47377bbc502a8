"""Attribution that travels with the corpus: NOTICE (every kept repository, its licenses, the
copyright holders ScanCode found in its license, NOTICE and README files and in the headers
of its kept files, then once each the full text of every license whose terms require it) and
manifest/attribution.parquet (which repositories, under which licenses and holders, each
shard holds). MIT, BSD and Apache-2.0 require their notice and text to accompany copies, so a
shard handed on alone can be handed on with its rows and NOTICE's texts."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core.spdx import attribution_licenses

ATTRIBUTION = pa.schema([
    pa.field("shard", pa.int32(), nullable=False),
    pa.field("repo", pa.string(), nullable=False),
    pa.field("license", pa.string()),
    pa.field("files", pa.int64(), nullable=False),
    pa.field("copyright_holders", pa.list_(pa.string())),
    pa.field("source", pa.string()),
])
# the holders of a group of files: those of the files (their headers and their directories'
# license texts) and those of the repository's root license, NOTICE and README files
HOLDERS = ("list_sort(list_distinct(flatten(list(coalesce(f.copyright_holders, []))) "
           "|| coalesce(any_value(r.copyright_holders), [])))")


def write_attribution(db: Any, path: Path) -> None:
    table = db.sql(
        f"""SELECT p.shard, f.repo, f.license, count(*) AS files, {HOLDERS} AS copyright_holders,
                   any_value(r.source) AS source
            FROM files f JOIN placement p USING (unit, ordinal) JOIN repos r USING (repo)
            GROUP BY p.shard, f.repo, f.license ORDER BY p.shard, f.repo, f.license"""
    ).to_arrow_table()
    pq.write_table(table.cast(ATTRIBUTION), path, compression="zstd")


@cache
def _scancode_keys() -> dict[str, str]:
    """SPDX id -> ScanCode license key, from the license index license-expression ships."""
    from license_expression import get_license_index

    keys: dict[str, str] = {}
    for entry in get_license_index():
        for spdx_id in [entry.get("spdx_license_key"), *entry.get("other_spdx_license_keys", [])]:
            if spdx_id:
                keys.setdefault(spdx_id, entry["license_key"])
    return keys


@cache
def license_text(spdx_id: str) -> str | None:
    """The full text of a license from ScanCode's license database (the .LICENSE files
    scancode-toolkit ships), or None when it has none."""
    from licensedcode.models import InvalidLicense, License

    key = _scancode_keys().get(spdx_id)
    if key is None:
        return None
    try:
        return License.from_dir(key).text.strip("\n") or None
    except (OSError, InvalidLicense):  # a key license-expression knows that this scancode-toolkit does not ship
        return None


def write_notice(db: Any, path: Path) -> None:
    rows = db.sql(
        f"""SELECT f.repo, list(DISTINCT f.license ORDER BY f.license) AS licenses, count(*) AS files,
                   {HOLDERS} AS holders, any_value(r.source) AS source,
                   any_value(r.commit) AS commit, any_value(r.license_source) AS evidence
            FROM files f JOIN repos r USING (repo) WHERE f.decision = 'kept'
            GROUP BY f.repo ORDER BY f.repo"""
    ).fetchall()
    lines = [
        "NOTICE",
        "",
        "This corpus holds files from the repositories below, each under the license(s) named.",
        "The copyright holders are those ScanCode found in each repository's license, NOTICE and",
        "README files and in the headers of its files in this corpus. The full text of every",
        "license whose terms require it to accompany copies is at the end, once.",
        "",
    ]
    texts: set[str] = set()
    for repo, licenses, files, holders, source, commit, evidence in rows:
        needed = sorted(set().union(*(attribution_licenses(e) for e in licenses if e)))
        texts.update(needed)
        holders = [_one_line(h) for h in holders or []]
        lines += [
            f"== {_one_line(repo)} ==",
            f"License: {'; '.join(e or '(none)' for e in licenses)}",
            f"Source: {_one_line(source)}" + (f" at {_one_line(commit)}" if commit else ""),
            f"Copyright: {'; '.join(holders) if holders else '(no holder found)'}",
            f"Files in this corpus: {files}; license evidence: {_one_line(evidence) if evidence else 'file headers'}",
            f"License texts below: {', '.join(needed) if needed else '(none required)'}",
            "",
        ]
    if texts:
        lines += ["==== License texts ====", ""]
    for spdx_id in sorted(texts):
        text = license_text(spdx_id)
        lines += [f"---- {spdx_id} ----", "",
                  text or f"(not in ScanCode's license database: https://spdx.org/licenses/{spdx_id}.html)", ""]
    path.write_text("\n".join(lines))


def _one_line(text: str) -> str:
    """A crawled name or holder as one line: its control characters escaped, so no name can
    add a forged `== repo ==` block to the NOTICE."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in str(text))
