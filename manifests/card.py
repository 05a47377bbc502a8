"""The dataset card, OUT/README.md, and where a build keeps its index.

The card follows Hugging Face's conventions: a YAML header that the Hub and
`datasets.load_dataset(OUT)` read (licenses, languages, size, which files are the data),
then what a reader of a corpus asks: where it came from, which filters ran with which
settings, how a code owner opts out, what each step removed, under which licenses the kept
files are. It is made from the manifests (DuckDB over files.parquet and repos.parquet),
run.json's config and the index, never from wall times, so a build gives the same bytes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from license_expression import ExpressionError

from corpus_core import reasons, schema
from corpus_core.spdx import PERMISSIVE, licensing
from corpus_core.storage import sql_path

CARD = "README.md"
INDEX = "index.json"  # OUT/index.json since index format 3; OUT/shards/index.json before
LEGACY_INDEX = "shards/index.json"
SHOWN_REPOSITORIES = 100  # rows of the sources table; the rest are in repos.parquet
# build settings that do not shape the data (or are the machine's paths)
NOT_SETTINGS = ("sources", "source_lists", "cache_dir", "execution")

# The Hub's license identifiers (hf.co/docs/hub/repositories-licenses) that are SPDX ids
# lower-cased; any other license of the corpus is `other`, named by license_name.
HUB_LICENSES = frozenset({
    "afl-3.0", "agpl-3.0", "apache-2.0", "artistic-2.0", "bsl-1.0", "bsd-2-clause", "bsd-3-clause", "mit",
    "bsd-3-clause-clear", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0",
    "eupl-1.1", "gpl-2.0", "gpl-3.0", "lgpl-2.1", "lgpl-3.0", "isc", "lppl-1.3c", "ms-pl", "mpl-2.0",
    "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl",
})
# The Hub's size_categories: (upper bound on rows, label)
SIZE_CATEGORIES = ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                   (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
                   (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))


@dataclass(frozen=True)
class BuildIndex:
    """A build's index.json and where the files it names lie."""

    path: Path  # the index.json read
    shard_dir: Path  # the folder of its shard files
    root: Path  # the build's folder: its tokenizer is named relative to it
    data: dict[str, Any]


def find_index(out: str | Path) -> BuildIndex | None:
    """OUT/index.json, else an older build's OUT/shards/index.json; None when neither exists."""
    out = Path(out)
    if (out / INDEX).is_file():
        data = json.loads((out / INDEX).read_text())
        return BuildIndex(out / INDEX, out / data.get("shard_dir", "shards"), out, data)
    if (out / LEGACY_INDEX).is_file():  # format 2: the index among its shards, names relative to them
        path = out / LEGACY_INDEX
        return BuildIndex(path, path.parent, out, json.loads(path.read_text()))
    return None


def write_card(out: str | Path) -> Path:
    """Write OUT/README.md for the build in `out` (its manifests, run.json and index)."""
    out = Path(out)
    path = out / CARD
    path.write_text(card_text(out))
    return path


def card_text(out: Path) -> str:
    run = json.loads((out / "manifest" / "run.json").read_text())
    found = find_index(out)
    index = found.data if found else {}
    shard_glob = f"{Path(os.path.relpath(found.shard_dir, out)).as_posix() if found else 'shards'}/*.parquet"
    index_name = Path(os.path.relpath(found.path, out)).as_posix() if found else INDEX
    db = duckdb.connect()
    try:
        db.execute(f"CREATE VIEW files AS SELECT * FROM {schema.files_sql(out)}")
        db.execute(f"CREATE VIEW repos AS SELECT * FROM read_parquet({sql_path(out / 'manifest' / 'repos.parquet')})")
        facts = _facts(db)
    finally:
        db.close()
    config = run.get("config", {})
    allowed = frozenset(config.get("license", {}).get("allowed") or PERMISSIVE)
    header = _header(facts, allowed, shard_glob)
    sections = [
        _summary(facts, run, index),
        _loading(facts, index, index_name, shard_glob),
        _sources(facts),
        _filters(run),
        _optout(facts, run),
        _funnel(facts, run),
        _licenses(facts),
    ]
    return header + "\n".join(sections)


