"""What every benchmark shares: `timed` (the median of repeated runs), and its ending, `publish`
(its figures printed, and kept in bench/results/NAME.json)."""

import json
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish(name: str, result: dict) -> None:
    text = json.dumps(result, indent=2) + "\n"
    print(text, end="")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(text)


def timed(fn, repeat: int, clock=time.perf_counter) -> float:
    """Median seconds of `repeat` calls of `fn`: wall time, or CPU time with
    `clock=time.process_time` (what a shared machine does not stretch)."""
    runs = []
    for _ in range(repeat):
        started = clock()
        fn()
        runs.append(clock() - started)
    return statistics.median(runs)
