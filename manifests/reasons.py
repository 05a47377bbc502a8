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
# opt-out
OPTED_OUT = "opted_out"
# license
NO_LICENSE = "no_license"
LICENSE_NOT_ALLOWED = "license_not_allowed"
LICENSE_CONFLICT = "license_conflict"
# quality and comment-to-code ratio
TOO_MANY_LINES = "too_many_lines"
MAX_LINE_LENGTH = "max_line_length"
MEAN_LINE_LENGTH = "mean_line_length"
ALPHANUM_FRACTION = "alphanum_fraction"
AUTO_GENERATED = "auto_generated"
XML = "xml"
HTML_VISIBLE_TEXT = "html_visible_text"
DATA_FILE_SIZE = "data_file_size"
DATA_FILE_LINES = "data_file_lines"
ENCODED_DATA = "encoded_data"
COMMENT_RATIO = "comment_ratio"
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
    OPTED_OUT: "the opt-out registry names its repository, owner, path or content (optout.registry)",
    TOO_MANY_LINES: "more lines than quality.max_lines",
    MAX_LINE_LENGTH: "a line longer than quality.max_line_length characters",
    MEAN_LINE_LENGTH: "mean line length over quality.max_mean_line_length",
    ALPHANUM_FRACTION: "letters and digits are under quality.min_alphanum_fraction of the characters",
    AUTO_GENERATED: "a generator marker in the first quality.marker_lines lines, or go-enry's generated flag",
    XML: "'<?xml version=' in the first 100 characters",
    HTML_VISIBLE_TEXT: "HTML whose visible text is under quality.min_html_visible_fraction or min_html_visible_chars",
    DATA_FILE_SIZE: "a JSON/YAML file (quality.data_languages) outside [min_data_chars, max_data_chars]",
    DATA_FILE_LINES: "a text or data file over quality.max_data_lines lines",
    ENCODED_DATA: "base64, hex or \\u runs over quality.max_encoded_run, or over max_encoded_fraction of the file",
    COMMENT_RATIO: "comment-to-code ratio outside [comments.min_comment_ratio, max_comment_ratio]",
    NO_LICENSE: "no license evidence for the file: no header, no license file or metadata above it",
    LICENSE_NOT_ALLOWED: "the file's license expression does not pass the allowlist (license.allowed)",
    LICENSE_CONFLICT: "the repository's metadata declare licenses that disagree, and no license file settles it",
    DUPLICATE_PATH: "a second file with the same repository and path (dataset sources)",
    EXACT_DUPLICATE: "same sha256 as a kept file (dup_of names it)",
    NEAR_DUPLICATE: "in a MinHash LSH cluster whose kept file is another (dup_of names it); see near_dedup",
    NO_FILE_KEPT: "repository row: the repository has no file at all",
}
