"""``make bench``: run every benchmark, print one table, write ``bench/results.json``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench import classifier, dedup, poller
from bench.figures import Figure, machine, table

RESULTS = Path(__file__).resolve().parent / "results.json"


def main() -> int:
    started = time.monotonic()
    figures: list[Figure] = []
    for module in (classifier, poller, dedup):
        figures.extend(module.figures())
    print(table(figures))
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine(),
                "seconds": round(time.monotonic() - started, 1),
                "command": "make bench",
                "figures": {f.name: f.as_json() for f in figures},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {RESULTS}")
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
