"""``make bench``: run every benchmark, print one table, write ``bench/results.json``.

``python -m bench --only replay,latency`` runs some of them (names below); the figures of the
others already in ``bench/results.json`` are kept, so the file always holds the latest of each.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

from bench.figures import Figure, machine, table

RESULTS = Path(__file__).resolve().parent / "results.json"
# In running order: the pipeline benchmarks start their own broker and processes.
BENCHMARKS = (
    "classifier",
    "poller",
    "dedup",
    "memory",
    "replay",
    "latency",
    "detection",
    "websub",
    "scaleout",
)


def available() -> list[str]:
    """The benchmarks present (``websub`` only once its module exists)."""
    here = Path(__file__).resolve().parent
    return [name for name in BENCHMARKS if (here / f"{name}.py").exists()]


def main(argv: list[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated, of: {','.join(names)}")
    args = parser.parse_args(argv)
    chosen = names if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {names}")
    started = time.monotonic()
    figures: list[Figure] = []
    seconds: dict[str, float] = {}
    failed: list[str] = []
    for name in chosen:
        began = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            figures.extend(module.figures())
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        seconds[name] = round(time.monotonic() - began, 1)
    print(table(figures))
    previous: dict[str, object] = {}
    if args.only and RESULTS.exists():
        previous = json.loads(RESULTS.read_text()).get("figures", {})
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine(),
                "seconds": round(time.monotonic() - started, 1),
                "seconds_per_benchmark": seconds,
                "command": "make bench" if not args.only else f"python -m bench --only {args.only}",
                "figures": {**previous, **{f.name: f.as_json() for f in figures}},
            },
            indent=2,
            allow_nan=False,
        )
        + "\n"
    )
    print(f"\n{sum(seconds.values()):.0f}s; written to {RESULTS}")
    if failed:
        print(f"FAILED to run: {', '.join(failed)}")
    return 0 if not failed and all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
