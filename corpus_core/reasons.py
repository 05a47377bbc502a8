"""Drop reasons: stat keys in run.json and values of `reason` in the manifests.

A reason string is API: compliance queries and dashboards filter on it. Every reason is
registered once, with the stage that gives it and its sentence, by `register`; the
manifests check that a build used no other, and docs/FORMATS.md's table is generated from
this registry (`python -m pipeline.docs`). The reasons below are those more than one
package gives or reads; each stage registers its own beside its code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    name: str
    stage: str  # the stage that gives it ("-" for repository rows)
    doc: str


REASONS: dict[str, Reason] = {}


def register(name: str, stage: str, doc: str) -> str:
    """Declare a reason; returns its name, for a module constant. Declaring the same reason
    again is allowed only with the same stage (a stage may give it from several rules)."""
    known = REASONS.get(name)
    if known is not None and known.stage != stage:
        raise ValueError(f"reason {name!r} is already given by stage {known.stage!r}, not {stage!r}")
    if known is None:
        REASONS[name] = Reason(name, stage, doc)
    return name


# ingest: the file could not become a text record (stages/readers.py and stages/ingest.py)
BINARY = register("binary", "ingest", "content has NUL bytes (and is not UTF-16/32 with a byte-order mark)")
TOO_LARGE = register("too_large", "ingest", "size at or over `ingest.max_file_bytes`; not read")
NOT_TEXT = register("not_text", "ingest", "not UTF-8 and no other encoding fits within `ingest.max_decode_chaos`")
UNREADABLE = register("unreadable", "ingest", "reading failed: permission, I/O error, corrupt or encrypted archive "
                      "member, null dataset content, or anything else the reader raised on this entry (`detail`: the "
                      "exception's class and message)")
SPECIAL_FILE = register("special_file", "ingest", "a device, FIFO or socket")
SYMLINK = register("symlink", "ingest", "a link to a file inside the repository; not followed, its target is "
                   "ingested itself")
LINK_ESCAPE = register("link_escape", "ingest", "a link whose target lies outside the repository root; never followed")
PATH_ESCAPE = register("path_escape", "ingest", "an archive member whose path is absolute or climbs out of the root "
                       "(zip-slip)")
ARCHIVE_LIMIT = register("archive_limit", "ingest", "past `max_archive_members` (each such member has its own row, "
                         "from its header) or `max_archive_bytes` (one row says where a tar stopped), or a zip "
                         "member over `max_compression_ratio`")
SUBMODULE = register("submodule", "ingest", "a git submodule entry")
SOURCE_UNREADABLE = register("source_unreadable", "ingest", "the whole source could not be read: corrupt archive, "
                             "broken git, failed fetch, sha256 mismatch")
# any per-file stage (corpus_core/stage.py): the stage raised on this one file
STAGE_ERROR = register("stage_error", "any", "a per-file stage raised on this file; `detail` holds the stage and the "
                       "exception's class. The build fails when a stage drops more than "
                       "`execution.max_stage_error_share` of its files so")
# opt-out: given by filters/optout.py, read again by `corpus optout apply` (manifests/republish.py)
OPTED_OUT = register("opted_out", "optout", "the opt-out registry names its repository, owner, path or content; "
                     "`detail` holds the entry id")
# repository rows only (manifests)
NO_FILE_KEPT = register("no_file_kept", "-", "repos.parquet only: the repository has no file at all")
