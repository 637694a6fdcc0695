"""Secrets of destinations (webhook URLs, signing keys): where they come from, how they are hidden.

A secret is given inline, by the name of an environment variable, or by a file path (e.g. a
Kubernetes or Docker secret); files are read again on every subscriptions reload, so a rotated
secret is picked up without a restart. Webhook URLs are secrets too: Slack's carry their token in
the path, so :func:`redact_url` keeps only the scheme and host.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from dmzwatch.shared.errors import ConfigurationError


def redact_url(url: str) -> str:
    """``scheme://host[:port]/***``: safe for logs, errors and metrics-free diagnostics."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme or '?'}://{host}{port}/***"


class Scrubber:
    """Replaces known secret values in a text (an exception message, a response body)."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        # Longest first, so a URL is replaced before a secret that is a part of it.
        self._pairs = sorted(
            ((s, r) for s, r in secrets.items() if s), key=lambda p: len(p[0]), reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret, replacement in self._pairs:
            text = text.replace(secret, replacement)
        return text


def resolve_secret(
    what: str,
    value: SecretStr | None,
    env: str | None,
    file: Path | None,
    environ: Mapping[str, str],
) -> str | None:
    """The secret from exactly one of its sources, or None when none is given.

    Raises :class:`ConfigurationError` naming the source (never the value) when the variable is
    unset, the file unreadable or the value empty.
    """
    if value is not None:
        secret = value.get_secret_value()
    elif env is not None:
        if env not in environ:
            raise ConfigurationError(f"{what}: environment variable {env} is not set")
        secret = environ[env]
    elif file is not None:
        try:
            secret = file.read_text()
        except OSError as exc:
            raise ConfigurationError(f"{what}: cannot read {file}: {exc.strerror}") from None
    else:
        return None
    secret = secret.strip()
    if not secret:
        raise ConfigurationError(f"{what}: the secret is empty")
    return secret


class SecretSource(BaseModel):
    """Fields shared by destinations: ``url`` / ``url_env`` / ``url_file`` (exactly one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: SecretStr | None = None
    url_env: str | None = None
    url_file: Path | None = None

    def _check_url_source(self) -> None:
        given = [x for x in (self.url, self.url_env, self.url_file) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of url, url_env, url_file")

    def resolve(self, environ: Mapping[str, str]) -> str:
        """The URL itself; raises :class:`ConfigurationError` when its source is missing."""
        url = resolve_secret("url", self.url, self.url_env, self.url_file, environ)
        assert url is not None  # the validator demands one source
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError(f"url {redact_url(url)}: only http(s) URLs are allowed")
        return url
