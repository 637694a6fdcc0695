"""The chaos fault proxy on the real Redis: a reply lost on the way back drops no new article.

``SET NX`` applied, its reply swallowed by the proxy, the client times out and retries on a new
connection: the retry finds the key its own first attempt wrote. A naive claim then reports
"seen" and the article is dropped; a token claim (and dedup's store, which claims the same way)
still treats it as new.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import redis
from prometheus_client import CollectorRegistry

from chaos.proxy import FaultProxy
from dmzwatch.dedup.app import redis_store
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.notifier.channels import Delivery
from dmzwatch.notifier.deadletters import MemoryDeadLetters
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.redis_outbox import RedisOutbox
from dmzwatch.notifier.worker import DestinationWorker, WorkerOptions
from dmzwatch.shared.claims import RedisClaims, connect_redis
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.errors import RetryableError
from dmzwatch.shared.messages import encode
from tests.conftest import REDIS_URL, make_article
from tests.notifier_support import ScriptedChannel, make_alert, route


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    target = urlsplit(REDIS_URL)
    proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 6379)
    yield proxy
    proxy.close()


def through(proxy: FaultProxy) -> redis.Redis:
    """A client made like the services' (timeouts, retries), connected via the proxy."""
    db = urlsplit(REDIS_URL).path.strip("/") or "0"
    return connect_redis(f"redis://{proxy.address}/{db}", timeout_seconds=0.5)


def test_proxy_forwards_then_drops_a_reply_then_forwards_again(proxy: FaultProxy) -> None:
    client = through(proxy)
    assert client.ping()
    proxy.drop_replies(1)
    assert client.ping()  # the first reply is swallowed; redis-py's retry gets the second
    assert proxy.dropped == 1 and proxy.accepted >= 2  # the retry came on a new connection
    client.close()


def test_naive_set_nx_loses_the_article_when_its_reply_is_lost(
    proxy: FaultProxy, key_prefix: str
) -> None:
    """The control: the fault is real and the plain command falls for it."""
    client = through(proxy)
    assert client.ping()  # connected: the next reply is the command's, not the handshake's
    proxy.drop_replies(1)
    first = client.set(key_prefix + "naive", "1", nx=True, ex=60)
    assert proxy.dropped == 1
    assert first is None, "the retry saw the write of its own lost attempt: 'already seen'"
    client.close()


def test_token_claim_with_a_lost_reply_is_still_won(proxy: FaultProxy, key_prefix: str) -> None:
    client = through(proxy)
    claims = RedisClaims(client, key_prefix)
    key = claims.key("seen", "lost-reply")
    claims.claim(claims.key("warm"), "w", 60)  # load the script so the next call is one EVALSHA
    proxy.drop_replies(1)
    claim = claims.claim(key, "articles.raw/0/42", 60)
    assert proxy.dropped == 1
    assert claim.won, "the retry recognised its own claim: the article is still new"
    assert not claims.claim(key, "articles.raw/1/7", 60).won  # anyone else still loses
    client.close()


def test_dedup_store_treats_the_article_as_new_whichever_reply_is_lost(
    proxy: FaultProxy, key_prefix: str
) -> None:
    """Every Redis round trip of one ``remember`` in turn has its reply lost."""
    settings = DedupSettings(redis_key_prefix=key_prefix)
    clock = ManualClock(datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    # How many replies one remember takes (a fresh article, its scripts already loaded).
    probe = through(proxy)
    store = redis_store(settings, probe, clock)
    store.remember(make_article(article_id="u-warm", url="https://w.example/0"), "raw/0/0")
    start = proxy.replies
    store.remember(make_article(article_id="u-count", url="https://w.example/1"), "raw/0/1")
    round_trips = proxy.replies - start
    assert round_trips >= 2, round_trips
    for n in range(round_trips):
        clock.advance(60)
        article = make_article(
            article_id=f"u-lost-{n}",
            url=f"https://lost.example/{n}",
            guid=f"lost-{n}",
            title=f"Harbour crane number {n} repainted in a coastal town",
            summary=f"Workers finished crane {n} ahead of the autumn storms.",
        )
        proxy.drop_replies(1, after=n)
        dropped = proxy.dropped
        sighting = store.remember(article, f"raw/0/{100 + n}")
        assert proxy.dropped == dropped + 1, f"reply {n} was not dropped"
        assert sighting.duplicate is None, f"reply {n} lost: the new article was dropped"
        # And a genuine repeat (another record) is still recognised.
        proxy.drop_replies(0)
        again = store.remember(article, f"raw/1/{100 + n}")
        assert again.duplicate is not None
    probe.close()


def test_cut_and_block_refuse_then_recover(proxy: FaultProxy) -> None:
    client = through(proxy)
    assert client.ping()
    proxy.block()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5).close()
    proxy.unblock()
    assert client.ping()
    proxy.cut()
    assert client.ping()  # reconnects after the reset
    proxy.latency = 0.2
    started = time.monotonic()
    assert client.ping()
    assert time.monotonic() - started >= 0.2
    client.close()


class _RedisGoesAfterSend(ScriptedChannel):
    """Accepts the delivery, then Redis becomes unreachable (before the worker records it)."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__()
        self._proxy = proxy

    def send(self, delivery: Delivery) -> None:
        super().send(delivery)
        if len(self.delivered) == 1:
            self._proxy.block()


def test_a_delivery_made_while_redis_went_away_is_recorded_later_not_sent_again(
    proxy: FaultProxy, key_prefix: str
) -> None:
    """The receiver said 200, then recording it failed: once Redis is back (even after the
    claim's lease ran out) the worker records that delivery instead of making it again."""
    client = through(proxy)
    clock = ManualClock(datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    channel = _RedisGoesAfterSend(proxy)
    outbox = RedisOutbox(client, key_prefix)
    worker = DestinationWorker(
        route("gone-after-send", channel),
        outbox,
        MemoryDeadLetters(),
        NotifierMetrics(CollectorRegistry()),
        clock,
        WorkerOptions(lease_seconds=30, idle_poll_seconds=1),
    )
    body = encode(make_alert("a-lost-finish"))
    outbox.schedule("gone-after-send", "a-lost-finish", 1, body, now=clock.now().timestamp())
    with pytest.raises(RetryableError):
        worker.run_once()  # sent, then recording it fails
    assert len(channel.delivered) == 1
    clock.advance(5)
    with pytest.raises(RetryableError):
        worker.run_once()  # Redis still away
    proxy.unblock()
    clock.advance(60)  # the lease is over: the item is claimable again
    for _ in range(5):
        clock.advance(worker.run_once())
    assert len(channel.attempts) == 1, "the delivery was made twice"
    assert outbox.depth("gone-after-send") == 0
    client.close()
