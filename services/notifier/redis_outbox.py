"""The outbox in Redis: each operation one Lua script, so it is atomic across replicas.

Keys, under ``<prefix>notifier:``:
- ``rec:<sub>:<version>:<alert id>`` hash (state, body, enq, origin, key): a delivery record;
  no expiry while pending, ``ledger_ttl_seconds`` once finished (body dropped).
- ``q:<sub>`` sorted set: items by due time (a claimed item's score is its lease's end).
- ``att:<sub>`` / ``err:<sub>`` hashes: attempts and last error per item.
- ``dw:<sub>:<window>`` set: the members of a digest window; ``dc:<sub>:<window>`` marks it
  closed (claimed), so later alerts go to the next window.
- ``rl:<sub>`` hash (tat, pause): the rate limit (GCRA) and a ``Retry-After`` pause.
Scripts build some keys from prefixes, so this needs a single Redis (not Redis Cluster). The
guarantees hold as far as Redis keeps its writes: run it with AOF (``appendonly yes``).
"""

from __future__ import annotations

from typing import Any

import redis

from dmzwatch.notifier.outbox import (
    Claimed,
    Idle,
    Outbox,
    Outcome,
    Pending,
    Scheduled,
    digest_window,
)
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS
from dmzwatch.shared.errors import RetryableError

_SCHEDULE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ''} end
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[4])
local f = {'body', ARGV[1], 'enq', ARGV[2], 'origin', ARGV[7], 'key', ARGV[8]}
if n == 0 then
  redis.call('HSET', KEYS[1], 'state', 'queued', unpack(f))
  redis.call('ZADD', KEYS[2], ARGV[2], 'a:' .. ARGV[3])
  return {1, 'a:' .. ARGV[3]}
end
local w = math.floor(now / n) * n
while redis.call('EXISTS', ARGV[6] .. string.format('%d', w)) == 1 do w = w + n end
local ws = string.format('%d', w)
redis.call('HSET', KEYS[1], 'state', 'digest', unpack(f))
redis.call('SADD', ARGV[5] .. ws, ARGV[3])
redis.call('ZADD', KEYS[2], 'NX', w + n, 'd:' .. ws)
return {1, 'd:' .. ws}
"""

_CLAIM = """
local now = tonumber(ARGV[1])
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #head == 0 then return {0, '', '-1'} end
local due = tonumber(head[2])
if due > now then return {0, '', tostring(due - now)} end
local rl = redis.call('HMGET', KEYS[2], 'tat', 'pause')
local tat = tonumber(rl[1] or '0')
local pause = tonumber(rl[2] or '0')
if pause > now then return {0, '', tostring(pause - now)} end
local interval = tonumber(ARGV[3])
local allowed = tat - interval * (tonumber(ARGV[4]) - 1)
if allowed > now then return {0, '', tostring(allowed - now)} end
redis.call('HSET', KEYS[2], 'tat', tostring(math.max(tat, now) + interval))
local item = head[1]
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), item)
local attempt = redis.call('HINCRBY', KEYS[3], item, 1)
if string.sub(item, 1, 2) == 'd:' then
  redis.call('SET', ARGV[5] .. string.sub(item, 3), '1', 'EX', ARGV[6])
end
return {1, item, tostring(attempt)}
"""

_FINISH = """
local item = ARGV[1]
local members
if string.sub(item, 1, 2) == 'd:' then
  local wkey = ARGV[5] .. string.sub(item, 3)
  members = redis.call('SMEMBERS', wkey)
  redis.call('DEL', wkey)
else
  members = {string.sub(item, 3)}
end
for _, m in ipairs(members) do
  local rec = ARGV[4] .. m
  if redis.call('EXISTS', rec) == 1 then
    redis.call('HSET', rec, 'state', ARGV[2])
    redis.call('HDEL', rec, 'body')
    redis.call('EXPIRE', rec, ARGV[3])
  end
