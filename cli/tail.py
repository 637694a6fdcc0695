"""``dmzwatch tail``: print alerts as they arrive on the alert topics."""

from __future__ import annotations

import sys
import uuid
from typing import TextIO

from kafka import KafkaConsumer

from dmzwatch.shared.errors import InvalidMessage
from dmzwatch.shared.messages import Alert, decode
from dmzwatch.shared.settings import CommonSettings


def format_alert(alert: Alert) -> str:
    """One human line per alert."""
    data = alert.data
    when = data.published_at.isoformat() if data.published_at else "date unknown"
    # The strongest evidence besides the title, which the line already shows.
    quote = next((e for e in data.evidence if e != data.title), None)
    evidence = f" “{quote[:200]}”" if quote else " (the title is the evidence)"
    return (
        f"[{data.category.upper()}] {data.title} — {data.source} ({when})\n"
        f"    score {data.score:.2f}, {data.certainty} wording, {data.status} by "
        f"{data.corroboration.sources} outlet(s)\n    {data.url}\n   {evidence}"
    )


def tail(
    settings: CommonSettings,
    category: str | None,
    *,
    from_beginning: bool,
    as_json: bool,
    out: TextIO = sys.stdout,
    max_alerts: int | None = None,
    idle_timeout_ms: int | None = None,
) -> int:
    """Print alerts until interrupted (or ``max_alerts``/``idle_timeout_ms``); returns the count."""
    topics = settings.topics()
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        # A throwaway group: every tail sees every alert, and commits nothing anyone relies on.
        group_id=f"{settings.consumer_group_prefix}-tail-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        consumer_timeout_ms=idle_timeout_ms if idle_timeout_ms is not None else float("inf"),
    )
    if category:
        consumer.subscribe([f"{settings.topic_prefix}.alerts.{category}"])
    else:
        consumer.subscribe(pattern=topics.alerts_pattern)
    count = 0
    try:
        for record in consumer:
            try:
                alert = decode(Alert, record.value)
            except InvalidMessage as exc:
                print(f"# skipped a message that is not an alert: {exc}", file=sys.stderr)
                continue
            print(alert.model_dump_json() if as_json else format_alert(alert), file=out, flush=True)
            count += 1
            if max_alerts is not None and count >= max_alerts:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return count
