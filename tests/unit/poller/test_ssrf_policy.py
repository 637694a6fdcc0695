"""The SSRF guard's address classes, allow-list entries and the setting that holds them."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from pydantic import ValidationError

from dmzwatch.poller.settings import PollerSettings
from dmzwatch.poller.ssrf import AddressPolicy, AllowRule, classify, parse_allow_list

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "unspecified ('this network')"),
    ("10.0.0.1", "private (RFC 1918)"),
    ("172.16.0.1", "private (RFC 1918)"),
    ("172.31.255.255", "private (RFC 1918)"),
    ("192.168.1.1", "private (RFC 1918)"),
    ("169.254.169.254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT (RFC 6598)"),
    ("100.127.255.254", "carrier-grade NAT (RFC 6598)"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "reserved (not globally routable)"),  # documentation
    ("198.18.0.1", "reserved (not globally routable)"),  # benchmarking
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fd00:ec2::254", "cloud metadata"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "IPv4-mapped IPv6"),
    ("::ffff:8.8.8.8", "IPv4-mapped IPv6"),
    ("64:ff9b::a9fe:a9fe", "NAT64-embedded cloud metadata"),
    ("64:ff9b::7f00:1", "NAT64-embedded loopback"),
    ("64:ff9b::a00:1", "NAT64-embedded private (RFC 1918)"),
    ("64:ff9b:1::a00:1", "NAT64-embedded private (RFC 1918)"),
    ("2002:a00:1::1", "6to4-embedded private (RFC 1918)"),
    ("2002:a9fe:a9fe::1", "6to4-embedded cloud metadata"),
    ("::a00:1", "reserved (not globally routable)"),  # deprecated IPv4-compatible form
    ("2001:db8::1", "reserved (not globally routable)"),  # documentation
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "address_class"), REFUSED)
def test_non_public_addresses_are_refused_with_their_class(
    address: str, address_class: str
) -> None:
    refused = classify(ip_address(address))
    assert refused is not None
    assert refused.address_class == address_class


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_addresses_are_permitted(address: str) -> None:
    assert classify(ip_address(address)) is None


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "224.0.0.1", "ff02::1", "fec0::1"])
def test_addresses_pythons_is_global_calls_global_are_still_refused(address: str) -> None:
    # Why the guard classifies explicitly instead of trusting is_global.
    assert ip_address(address).is_global
    assert classify(ip_address(address)) is not None


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("192.168.1.5", "192.168.1.5"),
        (" 127.0.0.1:8080 ", "127.0.0.1:8080"),
        ("127.0.0.1/32:8080", "127.0.0.1:8080"),
        ("10.0.0.0/8:443", "10.0.0.0/8:443"),
        ("fd00::/8", "fd00::/8"),
        ("::1", "::1"),
        ("[::1]:8080", "[::1]:8080"),
        ("[fd00::/8]:443", "[fd00::/8]:443"),
    ],
)
def test_allow_rules_read_networks_addresses_and_ports(text: str, canonical: str) -> None:
    rule = AllowRule.parse(text)
    assert str(rule) == canonical
    assert AllowRule.parse(str(rule)) == rule


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("10.0.0.1/8", "host bits set"),
        ("127.0.0.1:0", "port must be 1-65535"),
        ("127.0.0.1:65536", "port must be 1-65535"),
        ("127.0.0.1:http", "port must be 1-65535"),
        ("[::1]x", r"expected \[IPv6 network\]:port"),
        ("[::1", r"expected \[IPv6 network\]:port"),
        ("feeds.internal", "does not appear to be an IPv4 or IPv6 network"),
    ],
)
def test_bad_allow_rules_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AllowRule.parse(text)


def test_blank_allow_list_entries_are_skipped() -> None:
    assert parse_allow_list(["", " ", "10.0.0.0/8"]) == (AllowRule.parse("10.0.0.0/8"),)


def test_an_empty_policy_refuses_every_non_public_address() -> None:
    policy = AddressPolicy()
    assert policy.refusal(ip_address("127.0.0.1"), 80) is not None
    assert policy.refusal(ip_address("8.8.8.8"), 80) is None


def test_a_host_and_port_rule_opens_that_port_only() -> None:
    policy = AddressPolicy.from_entries(["127.0.0.1:8080"])
    assert policy.refusal(ip_address("127.0.0.1"), 8080) is None
    assert policy.refusal(ip_address("127.0.0.1"), 8081) is not None
    assert policy.refusal(ip_address("127.0.0.2"), 8080) is not None


def test_a_network_rule_opens_every_port_of_its_addresses() -> None:
    policy = AddressPolicy.from_entries(["10.0.0.0/8"])
    assert policy.refusal(ip_address("10.20.30.40"), 443) is None
    assert policy.refusal(ip_address("172.16.0.1"), 443) is not None


def test_an_ipv4_rule_does_not_open_the_ipv4_mapped_form() -> None:
    policy = AddressPolicy.from_entries(["10.0.0.0/8"])
    assert policy.refusal(ip_address("::ffff:10.0.0.1"), 80) is not None


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "fd00:ec2::254", "64:ff9b::a9fe:a9fe", "100.100.100.200"]
)
def test_cloud_metadata_is_never_allowed(address: str) -> None:
    policy = AddressPolicy.from_entries(["0.0.0.0/0", "::/0", "169.254.169.254"])
    refused = policy.refusal(ip_address(address), 80)
    assert refused is not None
    assert refused.final


def test_allow_setting_reads_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMZWATCH_FETCH_ALLOW_NETWORKS", " 10.0.0.0/8, 127.0.0.1:8080,[::1]:9, ")
    settings = PollerSettings()
    assert settings.fetch_allow_networks == ("10.0.0.0/8", "127.0.0.1:8080", "[::1]:9")


def test_allow_setting_is_empty_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DMZWATCH_FETCH_ALLOW_NETWORKS", raising=False)
    assert PollerSettings().fetch_allow_networks == ()


def test_bad_allow_setting_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMZWATCH_FETCH_ALLOW_NETWORKS", "10.0.0.0/8,127.0.0.1:99999")
    with pytest.raises(ValidationError, match="port must be 1-65535"):
        PollerSettings()
