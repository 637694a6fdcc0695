"""The fault list, the reconciliation and the table.

Articles keep arriving through the feeds the whole time. Each fault starts at ``T0`` and is
healed at ``T1``; the pipeline is then left to drain until every article offered before ``T1``
has a decision and every alert on the alert topics has reached both receivers (or the drain
times out). The row reports, for the articles offered in ``[T0, T1)``:

- ``in``: offered by the feeds; ``decided``: with a decision (unique article ids on
  ``decisions``); ``lost``: offered but never decided;
- ``dup dec`` / ``dup alerts``: extra copies of a decision (same article id) or an alert (same
  id and version) produced during the row (legitimate under at-least-once: idempotent stages
  downstream absorb them);
- ``dup notif``: a receiver accepting the same alert id and version twice;
- ``undelivered``: alerts on the topics that a receiver never got;
- ``recover s``: seconds from ``T1`` to the end of the drain.

``lost``, ``dup notif`` and ``undelivered`` must be 0 on every row.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kafka import KafkaProducer

from chaos.cluster import Cluster, Outputs
from chaos.proxy import FaultProxy


@dataclass(frozen=True)
class Row:
    fault: str
    articles_in: int
    decided: int
    lost: int
    duplicated_decisions: int
    duplicated_alerts: int
    duplicated_notifications: int
    undelivered: int
    deadletters: int
    recover_seconds: float | None  # None: did not drain in time

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated_notifications == 0 and self.undelivered == 0

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


Action = Callable[[Cluster, random.Random], None]


@dataclass(frozen=True)
class Fault:
    name: str
    action: Action
    # Records the fault itself sends to the dead-letter topic: the row drains only once they are
    # there, so they are counted in this row and not in the next one.
    deadletters: int = 0


# -- the faults ------------------------------------------------------------------------------


def idle(seconds: float) -> Action:
    def run(cluster: Cluster, rng: random.Random) -> None:
        time.sleep(seconds)

    return run


def kill9(stages: tuple[str, ...], kills: int) -> Action:
    """SIGKILL a replica of a stage at a random moment, restart it 0.5–2 s later; repeat."""

    def run(cluster: Cluster, rng: random.Random) -> None:
        for n in range(kills):
            stage = stages[n % len(stages)]
            time.sleep(rng.uniform(1.0, 4.0))
            victim = rng.choice(cluster.services[stage])
            cluster.signal_service(victim, signal.SIGKILL)
            time.sleep(rng.uniform(0.5, 2.0))
            cluster.start_service(stage, victim.replica)

    return run


def kill9_in_backlog(stage: str, rounds: int) -> Action:
    """Freeze a stage (SIGSTOP) until a backlog builds, let it go, and SIGKILL it while it is
    working through the backlog (outputs produced, offsets maybe not committed yet)."""

    def run(cluster: Cluster, rng: random.Random) -> None:
        for _ in range(rounds):
            victim = rng.choice(cluster.services[stage])
            victim.process.send_signal(signal.SIGSTOP)
            time.sleep(rng.uniform(6.0, 10.0))
            consumed = victim.consumed()
            victim.process.send_signal(signal.SIGCONT)
            deadline = time.monotonic() + 30
            while victim.consumed() <= consumed and time.monotonic() < deadline:
                time.sleep(0.005)  # kill it as soon as it has started on the backlog
            cluster.signal_service(victim, signal.SIGKILL)
            time.sleep(rng.uniform(0.5, 1.5))
            cluster.start_service(stage, victim.replica)

    return run


def sigterm(stages: tuple[str, ...]) -> Action:
    """SIGTERM under load: each stage drains and exits 0, and is started again at once."""

    def run(cluster: Cluster, rng: random.Random) -> None:
        for stage in stages:
            time.sleep(rng.uniform(1.0, 3.0))
            victim = cluster.services[stage][0]
            code = cluster.signal_service(victim, signal.SIGTERM)
            if code != 0:
                raise RuntimeError(f"{victim.name} exited with {code} on SIGTERM")
            cluster.start_service(stage, victim.replica)

    return run


def pause(target: str, seconds: float) -> Action:
    """SIGSTOP the broker or Redis for ``seconds``, then SIGCONT."""

    def run(cluster: Cluster, rng: random.Random) -> None:
        process = cluster.tansu if target == "broker" else cluster.redis
        assert process is not None
        time.sleep(rng.uniform(1.0, 3.0))
        process.signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            process.signal(signal.SIGCONT)

    return run


def redis_restart(cluster: Cluster, rng: random.Random) -> None:
    """SIGKILL Redis and start it again from its append-only file."""
    time.sleep(rng.uniform(1.0, 3.0))
    cluster.redis.kill()
    time.sleep(2.0)
    cluster.redis.start()


def _proxy(cluster: Cluster, target: str) -> FaultProxy:
    proxy = cluster.broker_proxy if target == "broker" else cluster.redis_proxy
    assert proxy is not None
    return proxy


def proxy_cut(target: str, times: int) -> Action:
    def run(cluster: Cluster, rng: random.Random) -> None:
        for _ in range(times):
            time.sleep(rng.uniform(1.0, 3.0))
            _proxy(cluster, target).cut()

    return run


def proxy_block(target: str, seconds: float) -> Action:
    """The dependency unreachable: connections refused for ``seconds``."""

    def run(cluster: Cluster, rng: random.Random) -> None:
        proxy = _proxy(cluster, target)
        time.sleep(rng.uniform(1.0, 3.0))
        proxy.block()
        try:
            time.sleep(seconds)
        finally:
            proxy.unblock()

    return run


def proxy_drop(target: str, times: int) -> Action:
    """Forward the requests, swallow a reply; repeated."""

    def run(cluster: Cluster, rng: random.Random) -> None:
        proxy = _proxy(cluster, target)
        for _ in range(times):
            time.sleep(rng.uniform(1.0, 3.0))
            proxy.drop_replies(1, after=rng.randint(0, 5))
        time.sleep(2.0)
        proxy.drop_replies(0)

    return run


def proxy_latency(target: str, latency: float, seconds: float) -> Action:
    def run(cluster: Cluster, rng: random.Random) -> None:
        proxy = _proxy(cluster, target)
        proxy.latency = latency
        try:
            time.sleep(seconds)
        finally:
            proxy.latency = 0.0

    return run


def rebalance(stage: str, hold: float) -> Action:
    """Scale ``stage`` 1 -> 3 -> 1 replicas while articles flow."""

    def run(cluster: Cluster, rng: random.Random) -> None:
        time.sleep(rng.uniform(1.0, 3.0))
        extra = [cluster.start_service(stage) for _ in range(2)]
        time.sleep(hold)
        for service in extra:
            cluster.signal_service(service, signal.SIGTERM)
        time.sleep(hold / 2)

    return run


POISON_ROUNDS = 3  # each sends 3 bad records


def poison(cluster: Cluster, rng: random.Random) -> None:
    """Garbage and an unknown ``schema_version`` into articles.raw, between real articles."""
    assert cluster.broker_proxy is not None
    producer = KafkaProducer(bootstrap_servers=cluster.broker_proxy.address)
    topic = cluster.topics.articles_raw
    for n in range(POISON_ROUNDS):
        time.sleep(rng.uniform(0.5, 2.0))
        producer.send(topic, key=f"poison-{n}".encode(), value=b'{"schema_version": 1, "x": ')
        future = b'{"schema_version": 99, "article_id": "u-future-%d", "title": "from 2030"}' % n
        producer.send(topic, key=f"future-{n}".encode(), value=future)
        producer.send(topic, key=f"binary-{n}".encode(), value=bytes(range(256)))
    producer.flush(30)
    producer.close(10)


def receivers(mode: str, seconds: float) -> Action:
    def run(cluster: Cluster, rng: random.Random) -> None:
        for receiver in cluster.receivers:
            receiver.set_mode(mode)
        try:
            time.sleep(seconds)
        finally:
            for receiver in cluster.receivers:
                receiver.set_mode("ok")

    return run


CONSUMERS = ("dedup", "classifier", "notifier")

FULL: tuple[Fault, ...] = (
    Fault("none (baseline)", idle(15)),
    Fault("kill -9 poller x3", kill9(("poller",), 3)),
    Fault("kill -9 dedup x3", kill9(("dedup",), 3)),
    Fault("kill -9 classifier x3", kill9(("classifier",), 3)),
    Fault("kill -9 notifier x3", kill9(("notifier",), 3)),
    Fault("kill -9 every service x8", kill9(("poller", *CONSUMERS), 8)),
    Fault("kill -9 dedup amid a backlog x2", kill9_in_backlog("dedup", 2)),
    Fault("kill -9 classifier amid a backlog x2", kill9_in_backlog("classifier", 2)),
    Fault("kill -9 notifier amid a backlog x2", kill9_in_backlog("notifier", 2)),
    Fault("SIGTERM under load (each)", sigterm(("poller", *CONSUMERS))),
    Fault("broker SIGSTOP 20 s", pause("broker", 20)),
    Fault("Redis SIGSTOP 20 s", pause("redis", 20)),
    Fault("Redis kill -9, restart from AOF", redis_restart),
    Fault("broker proxy: cut connections x4", proxy_cut("broker", 4)),
    Fault("broker proxy: drop replies x4", proxy_drop("broker", 4)),
    Fault("broker proxy: +200 ms latency 15 s", proxy_latency("broker", 0.2, 15)),
    Fault("broker unreachable 15 s", proxy_block("broker", 15)),
    Fault("Redis proxy: cut connections x4", proxy_cut("redis", 4)),
    Fault("Redis proxy: drop replies x6", proxy_drop("redis", 6)),
    Fault("Redis proxy: +100 ms latency 15 s", proxy_latency("redis", 0.1, 15)),
    Fault("Redis unreachable 15 s", proxy_block("redis", 15)),
    Fault("rebalance dedup 1->3->1", rebalance("dedup", 15)),
    Fault("rebalance classifier 1->3->1", rebalance("classifier", 15)),
    Fault("rebalance notifier 1->3->1", rebalance("notifier", 15)),
    Fault("poison + unknown schema_version", poison, deadletters=3 * POISON_ROUNDS),
    Fault("receivers slow (2 s) 15 s", receivers("slow", 15)),
    Fault("receivers failing (500) 15 s", receivers("fail", 15)),
    Fault("receivers gone (refused) 15 s", receivers("gone", 15)),
)

SHORT: tuple[Fault, ...] = (
    Fault("kill -9 each consumer", kill9(CONSUMERS, 3)),
    Fault("kill -9 classifier amid a backlog", kill9_in_backlog("classifier", 1)),
    Fault("broker SIGSTOP 10 s", pause("broker", 10)),
    Fault("Redis kill -9, restart from AOF", redis_restart),
    Fault("Redis proxy: drop replies x4", proxy_drop("redis", 4)),
    Fault("poison + unknown schema_version", poison, deadletters=3 * POISON_ROUNDS),
    Fault("receivers failing (500) 10 s", receivers("fail", 10)),
)


# -- reconciliation --------------------------------------------------------------------------


def _extra(counter: Mapping[Any, int]) -> int:
    return sum(n - 1 for n in counter.values() if n > 1)


class Reconciler:
    def __init__(self, cluster: Cluster, drain_seconds: float) -> None:
        self.cluster = cluster
        self.drain_seconds = drain_seconds

    def outputs(self) -> Outputs:
        assert self.cluster.reader is not None
        return self.cluster.reader.snapshot()

    def notification_extras(self) -> int:
        return sum(_extra(r.keys()) for r in self.cluster.receivers)

    def undelivered(self, outputs: Outputs) -> int:
        wanted = set(outputs.alerts)
        return sum(len(wanted - set(r.keys())) for r in self.cluster.receivers)

    def drained(self, until: float, deadletters: int = 0) -> bool:
        outputs = self.outputs()
        if outputs.deadletters < deadletters:
            return False
        offered = self.cluster.feeds.offered_between(0.0, until)
        if any(o.article_id not in outputs.decisions for o in offered):
            return False
        return self.undelivered(outputs) == 0

    def run(self, fault: Fault, rng: random.Random, t0: float) -> tuple[Row, float]:
        before = self.outputs()
        notif_before = self.notification_extras()
        fault.action(self.cluster, rng)
        t1 = time.monotonic()
        deadline = t1 + self.drain_seconds
        recovered: float | None = None
        while time.monotonic() < deadline:
            if self.drained(t1, before.deadletters + fault.deadletters):
                recovered = time.monotonic() - t1
                break
            time.sleep(0.5)
        after = self.outputs()
        offered = self.cluster.feeds.offered_between(t0, t1)
        decided = sum(1 for o in offered if o.article_id in after.decisions)
        row = Row(
            fault=fault.name,
            articles_in=len(offered),
            decided=decided,
            lost=len(offered) - decided,
            duplicated_decisions=_extra(after.decisions) - _extra(before.decisions),
            duplicated_alerts=_extra(after.alerts) - _extra(before.alerts),
            duplicated_notifications=self.notification_extras() - notif_before,
            undelivered=self.undelivered(after),
            deadletters=after.deadletters - before.deadletters,
            recover_seconds=None if recovered is None else round(recovered, 1),
        )
        return row, t1


HEADER = (
    "fault",
    "in",
    "decided",
    "lost",
    "dup dec",
    "dup alerts",
    "dup notif",
    "undelivered",
    "dead letters",
    "recover s",
)


def format_row(row: Row) -> str:
    recover = "n/a" if row.recover_seconds is None else f"{row.recover_seconds:.1f}"
    cells = (
        row.fault,
        row.articles_in,
        row.decided,
        row.lost,
        row.duplicated_decisions,
        row.duplicated_alerts,
        row.duplicated_notifications,
        row.undelivered,
        row.deadletters,
        recover,
    )
    return "| " + " | ".join(str(c) for c in cells) + " |"


def header() -> str:
    return "| " + " | ".join(HEADER) + " |\n|" + "|".join("---" for _ in HEADER) + "|"


def run_faults(
    cluster: Cluster,
    faults: tuple[Fault, ...],
    *,
    seed: int = 8,
    drain_seconds: float = 120.0,
    on_row: Callable[[Row], None] = lambda row: None,
) -> list[Row]:
    rng = random.Random(seed)
    reconciler = Reconciler(cluster, drain_seconds)
    rows: list[Row] = []
    t0 = time.monotonic()
    for fault in faults:
        row, t0 = reconciler.run(fault, rng, t0)
        died = cluster.dead_replicas()
        if died:
            tails = "\n".join(
                f"--- {name} ---\n" + "\n".join(cluster.log(name).splitlines()[-15:])
                for name in died
            )
            raise RuntimeError(f"after {fault.name!r}: replicas died on their own: {died}\n{tails}")
        rows.append(row)
        on_row(row)
    return rows
