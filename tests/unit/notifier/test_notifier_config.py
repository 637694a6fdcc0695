"""Secrets from env or files, masked; subscriptions reloaded on change or on request; Slack text
escaped and cut to Slack's limits; settings validated."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.notifier.blocks import alert_message, digest_message
from dmzwatch.notifier.channels import SlackChannel, WebhookChannel
from dmzwatch.notifier.credentials import Scrubber, redact_url
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.routes import Route, make_channel, make_routes
from dmzwatch.notifier.settings import NotifierSettings
from dmzwatch.notifier.subscriptions import Subscription
from dmzwatch.notifier.watcher import SubscriptionWatcher
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.errors import ConfigurationError
from tests.notifier_support import SECRET, make_alert, subscription

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"


def test_urls_are_redacted_to_scheme_and_host() -> None:
    assert redact_url(SLACK_URL) == "https://hooks.slack.com/***"
    assert redact_url("http://user:pw@127.0.0.1:8080/x?token=1") == "http://127.0.0.1:8080/***"
    scrub = Scrubber({SLACK_URL: redact_url(SLACK_URL), "s3cr3t": "***"})
    assert scrub(f"failed {SLACK_URL} with s3cr3t") == "failed https://hooks.slack.com/*** with ***"


def test_secrets_come_from_the_environment_or_files(tmp_path) -> None:
    (tmp_path / "url").write_text(SLACK_URL + "\n")
    (tmp_path / "key").write_text(SECRET)
    clock = ManualClock()
    slack = subscription("s", slack={"url_file": str(tmp_path / "url")})
    assert isinstance(make_channel(slack, {}, clock, 5), SlackChannel)
    hook = subscription("h", webhook={"url_env": "HOOK_URL", "secret_file": str(tmp_path / "key")})
    channel = make_channel(hook, {"HOOK_URL": "https://partner.example/x"}, clock, 5)
    assert isinstance(channel, WebhookChannel)
    channel.close()


@pytest.mark.parametrize(
    ("target", "environ", "message"),
    [
        ({"webhook": {"url_env": "NOPE"}}, {}, "environment variable NOPE is not set"),
        ({"webhook": {"url_file": "/nonexistent/u"}}, {}, "cannot read /nonexistent/u"),
        ({"webhook": {"url_env": "U"}}, {"U": "  "}, "the secret is empty"),
        ({"webhook": {"url_env": "U"}}, {"U": "ftp://x.example/"}, "only http"),
        (
            {"webhook": {"url_env": "U", "secret": "not base64 at all!"}},
            {"U": SLACK_URL},
            "not a Standard Webhooks key",
        ),
    ],
)
def test_missing_or_bad_secrets_name_the_source_not_the_value(target, environ, message) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        make_channel(subscription("x", **target), environ, ManualClock(), 5)
    assert "subscription x" in str(caught.value)
    assert "XXXXSECRETXXXX" not in str(caught.value) and "not base64" not in str(caught.value)


def test_subscription_repr_masks_inline_secrets() -> None:
    sub = subscription("x", webhook={"url": SLACK_URL, "secret": SECRET})
    assert "XXXXSECRETXXXX" not in repr(sub) and SECRET not in repr(sub)


class Applied:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, routes: tuple[Route, ...]) -> None:
        self.calls.append([r.subscription.name for r in routes])


def _watcher(path, applied):
    metrics = NotifierMetrics(CollectorRegistry())

    def build(subs: tuple[Subscription, ...]) -> tuple[Route, ...]:
        return make_routes(subs, {"U": "http://127.0.0.1:9/x"}, ManualClock(), 5)

    return SubscriptionWatcher(path, build, applied, metrics), metrics


def test_the_subscriptions_file_is_reloaded_when_it_changes_and_a_bad_one_is_ignored(
    tmp_path,
) -> None:
    path = tmp_path / "subs.yaml"
    path.write_text("subscriptions:\n  - {name: a, webhook: {url_env: U}}\n")
    applied = Applied()
    watcher, metrics = _watcher(path, applied)
    watcher.load()
    assert applied.calls == [["a"]] and watcher.check() is False  # unchanged
    path.write_text(
        "subscriptions:\n  - {name: a, webhook: {url_env: U}}\n"
        "  - {name: b, webhook: {url_env: U}, mode: digest}\n"
    )
    assert watcher.check() is True and applied.calls[-1] == ["a", "b"]
    path.write_text("subscriptions:\n  - {name: a, webhook: {url_env: MISSING}}\n")
    assert watcher.check() is False and watcher.check() is False  # reported once, kept
    path.write_text("subscriptions: [")
    assert watcher.check() is False
    assert applied.calls[-1] == ["a", "b"]
    reloads = metrics.reloads.labels
    assert reloads("error")._value.get() == 2 and reloads("ok")._value.get() == 1


def test_a_reload_request_rereads_an_unchanged_file(tmp_path) -> None:
    path = tmp_path / "subs.yaml"
    path.write_text("subscriptions:\n  - {name: a, webhook: {url_env: U}}\n")
    applied = Applied()
    watcher, _ = _watcher(path, applied)
    watcher.load()
    assert watcher.check(force=True) is True and len(applied.calls) == 2


def test_a_bad_file_at_start_up_refuses_to_start(tmp_path) -> None:
    path = tmp_path / "subs.yaml"
    path.write_text("subscriptions:\n  - {name: a, webhook: {url_env: MISSING}}\n")
    watcher, _ = _watcher(path, Applied())
    with pytest.raises(ConfigurationError, match="MISSING"):
        watcher.load()


def test_slack_text_is_escaped_and_cut_to_slack_limits() -> None:
    long_title = "A|B <script> " + "x" * 400
    alert = make_alert(title=long_title, evidence=("q " * 1000,), url="javascript:alert(1)")
    text, blocks = alert_message(alert)
    link = blocks[1]["text"]["text"]
    assert "<script>" not in link and "&lt;script&gt;" in link and "javascript" not in link
    assert "|" not in link and len(link) < 300
    assert len(blocks[0]["text"]["text"]) <= 150 and len(text) <= 300
    assert len(blocks[3]["text"]["text"]) < 320


def test_a_digest_of_many_alerts_stays_within_fifty_blocks() -> None:
    alerts = [make_alert(f"id-{i}") for i in range(40)]
    window = (alerts[0].time, alerts[0].time)
    _, blocks = digest_message(alerts, window)
    assert len(blocks) <= 50 and blocks[-1]["elements"][0]["text"] == "…and 20 more in this window"


def test_the_lease_must_outlive_a_request() -> None:
    with pytest.raises(ValueError, match="lease"):
        NotifierSettings(webhook_timeout_seconds=30, delivery_lease_seconds=20)
