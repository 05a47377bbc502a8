"""The closed set of drop reasons: stat keys in run.json and values of `reason` in the manifests.

A reason string is API: compliance queries and dashboards filter on it. Add new ones
here, with their sentence, and docs/FORMATS.md lists them from this table.
"""

# ingest: the file could not become a text record
BINARY = "binary"
TOO_LARGE = "too_large"
NOT_TEXT = "not_text"
UNREADABLE = "unreadable"
SPECIAL_FILE = "special_file"
SYMLINK = "symlink"
LINK_ESCAPE = "link_escape"
PATH_ESCAPE = "path_escape"
ARCHIVE_LIMIT = "archive_limit"
SUBMODULE = "submodule"
SOURCE_UNREADABLE = "source_unreadable"
# license
NO_LICENSE = "no_license"
LICENSE_NOT_ALLOWED = "license_not_allowed"
LICENSE_CONFLICT = "license_conflict"
# corpus-wide
DUPLICATE_PATH = "duplicate_path"
EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
# repository-level (repos.parquet only)
NO_FILE_KEPT = "no_file_kept"

REASONS: dict[str, str] = {
    BINARY: "content has NUL bytes (and is not UTF-16 with a byte-order mark)",
    TOO_LARGE: "file size is at or over ingest.max_file_bytes; not read",
    NOT_TEXT: "not UTF-8 and no other encoding fits (charset detection above ingest.max_decode_chaos)",
    UNREADABLE: "reading the file failed (permission, I/O error, corrupt or encrypted archive member)",
    SPECIAL_FILE: "a device, FIFO or socket, not a regular file",
    SYMLINK: "a link to a file inside the repository; not followed, its target is ingested itself",
    LINK_ESCAPE: "a link whose target lies outside the repository root; never followed",
    PATH_ESCAPE: "an archive member whose path is absolute or climbs out of the root (zip-slip)",
    ARCHIVE_LIMIT: "past the archive's member or byte budget, or a compression ratio of a bomb",
    SUBMODULE: "a git submodule entry: a pointer to another repository, not content",
    SOURCE_UNREADABLE: "the whole source could not be read (corrupt archive, broken git, failed fetch)",
    NO_LICENSE: "no license evidence for the file: no header, no license file or metadata above it",
    LICENSE_NOT_ALLOWED: "the file's license expression does not pass the allowlist (license.allowed)",
    LICENSE_CONFLICT: "the repository's metadata declare licenses that disagree, and no license file settles it",
    DUPLICATE_PATH: "a second file with the same repository and path (dataset sources)",
    EXACT_DUPLICATE: "same sha256 as a kept file (dup_of names it)",
    NEAR_DUPLICATE: "in a MinHash LSH cluster whose kept file is another (dup_of names it); see near_dedup",
    NO_FILE_KEPT: "repository row: the repository has no file at all",
}