end
redis.call('ZREM', KEYS[1], item)
redis.call('HDEL', KEYS[2], item)
redis.call('HDEL', KEYS[3], item)
return #members
"""

_RETRY = """
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
local pause = tonumber(ARGV[3])
if pause > 0 then
  local current = tonumber(redis.call('HGET', KEYS[2], 'pause') or '0')
  if pause > current then redis.call('HSET', KEYS[2], 'pause', ARGV[3]) end
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return 1
"""

CLOSED_WINDOW_TTL_SECONDS = 2 * 86400


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisOutbox(Outbox):
    """The production outbox (see the module docstring for its keys)."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._client = client
        self._p = f"{key_prefix}notifier:"
        self._schedule = client.register_script(_SCHEDULE)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._retry = client.register_script(_RETRY)

    def _keys(self, sub: str) -> dict[str, str]:
        p = self._p
        return {
            "rec": f"{p}rec:{sub}:",
            "q": f"{p}q:{sub}",
            "att": f"{p}att:{sub}",
            "err": f"{p}err:{sub}",
            "dw": f"{p}dw:{sub}:",
            "dc": f"{p}dc:{sub}:",
            "rl": f"{p}rl:{sub}",
        }

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc

    def schedule(
        self,
        subscription: str,
        alert_id: str,
        version: int,
        body: bytes,
        *,
        now: float,
        digest_seconds: int = 0,
        origin: str | None = None,
        key: str | None = None,
    ) -> Scheduled:
        k = self._keys(subscription)
        member = f"{version}:{alert_id}"
        created, item = self._run(
            self._schedule,
            [k["rec"] + member, k["q"]],
            [body, repr(now), member, digest_seconds, k["dw"], k["dc"], origin or "", key or ""],
        )
        return Scheduled(bool(created), _text(item) or f"a:{member}")

    def claim(
        self,
        subscription: str,
        *,
        now: float,
        lease_seconds: float,
        interval_seconds: float,
        burst: int,
    ) -> Claimed | Idle:
        k = self._keys(subscription)
        won, item, extra = self._run(
            self._claim,
            [k["q"], k["rl"], k["att"]],
            [
                repr(now),
                repr(lease_seconds),
                repr(interval_seconds),
                burst,
                k["dc"],
                CLOSED_WINDOW_TTL_SECONDS,
            ],
        )
        if won:
            return Claimed(_text(item), int(_text(extra)))
        wait = float(_text(extra))
        return Idle(None if wait < 0 else wait)

    def load(self, subscription: str, item: str) -> Pending:
        k = self._keys(subscription)
        try:
            window = digest_window(item)
            if window is None:
                members = [item[2:]]
            else:
                raw = self._client.smembers(f"{k['dw']}{window}")
                members = sorted(_text(m) for m in raw)
            pipe = self._client.pipeline(transaction=False)
            for member in members:
                pipe.hmget(k["rec"] + member, "state", "body", "enq", "origin", "key")
            rows = pipe.execute()
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc
        found = [
            row
            for row in rows
            if row[0] is not None and _text(row[0]) in ("queued", "digest") and row[1]
        ]
        if not found:
            return Pending((), 0.0)
        single = found[0] if window is None else None
        return Pending(
            tuple(bytes(row[1]) for row in found),
            min(float(_text(row[2])) for row in found),
            (_text(single[3]) or None) if single and single[3] else None,
            (_text(single[4]) or None) if single and single[4] else None,
        )

    def finish(
        self, subscription: str, item: str, outcome: Outcome, ledger_ttl_seconds: int
    ) -> None:
        k = self._keys(subscription)
        self._run(
            self._finish,
            [k["q"], k["att"], k["err"]],
            [item, outcome, ledger_ttl_seconds, k["rec"], k["dw"]],
        )

    def retry(
        self,
        subscription: str,
        item: str,
        *,
        due: float,
        pause_until: float | None = None,
        error: str = "",
    ) -> None:
        k = self._keys(subscription)
        self._run(
            self._retry,
            [k["q"], k["rl"], k["err"]],
            [item, repr(due), repr(pause_until or 0.0), error[:500]],
        )

    def depth(self, subscription: str) -> int:
        try:
            return int(self._client.zcard(self._keys(subscription)["q"]))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc

    def state(self, subscription: str, alert_id: str, version: int) -> str | None:
        """The record's state (diagnostics and tests)."""
        value = self._client.hget(f"{self._keys(subscription)['rec']}{version}:{alert_id}", "state")
        return _text(value) if value is not None else None
