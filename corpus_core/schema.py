"""Arrow schemas of everything a build writes (docs/FORMATS.md describes each column).

Fixed schemas, not inferred ones: a column that is null in one build and filled in the
next must keep its type, or DuckDB queries over several builds break.
"""

import re
from pathlib import Path

import pyarrow as pa

from corpus_core.storage import sql_list

# a file's license columns: the license stage fills them from the file's own header, the
# license decision for every file that was read (through the table `annotations`, which
# replaces them whole); docs/FORMATS.md, "manifest/files/", says what each holds
LICENSE_COLUMNS = [
    pa.field("license", pa.string()),
    pa.field("license_source", pa.string()),
    pa.field("license_kind", pa.string()),
    pa.field("license_path", pa.string()),
    pa.field("license_rule", pa.string()),
    pa.field("license_score", pa.float32()),
    pa.field("license_start_line", pa.int32()),
    pa.field("license_end_line", pa.int32()),
    pa.field("copyright_holders", pa.list_(pa.string())),
]
# the file columns corpus stages may set through `annotations`
ANNOTATED = tuple(f.name for f in LICENSE_COLUMNS)

_FILE_COLUMNS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("repo", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("owner", pa.string()),
    pa.field("sha256", pa.string()),
    pa.field("normalized_sha256", pa.string()),
    pa.field("size", pa.int64(), nullable=False),
    pa.field("encoding", pa.string()),
    pa.field("language", pa.string()),
    pa.field("language_type", pa.string()),
    pa.field("vendored", pa.bool_()),
    pa.field("generated", pa.bool_()),
    pa.field("documentation", pa.bool_()),
    pa.field("configuration", pa.bool_()),
    *LICENSE_COLUMNS,
    pa.field("max_line_length", pa.int32()),
    pa.field("mean_line_length", pa.float32()),
    pa.field("alphanum_fraction", pa.float32()),
    pa.field("comment_ratio", pa.float32()),
    pa.field("comment_lexer", pa.string()),
    pa.field("pii_redactions", pa.int32()),
    pa.field("pii_email", pa.int32()),
    pa.field("pii_ip_address", pa.int32()),
    pa.field("pii_key", pa.int32()),
    pa.field("pii_password", pa.int32()),
    pa.field("decision", pa.string(), nullable=False),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("dup_of", pa.string()),
]

# manifest/files/part-K.parquet: one row per input file, ordered by repo, path (over the parts)
FILES = pa.schema(
    _FILE_COLUMNS + [pa.field("shard", pa.int32()), pa.field("row", pa.int64())]
)

# Where the manifests that list every file are, relative to OUT. They are cut into parts by
# ranges of repositories (each part a task's work: manifests/writer.py), so the parts in
# order are one table in (repo, path) order; sbom/part-K.spdx.json covers the repositories
# of files/part-K.parquet. A build from before parts has one manifest/files.parquet (and one
# manifest/sbom.spdx.json): readers take either through `files_manifest`.
FILES_DIR = "manifest/files"
SBOM_DIR = "manifest/sbom"
FILES_BEFORE_PARTS = "manifest/files.parquet"
SBOM_BEFORE_PARTS = "manifest/sbom.spdx.json"
_PART = re.compile(r"part-(\d+)\.")


def part_name(number: int, suffix: str) -> str:
    return f"part-{number:05d}{suffix}"


def parts_in(folder: Path, suffix: str) -> list[Path]:
    """The parts `part-K<suffix>` in `folder`, by K."""
    found = [(int(m.group(1)), path) for path in folder.glob(f"part-*{suffix}") if (m := _PART.match(path.name))]
    return [path for _, path in sorted(found)]


def parts_or_before(folder: Path, suffix: str, before: Path) -> list[Path]:
    """The parts in `folder`, in order; else a build from before parts: its one file `before`
    if it has it; else []."""
    return parts_in(folder, suffix) or ([before] if before.is_file() else [])


def files_manifest(out: Path) -> list[Path]:
    """The files manifest of the build at `out`, its parts in order; [] when it has none."""
    return parts_or_before(Path(out) / FILES_DIR, ".parquet", Path(out) / FILES_BEFORE_PARTS)


def sbom_documents(out: Path) -> list[Path]:
    """The SPDX documents of the build at `out`, in the order of the files manifest's parts."""
    return parts_or_before(Path(out) / SBOM_DIR, ".spdx.json", Path(out) / SBOM_BEFORE_PARTS)


def files_sql(out: Path) -> str:
    """DuckDB's read of the build's files manifest, in its order (a build must have one)."""
    paths = files_manifest(out)
    if not paths:
        raise FileNotFoundError(f"{out}: no {FILES_DIR}/ (nor {FILES_BEFORE_PARTS})")
    return f"read_parquet({sql_list(paths)})"

# _work/<fingerprint>/parts/<unit>.files.parquet: the same plus content and position in the unit
PART = pa.schema(
    _FILE_COLUMNS
    + [
        pa.field("content", pa.large_string()),
        pa.field("notebook", pa.string()),  # stages/notebooks.py: which marker texts in content are markers
        pa.field("unit", pa.string(), nullable=False),
        pa.field("ordinal", pa.int64(), nullable=False),
    ]
)

# manifest/repos.parquet: one row per repository, ordered by repo
REPOS = pa.schema(
    [
        pa.field("repo", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("owner", pa.string()),
        pa.field("commit", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("stars", pa.int64()),
        pa.field("files", pa.int64(), nullable=False),
        pa.field("files_kept", pa.int64(), nullable=False),
        pa.field("bytes_kept", pa.int64(), nullable=False),
        pa.field("license", pa.string()),
        pa.field("license_source", pa.string()),
        pa.field("license_conflict", pa.string()),
        pa.field("license_evidence", pa.string()),
        pa.field("copyright_holders", pa.list_(pa.string())),
        pa.field("decision", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
    ]
)

# the repository rows a unit writes next to its files part
REPO_PART = pa.schema([f for f in REPOS if f.name not in ("files", "files_kept", "bytes_kept", "decision", "reason")]
                      + [pa.field("declared_license", pa.string())])

# shards/part-NNNNN.parquet: one row per kept file, ordered by the shard's seeded shuffle
SHARD = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("repo", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("language", pa.string()),
        pa.field("license", pa.string()),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("content", pa.large_string(), nullable=False),
    ]
)


def shard_schema(ids: pa.DataType | None) -> pa.Schema:
    """SHARD, plus input_ids (list of `ids`: uint16 or int32) and num_tokens when tokenized."""
    if ids is None:
        return SHARD
    return SHARD.append(pa.field("input_ids", pa.list_(ids), nullable=False)).append(
        pa.field("num_tokens", pa.int32(), nullable=False))
