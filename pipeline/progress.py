"""Progress lines on stderr while a build runs, and the summary it ends with."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


class Progress:
    """Counts units as they finish; on a terminal it redraws one line, elsewhere it prints
    a line at most every `every` seconds (and always for the last unit)."""

    def __init__(self, stream: TextIO = sys.stderr, every: float = 5.0, quiet: bool = False):
        self.stream, self.every, self.quiet = stream, every, quiet
        self.tty = stream.isatty()
        self.total = self.finished = self.files = self.bytes = 0
        self.started = self.last = time.perf_counter()

    def _say(self, text: str, redraw: bool = False) -> None:
        if self.quiet:
            return
        if self.tty and redraw:
            self.stream.write(f"\r\033[K{text}")
        else:
            self.stream.write(f"{text}\n")
        self.stream.flush()

    def start_units(self, total: int, resumed: int, workers: int, executor: str) -> None:
        self.total, self.finished = total, resumed
        self.started = time.perf_counter()
        note = f", {resumed} already done (resuming)" if resumed else ""
        self._say(f"ingest: {total} units on {executor} with {workers} workers{note}")

    def chunk_done(self, marker: dict[str, Any]) -> None:
        """Files and bytes of one task (a unit, or a chunk of one)."""
        ingest = marker["stages"]["ingest"]
        self.files += ingest["files_in"]
        self.bytes += ingest["bytes_in"]

    def unit_done(self, unit_key: str) -> None:
        self.finished += 1
        now = time.perf_counter()
        if self.tty or now - self.last >= self.every or self.finished == self.total:
            self.last = now
            rate = self.bytes / max(now - self.started, 1e-9)
            self._say(
                f"  {self.finished}/{self.total} units  {self.files} files  {human_bytes(self.bytes)}"
                f"  {human_bytes(rate)}/s  (last: {unit_key})",
                redraw=True,
            )

    def end_units(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")

    def phase(self, name: str) -> None:
        self._say(f"{name}…")

    def note(self, text: str) -> None:
        self._say(text)


def summary(run: dict[str, Any]) -> str:
    counts = run["counts"]
    lines = [
        f"corpus built in {run['wall_seconds']:.1f} s: {run['out_dir']}",
        f"  files: {counts['files']} in, {counts['kept']} kept, {counts['files'] - counts['kept']} dropped"
        f"  ({human_bytes(counts['bytes_in'])} in, {human_bytes(counts['bytes_kept'])} kept)",
    ]
    for reason, count in sorted(counts["dropped"].items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"    {reason:<18} {count}")
    known = {k: v for k, v in counts["languages"].items() if k != "(unknown)"}
    tokens_of = counts.get("language_tokens", {})
    top = ", ".join(f"{k} {v}" + (f" ({tokens_of[k]:,} tokens)" if k in tokens_of else "")
                    for k, v in list(known.items())[:8])
    unknown = counts["languages"].get("(unknown)", 0)
    more = ", …" if len(known) > 8 else ""
    lines.append(f"  languages kept, files (tokens): {len(known)}: {top}{more}"
                 + (f"; {unknown} files without a language" if unknown else ""))
    tokens = f", {run['shards']['tokens']:,} tokens" if "tokens" in run["shards"] else ""
    lines.append(f"  shards: {run['shards']['shards']} ({run['shards']['rows']} rows{tokens})")
    seconds = ", ".join(f"{s['name']} {s['seconds']:.1f}" for s in run["stages"])
    lines.append(f"  seconds per stage (summed over workers; ingest includes fetching): {seconds}")
    if run["units"]["resumed"]:
        lines.append(f"  resumed: {run['units']['resumed']} of {run['units']['total']} units were already done")
    lines.append(f"  manifests: {run['out_dir']}/manifest/ (files/, sbom/, repos.parquet, attribution.parquet, "
                 "run.json); NOTICE and the dataset card README.md beside them")
    if "tokens" in run["shards"]:
        lines.append(f"  shards and tokenizer: {run['out_dir']}/shards/, {run['out_dir']}/tokenizer.json, "
                     f"their index {run['out_dir']}/index.json")
    return "\n".join(lines)
