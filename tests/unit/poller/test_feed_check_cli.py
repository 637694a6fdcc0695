"""``dmzwatch feed check`` (the real command line) on one fixture per hard case of issue 4's
Parsing list, on every feed of ../shared/feeds, and on URLs of private hosts.

Each fixture pins one property: the format is recognised, the text decodes to the right
script, links are absolute (resolved against ``--base-url``, standing in for the feed URL, and
``xml:base``), dates are UTC, undated entries carry their first-seen time, ids fall back from
missing or repeated GUIDs to the link or a content hash, HTML becomes clean text, and a broken
feed gives its recoverable entries or a clear error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dmzwatch.cli import main
from tests.unit.poller.test_feed_parse_real_feeds import COUNTS, FEEDS, pub_dates_in_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
BASE = "https://feeds.example.org/korea/feed.xml"
Report = dict[str, object]


def check(capsys: pytest.CaptureFixture[str], *args: str) -> Report:
    """Run ``dmzwatch feed check ARGS`` in process; its exit code must be 0."""
    assert main(["feed", "check", *args]) == 0
    report: Report = json.loads(capsys.readouterr().out)
    return report


def items(report: Report) -> list[dict[str, object]]:
    listed = report["items"]
    assert isinstance(listed, list)
    return listed


def titles(report: Report) -> list[object]:
    return [item["title"] for item in items(report)]


def by_title(report: Report, title: str) -> dict[str, object]:
    (item,) = [i for i in items(report) if i["title"] == title]
    return item


def clean(report: Report, *, entries: int) -> None:
    assert report["error"] is None, report["error"]
    assert report["entries"] == entries


@dataclass(frozen=True)
class Case:
    fixture: str
    expect: Callable[[Report], None]


def rss091(r: Report) -> None:
    clean(r, entries=1)
    assert r["format"] == "rss091u"
    # Entities the (dropped, never fetched) Netscape DTD defines are still read.
    assert titles(r) == ["Old style © item"]  # &nbsp; read as a plain space
    assert items(r)[0]["text"] == "Entities from the DTD: été"


def rss092(r: Report) -> None:
    clean(r, entries=2)
    assert r["format"] == "rss092"
    untitled = items(r)[0]
    assert untitled["title"] == ""
    assert untitled["text"] == "Shortwave schedule changed at dawn."
    assert untitled["link"] == "https://feeds.example.org/notes/schedule-change"
    assert untitled["id_from"] == "url"


def rss10(r: Report) -> None:
    clean(r, entries=2)
    assert r["format"] == "rss10"
    assert [i["published"] for i in items(r)] == [
        "2026-02-01T11:00:00+00:00",
        "2026-02-01T13:30:00+00:00",
    ]


def rss20_relative(r: Report) -> None:
    clean(r, entries=5)
    assert r["format"] == "rss20"
    first = by_title(r, "Delegations meet at Panmunjom for working-level talks")
    assert first["link"] == "https://news.example.org/korea/articles/talks-resume.html"
    archive = by_title(r, "Archive note with its own base")
    assert archive["link"] == "https://archive.example.org/notes/one.html"  # item xml:base


def atom_xml_base(r: Report) -> None:
    clean(r, entries=2)
    assert r["format"] == "atom10"
    assert [i["link"] for i in items(r)] == [
        "https://atom.example.org/blog/posts/summit-venue",
        "https://mirror.example.net/copy/item-2",
    ]


def atom_no_base(r: Report) -> None:
    clean(r, entries=3)
    assert [i["link"] for i in items(r)] == [
        "https://feeds.example.org/korea/stories/one.html",
        "https://feeds.example.org/stories/two.html",
        "https://cdn.example.com/three.html",
    ]
    # +09:00 is converted, not dropped.
    assert by_title(r, "Root-relative")["published"] == "2026-03-02T17:00:00+00:00"


def json11(r: Report) -> None:
    clean(r, entries=3)
    assert r["format"] == "json11"
    assert items(r)[0]["link"] == "https://feeds.example.org/2026/03/defector-arrives"
    assert items(r)[0]["published"] == "2026-03-01T20:40:00+00:00"


def json10(r: Report) -> None:
    clean(r, entries=1)
    assert r["format"] == "json1"
    assert items(r)[0]["text"] == "Hello & welcome"


def declared_encoding(title: str) -> Callable[[Report], None]:
    def expect(r: Report) -> None:
        clean(r, entries=1)
        assert titles(r) == [title]

    return expect


def windows1251_undeclared(r: Report) -> None:
    assert r["feed_title"] == "Новости Кореи"
    assert titles(r) == ["Пхеньян объявил о новых назначениях в правительстве"]
    assert items(r)[0]["text"] == "Центральное телеграфное агентство сообщило об изменениях."
    # Moscow time, +03:00, is converted to UTC.
    assert items(r)[0]["published"] == "2026-03-02T03:00:00+00:00"
    assert r["error"] == "bytes are not valid UTF-8 and no encoding is declared; decoded as cp1251"


def euckr_undeclared(r: Report) -> None:
    assert r["feed_title"] == "통일 소식"
    assert titles(r) == ["남북 정상회담 준비 접촉 재개"]
    assert items(r)[0]["text"] == "양측 대표단이 판문점에서 만났다."


def gb2312_but_gbk(r: Report) -> None:
    clean(r, entries=1)
    assert titles(r) == ["朱镕基时代的会谈回顾"]  # 镕 is GBK, not GB2312


def double_encoded(r: Report) -> None:
    clean(r, entries=1)
    assert r["feed_title"] == "Café Séoul — revue"
    assert titles(r) == ["Sommet à Hanoï : les délégations arrivent"]
    assert items(r)[0]["text"] == "Les négociateurs étaient déjà là à l’aube."


def windows1252_as_utf8(r: Report) -> None:
    assert titles(r) == ["Café “quoted”"]
    assert r["error"] == "bytes are not valid utf-8; decoded as cp1252"


DATE_OF = {
    "RFC 822 with GMT": "2026-03-03T09:15:00+00:00",
    "Named US zone": "2026-03-03T09:15:00+00:00",
    "Two-digit year": "2026-03-03T09:15:00+00:00",
    "No seconds": "2026-03-03T09:15:00+00:00",
    "No weekday, one-digit day": "2026-03-03T09:15:00+00:00",
    "Wrong weekday": "2026-03-03T09:15:00+00:00",
    "ISO 8601 with Z": "2026-03-03T09:15:00+00:00",
    "ISO 8601 with offset": "2026-03-03T09:15:00+00:00",
    "ISO 8601 offset without colon": "2026-03-03T09:15:00+00:00",
    "ISO 8601 with fraction": "2026-03-03T09:15:00+00:00",
    "Space instead of T": "2026-03-03T09:15:00+00:00",
    "Full month name": "2026-03-03T09:15:00+00:00",
    "Korean standard time": "2026-03-03T09:15:00+00:00",
    "Garbage date": None,
}


def odd_dates(r: Report) -> None:
    clean(r, entries=len(DATE_OF))
    assert {i["title"]: i["published"] for i in items(r)} == DATE_OF
    garbage = by_title(r, "Garbage date")
    assert garbage["time"] == r["fetched_at"]  # missing date: first-seen time
    assert by_title(r, "Korean standard time")["time"] == DATE_OF["Korean standard time"]


def missing_date(r: Report) -> None:
    undated = by_title(r, "Item without a date or link")
    assert undated["published"] is None
    assert undated["time"] == r["fetched_at"]
    fetched = datetime.fromisoformat(str(r["fetched_at"]))
    assert fetched.utcoffset() is not None and fetched.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def guids_missing(r: Report) -> None:
    clean(r, entries=3)
    assert r["guids_trusted"] is True
    linked, one, two = items(r)
    assert (linked["guid"], linked["id_from"]) == (None, "url")
    assert (one["id_from"], two["id_from"]) == ("content", "content")
    assert len({linked["id"], one["id"], two["id"]}) == 3


def guids_repeated(r: Report) -> None:
    clean(r, entries=3)
    assert r["guids_trusted"] is False
    assert [i["guid"] for i in items(r)] == [None, None, None]  # the repeated "latest" is dropped
    assert [i["id_from"] for i in items(r)] == ["content"] * 3
    assert len({i["id"] for i in items(r)}) == 3


def messy_html(r: Report) -> None:
    clean(r, entries=1)
    (item,) = items(r)
    assert item["title"] == "Defector interview & analysis"
    assert item["text"] == (
        "The envoy said “no comment” & left.\n\nSecond\nline…\n\n"
        "first point\nsecond point\n\nName Post\n\nLast!"
    )


def double_escaped(r: Report) -> None:
    clean(r, entries=1)
    assert items(r)[0]["text"] == "Paragraph one.\n\nParagraph two."


def control_characters(r: Report) -> None:
    clean(r, entries=2)
    (first, second) = items(r)
    assert isinstance(first["title"], str) and first["title"].startswith("Vertical")
    assert all(ord(c) >= 32 or c in "\n\t" for c in f"{first['title']}{first['text']}")
    assert "Escape" in str(first["text"]) and "bell" in str(first["text"])
    assert second["link"] == "https://ctl.example.org/2"


def truncated(r: Report) -> None:
    assert r["entries"] == 2  # the complete entries before the cut
    assert str(r["error"]).startswith("XML not well-formed at line 5")
    assert "recovered 2 entries" in str(r["error"])


def sloppy(r: Report) -> None:
    clean(r, entries=1)
    assert titles(r) == ["Tom & Jerry … AT&T"]
    assert items(r)[0]["link"] == "https://sloppy.example.org/1?a=1&b=2"


def error_only(message: str) -> Callable[[Report], None]:
    def expect(r: Report) -> None:
        assert r["entries"] == 0
        assert str(r["error"]).startswith(message), r["error"]

    return expect


def unknown_encoding(r: Report) -> None:
    assert titles(r) == ["Plain ASCII title"]
    assert r["error"] == "unknown encoding 'x-unknown-charset' declared; decoded as utf-8"


CASES = [
    # Formats
    Case("rss091_netscape_doctype.xml", rss091),
    Case("rss092_untitled_items.xml", rss092),
    Case("rss1_rdf.xml", rss10),
    Case("rss2_relative_links.xml", rss20_relative),
    Case("atom_xml_base.xml", atom_xml_base),
    Case("atom_relative_no_base.xml", atom_no_base),
    Case("jsonfeed_1_0.json", json10),
    Case("jsonfeed_1_1.json", json11),
    # Encodings: declared, undeclared, BOM-marked, mis-declared, double-encoded
    Case("latin1_declared.xml", declared_encoding("Café Müller in Genève")),
    Case("windows1251_declared.xml", declared_encoding("Пхеньян сообщает")),
    Case("gb2312_declared.xml", declared_encoding("朝鲜半岛局势")),
    Case("euckr_declared.xml", declared_encoding("조선중앙통신 보도")),
    Case("utf8_undeclared.xml", declared_encoding("평양 undeclared Café")),
    Case("windows1251_undeclared.xml", windows1251_undeclared),
    Case("euckr_undeclared.xml", euckr_undeclared),
    Case("utf8_bom.xml", declared_encoding("평양 BOM")),
    Case("utf16le_bom.xml", declared_encoding("평양 sixteen")),
    Case("latin1_declared_but_utf8.xml", declared_encoding("Café mislabelled")),
    Case("utf8_declared_but_windows1252.xml", windows1252_as_utf8),
    Case("gb2312_declared_but_gbk.xml", gb2312_but_gbk),
    Case("double_encoded_utf8.xml", double_encoded),
    Case("unknown_encoding.xml", unknown_encoding),
    # Dates
    Case("odd_dates.xml", odd_dates),
    Case("rss2_relative_links.xml", missing_date),
    # Ids
    Case("guids_missing.xml", guids_missing),
    Case("guids_repeated.xml", guids_repeated),
    # HTML
    Case("html_messy_content.xml", messy_html),
    Case("double_escaped_html.xml", double_escaped),
    # Broken
    Case("control_characters.xml", control_characters),
    Case("sloppy_xml.xml", sloppy),
    Case("truncated.xml", truncated),
    Case("empty.xml", error_only("empty body")),
    Case("html_page.html", error_only("not a feed: looks like HTML")),
    Case("not_a_feed.txt", error_only("not a feed: neither XML nor JSON")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.fixture}-{c.expect.__name__}")
def test_feed_check_handles_the_hard_case(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    report = check(capsys, str(FIXTURES / case.fixture), "--base-url", BASE)
    case.expect(report)
    for item in items(report):
        link = item["link"]
        assert link is None or urlsplit(str(link)).scheme in ("http", "https")
        published = item["published"]
        assert published is None or str(published).endswith("+00:00")


def test_every_fixture_is_in_the_table() -> None:
    hostile = {"billion_laughs.xml", "xxe_file.xml", "xxe_http.xml", "xxe_parameter_entity.xml"}
    hostile |= {"not_a_feed_root.xml", "junk_before_xml.xml"}  # in test_feed_parse_hostile
    tabled = {case.fixture for case in CASES}
    assert {p.name for p in FIXTURES.iterdir()} - hostile == tabled


def test_without_base_url_a_files_relative_links_are_dropped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = check(capsys, str(FIXTURES / "atom_relative_no_base.xml"))
    # Against the file's file:// URL even "//host/path" stays file://, so it goes too.
    assert [i["link"] for i in items(report)] == [None, None, None]
    assert report["entries"] == 3


@pytest.mark.skipif(not COUNTS, reason=f"no test feeds at {FEEDS}")
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_every_real_feed_has_all_entries_absolute_links_and_utc_dates(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (FEEDS / name).read_bytes()
    report = check(capsys, str(FEEDS / name), "--base-url", f"https://base.invalid/{name}")
    assert report["error"] is None
    assert report["entries"] == COUNTS[name]
    for item in items(report):
        parts = urlsplit(str(item["link"]))
        assert parts.scheme in ("http", "https") and parts.hostname
        assert parts.hostname != "base.invalid"  # absolute in the source already
        assert item["published"] is None or str(item["published"]).endswith("+00:00")
        assert item["id"]
    dated = sum(1 for item in items(report) if item["published"] is not None)
    assert dated == pub_dates_in_source(body)


def test_the_installed_command_prints_the_report() -> None:
    command = Path(sys.executable).parent / "dmzwatch"
    done = subprocess.run(
        [str(command), "feed", "check", str(FIXTURES / "windows1251_undeclared.xml")],
        capture_output=True,
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout.decode("utf-8"))
    assert report["feed_title"] == "Новости Кореи"


# ---- URLs of private hosts: refused like the poller refuses them, unless allowed


@pytest.fixture
def loopback_feed() -> Iterator[str]:
    body = (FIXTURES / "guids_missing.xml").read_bytes()
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    finally:
        server.shutdown()
        server.server_close()


def test_a_loopback_url_is_blocked_with_a_clear_error(
    loopback_feed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = check(capsys, loopback_feed)
    assert report["outcome"] == "blocked"
    assert report["entries"] == 0
    error = str(report["error"])
    assert error.startswith("refused to connect to 127.0.0.1 port ")
    assert "loopback address, not in the allow-list" in error
    assert "--allow-network" in error


@pytest.mark.parametrize("allow", ["127.0.0.1/32", "127.0.0.0/8", "10.0.0.0/8,127.0.0.1"])
def test_an_explicitly_allowed_network_is_fetched(
    allow: str, loopback_feed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = check(capsys, loopback_feed, "--allow-network", allow)
    assert report["outcome"] == "ok"
    assert report["error"] is None
    assert report["entries"] == 3


def test_an_allow_list_for_another_port_does_not_open_this_one(
    loopback_feed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = int(urlsplit(loopback_feed).port or 0)
    report = check(capsys, loopback_feed, "--allow-network", f"127.0.0.1:{port + 1}")
    assert report["outcome"] == "blocked"


def test_cloud_metadata_stays_blocked_even_when_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    report = check(
        capsys, "http://169.254.169.254/latest/meta-data/", "--allow-network", "169.254.0.0/16"
    )
    assert report["outcome"] == "blocked"
    assert "never allowed" in str(report["error"])
    assert "--allow-network" not in str(report["error"])


def test_a_bad_allow_network_entry_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feed", "check", "http://127.0.0.1/x", "--allow-network", "nonsense"]) == 2
    assert "--allow-network: allow-list entry 'nonsense'" in capsys.readouterr().err
