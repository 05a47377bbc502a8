"""What every benchmark ends with: its figures printed, and kept in bench/results/NAME.json."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish(name: str, result: dict) -> None:
    text = json.dumps(result, indent=2) + "\n"
    print(text, end="")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(text)
