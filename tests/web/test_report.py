"""OUT/report.html (manifests/report.py) and the signatures a build keeps for near-copy
search (stages/dedup.py `write_signatures`): published and listed like every output, the
same bytes for the same input (the report aside: it shows times)."""

from __future__ import annotations

import json
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from corpus_core.records import SourceSpec
from pipeline.cli import main
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import SIGNATURE_BANDS, SIGNATURES, NearDedupConfig, _write_in_groups
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT

CHARTS = ("funnel", "drops", "languages", "tokens", "licenses", "sizes", "line_lengths", "clusters", "pii", "time")


def marker_files(out) -> list[str]:
    return json.loads((out / ".corpus-build.json").read_text())["files"]


def test_the_build_writes_a_self_contained_report_listed_in_its_marker(corpus):
    page = (corpus.out / "report.html").read_text()
    assert "report.html" in marker_files(corpus.out)
    assert re.findall(r'id="chart-(\w+)"', page) == list(CHARTS) and f'data-charts="{len(CHARTS)}"' in page
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # nothing to fetch: Plotly is inlined
    assert "Plotly.newPlot" in page and "license_not_allowed" in page
    assert "<script>alert" not in page  # the build's strings are data, never markup


def test_corpus_report_rewrites_it_and_lists_it(corpus, tmp_path, capsys):
    out = tmp_path / "older"
    shutil.copytree(corpus.out, out)
    (out / "report.html").unlink()
    marker = json.loads((out / ".corpus-build.json").read_text())
    marker["files"].remove("report.html")  # a build from before the report
    (out / ".corpus-build.json").write_text(json.dumps(marker))
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file() and "report.html" in marker_files(out)
    assert [p.name for p in out.iterdir() if p.name.startswith(".report-")] == []
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a finished build" in capsys.readouterr().err


def test_signatures_are_kept_with_the_settings_that_made_them(corpus):
    signatures = pq.read_table(corpus.out / "manifest" / SIGNATURES)
    settings = json.loads(pq.read_schema(corpus.out / "manifest" / SIGNATURES / "part-00000.parquet"
                                         ).metadata[b"near_dedup"])
    assert settings["num_perm"] == 256 and settings["bands"] * settings["rows"] <= 256
    kept = pq.read_table(corpus.out / "manifest" / "files").filter(pa.compute.field("decision") == "kept")
    assert set(signatures.column("id").to_pylist()) == set(kept.column("id").to_pylist())
    bands = pq.read_table(corpus.out / "manifest" / SIGNATURE_BANDS)
    assert bands.num_rows == signatures.num_rows * settings["bands"]
    assert bands.column("key").to_pylist() == sorted(bands.column("key").to_pylist())
    assert {f"manifest/{name}/part-00000.parquet" for name in (SIGNATURES, SIGNATURE_BANDS)} \
        <= set(marker_files(corpus.out))


def test_signatures_in_parts_are_the_one_part_cut_by_key_ranges(corpus, tmp_path, monkeypatch):
    """With parts of 4 rows on average, minhash/ is cut by the id's first hex digits and
    minhash_bands/ by the key's top bits: parts in name order are the one-part tables, each
    part holds only its range, and a near-copy search reads every part."""
    from pipeline import search

    monkeypatch.setattr("stages.dedup.SIGNATURE_PART_ROWS", 4)  # the cut is the driver's
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(corpus.root / "files.jsonl")),),
                         tokenize=TokenizeConfig(vocab_size=300), execution=ExecutionConfig(executor="local"))
    run = build(config, tmp_path / "parts", Progress(quiet=True))
    (near,) = [stage["notes"] for stage in run["stages"] if stage["name"] == "near_dedup"]
    one = {name: pq.read_table(corpus.out / "manifest" / name) for name in (SIGNATURES, SIGNATURE_BANDS)}
    signed = one[SIGNATURES].num_rows
    # the fewest 16^k parts of at most 4 rows on average, counting every file that entered near dedup
    digits = {SIGNATURES: len(f"{(near['files'] - 1) // 4:x}"),
              SIGNATURE_BANDS: len(f"{(near['files'] * near['bands'] - 1) // 4:x}")}
    for name, table in one.items():
        parts = sorted((tmp_path / "parts" / "manifest" / name).iterdir())
        assert [p.name for p in parts] == [f"part-{n:05d}.parquet" for n in range(16 ** digits[name])]
        tables = [pq.read_table(p) for p in parts]
        assert pa.concat_tables(tables).equals(table)
        for number, part in enumerate(tables):
            if name == SIGNATURES:
                assert {i[:digits[name]] for i in part.column("id").to_pylist()} <= {f"{number:0{digits[name]}x}"}
            else:
                top = {(key + 2**63) >> (64 - 4 * digits[name]) for key in part.column("key").to_pylist()}
                assert top <= {number}
    assert signed > 1 and digits[SIGNATURE_BANDS] > digits[SIGNATURES] >= 1
    builds = search.open_builds([corpus.out, tmp_path / "parts"])
    text = json.loads((corpus.root / "files.jsonl").read_text().splitlines()[0])["content"]
    found = [search.near_matches(builds[name], text) for name in ("corpus", "parts")]
    assert [r["id"] for r in found[1].files] == [r["id"] for r in found[0].files] != []


def test_the_same_input_gives_the_same_bytes_however_the_work_is_cut(corpus, tmp_path):
    dataset = corpus.root / "files.jsonl"
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), tokenize=TokenizeConfig(vocab_size=300),
                         near_dedup=NearDedupConfig(batch_files=2),
                         execution=ExecutionConfig(executor="local", chunk_files=2))
    build(config, tmp_path / "again", Progress(quiet=True))
    for name in marker_files(corpus.out):
        # run.json and the report hold the times, the card the settings (batch_files differs)
        if name not in ("manifest/run.json", "report.html", "README.md"):
            assert (tmp_path / "again" / name).read_bytes() == (corpus.out / name).read_bytes(), name


def test_signature_files_do_not_depend_on_how_rows_arrive(tmp_path):
    table = pa.table({"key": pa.array(range(10_000), pa.int64()), "band": pa.array([1] * 10_000, pa.int16()),
                      "id": pa.array([f"{i:016x}" for i in range(10_000)])})
    written = []
    for size in (7, 4096, 10_000):
        path = tmp_path / f"{size}.parquet"
        _write_in_groups(iter(table.to_batches(max_chunksize=size)), path, table.schema, 3000)
        written.append(path.read_bytes())
    assert written[0] == written[1] == written[2]
    assert [pq.ParquetFile(tmp_path / "7.parquet").metadata.row_group(i).num_rows for i in range(4)] == \
        [3000, 3000, 3000, 1000]
