"""Poller wiring: settings and collaborators into a running source."""

from __future__ import annotations

from dmzwatch.poller.feeds import load_feeds
from dmzwatch.poller.fetch import HttpFeedFetcher
from dmzwatch.poller.leases import FeedOwnership, RedisFeedLeases
from dmzwatch.poller.metrics import PollerMetrics, WebSubMetrics
from dmzwatch.poller.schedule import IntervalPolicy, Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.poller.settings import PollerSettings
from dmzwatch.poller.ssrf import AddressPolicy
from dmzwatch.poller.websub import WebSubPolicy, WebSubSubscriber
from dmzwatch.poller.websub_http import CallbackServer, HttpHubClient, WebSubEndpoint
from dmzwatch.poller.websub_store import RedisSubscriptionStore, SubscriptionStore
from dmzwatch.shared.claims import connect_redis, redis_probe
from dmzwatch.shared.kafka import make_producer
from dmzwatch.shared.metrics import StageMetrics
from dmzwatch.shared.service import ServiceProcess

STAGE = "poller"


def main() -> None:
    settings = PollerSettings()
    feeds = load_feeds(settings.feeds_file)
    process = ServiceProcess.start(STAGE, settings, settings.metrics_port)
    fetcher = HttpFeedFetcher(
        timeout_seconds=settings.fetch_timeout_seconds,
        max_bytes=settings.max_feed_bytes,
        address_policy=AddressPolicy.from_entries(settings.fetch_allow_networks),
    )
    producer = make_producer(settings, client_id="dmzwatch-poller")
    metrics = PollerMetrics(process.registry)
    ownership = None
    store: SubscriptionStore | None = None
    if settings.poller_leases:
        client = connect_redis(settings.redis_url.get_secret_value())
        # The probe's own single-shot client, as the consuming services have: /readyz answers
        # within one timeout while the leases' client is retrying against a paused Redis.
        probe_client = connect_redis(settings.redis_url.get_secret_value(), retries=0)
        process.health.add_probe("redis", lambda: redis_probe(probe_client))
        leases = RedisFeedLeases(client, settings.redis_key_prefix, settings.poller_replica_id)
        ownership = FeedOwnership(
            leases,
            process.clock,
            metrics=metrics,
            alive_seconds=settings.poller_replica_alive_seconds,
            grace_seconds=settings.poller_takeover_grace_seconds,
        )
        # WebSub subscriptions shared too: any replica answers a hub, the lease holder renews.
        store = RedisSubscriptionStore(client, settings.redis_key_prefix)
    websub = _websub(settings, process, ownership, store) if settings.websub_callback_url else None
    source = PollerSource(
        feeds=feeds,
        fetcher=fetcher,
        producer=producer,
        topic=settings.topics().articles_raw,
        schedule=Schedule(
            feeds,
            max_backoff_seconds=settings.max_backoff_seconds,
            policy=IntervalPolicy(
                min_interval_seconds=settings.min_interval_seconds,
                max_interval_seconds=settings.max_interval_seconds,
            ),
        ),
        metrics=metrics,
        stage_metrics=StageMetrics(STAGE, process.registry),
        health=process.health,
        clock=process.clock,
        concurrency=settings.fetch_concurrency,
        per_host_limit=settings.fetch_per_host,
        ownership=ownership,
        subscriptions=websub.subscriber if websub else None,
    )
    if websub is not None:
        websub.start(source)
    process.on_stop_signal(source.stop)
    try:
        source.run()
    finally:
        if websub is not None:
            websub.stop()
        producer.close()
        fetcher.close()
        process.close()


def _websub(
    settings: PollerSettings,
    process: ServiceProcess,
    ownership: FeedOwnership | None,
    store: SubscriptionStore | None,
) -> WebSubEndpoint:
    """Push subscriptions to the hubs feeds advertise (DMZWATCH_WEBSUB_CALLBACK_URL set); with
    leases, kept in Redis and renewed by each feed's lease holder."""
    assert settings.websub_callback_url is not None
    subscriber = WebSubSubscriber(
        callback_base=settings.websub_callback_url,
        hub_client=HttpHubClient(
            timeout_seconds=settings.fetch_timeout_seconds,
            address_policy=AddressPolicy.from_entries(settings.fetch_allow_networks),
            clock=process.clock,
        ),
        metrics=WebSubMetrics(process.registry),
        clock=process.clock,
        policy=WebSubPolicy(
            lease_seconds=settings.websub_lease_seconds,
            safety_interval_seconds=settings.websub_poll_interval_seconds,
        ),
        store=store,
        replica_id=settings.poller_replica_id,
        held=None if ownership is None else ownership.held,
    )
    server = CallbackServer(
        subscriber,
        settings.websub_listen_host,
        settings.websub_listen_port,
        max_body_bytes=settings.max_feed_bytes,
    )
    return WebSubEndpoint(subscriber, server)
