"""manifest/sbom/part-K.spdx.json: SPDX 2.3 bills of materials of what the corpus holds, one
per part of the files manifest (the repositories of manifest/files/part-K.parquet).

One package per kept repository (its concluded license: the root's resolution; declared:
what its root metadata declares; where it came from; its copyright holders) containing one
file per kept file (its license, the evidence, its holders, and the checksums of its content
as shipped in the shards). Written by the part's task (manifests/writer.py), streamed, with
no wall-clock time in it: the same build gives the same bytes (docs/FORMATS.md, the SBOM).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from corpus_core import partitions, schema
from corpus_core.spdx import licensing
from manifests.attribution import HOLDERS, license_text

SPDX_VERSION = "SPDX-2.3"
# fixed, so that the same input gives the same bytes; run.json holds when the build ran
CREATED = "1970-01-01T00:00:00Z"
NAMESPACE = "https://corpus-pipeline.invalid/spdx/"
NOASSERTION = "NOASSERTION"
DOWNLOADABLE = re.compile(r"^(?:git\+)?(?:https?|ssh|git)://")
BATCH_ROWS = 4096


def _package_id(repo: str) -> str:
    return "SPDXRef-Package-" + hashlib.sha256(repo.encode()).hexdigest()[:16]


def _download_location(kind: str, url: str | None, commit: str | None) -> str:
    if url and DOWNLOADABLE.match(url):
        return f"git+{url}@{commit}" if kind == "git_url" and commit and not url.startswith("git+") else url
    return NOASSERTION


def _purl(kind: str, source: str, version: str | None) -> str | None:
    """The package URL of a registry package (`pypi:NAME==VER`, `npm:NAME@VER`)."""
    if kind == "pypi" and version:
        name = re.sub(r"[-_.]+", "-", source.removeprefix("pypi:").split("==")[0]).lower()
        return f"pkg:pypi/{name}@{quote(version)}"
    if kind == "npm" and version:
        name = source.removeprefix("npm:").rsplit("@", 1)[0].lower()
        return f"pkg:npm/{quote(name, safe='/')}@{quote(version)}"
    return None


def _declared(evidence: str | None) -> str:
    """What the repository's root metadata declares, where it agrees with itself."""
    declared = {e["expression"] for e in json.loads(evidence or "[]")
                if e["kind"] in ("metadata", "dataset") and "/" not in e["file"]}
    return declared.pop() if len(declared) == 1 else NOASSERTION


def _copyright(holders: list[str] | None) -> str:
    return "\n".join(holders) if holders else NOASSERTION


def _file_entry(row: dict[str, Any]) -> dict[str, Any]:
    data = row["content"].encode("utf-8")
    kind = row["license_kind"]
    entry: dict[str, Any] = {
        "SPDXID": f"SPDXRef-File-{row['id']}",
        "fileName": f"./{row['path']}",
        "checksums": [{"algorithm": "SHA1", "checksumValue": hashlib.sha1(data).hexdigest()},
                      {"algorithm": "SHA256", "checksumValue": hashlib.sha256(data).hexdigest()}],
        "fileTypes": ["SOURCE" if row["language_type"] == "programming" else
                      "DOCUMENTATION" if row["documentation"] else "TEXT"],
        "licenseConcluded": row["license"] or NOASSERTION,
        "licenseInfoInFiles": sorted({symbol.render() for symbol in licensing().license_symbols(
            row["license"], decompose=False)}) if kind == "header" else [NOASSERTION],
        "copyrightText": _copyright(row["copyright_holders"]),
        "comment": f"source sha256 {row['sha256']}; checksums are of the content as shipped (UTF-8, "
                   f"{row['pii_redactions'] or 0} PII redactions)",
    }
    if kind:
        lines = (f" lines {row['license_start_line']}-{row['license_end_line']}"
                 if row["license_start_line"] is not None else "")
        rule = f", rule {row['license_rule']}" if row["license_rule"] else ""
        score = f", score {row['license_score']:g}" if row["license_score"] is not None else ""
        entry["licenseComments"] = (f"evidence {row['license_source']}; shown: {kind} {row['license_path']}"
                                    f"{lines}{rule}{score}")
    return entry


