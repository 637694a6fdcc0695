"""`dmzwatch demo` (what `make demo` runs) on the real broker and Redis."""

from __future__ import annotations

import io

import yaml

from dmzwatch.demo import print_result, run_demo
from dmzwatch.shared.identity import canonical_url
from dmzwatch.shared.settings import CommonSettings
from tests.conftest import REDIS_URL, REPO

EXPECTED = yaml.safe_load((REPO / "cli/demo_feeds/expected.yaml").read_text())


def test_demo_fires_the_right_categories_once_per_story(bootstrap_servers: str) -> None:
    settings = CommonSettings(kafka_bootstrap_servers=bootstrap_servers, redis_url=REDIS_URL)
    result = run_demo(settings, polls=2, timeout=90)
    out = io.StringIO()
    print_result(result, out)
    assert result.complete, out.getvalue()

    labelled = {canonical_url(link): set(labels) for link, labels in EXPECTED["articles"].items()}
    for alert in result.alerts:
        assert alert.data.category in labelled[alert.data.url], (
            alert.data.title,
            alert.data.category,
        )
    got = sorted(a.data.category for a in result.alerts)
    assert got == sorted(a["label"] for a in EXPECTED["alerts"]), out.getvalue()
    assert len({a.id for a in result.alerts}) == len(result.alerts)
    # The second poll brought the same documents: the poller published nothing new. The article
    # repeated with tracking parameters in another feed was dropped by dedup, and the
    # syndicated copy joined its story without a second alert.
    assert result.raw == len(EXPECTED["articles"])
    assert result.duplicates["url"] == 1
    assert result.syndicated == 1
    assert result.decisions == result.unique + result.syndicated
    assert "pipeline complete       yes" in out.getvalue()
