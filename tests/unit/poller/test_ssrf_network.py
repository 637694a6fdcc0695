"""The SSRF guard at connect time: what is resolved, what is connected to, and what a blocked
fetch reports. No socket connects here: the real ``connect`` is replaced by a spy that fails the
test, the inner network backend is a recorder, and names resolve through stubs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from ipaddress import ip_address

import httpcore
import pytest

from dmzwatch.poller.fetch import HttpFeedFetcher, Validators
from dmzwatch.poller.ssrf import (
    AddressPolicy,
    BlockedAddress,
    GuardedNetwork,
    IPAddress,
    resolve,
)

PUBLIC = "93.184.215.14"


class Stream(httpcore.NetworkStream):
    def close(self) -> None:
        pass


class Recorder(httpcore.NetworkBackend):
    """An inner backend that records each connect; ``refuse`` lists addresses that fail."""

    def __init__(self, refuse: Iterable[str] = ()) -> None:
        self.calls: list[tuple[str, int]] = []
        self._refuse = set(refuse)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        self.calls.append((host, port))
        if host in self._refuse:
            raise httpcore.ConnectError(f"[Errno 111] Connection refused ({host})")
        return Stream()


class Resolver:
    """Answers from a table, counting lookups; a list of answers is handed out in turn."""

    def __init__(self, table: dict[str, list[Sequence[str]]]) -> None:
        self._table = table
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        answers = self._table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(a) for a in answers.pop(0) if a]


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Any real connect fails the test; getaddrinfo reads numeric hosts only (no DNS query)."""
    attempts: list[object] = []
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"a socket tried to connect to {address!r}")

    def numeric_only(host: str, port: int | str | None, *args: int, **kwargs: int) -> object:
        kwargs["flags"] = kwargs.get("flags", 0) | socket.AI_NUMERICHOST
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    yield attempts
    assert attempts == []


def guarded(
    resolver: Resolver | None = None, allow: Sequence[str] = (), refuse: Iterable[str] = ()
) -> tuple[GuardedNetwork, Recorder]:
    inner = Recorder(refuse)
    policy = AddressPolicy.from_entries(allow)
    return GuardedNetwork(inner, policy, resolver=resolver or Resolver({})), inner


def test_a_refused_literal_is_neither_resolved_nor_connected() -> None:
    resolver = Resolver({})
    network, inner = guarded(resolver)
    with pytest.raises(BlockedAddress) as caught:
        network.connect_tcp("169.254.169.254", 80, timeout=1.0)
    assert str(caught.value) == (
        "refused to connect to 169.254.169.254 port 80: cloud metadata address, never allowed"
    )
    assert (resolver.lookups, inner.calls) == ([], [])


def test_a_name_resolving_inside_is_refused_naming_host_and_address() -> None:
    network, inner = guarded(Resolver({"feeds.example": [["10.0.0.1"]]}))
    with pytest.raises(BlockedAddress) as caught:
        network.connect_tcp("feeds.example", 443, timeout=1.0)
    assert str(caught.value) == (
        "refused to connect to feeds.example (10.0.0.1) port 443: "
        "private (RFC 1918) address, not in the allow-list"
    )
    assert inner.calls == []


def test_only_the_permitted_addresses_of_a_name_are_connected() -> None:
    network, inner = guarded(Resolver({"mixed.example": [["10.0.0.1", PUBLIC, "::1"]]}))
    network.connect_tcp("mixed.example", 80, timeout=1.0)
    assert inner.calls == [(PUBLIC, 80)]


def test_the_checked_address_is_connected_and_the_name_resolved_once() -> None:
    # A rebinding DNS server answers public first and loopback next: there is no next.
    resolver = Resolver({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    network, inner = guarded(resolver)
    network.connect_tcp("rebind.example", 80, timeout=1.0)
    assert inner.calls == [(PUBLIC, 80)]
    assert resolver.lookups == ["rebind.example"]


def test_the_next_permitted_address_is_tried_when_one_refuses() -> None:
    resolver = Resolver({"two.example": [["2606:4700:4700::1111", PUBLIC]]})
    network, inner = guarded(resolver, refuse=["2606:4700:4700::1111"])
    network.connect_tcp("two.example", 80, timeout=1.0)
    assert inner.calls == [("2606:4700:4700::1111", 80), (PUBLIC, 80)]


def test_an_allowed_host_and_port_is_connected() -> None:
    network, inner = guarded(allow=["127.0.0.1:8080"])
    network.connect_tcp("127.0.0.1", 8080, timeout=1.0)
    with pytest.raises(BlockedAddress, match="loopback address, not in the allow-list"):
        network.connect_tcp("127.0.0.1", 8081, timeout=1.0)
    assert inner.calls == [("127.0.0.1", 8080)]


def test_slow_name_resolution_is_cut_by_the_connect_timeout() -> None:
    release = threading.Event()

    def stalled(host: str, port: int) -> list[IPAddress]:
        release.wait(5.0)
        return [ip_address(PUBLIC)]

    network = GuardedNetwork(Recorder(), AddressPolicy(), resolver=stalled)
    started = time.monotonic()
    try:
        with pytest.raises(httpcore.ConnectTimeout, match=r"resolving 'slow\.example' took"):
            network.connect_tcp("slow.example", 80, timeout=0.1)
    finally:
        release.set()
    assert time.monotonic() - started < 0.5


def test_a_name_that_does_not_resolve_is_a_connect_error_caused_by_it() -> None:
    network, _ = guarded(Resolver({}))
    with pytest.raises(httpcore.ConnectError) as caught:
        network.connect_tcp("nowhere.example", 80, timeout=1.0)
    assert isinstance(caught.value.__cause__, socket.gaierror)


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1"])
def test_ipv4_shorthands_are_resolved_and_then_refused(host: str) -> None:
    network = GuardedNetwork(Recorder(), AddressPolicy(), resolver=resolve)
    with pytest.raises(BlockedAddress, match=r"\(127\.0\.0\.1\) port 80: loopback"):
        network.connect_tcp(host, 80, timeout=1.0)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (
            "http://10.0.0.1/feed",
            "refused to connect to 10.0.0.1 port 80: "
            "private (RFC 1918) address, not in the allow-list",
        ),
        (
            "http://[fd00:ec2::254]/latest",
            "refused to connect to fd00:ec2::254 port 80: cloud metadata address, never allowed",
        ),
        (
            "https://[64:ff9b::a9fe:a9fe]/",
            "refused to connect to 64:ff9b::a9fe:a9fe port 443: "
            "NAT64-embedded cloud metadata address, never allowed",
        ),
        (
            "http://localhost:8080/feed",
            "refused to connect to localhost (127.0.0.1) port 8080: "
            "loopback address, not in the allow-list",
        ),
    ],
)
def test_a_fetch_of_a_refused_address_is_blocked_without_connecting(url: str, error: str) -> None:
    inner = Recorder()
    resolver = Resolver({"localhost": [["127.0.0.1"]]})
    with HttpFeedFetcher(timeout_seconds=1.0, network_backend=inner, resolver=resolver) as fetcher:
        result = fetcher.fetch(url, Validators())
    assert (result.outcome, result.error, result.status_code) == ("blocked", error, None)
    assert inner.calls == []


def test_an_unresolvable_feed_host_is_an_error_not_a_block() -> None:
    with HttpFeedFetcher(timeout_seconds=1.0, resolver=Resolver({})) as fetcher:
        result = fetcher.fetch("http://nowhere.example/feed", Validators())
    assert result.outcome == "error"
    assert result.error == "cannot resolve host 'nowhere.example': Name or service not known"
