"""First-sighting claims in Redis that survive lost replies and re-deliveries.

A claim is ``SET key token NX EX ttl``: the first writer wins. Two things make the naive version
drop work: redis-py retries a command whose reply was lost, and the retry then finds the key its
own first attempt wrote and reports "exists"; and a Kafka record re-delivered after a crash finds
the key it wrote before the crash. So the value is a token that names the claimant (the record's
:attr:`Context.token`), and a claim whose key already holds *our* token is still ours. The check
and the set run as one Lua script: atomic, one round trip, and safe to repeat.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from dmzwatch.shared.errors import RetryableError

# Returns {won, holder}: won is 1 when the key was free or already held by this token.
_CLAIM_SCRIPT = """
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
if ok then return {1, ARGV[1]} end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return {1, holder} end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, holder}
"""

TRANSIENT_REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
)


def connect_redis(url: str, *, timeout_seconds: float = 2.0, retries: int = 3) -> redis.Redis:
    """A client with short timeouts and a few retries, so a dead Redis is noticed quickly
    (``retries=0`` for a readiness probe, which must answer within one timeout)."""
    client: redis.Redis = redis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        health_check_interval=30,
        decode_responses=False,
    )
    return client


def redis_probe(client: redis.Redis) -> None:
    """Readiness probe: returns when Redis answers PING."""
    client.ping()


@dataclass(frozen=True, slots=True)
class Claim:
    won: bool
    holder: str


class Claims(ABC):
    """Token claims on keys under one prefix: the first claimant of a key wins it.

    ``claim`` returns ``won=True`` for the first claimant and for any repeat of the same token,
    ``won=False`` (with the holder's token) for anyone else. It raises :class:`RetryableError`
    when the backing store cannot be reached (the runner then retries the record).
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    @abstractmethod
    def claim(self, key: str, token: str, ttl_seconds: int) -> Claim: ...

    @abstractmethod
    def get(self, key: str) -> str | None: ...


class MemoryClaims(Claims):
    """Claims in a dict, for unit tests; entries never expire."""

    def __init__(self, prefix: str = "test:") -> None:
        super().__init__(prefix)
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}

    def claim(self, key: str, token: str, ttl_seconds: int) -> Claim:
        with self._lock:
            holder = self._keys.setdefault(key, token)
        return Claim(holder == token, holder)

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._keys.get(key)


class RedisClaims(Claims):
    """Claims in Redis with a TTL, checked and set atomically by a Lua script."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        super().__init__(prefix)
        self._client = client
        self._script = client.register_script(_CLAIM_SCRIPT)

    def claim(self, key: str, token: str, ttl_seconds: int) -> Claim:
        """Claim ``key`` for ``token``; won by the first claimant, or a repeat of it."""
        try:
            won, holder = self._script(keys=[key], args=[token, ttl_seconds])
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc
        return Claim(bool(won), holder.decode() if isinstance(holder, bytes) else str(holder))

    def get(self, key: str) -> str | None:
        try:
            value = self._client.get(key)
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc
        return value.decode() if isinstance(value, bytes) else None
