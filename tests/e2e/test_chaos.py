"""The short chaos run (``python -m chaos --short``) on every change: the real pipeline as
processes, on its own Redis and Tansu behind fault proxies, under the CI list of faults.

Every row must lose no article, notify no alert twice and leave no alert undelivered, and the
pipeline must drain after every fault. The full list is ``make chaos``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.cluster import Cluster
from chaos.harness import SHORT, Row, format_row, header, run_faults


@pytest.mark.timeout(600)
def test_short_chaos_run_loses_nothing_and_notifies_once(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    rows: list[Row] = []
    try:
        cluster.start()
        print("\n" + header())
        rows = run_faults(
            cluster, SHORT, drain_seconds=90, on_row=lambda row: print(format_row(row))
        )
        delivered = [len(r.delivered) for r in cluster.receivers]
    finally:
        cluster.stop()
    assert [r.fault for r in rows] == [f.name for f in SHORT]
    for row in rows:
        assert row.lost == 0, row
        assert row.duplicated_notifications == 0, row
        assert row.undelivered == 0, row
        assert row.recover_seconds is not None, f"did not drain: {row}"
    # The run did something: articles flowed in every row, alerts reached both receivers, and
    # the poison went to the dead-letter topic (3 rounds of 3 bad records).
    assert all(row.articles_in > 0 for row in rows)
    assert all(n > 0 for n in delivered), delivered
    poison = next(r for r in rows if r.fault.startswith("poison"))
    assert poison.deadletters >= 9