def _facts(db: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What the card says, read from the manifests."""

    def rows(sql: str) -> list[dict[str, Any]]:
        result = db.execute(sql)
        names = [column[0] for column in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    (totals,) = rows("""SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes,
                               count(*) FILTER (WHERE decision = 'kept') AS kept,
                               coalesce(sum(size) FILTER (WHERE decision = 'kept'), 0) AS kept_bytes,
                               count(DISTINCT repo) FILTER (WHERE decision = 'kept') AS kept_repos FROM files""")
    return {
        **totals,
        "repos": rows("""SELECT repo, kind, source, "commit", license, files, files_kept, bytes_kept, decision, reason
                         FROM repos ORDER BY bytes_kept DESC, repo"""),
        "kinds": rows("SELECT kind, count(*) AS repos FROM repos GROUP BY kind ORDER BY repos DESC, kind"),
        "dropped": rows("""SELECT reason, count(*) AS files, coalesce(sum(size), 0) AS bytes FROM files
                           WHERE decision = 'dropped' GROUP BY reason ORDER BY reason"""),
        "licenses": rows("""SELECT license, count(DISTINCT repo) AS repos, count(*) AS files, sum(size) AS bytes
                            FROM files WHERE decision = 'kept' GROUP BY license ORDER BY bytes DESC, license"""),
        "languages": rows("""SELECT language, count(*) AS files, sum(size) AS bytes FROM files
                             WHERE decision = 'kept' AND language IS NOT NULL
                             GROUP BY language ORDER BY bytes DESC, language"""),
    }


# --- the YAML header -----------------------------------------------------------------------

def used_licenses(expression: str, allowed: frozenset[str]) -> set[str]:
    """The SPDX ids a file under `expression` is used under: every license of an AND, the
    allowed alternatives of an OR (all of them when none is allowed), `A WITH e` as A."""
    def walk(node: Any) -> set[str]:
        name = type(node).__name__
        if name in ("AND", "OR"):
            parts = [walk(arg) for arg in node.args]
            if name == "OR":
                chosen = [part for part in parts if part and part <= allowed]
                parts = chosen or parts
            return set().union(*parts)
        return {getattr(node, "license_symbol", node).key}

    try:
        return walk(licensing().parse(expression))
    except ExpressionError:  # not SPDX: the expression stands for itself
        return {expression}


def hub_license(spdx_id: str) -> str | None:
    """The Hub's identifier for an SPDX id, None when the Hub has none (it is `other`)."""
    key = spdx_id.lower().removesuffix("-only").removesuffix("-or-later")
    return key if key in HUB_LICENSES else None


def size_category(rows: int) -> str:
    return next((label for bound, label in SIZE_CATEGORIES if rows < bound), "n>1T")


def _header(facts: dict[str, Any], allowed: frozenset[str], shard_glob: str) -> str:
    used: set[str] = set()
    unknown = False
    for row in facts["licenses"]:
        if row["license"] is None:
            unknown = True
        else:
            used |= used_licenses(row["license"], allowed)
    hub = sorted({hub_license(spdx) for spdx in used} - {None})
    others = sorted((spdx for spdx in used if hub_license(spdx) is None), key=str.lower)
    meta: list[tuple[str, Any]] = [("license", hub + ["other"] * bool(others) + ["unknown"] * unknown)]
    if len(others) == 1 and not others[0].startswith("LicenseRef-"):
        meta += [("license_name", others[0].lower()), ("license_link", f"https://spdx.org/licenses/{others[0]}.html")]
    elif others:  # several: NOTICE names each kept repository's licenses
        meta += [("license_name", "several-licenses"), ("license_link", "NOTICE")]
    meta += [
        ("language", ["code"]),
        ("programming_language", sorted((row["language"] for row in facts["languages"]), key=str.lower)),
        ("size_categories", [size_category(facts["kept"])]),
        ("task_categories", ["text-generation"]),
        ("task_ids", ["language-modeling"]),
        ("tags", ["code"]),
        ("configs", [{"config_name": "default", "data_files": [{"split": "train", "path": shard_glob}]}]),
    ]
    return "---\n" + "".join(_yaml(key, value) for key, value in meta) + "---\n\n"


def _yaml(key: str, value: Any, indent: str = "") -> str:
    """One YAML mapping entry; scalars as JSON strings and numbers (valid YAML), so no value
    can break the header."""
    if isinstance(value, list):
        lines = f"{indent}{key}:\n"
        for item in value:
            if isinstance(item, dict):
                entries = [_yaml(k, v, indent + "  ") for k, v in item.items()]
                lines += indent + "- " + "".join(entries)[len(indent) + 2:]
            else:
                lines += f"{indent}- {json.dumps(item)}\n"
        return lines
    return f"{indent}{key}: {json.dumps(value)}\n"


# --- the sections --------------------------------------------------------------------------

def _summary(facts: dict[str, Any], run: dict[str, Any], index: dict[str, Any]) -> str:
    config = run.get("config", {})
    done = ["every kept file has a license the build's allowlist allows"]
    if config.get("dedup", {}).get("exact", True):
        done.append("exact duplicates are removed")
    if config.get("near_dedup", {}).get("enabled", True):
        done.append("near duplicates are removed")
    if config.get("pii", {}).get("enabled", True):
        done.append("e-mail addresses, IP addresses, keys and passwords are redacted")
    if index.get("tokenizer"):
        done.append("the content is tokenized")
    lines = [
        "# Dataset card",
        "",
        f"Source code for training code models: {facts['kept']:,} files ({_size(facts['kept_bytes'])}) from "
        f"{facts['kept_repos']:,} of {len(facts['repos']):,} repositories, kept of {facts['files']:,} files "
        f"({_size(facts['bytes'])}) read. " + _sentence("; ".join(done)),
        "",
        f"Built by corpus-pipeline {run.get('versions', {}).get('corpus-pipeline', '?')}; config fingerprint "
        f"`{run.get('config_fingerprint', '?')}`, input fingerprint `{run.get('input_fingerprint', '?')}` "
        "(manifest/run.json holds the whole config).",
    ]
    republished = run.get("republished", [])
    if republished:
        removed = sum(record.get("removed", 0) for record in republished)
        lines += ["", f"Republished {len(republished)} time(s) since the build to honour opt-outs: {removed:,} files "
                      "removed (manifest/run.json `republished`)."]
    return "\n".join(lines) + "\n"


def _loading(facts: dict[str, Any], index: dict[str, Any], index_name: str, shard_glob: str) -> str:
    totals = index.get("totals", {})
    tokenized = "tokens" in totals
    shard_dir = shard_glob.removesuffix("/*.parquet")
    lines = [
        "## Files and loading", "",
        "| path | what |", "|---|---|",
        f"| `{shard_glob}` | the data, one row per kept file: id, repo, path, language, license, sha256, size, "
        "content (PII redacted)" + (", input_ids, num_tokens" if tokenized else "") + " |",
        f"| `{index_name}` | each shard's rows, bytes and sha256"
        + (", tokens; the tokenizer's sha256" if tokenized else "") + " |",
    ]
    if index.get("tokenizer"):
        lines.append(f"| `{index['tokenizer']}` | the byte-level BPE the shards were encoded with (StarCoder's special "
                     "tokens) |")
    lines += [
        "| `manifest/files/` | every file read: kept (with its shard and row), or dropped with its reason; "
        "Parquet parts by ranges of repositories |",
        "| `manifest/sbom/` | SPDX 2.3 documents, one per part of `manifest/files/`: the kept repositories and files |",
        "| `manifest/repos.parquet` | every repository: source, version, license and its evidence, counts |",
        "| `manifest/attribution.parquet` | per shard: its repositories, licenses and copyright holders |",
        "| `manifest/run.json` | the config, detector versions, input fingerprint, counts per stage |",
        "| `NOTICE` | attribution for every kept repository |",
        "",
        f"{totals.get('shards', 0):,} shards, {totals.get('rows', facts['kept']):,} rows"
        + (f", {totals['tokens']:,} tokens (`input_ids` {index.get('input_ids')}, a vocabulary of "
           f"{index.get('vocab_size', 0):,})" if tokenized else "") + ".",
        "",
        "```python",
        "import datasets, pyarrow.dataset",
        f'corpus = datasets.load_dataset("parquet", data_dir="{shard_dir}", split="train")  # or load_dataset(".")',
        f'table = pyarrow.dataset.dataset("{shard_dir}").to_table(columns=["repo", "path", "content"])',
        "```",
    ]
    return "\n".join(lines) + "\n"


def _sources(facts: dict[str, Any]) -> str:
    kinds = ", ".join(f"{row['repos']:,} {row['kind']}" for row in facts["kinds"])
    lines = ["## Sources", "", f"{len(facts['repos']):,} repositories ({kinds}), by kept bytes:", "",
             "| repository | kind | source | version | license | files | kept | kept bytes |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for row in facts["repos"][:SHOWN_REPOSITORIES]:
        kept = f"{row['files_kept']:,}" if row["decision"] == "kept" else f"0 ({row['reason']})"
        cells = [_cell(row["repo"]), row["kind"], _cell(_local_name(row["source"])), _cell(row["commit"]),
                 _cell(row["license"]), f"{row['files']:,}", kept, f"{row['bytes_kept']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    rest = len(facts["repos"]) - SHOWN_REPOSITORIES
    if rest > 0:
        lines += ["", f"… and {rest:,} more in manifest/repos.parquet."]
    return "\n".join(lines) + "\n"


def _filters(run: dict[str, Any]) -> str:
    config = run.get("config", {})
    lines = [
        "## Filters", "",
        "The stages, in order: " + " → ".join(f"`{stage['name']}`" for stage in run.get("stages", [])) + ".",
        "A file is dropped by the first stage that refuses it, with a reason (the funnel below counts",
        "them; corpus-pipeline's docs/FORMATS.md#drop-reasons documents each): unreadable or binary",
        "files at ingest; opted-out repositories, owners, paths and contents; licenses outside the",
        "allowlist, or no license evidence; StarCoder's quality heuristics (line lengths, alphanumeric",
        "fraction, generated files, XML, HTML, data files, encoded data); a comment-to-code ratio",
        "outside its bounds; exact duplicates (sha256) and near duplicates (MinHash LSH). PII is",
        "redacted, never a reason to drop. The settings this build ran with (paths by file name):",
        "", "```toml",
    ]
    for section in sorted(key for key, value in config.items() if isinstance(value, dict) and key not in NOT_SETTINGS):
        lines += [f"[{section}]"] + [f"{key} = {_toml(value)}" for key, value in sorted(config[section].items())
                                     if value is not None] + [""]
    if lines[-1] == "":
        lines.pop()
    lines.append("```")
    return "\n".join(lines) + "\n"


def _optout(facts: dict[str, Any], run: dict[str, Any]) -> str:
    registry = run.get("config", {}).get("optout", {}).get("registry")
    opted = next((row["files"] for row in facts["dropped"] if row["reason"] == reasons.OPTED_OUT), 0)
    lines = [
        "## Opting out", "",
        "A code owner can ask whether their code is in this corpus, and have it removed:", "",
        "```sh",
        "corpus lookup OUT --repo OWNER/NAME        # or --owner OWNER, or --file PATH (by content)",
        "corpus optout add --config CONFIG --repo OWNER/NAME --by EMAIL --reason \"...\"",
        "                                           # or --owner, --path GLOB --repo, --file, --sha256",
        "corpus optout apply OUT --config CONFIG    # a new version of a published build without them",
        "```", "",
        "Requests are lines of the opt-out registry (JSON Lines, reviewed in version control): the",
        "next build drops every matching file first (reason `opted_out`), and `optout apply` removes",
        "them from a build already published, rewriting its shards, manifests, index and this card.",
        "See \"For code owners\" in corpus-pipeline's README.",
        "",
        f"This build read the registry `{Path(registry).name}` and left out {opted:,} files it names." if registry
        else f"This build ran without an opt-out registry ({opted:,} files left out).",
    ]
    return "\n".join(lines) + "\n"


def stages_and_givers(run: dict[str, Any]) -> tuple[list[str], Any]:
    """The stages in flow order, and `stage_of(reason)`: the one stage that gave a reason in
    this run (else the registry's, else "(any)"). The card's funnel and report.html's use it."""
    order = [stage["name"] for stage in run.get("stages", [])]
    givers: dict[str, list[str]] = {}
    for stage in run.get("stages", []):
        for reason in stage.get("dropped", {}):
            givers.setdefault(reason, []).append(stage["name"])

    def stage_of(reason: str) -> str:
        names = givers.get(reason) or ([reasons.REASONS[reason].stage] if reason in reasons.REASONS else [])
        return names[0] if len(names) == 1 and names[0] in order else "(any)"

    return order, stage_of


def _funnel(facts: dict[str, Any], run: dict[str, Any]) -> str:
    """Files and bytes in, what each stage dropped per reason (in stage order), what is left."""
    order, stage_of = stages_and_givers(run)
    steps = sorted(((stage_of(row["reason"]), row) for row in facts["dropped"]),
                   key=lambda step: (order.index(step[0]) if step[0] in order else len(order), step[1]["reason"]))
    lines = ["## Funnel", "", "| step | reason | files | bytes |", "|---|---|---:|---:|",
             f"| read | | {facts['files']:,} | {facts['bytes']:,} |"]
    for stage, row in steps:
        lines.append(f"| {stage} | `{row['reason']}` | −{row['files']:,} | −{row['bytes']:,} |")
    lines += [f"| **kept** | | **{facts['kept']:,}** | **{facts['kept_bytes']:,}** |", "",
              "Bytes are the files' raw sizes as read, before PII redaction."]
    return "\n".join(lines) + "\n"


def _licenses(facts: dict[str, Any]) -> str:
    lines = ["## Licenses", "",
             "The kept files' SPDX expressions (a file's own header, else its nearest directory's license files):",
             "", "| license | repositories | files | bytes |", "|---|---:|---:|---:|"]
    for row in facts["licenses"]:
        lines.append(f"| {_cell(row['license'] or '(none)')} | {row['repos']:,} | {row['files']:,} | "
                     f"{row['bytes']:,} |")
    lines += ["", "`NOTICE` names every kept repository with its licenses, source and copyright holders;",
              "manifest/attribution.parquet does so per shard, for a shard handed on alone. Each file's",
              "evidence (which license file or header, ScanCode's score) is in the manifests."]
    return "\n".join(lines) + "\n"


# --- formatting ----------------------------------------------------------------------------

def _cell(value: Any) -> str:
    """A value as a Markdown table cell: no column break, no HTML."""
    if value is None:
        return ""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    exponent = min(int(math.log10(count) // 3), 4)
    return f"{count / 1000**exponent:.1f} {('kB', 'MB', 'GB', 'TB')[exponent - 1]}"


def _local_name(value: Any) -> Any:
    """A path of the building machine by its name: it says enough, and the card is published."""
    return Path(value).name if isinstance(value, str) and os.path.isabs(value) else value


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{json.dumps(key)} = {_toml(item)}" for key, item in sorted(value.items())) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(_local_name(value))
