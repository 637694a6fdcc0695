"""``python -m chaos [--short] [--only NAME...] [--json PATH]``: run the faults, print the table.

Exits 1 when a row lost an article, notified twice or left an alert undelivered.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from chaos.cluster import Cluster
from chaos.harness import FULL, SHORT, Row, format_row, header, run_faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the CI list (a few minutes)")
    parser.add_argument("--only", nargs="*", default=None, help="faults whose name contains …")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    parser.add_argument("--keep", action="store_true", help="keep the logs directory")
    parser.add_argument("--drain", type=float, default=120.0, help="drain timeout per row (s)")
    args = parser.parse_args(argv)
    faults = SHORT if args.short else FULL
    if args.only:
        faults = tuple(f for f in faults if any(word in f.name for word in args.only))
    # Stop cleanly on SIGTERM, and on SIGINT even when started in the background (where it is
    # ignored): the cluster's processes must not outlive the run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="dmzwatch-chaos-"))
    started = time.monotonic()
    print(f"chaos: {len(faults)} faults; logs in {work}", flush=True)
    cluster = Cluster(work)
    rows: list[Row] = []
    try:
        cluster.start()
        print(header(), flush=True)
        rows = run_faults(
            cluster,
            faults,
            drain_seconds=args.drain,
            on_row=lambda row: print(format_row(row), flush=True),
        )
    finally:
        cluster.stop()
    elapsed = time.monotonic() - started
    print(f"\n{len(rows)} faults in {elapsed:.0f} s", flush=True)
    if args.json is not None:
        args.json.write_text(
            json.dumps({"seconds": round(elapsed), "rows": [r.as_json() for r in rows]}, indent=2)
            + "\n"
        )
    if not args.keep and all(r.ok for r in rows):
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if rows and all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
