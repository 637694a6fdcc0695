"""The alert ledger: which article raises a story's alert, and the alert's one corroboration.

Redis keys (``<p>`` is ``DMZWATCH_REDIS_KEY_PREFIX``), both living ``DMZWATCH_ALERT_TTL_SECONDS``:

- ``<p>al:{<story>}:<category>``: the id of the article that raised the alert, a newline, and
  the alert as sent (version 1), so that any later copy can send the update;
- ``<p>co:{<story>}:<category>``: the id of the article whose arrival corroborated it.

Both carry the story id as their hash tag, so the scripts that read one and claim the other
touch one hash slot (Redis Cluster). Claims hold the article id: a re-delivered article wins its
own claim again (the alert is produced again, the same id and version), anyone else loses.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS
from dmzwatch.shared.errors import RetryableError

# KEYS[1] the alert. ARGV: article id, alert body, TTL.
_RAISE = """
local held = redis.call('GET', KEYS[1])
if not held then
  redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. ARGV[2], 'EX', ARGV[3])
  return 1
end
local nl = string.find(held, '\\n', 1, true)
if nl and string.sub(held, 1, nl - 1) == ARGV[1] then return 1 end
return 0
"""
# KEYS: (alert, corroboration) pairs. ARGV: article id, TTL. One body per pair ('' for none).
_CORROBORATE = """
local out = {}
for i = 1, #KEYS, 2 do
  local body = ''
  local held = redis.call('GET', KEYS[i])
  if held then
    local won = redis.call('SET', KEYS[i + 1], ARGV[1], 'NX', 'EX', ARGV[2])
    if won or redis.call('GET', KEYS[i + 1]) == ARGV[1] then
      body = string.sub(held, string.find(held, '\\n', 1, true) + 1)
    end
  end
  table.insert(out, body)
end
return out
"""


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    """``raise_alert`` as a value, for ``AlertLedger.run_many``."""

    story_id: str
    category: str
    article_id: str
    alert: bytes


@dataclass(frozen=True, slots=True)
class Corroborate:
    """``corroborate`` as a value, for ``AlertLedger.run_many``."""

    story_id: str
    categories: tuple[str, ...]
    article_id: str


LedgerCall = RaiseAlert | Corroborate
LedgerAnswer = bool | dict[str, bytes] | Exception
"""What one call of ``run_many`` gave: ``raise_alert``'s or ``corroborate``'s answer, or the
exception that call alone met."""


class AlertLedger(ABC):
    """Per story and category: the alert raised, and whether its corroboration was sent.

    ``raise_alert`` returns True for the first article of the story to fire the category, and
    stores ``alert`` (the encoded version 1); True again for that same article if it is
    re-delivered (a crash before the alert was produced does not lose it); False for any later
    article. ``corroborate`` is called for an article whose story has reached the corroboration
    threshold: for each of ``categories`` whose alert was raised and not yet corroborated it
    claims the corroboration for this article and returns the stored alerts it won, by category
    (the same again if this article is re-delivered; nothing for anyone else). Both raise
    :class:`RetryableError` when the store is down.
    """

    @abstractmethod
    def raise_alert(self, story_id: str, category: str, article_id: str, alert: bytes) -> bool: ...

    @abstractmethod
    def corroborate(
        self, story_id: str, categories: Sequence[str], article_id: str
    ) -> dict[str, bytes]: ...

    def run_many(self, calls: Sequence[LedgerCall]) -> list[LedgerAnswer]:
        """Each call in order, with the same answers as one after another (a store may send
        them in one round trip). A failure of one call is its answer; a store that is down
        raises :class:`RetryableError` for the whole batch."""
        answers: list[LedgerAnswer] = []
        for call in calls:
            try:
                if isinstance(call, RaiseAlert):
                    answers.append(
                        self.raise_alert(call.story_id, call.category, call.article_id, call.alert)
                    )
                else:
                    answers.append(
                        self.corroborate(call.story_id, call.categories, call.article_id)
                    )
            except RetryableError:
                raise
            except Exception as exc:
                answers.append(exc)
        return answers


class MemoryAlertLedger(AlertLedger):
    """The ledger in dicts (unit tests); nothing expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: dict[tuple[str, str], tuple[str, bytes]] = {}
        self._corroborations: dict[tuple[str, str], str] = {}

    def raise_alert(self, story_id: str, category: str, article_id: str, alert: bytes) -> bool:
        with self._lock:
            holder, _ = self._alerts.setdefault((story_id, category), (article_id, alert))
        return holder == article_id

    def corroborate(
        self, story_id: str, categories: Sequence[str], article_id: str
    ) -> dict[str, bytes]:
        won: dict[str, bytes] = {}
        with self._lock:
            for category in categories:
                raised = self._alerts.get((story_id, category))
                if raised is None:
                    continue
                key = (story_id, category)
                if self._corroborations.setdefault(key, article_id) == article_id:
                    won[category] = raised[1]
        return won


class RedisAlertLedger(AlertLedger):
    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._raise = client.register_script(_RAISE)
        self._corroborate = client.register_script(_CORROBORATE)

    def _key(self, kind: str, story_id: str, category: str) -> str:
        return f"{self._prefix}{kind}:{{{story_id}}}:{category}"

    def raise_alert(self, story_id: str, category: str, article_id: str, alert: bytes) -> bool:
        key = self._key("al", story_id, category)
        try:
            return bool(self._raise(keys=[key], args=[article_id, alert, self._ttl]))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc

    def _corroborate_keys(self, story_id: str, categories: Sequence[str]) -> list[str]:
        return [
            self._key(kind, story_id, category) for category in categories for kind in ("al", "co")
        ]

    @staticmethod
    def _won(categories: Sequence[str], bodies: Sequence[bytes]) -> dict[str, bytes]:
        return {
            category: bytes(body) for category, body in zip(categories, bodies, strict=True) if body
        }

    def corroborate(
        self, story_id: str, categories: Sequence[str], article_id: str
    ) -> dict[str, bytes]:
        keys = self._corroborate_keys(story_id, categories)
        try:
            bodies = self._corroborate(keys=keys, args=[article_id, self._ttl])
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc
        return self._won(categories, bodies)

    def run_many(self, calls: Sequence[LedgerCall]) -> list[LedgerAnswer]:
        """Every call in one pipeline (not a transaction: each script is atomic and they run
        in order, so the answers are those of one call after another)."""
        if not calls:
            return []
        pipe = self._client.pipeline(transaction=False)
        for call in calls:
            if isinstance(call, RaiseAlert):
                key = self._key("al", call.story_id, call.category)
                self._raise(keys=[key], args=[call.article_id, call.alert, self._ttl], client=pipe)
            else:
                keys = self._corroborate_keys(call.story_id, call.categories)
                self._corroborate(keys=keys, args=[call.article_id, self._ttl], client=pipe)
        try:
            replies = pipe.execute(raise_on_error=False)
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc
        answers: list[LedgerAnswer] = []
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, TRANSIENT_REDIS_ERRORS):
                raise RetryableError(f"redis unavailable: {reply}")
            if isinstance(reply, Exception):
                answers.append(reply)
            elif isinstance(call, RaiseAlert):
                answers.append(bool(reply))
            else:
                answers.append(self._won(call.categories, reply))
        return answers