def _tool() -> str:
    try:
        return f"Tool: corpus-pipeline-{metadata.version('corpus-pipeline')}"
    except metadata.PackageNotFoundError:
        return "Tool: corpus-pipeline"


# every kept repository's package fields, from the build's views (the driver scatters them by part)
PACKAGES = f"""SELECT f.repo, any_value(r.source) AS source, any_value(r.kind) AS kind, any_value(r.url) AS url,
                      any_value(r.commit) AS commit, any_value(r.sha256) AS sha256, any_value(r.license) AS license,
                      any_value(r.license_source) AS license_source, any_value(r.license_evidence) AS evidence,
                      {HOLDERS} AS holders, count(*) AS files
               FROM files f JOIN repos r USING (repo) WHERE f.decision = 'kept' GROUP BY f.repo"""


def write_sbom_part(db: Any, rows: str, packages: str, parts: dict[str, str], path: Path, fingerprint: str,
                    number: int, count: int) -> None:
    """The SPDX document of one part of the files manifest: `rows` (SQL: the part's manifest
    rows with their unit and ordinal), `packages` (SQL: its kept repositories' PACKAGES), the
    shipped content read from the chunks' `parts`. Its namespace is made from the part's
    `fingerprint` and its kept files with their licenses, so two documents with one
    namespace say the same. A part that keeps nothing has no document (SPDX asks a document
    to describe something)."""
    repos = db.sql(f"SELECT * FROM {packages} ORDER BY repo").to_arrow_table().to_pylist()
    if not repos:
        return
    digest = hashlib.sha256(fingerprint.encode())
    for batch in db.sql(f"SELECT id, license FROM {rows} WHERE decision = 'kept' ORDER BY id").to_arrow_reader(
            batch_size=65536):
        for file_id, license in zip(*(column.to_pylist() for column in batch.columns), strict=True):
            digest.update(f"{file_id}\0{license}\n".encode())
    expressions: set[str] = set()
    packages = []
    for repo in repos:
        package: dict[str, Any] = {
            "SPDXID": _package_id(repo["repo"]), "name": repo["repo"],
            "downloadLocation": _download_location(repo["kind"], repo["url"], repo["commit"]),
            "filesAnalyzed": True, "primaryPackagePurpose": "SOURCE",
            "licenseConcluded": repo["license"] or NOASSERTION, "licenseDeclared": _declared(repo["evidence"]),
            "copyrightText": _copyright(repo["holders"]),
            "sourceInfo": f"read from {repo['source']}; {repo['files']} of its files are in this corpus; license "
                          f"evidence: {repo['license_source'] or 'file headers'}",
        }
        if repo["commit"]:
            package["versionInfo"] = repo["commit"]
        if repo["sha256"]:
            package["checksums"] = [{"algorithm": "SHA256", "checksumValue": repo["sha256"]}]
        purl = _purl(repo["kind"], repo["source"], repo["commit"])
        if purl:
            package["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                        "referenceLocator": purl}]
        expressions.update(v for v in (package["licenseConcluded"], package["licenseDeclared"]) if v != NOASSERTION)
        packages.append(package)

    kept = f"FROM {rows} WHERE decision = 'kept' ORDER BY repo, path, unit, ordinal"
    with path.open("w", encoding="ascii") as out:
        head = {
            "spdxVersion": SPDX_VERSION, "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"corpus-{fingerprint[:12]}-part-{number + 1}-of-{count}",
            "documentNamespace": f"{NAMESPACE}{fingerprint}-{digest.hexdigest()[:16]}",
            "creationInfo": {"created": CREATED, "creators": [_tool()],
                             "comment": f"The kept repositories and files of part {number + 1} of {count} of one "
                                        f"build ({schema.FILES_DIR}/{schema.part_name(number, '.parquet')}); "
                                        "docs/COMPLIANCE.md."},
            "packages": packages,
        }
        out.write(json.dumps(head, indent=1)[:-2] + ',\n "files": [')
        first = True
        reader = db.sql(f"""SELECT unit, ordinal, id, path, sha256, language_type, documentation, license,
                                   license_source, license_kind, license_path, license_rule, license_score,
                                   license_start_line, license_end_line, copyright_holders, pii_redactions {kept}"""
                        ).to_arrow_reader(batch_size=BATCH_ROWS)
        for batch in partitions.with_content(reader, parts):
            for row in batch:
                if row["license"]:
                    expressions.add(row["license"])
                out.write(("\n  " if first else ",\n  ") + json.dumps(_file_entry(row)))
                first = False
        out.write('\n ],\n "hasExtractedLicensingInfos": [')
        unknown = sorted({s for e in expressions for s in licensing().validate(e).invalid_symbols})
        out.write(",".join("\n  " + json.dumps({
            "licenseId": symbol, "name": symbol,
            "extractedText": license_text(symbol) or f"{symbol}: a license ScanCode names; its text is in "
                                                      "ScanCode's license database"}) for symbol in unknown))
        out.write('\n ],\n "relationships": [')
        described = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": package["SPDXID"]} for package in packages]
        out.write(",".join("\n  " + json.dumps(r) for r in described))
        for batch in db.sql(f"SELECT repo, id {kept}").to_arrow_reader(batch_size=65536):
            for repo, file_id in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                out.write(",\n  " + json.dumps({"spdxElementId": _package_id(repo), "relationshipType": "CONTAINS",
                                                "relatedSpdxElement": f"SPDXRef-File-{file_id}"}))
        out.write("\n ]\n}\n")


def without_files(source: Path, target: Path, removed: set[str]) -> bool:
    """The SPDX document at `source` less the files whose ids are in `removed` (an opt-out
    applied to a published build: `corpus optout apply`), written to `target`: their file
    entries and relationships go, a package left with no file goes, the others' counts
    follow, and the namespace names the new document. A document that holds none of them is
    copied as it is; one left with no package is not written (SPDX asks a document to
    describe something). Returns whether `target` was written."""
    document = json.loads(source.read_text(encoding="ascii"))
    gone = {f"SPDXRef-File-{file_id}" for file_id in removed} & {entry["SPDXID"] for entry in document["files"]}
    if not gone:
        shutil.copyfile(source, target)
        return True
    document["files"] = [entry for entry in document["files"] if entry["SPDXID"] not in gone]
    contains: dict[str, int] = {}
    relationships = []
    for relation in document["relationships"]:
        if relation["relatedSpdxElement"] in gone:
            continue
        if relation["relationshipType"] == "CONTAINS":
            contains[relation["spdxElementId"]] = contains.get(relation["spdxElementId"], 0) + 1
        relationships.append(relation)
    packages = {package["SPDXID"] for package in document["packages"] if contains.get(package["SPDXID"])}
    if not packages:
        return False
    document["relationships"] = [r for r in relationships if r["relatedSpdxElement"] in packages
                                 or r["relationshipType"] != "DESCRIBES"]
    document["packages"] = [package for package in document["packages"] if package["SPDXID"] in packages]
    for package in document["packages"]:
        package["sourceInfo"] = re.sub(r"; \d+ of its files are in this corpus;",
                                       f"; {contains[package['SPDXID']]} of its files are in this corpus;",
                                       package["sourceInfo"], count=1)
    digest = hashlib.sha256("\n".join(sorted(gone)).encode()).hexdigest()[:16]
    document["documentNamespace"] += f"-without-{digest}"
    document["creationInfo"]["comment"] += f" {len(gone)} opted-out files removed after the build."
    target.write_text(json.dumps(document, indent=1) + "\n", encoding="ascii")
    return True
