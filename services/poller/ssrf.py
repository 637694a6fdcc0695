"""Which addresses a fetch may connect to (the SSRF guard), checked when connecting.

A feed URL, or any redirect it leads to, can name a host that resolves to this machine, the
private network or the cloud metadata service; a fetcher that follows it hands what it reads
to whoever controls the feed. So only public unicast addresses are connected to, unless an
explicit allow-list (:class:`AllowRule`) opens a network, or one host and port, for tests and
private deployments. Cloud metadata addresses are refused even then.

:class:`GuardedNetwork` is where the check happens. It is an ``httpcore.NetworkBackend``, so
httpcore opens every connection through it, the first request's and each redirect's alike. It
resolves the host once, checks every address, and connects to a checked *address*, never to
the name, so a second DNS answer cannot slip in between check and connect (DNS rebinding).
TLS still verifies the certificate against the host name, which httpcore passes separately.

Python's ``ipaddress.is_global`` alone is not enough: it calls multicast, site-local and the
NAT64 prefix ``64:ff9b::/96`` global (the last reaches any IPv4 address, 169.254.169.254
included, through a NAT64 gateway), so those are classified here explicitly.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

import httpcore

from dmzwatch.shared.clock import Clock, SystemClock

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

Resolver = Callable[[str, int], Sequence[IPAddress]]
"""Addresses of a host name, in the order to try them; raises ``OSError`` (usually
``socket.gaierror``) when it has none. Called at most once per connection."""

_METADATA = "cloud metadata"
# Checked in order, so a specific class (metadata) is named before the range holding it.
_V4_CLASSES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), name)
    for net, name in (
        ("169.254.169.254/32", _METADATA),  # AWS, GCP, Azure, OpenStack, Oracle
        ("100.100.100.200/32", _METADATA),  # Alibaba Cloud
        ("192.0.0.192/32", _METADATA),  # Oracle Cloud (older)
        ("0.0.0.0/8", "unspecified ('this network')"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)
_V6_CLASSES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), name)
    for net, name in (
        ("fd00:ec2::254/128", _METADATA),  # AWS over IPv6
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped IPv6"),
        ("fe80::/10", "link-local"),
        ("fc00::/7", "unique-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local-use): the IPv4 address is the last
# 32 bits, and a NAT64 gateway on the path really connects to it.
_NAT64 = (IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b:1::/48"))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an address is not connected to. ``address_class`` is for people ("loopback");
    ``final`` means no allow-list entry lifts it (cloud metadata, in any form)."""

    address_class: str
    final: bool = False


def classify(address: IPAddress) -> Refusal | None:
    """The class of a non-public ``address``, or None for a public unicast one."""
    if isinstance(address, IPv4Address):
        for net, name in _V4_CLASSES:
            if address in net:
                return Refusal(name, final=name == _METADATA)
        return None if address.is_global else Refusal("reserved (not globally routable)")
    address = IPv6Address(int(address))  # drop any %scope so the range tests below apply
    for net6, name in _V6_CLASSES:
        if address in net6:
            return Refusal(name, final=name == _METADATA)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        form, ipv4 = embedded
        inner = classify(ipv4)
        if inner is not None:
            return Refusal(f"{form}-embedded {inner.address_class}", final=inner.final)
        if form == "NAT64":
            return None  # a public IPv4 address reached through a NAT64 gateway
    if address.is_global and not address.is_reserved:
        return None
    return Refusal("reserved (not globally routable)")


def _embedded_ipv4(address: IPv6Address) -> tuple[str, IPv4Address] | None:
    if any(address in net for net in _NAT64):
        return "NAT64", IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    return None


@dataclass(frozen=True, slots=True)
class AllowRule:
    """One allow-list entry: a network, and optionally the one port it is allowed on.

    Written ``10.0.0.0/8``, ``192.168.1.5``, ``127.0.0.1:8080``, ``10.0.0.0/8:443``,
    ``fd00::/8``, ``[::1]:8080`` or ``[fd00::/8]:443``. A port matters for loopback: tests allow
    their own server's port and nothing else on the machine.
    """

    network: IPNetwork
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> AllowRule:
        """Read one entry; raises ``ValueError`` saying what is wrong with it."""
        entry = text.strip()
        port_text: str | None = None
        if entry.startswith("["):
            close = entry.find("]")
            rest = entry[close + 1 :] if close > 0 else "?"
            if rest and not rest.startswith(":"):
                raise ValueError(f"allow-list entry {text!r}: expected [IPv6 network]:port")
            entry, port_text = entry[1:close], rest[1:] or None
        elif entry.count(":") == 1:  # IPv4 with a port; IPv6 has two colons or more
            entry, port_text = entry.split(":")
        try:
            network = ip_network(entry)
        except ValueError as exc:
            raise ValueError(f"allow-list entry {text!r}: {exc}") from None
        port = None
        if port_text is not None:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(f"allow-list entry {text!r}: port must be 1-65535")
            port = int(port_text)
        return cls(network, port)

    def matches(self, address: IPAddress, port: int) -> bool:
        return address in self.network and (self.port is None or self.port == port)

    def __str__(self) -> str:
        """The entry as :meth:`parse` reads it; one address is written without a prefix."""
        one = self.network.num_addresses == 1
        where = str(self.network.network_address) if one else str(self.network)
        if self.port is None:
            return where
        return f"[{where}]:{self.port}" if self.network.version == 6 else f"{where}:{self.port}"


