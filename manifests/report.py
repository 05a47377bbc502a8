"""OUT/report.html: a build drawn for the people who read it through pictures (data
engineers, compliance teams): the funnel, languages and tokens, licenses, file sizes and
line lengths, near-duplicate clusters, PII redactions and time per stage.

One self-contained file: Plotly's script is inlined once and every chart is an SVG drawn by
it in the browser, so the page opens without a network. It is written from what the build
published (manifests, run.json, index.json and the shards' token counts), by the build
itself and by `corpus report OUT` for an existing one. Like run.json it shows times, so it
is not byte-identical between two runs of the same build.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import plotly.io as pio
import pyarrow.parquet as pq
from plotly.offline import get_plotlyjs

from corpus_core import schema
from corpus_core.errors import ConfigError
from manifests.card import find_index, stages_and_givers

REPORT = "report.html"
PII_TYPES = (("pii_email", "e-mail"), ("pii_ip_address", "IP address"), ("pii_key", "key or token"),
             ("pii_password", "password"))
MOST_BARS = 30  # languages and licenses beyond this many are summed as "other"


@dataclass(frozen=True)
class Chart:
    name: str  # the div's id: chart-<name>
    title: str
    note: str  # one line under the title: what is counted
    figure: dict[str, Any]  # Plotly's figure as plain data: {"data": [traces], "layout": {...}}


def write_report(out: str | Path, target: str | Path | None = None) -> Path:
    """Write the report of the build in `out` to `target` (default OUT/report.html)."""
    out = Path(out)
    if not schema.files_manifest(out) or not (out / "manifest" / "run.json").is_file():
        raise ConfigError(f"{out}: not a finished build (no manifest/files/ and manifest/run.json)")
    path = Path(target) if target is not None else out / REPORT
    path.write_text(report_html(out), encoding="utf-8")
    return path


def report_html(out: Path) -> str:
    run = json.loads((out / "manifest" / "run.json").read_text())
    db = duckdb.connect()
    db.execute(f"CREATE VIEW files AS SELECT * FROM {schema.files_sql(out)}")
    columns = set(pq.read_schema(schema.files_manifest(out)[0]).names)
    try:
        charts = [_funnel(db, run), _drops(db, run), _languages(db), _tokens(out), _licenses(db),
                  _sizes(db), _line_lengths(db, columns), _clusters(db), _pii(db, columns), _times(run)]
        table = _funnel_table(db, run)
        (files_in, kept, bytes_in, bytes_kept) = db.sql(
            """SELECT count(*), count(*) FILTER (WHERE decision = 'kept'), coalesce(sum(size), 0),
                      coalesce(sum(size) FILTER (WHERE decision = 'kept'), 0) FROM files""").fetchall()[0]
    finally:
        db.close()
    name = html.escape(Path(str(run.get("out_dir") or out)).name)
    facts = [("build", name), ("finished", html.escape(str(run.get("finished_at") or "not recorded"))),
             ("config fingerprint", html.escape(str(run.get("config_fingerprint", ""))[:16])),
             ("files", f"{files_in:,} read, {kept:,} kept"), ("bytes", f"{bytes_in:,} read, {bytes_kept:,} kept"),
             ("wall time", f"{run.get('wall_seconds', 0):,.1f} s")]
    sections = "\n".join(
        f'<section><h2>{html.escape(chart.title)}</h2><p class="note">{html.escape(chart.note)}</p>\n'
        + pio.to_html(chart.figure, full_html=False, include_plotlyjs=False, div_id=f"chart-{chart.name}",
                      config={"displaylogo": False, "responsive": True}, validate=False)
        + "</section>" for chart in charts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Build report: {name}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1f2933; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.2rem; margin-bottom: 0.2rem; }}
.note {{ color: #52606d; margin-top: 0; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }} dt {{ font-weight: 600; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 0.2rem 0.7rem; border-bottom: 1px solid #d9e2ec; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style>
<script>{get_plotlyjs()}</script>
</head><body data-charts="{len(charts)}">
<h1>Build report: {name}</h1>
<dl>{"".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)}</dl>
<p class="note">Written from the build's manifests and run.json; the times change from run to run.
Every file read is in manifest/files/ with its decision and reason.</p>
<section><h2>Funnel, in numbers</h2>{table}</section>
{sections}
</body></html>
"""


