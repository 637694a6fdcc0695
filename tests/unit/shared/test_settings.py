import pytest
from pydantic import ValidationError

from dmzwatch.shared.settings import CommonSettings, mask_url


def test_settings_come_from_prefixed_environment(monkeypatch) -> None:
    monkeypatch.setenv("DMZWATCH_KAFKA_BOOTSTRAP_SERVERS", "a:1, b:2")
    monkeypatch.setenv("DMZWATCH_TOPIC_PREFIX", "staging")
    settings = CommonSettings()
    assert settings.bootstrap_servers == ["a:1", "b:2"]
    assert settings.topics().articles_raw == "staging.articles.raw"
    assert settings.group_id("dedup") == "dmzwatch-dedup"


def test_secrets_are_masked(monkeypatch) -> None:
    monkeypatch.setenv("DMZWATCH_REDIS_URL", "redis://user:hunter2@cache:6379/1")
    settings = CommonSettings()
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.masked_redis_url()
    assert settings.masked_redis_url() == "redis://user:***@cache:6379/1"
    assert mask_url("https://hooks.example/x") == "https://hooks.example/x"


@pytest.mark.parametrize("servers", ["", "no-port", "a:1,,b"])
def test_bad_bootstrap_servers_are_refused_at_start(monkeypatch, servers: str) -> None:
    monkeypatch.setenv("DMZWATCH_KAFKA_BOOTSTRAP_SERVERS", servers)
    if servers == "a:1,,b":
        with pytest.raises(ValidationError):
            CommonSettings()
    else:
        with pytest.raises(ValidationError, match="host:port"):
            CommonSettings()