def parse_allow_list(entries: Iterable[str]) -> tuple[AllowRule, ...]:
    """Rules from entries as :meth:`AllowRule.parse` reads them; blank entries are skipped."""
    return tuple(AllowRule.parse(e) for e in entries if e.strip())


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public unicast addresses, plus those an allow rule names (never cloud metadata)."""

    allow: tuple[AllowRule, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> AddressPolicy:
        """A policy from allow-list entries; raises ``ValueError`` on a bad one."""
        return cls(parse_allow_list(entries))

    def refusal(self, address: IPAddress, port: int) -> Refusal | None:
        """Why ``address``:``port`` may not be connected to, or None when it may."""
        refused = classify(address)
        if refused is None or (
            not refused.final and any(rule.matches(address, port) for rule in self.allow)
        ):
            return None
        return refused


class BlockedAddress(httpcore.ConnectError):
    """Raised instead of connecting to a refused address; the message names its class."""

    def __init__(self, host: str, address: IPAddress, port: int, refused: Refusal) -> None:
        self.host = host
        self.address = address
        self.port = port
        self.refusal = refused
        named = str(address) if _is_literal(host, address) else f"{host} ({address})"
        why = "never allowed" if refused.final else "not in the allow-list"
        super().__init__(
            f"refused to connect to {named} port {port}: {refused.address_class} address, {why}"
        )


def _is_literal(host: str, address: IPAddress) -> bool:
    try:
        return ip_address(host.strip("[]")) == address
    except ValueError:
        return False


def resolve(host: str, port: int) -> list[IPAddress]:
    """:data:`Resolver` with the system's ``getaddrinfo``: TCP addresses, duplicates removed."""
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ip_address(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
    return addresses


class GuardedNetwork(httpcore.NetworkBackend):
    """A network backend that connects only to addresses ``policy`` permits.

    ``connect_tcp`` resolves the host once with ``resolver`` (an IP literal is not resolved),
    skips refused addresses, and connects ``inner`` to the permitted ones in turn, by address.
    When none is permitted it raises :class:`BlockedAddress` before any packet is sent to the
    host. Name resolution counts against the connect ``timeout`` (``httpcore.ConnectTimeout``
    when it runs out), so a slow DNS server cannot stretch a fetch's total deadline; other
    resolution failures are ``httpcore.ConnectError`` caused by the ``OSError``. Thread-safe.
    """

    def __init__(
        self,
        inner: httpcore.NetworkBackend,
        policy: AddressPolicy,
        *,
        resolver: Resolver = resolve,
        clock: Clock | None = None,
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._resolver = resolver
        self._clock = clock or SystemClock()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        started = self._clock.monotonic()
        permitted: list[IPAddress] = []
        first_refused: tuple[IPAddress, Refusal] | None = None
        for address in self._addresses(host, port, timeout):
            refused = self._policy.refusal(address, port)
            if refused is None:
                permitted.append(address)
            elif first_refused is None:
                first_refused = (address, refused)
        if not permitted:
            assert first_refused is not None  # _addresses never returns an empty list
            address, refused = first_refused
            raise BlockedAddress(host, address, port, refused)
        error: httpcore.ConnectError | None = None
        for address in permitted:
            left = None if timeout is None else timeout - (self._clock.monotonic() - started)
            if left is not None and left <= 0:
                break
            try:
                return self._inner.connect_tcp(
                    str(address), port, left, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc  # e.g. refused on IPv6: try the next address, as browsers do
        if error is not None:
            raise error
        raise httpcore.ConnectTimeout(
            f"connecting to {host} took longer than {timeout or 0.0:.2f} s"
        )

    def _addresses(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        try:
            return [ip_address(host.strip("[]"))]
        except ValueError:
            pass  # a name (or a shorthand like "127.1", which getaddrinfo reads as an address)
        found = self._resolve_within(host, port, timeout)
        if not found:
            raise httpcore.ConnectError(f"no address found for {host!r}")
        return found

    def _resolve_within(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        """The resolver's answer, waited for at most ``timeout`` seconds.

        ``getaddrinfo`` takes no timeout, so it runs on a daemon thread that is abandoned when
        time runs out; the system resolver's own timeouts end it soon after.
        """
        answer: list[Sequence[IPAddress] | Exception] = []

        def lookup() -> None:
            try:
                answer.append(self._resolver(host, port))
            except Exception as exc:  # handed to the fetching thread below
                answer.append(exc)

        thread = threading.Thread(target=lookup, name="dmzwatch-resolve", daemon=True)
        thread.start()
        thread.join(timeout)
        if not answer:  # only a timeout leaves it empty: the thread catches every Exception
            raise httpcore.ConnectTimeout(
                f"resolving {host!r} took longer than {timeout or 0.0:.2f} s"
            )
        found = answer[0]
        if isinstance(found, Exception) and not isinstance(found, OSError):
            raise found  # a bug in the resolver, not a network problem
        if isinstance(found, OSError):
            # Raised from within the handler so that the OSError is also the __context__:
            # httpcore re-raises with ``from None``, which drops __cause__ and keeps that.
            try:
                raise found
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        return list(found)