def _rows(db: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return db.sql(sql).fetchall()


def _label(value: Any) -> str:
    """A category as Plotly shows it: its text, never markup (Plotly reads a few tags)."""
    return html.escape(str(value))


def _dropped(db: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    """(stage, reason, files, bytes) of every drop in files.parquet, in flow order."""
    order, stage_of = stages_and_givers(run)
    found = [(stage_of(reason), reason, files, size) for reason, files, size in _rows(db, """
        SELECT reason, count(*), coalesce(sum(size), 0) FROM files WHERE decision = 'dropped' GROUP BY ALL""")]
    return sorted(found, key=lambda row: (order.index(row[0]) if row[0] in order else len(order), row[1]))


def _funnel(db: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> Chart:
    ((files, size),) = _rows(db, "SELECT count(*), coalesce(sum(size), 0) FROM files")
    steps, left, left_bytes = [("read", files, size)], files, size
    for stage, _, dropped, dropped_bytes in _dropped(db, run):
        left, left_bytes = left - dropped, left_bytes - dropped_bytes
        if steps[-1][0] == f"after {stage}":
            steps[-1] = (steps[-1][0], left, left_bytes)
        else:
            steps.append((f"after {stage}", left, left_bytes))
    figure = _figure([{"type": "funnel", "y": [step[0] for step in steps], "x": [step[1] for step in steps],
                       "customdata": [step[2] for step in steps], "textinfo": "value+percent initial",
                       "hovertemplate": "%{y}: %{x:,} files, %{customdata:,} bytes<extra></extra>"}],
                     height=max(220, 100 + 40 * len(steps)))
    return Chart("funnel", "Funnel: files left after each stage", "files read, then what remains once each stage "
                 "has dropped its files (the final reason of each file, as files.parquet records it)", figure)


def _drops(db: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> Chart:
    dropped = _dropped(db, run)
    stages = list(dict.fromkeys(row[0] for row in dropped))
    traces = []
    for reason in sorted({row[1] for row in dropped}):
        rows = {row[0]: row for row in dropped if row[1] == reason}
        traces.append({"type": "bar", "name": _label(reason), "x": [_label(s) for s in stages],
                       "y": [rows[s][2] if s in rows else 0 for s in stages],
                       "customdata": [rows[s][3] if s in rows else 0 for s in stages],
                       "hovertemplate": f"{_label(reason)}: %{{y:,}} files, %{{customdata:,}} bytes<extra></extra>"})
    figure = _figure(traces, barmode="stack", xaxis_title="stage", yaxis_title="files dropped")
    return Chart("drops", "Dropped, per stage and reason", "files each stage dropped, stacked by reason "
                 "(hover for bytes)", figure)


def _top(rows: list[tuple[Any, int]]) -> list[tuple[str, int]]:
    shown = [(str(name), count) for name, count in rows[:MOST_BARS]]
    rest = sum(count for _, count in rows[MOST_BARS:])
    return shown + ([("other", rest)] if rest else [])


def _languages(db: duckdb.DuckDBPyConnection) -> Chart:
    rows = _top(_rows(db, """SELECT coalesce(language, '(unknown)'), count(*) FROM files WHERE decision = 'kept'
                             GROUP BY ALL ORDER BY 2 DESC, 1"""))
    figure = _figure([_bar(rows, "%{x}: %{y:,} files<extra></extra>")], yaxis_title="kept files")
    return Chart("languages", "Kept files per language", "go-enry's language of each kept file", figure)


def _tokens(out: Path) -> Chart:
    index = find_index(out)
    counts: dict[str, int] = {}
    if index is not None and "tokens" in index.data.get("totals", {}):
        for shard in index.data.get("shards", []):
            table = pq.read_table(index.shard_dir / shard["file"], columns=["language", "num_tokens"])
            for language, tokens in zip(*(table.column(n).to_pylist() for n in ("language", "num_tokens")),
                                        strict=True):
                key = language or "(unknown)"
                counts[key] = counts.get(key, 0) + tokens
    rows = _top(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    figure = _figure([_bar(rows, "%{x}: %{y:,} tokens<extra></extra>")], yaxis_title="tokens")
    note = "tokens in the shards per language (metadata prefixes and end-of-text included)" if counts else \
        "this build has no tokens (tokenize was off)"
    return Chart("tokens", "Tokens per language", note, figure)


def _licenses(db: duckdb.DuckDBPyConnection) -> Chart:
    rows = _top(_rows(db, """SELECT coalesce(license, '(none)'), count(*) FROM files WHERE decision = 'kept'
                             GROUP BY ALL ORDER BY 2 DESC, 1"""))
    rows.reverse()  # the commonest on top
    figure = _figure([{"type": "bar", "orientation": "h", "y": [_label(name) for name, _ in rows],
                       "x": [count for _, count in rows], "hovertemplate": "%{y}: %{x:,} files<extra></extra>"}],
                     height=120 + 24 * max(len(rows), 3), xaxis_title="kept files", yaxis_automargin=True)
    return Chart("licenses", "Licenses of the kept files", "each kept file's SPDX expression (its own header, else "
                 "its nearest directory's license files)", figure)


def _power_buckets(db: duckdb.DuckDBPyConnection, column: str, where: str) -> dict[int, int]:
    """Counts per power of two of `column` (bucket k holds [2**k, 2**(k+1)); 0 and 1 in bucket 0)."""
    return dict(_rows(db, f"""SELECT CAST(floor(log2(greatest({column}, 1))) AS INTEGER), count(*) FROM files
                             WHERE {where} AND {column} IS NOT NULL GROUP BY ALL"""))


def _bucket_label(k: int, unit: str) -> str:
    def amount(value: int) -> str:
        for size, suffix in ((2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki")):
            if unit == "B" and value >= size:
                return f"{value // size} {suffix}B"
        return f"{value:,} {unit}".strip()
    return f"{amount(2**k)} to {amount(2**(k + 1))}"


def _bucket_bars(series: dict[str, dict[int, int]], unit: str) -> list[dict[str, Any]]:
    """One bar trace per series over the same range of power-of-two buckets."""
    keys = sorted({k for counts in series.values() for k in counts})
    span = range(keys[0], keys[-1] + 1) if keys else range(0)
    labels = [_bucket_label(k, unit) for k in span]
    return [{"type": "bar", "name": name, "x": labels, "y": [counts.get(k, 0) for k in span],
             "hovertemplate": f"{name}, %{{x}}: %{{y:,}}<extra></extra>"} for name, counts in series.items()]


def _sizes(db: duckdb.DuckDBPyConnection) -> Chart:
    figure = _figure(_bucket_bars({"kept": _power_buckets(db, "size", "decision = 'kept'"),
                                   "dropped": _power_buckets(db, "size", "decision = 'dropped'")}, "B"),
                     barmode="group", xaxis_title="file size (raw bytes)", yaxis_title="files")
    return Chart("sizes", "File sizes", "files per size range (powers of two), kept and dropped", figure)


def _line_lengths(db: duckdb.DuckDBPyConnection, columns: set[str]) -> Chart:
    traces = _bucket_bars({"longest line": _power_buckets(db, "max_line_length", "decision = 'kept'"),
                           "mean line": _power_buckets(db, "mean_line_length", "decision = 'kept'")}, "") \
        if {"max_line_length", "mean_line_length"} <= columns else []
    figure = _figure(traces, barmode="group", xaxis_title="characters", yaxis_title="kept files")
    return Chart("line_lengths", "Line lengths", "kept files per range of their longest and their mean line length "
                 "(characters; the quality stage's measures)", figure)


def _clusters(db: duckdb.DuckDBPyConnection) -> Chart:
    rows = _rows(db, """SELECT size, count(*) FROM (SELECT dup_of, count(*) + 1 AS size FROM files
                                                    WHERE reason = 'near_duplicate' GROUP BY dup_of)
                        GROUP BY ALL ORDER BY 1""")
    figure = _figure([_bar([(str(size), count) for size, count in rows], "clusters of %{x} files: %{y:,}"
                           "<extra></extra>")], xaxis_title="files in the cluster (one kept)", yaxis_title="clusters",
                     xaxis_type="category")
    total = sum(count for _, count in rows)
    return Chart("clusters", "Near-duplicate clusters", f"{total:,} clusters of near duplicates (MinHash LSH): "
                 "one file of each kept, the others dropped as near_duplicate", figure)


def _pii(db: duckdb.DuckDBPyConnection, columns: set[str]) -> Chart:
    present = [(column, label) for column, label in PII_TYPES if column in columns]
    sums = _rows(db, "SELECT " + ", ".join(f"coalesce(sum({c}), 0)" for c, _ in present) + " FROM files")[0] \
        if present else ()
    figure = _figure([_bar(list(zip([label for _, label in present], sums, strict=True)),
                           "%{x}: %{y:,} replaced<extra></extra>")], yaxis_title="redactions")
    return Chart("pii", "PII redactions per type", "values replaced by a placeholder in the shards' content, over all "
                 "files", figure)


def _times(run: dict[str, Any]) -> Chart:
    stages = run.get("stages", [])
    figure = _figure([_bar([(stage["name"], round(stage.get("seconds", 0.0), 3)) for stage in stages],
                           "%{x}: %{y:,.2f} s<extra></extra>")], yaxis_title="seconds")
    return Chart("time", "Time per stage", "seconds per stage: file stages summed over the workers, corpus stages "
                 "the driver's wall time; this run's, not the next one's", figure)


def _funnel_table(db: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> str:
    ((files, size, kept, kept_bytes),) = _rows(db, """
        SELECT count(*), coalesce(sum(size), 0), count(*) FILTER (WHERE decision = 'kept'),
               coalesce(sum(size) FILTER (WHERE decision = 'kept'), 0) FROM files""")
    rows = [("read", "", f"{files:,}", f"{size:,}")]
    rows += [(stage, reason, f"−{count:,}", f"−{dropped:,}") for stage, reason, count, dropped in _dropped(db, run)]
    rows.append(("kept", "", f"{kept:,}", f"{kept_bytes:,}"))
    body = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td class=n>{c}</td><td class=n>{d}</td>"
                   "</tr>" for a, b, c, d in rows)
    return f"<table><tr><th>step</th><th>reason</th><th>files</th><th>bytes</th></tr>{body}</table>"


def _bar(rows: list[tuple[Any, Any]], hover: str) -> dict[str, Any]:
    return {"type": "bar", "x": [_label(name) for name, _ in rows], "y": [value for _, value in rows],
            "hovertemplate": hover}


def _figure(traces: list[dict[str, Any]], height: int = 380, **layout: Any) -> dict[str, Any]:
    """A figure as Plotly's JSON, styled alike. Plain data, not plotly.graph_objects: building
    and validating those took over a second per report, on every build."""
    axes = {"gridcolor": "#e4e7eb", "zerolinecolor": "#cbd2d9", "automargin": True}
    spec = {"height": height, "margin": {"l": 60, "r": 20, "t": 20, "b": 60}, "paper_bgcolor": "white",
            "plot_bgcolor": "white", "legend": {"orientation": "h", "y": 1.08}, "font": {"family": "system-ui"},
            "xaxis": dict(axes), "yaxis": dict(axes)}
    for key, value in layout.items():  # xaxis_title="..." as Plotly's magic underscores would have it
        if key.startswith(("xaxis_", "yaxis_")):
            axis, _, name = key.partition("_")
            spec[axis][name] = {"text": value} if name == "title" else value
        else:
            spec[key] = value
    return {"data": traces, "layout": spec}
