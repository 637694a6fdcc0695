"""Slack Block Kit messages for alerts and digests (pure functions: alert in, JSON out).

Built to read well on a phone: a short header, the linked title on its own line, the facts as
two-column fields (Slack stacks them on narrow screens), one evidence quote, entities in small
print. Every text is escaped for Slack's mrkdwn and cut to Slack's limits, so a long title or
quote can never make Slack refuse the message (which would be a dead letter, not a retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dmzwatch.shared.messages import Alert

Block = dict[str, Any]

HEADER_LIMIT = 150  # Slack: header text
TEXT_LIMIT = 3000  # Slack: section text
FIELD_LIMIT = 2000  # Slack: each field
DIGEST_MAX_ALERTS = 20  # 1 header + 2 blocks per alert + 1 context stays under Slack's 50
QUOTE_LIMIT = 300
TITLE_LIMIT = 250


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def oneline(text: str, limit: int) -> str:
    """``text`` on one line (runs of whitespace made one space), cut to ``limit``."""
    return cut(" ".join(text.split()), limit)


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _link(alert: Alert) -> str:
    # In <url|label> the label may not hold '|' or '>': escaping covers '>', '|' is replaced.
    title = escape(oneline(alert.data.title, TITLE_LIMIT)).replace("|", "¦")
    url = alert.data.url
    if url and url.startswith(("http://", "https://")):
        return f"*<{escape(url).replace('|', '%7C')}|{title}>*"
    return f"*{title}*"


def _outlets(alert: Alert) -> str:
    outlets = alert.data.corroboration.outlets or (alert.data.source,)
    shown = ", ".join(outlets[:5]) + (f" +{len(outlets) - 5}" if len(outlets) > 5 else "")
    return f"{escape(shown)} ({alert.data.corroboration.sources})"


def _quote(alert: Alert) -> str | None:
    if not alert.data.evidence:
        return None
    return "> _" + escape(oneline(alert.data.evidence[0], QUOTE_LIMIT)) + "_"


def _entities(alert: Alert) -> str | None:
    entities = alert.data.entities
    parts = [
        f"{label}: {escape(', '.join(names[:6]))}"
        for label, names in (
            ("People", entities.people),
            ("Places", entities.places),
            ("Organisations", entities.organisations),
        )
        if names
    ]
    return cut(" · ".join(parts), FIELD_LIMIT) if parts else None


def _category(alert: Alert) -> str:
    return alert.data.category.replace("_", " ").capitalize()


def fallback_text(alert: Alert) -> str:
    """The plain text of the notification (phone lock screens, screen readers)."""
    return oneline(f"{_category(alert)} ({alert.data.status}): {alert.data.title}", 300)


def alert_message(alert: Alert) -> tuple[str, list[Block]]:
    """The fallback text and blocks of one alert."""
    data = alert.data
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": cut(f"{_category(alert)} alert · {data.status}", HEADER_LIMIT),
                "emoji": True,
            },
        },
        {"type": "section", "text": _mrkdwn(cut(_link(alert), TEXT_LIMIT))},
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Category*\n{escape(data.category)}"),
                _mrkdwn(f"*Score*\n{data.score:.2f}"),
                _mrkdwn(cut(f"*Outlets*\n{_outlets(alert)}", FIELD_LIMIT)),
                _mrkdwn(f"*Status*\n{escape(data.status)}"),
            ],
        },
    ]
    quote = _quote(alert)
    if quote is not None:
        blocks.append({"type": "section", "text": _mrkdwn(quote)})
    entities = _entities(alert)
    if entities is not None:
        blocks.append({"type": "context", "elements": [_mrkdwn(entities)]})
    published = data.published_at.strftime("%Y-%m-%d %H:%M UTC") if data.published_at else "—"
    blocks.append(
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    cut(
                        f"{escape(data.source)} · published {published} · v{data.version}"
                        f" · `{escape(alert.id)}`",
                        FIELD_LIMIT,
                    )
                )
            ],
        }
    )
    return fallback_text(alert), blocks


def digest_message(
    alerts: Sequence[Alert], window: tuple[datetime, datetime]
) -> tuple[str, list[Block]]:
    """The fallback text and blocks of a digest: one compact section per alert, newest first."""
    start, end = window
    span = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
    ordered = sorted(alerts, key=lambda a: a.time, reverse=True)
    noun = "alert" if len(alerts) == 1 else "alerts"
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": cut(f"dmzwatch digest · {len(alerts)} {noun}", HEADER_LIMIT),
                "emoji": True,
            },
        },
        {"type": "context", "elements": [_mrkdwn(span)]},
    ]
    for alert in ordered[:DIGEST_MAX_ALERTS]:
        facts = (
            f"{escape(alert.data.category)} · score {alert.data.score:.2f} · "
            f"{alert.data.status} · {_outlets(alert)}"
        )
        lines = [_link(alert), facts]
        quote = _quote(alert)
        if quote is not None:
            lines.append(quote)
        blocks.append({"type": "section", "text": _mrkdwn(cut("\n".join(lines), TEXT_LIMIT))})
        blocks.append({"type": "divider"})
    if len(ordered) > DIGEST_MAX_ALERTS:
        more = len(ordered) - DIGEST_MAX_ALERTS
        blocks.append(
            {"type": "context", "elements": [_mrkdwn(f"…and {more} more in this window")]}
        )
    text = f"dmzwatch digest: {len(alerts)} {noun} ({span})"
    return text, blocks
