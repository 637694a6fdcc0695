"""Story clustering on the in-memory stores: near duplicates, windows, outlets, the labelled set."""

import io
import json
from datetime import timedelta

import pytest
from redis.cluster import key_slot

from dmzwatch import cli
from dmzwatch.dedup.cluster import article_from, cluster_stream, memory_store
from dmzwatch.dedup.entries import ArticleRecord, ContentRecord, pack_id, unpack_id
from dmzwatch.dedup.keys import Buckets, KeyLayout
from dmzwatch.dedup.outlets import Outlets
from dmzwatch.shared.clock import ManualClock
from tests.stories import STORIES, labelled_articles, score

WIRE = STORIES[0]  # the vice premier's execution
LOOKALIKE = STORIES[1]  # the security minister's dismissal, the same week


def item(story, outlet: str, title: str | None = None, lead: int = 4) -> dict[str, str]:
    return {
        "id": f"{outlet}/{story.key}/{title is not None}/{lead}",
        "url": f"https://{outlet}/n/{story.key}?utm_source=rss",
        "title": title or story.title,
        "text": " ".join(story.lead[:lead]),
        "source": outlet,
    }


def remember(store, clock, entry: dict[str, str], token: str):
    return store.remember(article_from(entry, clock.now()), token)


def test_a_rewritten_copy_from_another_outlet_joins_the_story_as_a_near_duplicate() -> None:
    clock = ManualClock()
    store = memory_store(clock)
    first = remember(store, clock, item(WIRE, "korea-wire.example"), "r/0/1")
    copy = remember(
        store, clock, item(WIRE, "asia-desk.example", title=WIRE.headlines[0], lead=2), "r/0/2"
    )
    assert first.match == "new" and copy.match == "near" and copy.syndicated
    assert copy.story_id == first.story_id
    assert copy.outlets == ("korea-wire.example", "asia-desk.example")


def test_a_lookalike_story_in_the_same_week_starts_its_own_story() -> None:
    clock = ManualClock()
    store = memory_store(clock)
    first = remember(store, clock, item(WIRE, "korea-wire.example"), "r/0/1")
    clock.advance(2 * 86400)
    other = remember(store, clock, item(LOOKALIKE, "korea-wire.example"), "r/0/2")
    assert other.match == "new" and other.story_id != first.story_id


def test_a_copy_after_the_story_window_starts_a_new_story() -> None:
    clock = ManualClock()
    store = memory_store(clock, window_seconds=3600)
    first = remember(store, clock, item(WIRE, "korea-wire.example"), "r/0/1")
    clock.advance(3601)
    late = remember(store, clock, item(WIRE, "asia-desk.example", title=WIRE.headlines[1]), "r/0/2")
    assert late.story_id != first.story_id and late.outlets == ("asia-desk.example",)


def test_without_near_duplicates_only_verbatim_copies_join() -> None:
    clock = ManualClock()
    store = memory_store(clock, near_duplicates=False)
    first = remember(store, clock, item(WIRE, "korea-wire.example"), "r/0/1")
    verbatim = remember(store, clock, item(WIRE, "asia-desk.example"), "r/0/2")
    rewrite = remember(store, clock, item(WIRE, "seoul-times.example", WIRE.headlines[0]), "r/0/3")
    assert verbatim.match == "exact" and verbatim.story_id == first.story_id
    assert rewrite.match == "new" and rewrite.story_id != first.story_id


def test_a_mirror_and_an_aliased_domain_count_as_the_outlet_they_mirror() -> None:
    clock = ManualClock()
    store = memory_store(clock, aliases={"wire-mirror.example": "korea-wire.example"})
    remember(store, clock, item(WIRE, "korea-wire.example"), "r/0/1")
    remember(store, clock, item(WIRE, "m.korea-wire.example", WIRE.headlines[0]), "r/0/2")
    third = remember(store, clock, item(WIRE, "wire-mirror.example", WIRE.headlines[1]), "r/0/3")
    assert third.outlets == ("korea-wire.example",)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_labelled_set_recall_is_at_least_95_percent_and_no_stories_merge(seed: int) -> None:
    articles = labelled_articles(copies=7, seed=seed)
    out = io.StringIO()
    assert cluster_stream([json.dumps(a) for a in articles], out) == 0
    assigned = {r["id"]: r["story_id"] for r in map(json.loads, out.getvalue().splitlines())}
    result = score(articles, assigned)
    assert result.copies == 7 * len(STORIES)
    assert result.recall >= 0.95
    assert result.merged == ()


def test_copies_cluster_whichever_arrives_first() -> None:
    """The first article names the story even when it is a trimmed, re-headlined copy."""
    articles = labelled_articles(copies=7, seed=4)[::-1]
    out = io.StringIO()
    cluster_stream([json.dumps(a) for a in articles], out)
    assigned = {r["id"]: r["story_id"] for r in map(json.loads, out.getvalue().splitlines())}
    result = score(articles, assigned)
    assert result.recall >= 0.95 and result.merged == ()


def test_cluster_command_writes_a_story_id_per_line(tmp_path, capsys) -> None:
    path = tmp_path / "in.jsonl"
    rows = [item(WIRE, "korea-wire.example"), item(WIRE, "asia-desk.example", WIRE.headlines[0])]
    rows.append(item(LOOKALIKE, "korea-wire.example"))
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert cli.main(["cluster", str(path)]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == [r["id"] for r in rows]
    assert out[0]["story_id"] == out[1]["story_id"] == rows[0]["id"] != out[2]["story_id"]


def test_cluster_command_reports_unreadable_lines(tmp_path, capsys) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "x"}\nnot json\n')
    assert cli.main(["cluster", str(path)]) == 1
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out[0]["story_id"] == "x" and "error" in out[1]


@pytest.mark.parametrize(
    ("source", "outlet"),
    [
        ("www.korea-wire.example", "korea-wire.example"),
        ("m.korea-wire.example", "korea-wire.example"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("https://amp.theguardian.com/world/1", "theguardian.com"),
        ("en.yna.co.kr", "yonhap"),
        ("127.0.0.1", "127.0.0.1"),
        ("", ""),
    ],
)
def test_outlets_reduce_hosts_to_registrable_domains_and_aliases(source: str, outlet: str) -> None:
    assert Outlets({"yna.co.kr": "yonhap"})(source) == outlet


@pytest.mark.parametrize("ident", ["u" + "ab" * 12, "u-test-1", "c" + "0f" * 12, "Ünïcode id"])
def test_ids_pack_compactly_and_round_trip(ident: str) -> None:
    assert unpack_id(pack_id(ident)) == ident
    assert len(pack_id("u" + "ab" * 12)) == 13


def test_records_round_trip_and_keep_only_recent_revisions() -> None:
    record = ArticleRecord.first(1_800_000_000, b"t" * 6, b"\xee" * 6).decided(
        "u" + "1" * 24, "near"
    )
    for n in range(12):
        record = record.revised(bytes([n]) * 6, bytes([n + 100]) * 6)
    again = ArticleRecord.decode(record.encode())
    assert again == record and again.revisions == 13 and len(again.recent) == 8
    assert again.revision_of(bytes([111]) * 6) == 13 and again.revision_of(b"\xee" * 6) is None
    content = ContentRecord(b"123456", "u" + "2" * 24, b"abcd")
    assert ContentRecord.decode(content.encode()) == content
    assert len(record.encode()) <= 128 and len(content.encode()) <= 24


def test_every_script_touches_one_hash_slot() -> None:
    """Redis Cluster refuses a script whose keys span slots."""
    layout = KeyLayout("dmzwatch:", 1024)
    buckets = Buckets(72 * 3600)
    live = buckets.live(1_800_000_000)
    for name in (b"a" + bytes(12), b"c" + b"\xff" * 12):
        assert (
            len({key_slot(layout.records("x", layout.shard(name), b).encode()) for b in live}) == 1
        )
    assert key_slot(layout.index_stream().encode()) == key_slot(b"{lsh}")  # one key, one slot
    with pytest.raises(ValueError, match="braces"):
        KeyLayout("{dmzwatch}:", 8)


def test_buckets_keep_a_record_at_least_its_lifetime() -> None:
    buckets = Buckets(8000)
    for written in (0, 999, 1000, 123_456):
        bucket = buckets.current(written)
        expires = written + buckets.ttl(bucket, written)
        assert written + 8000 <= expires <= written + 8000 + buckets.width + 1
        assert bucket in buckets.live(written + 8000)
    assert timedelta(seconds=buckets.width) == timedelta(seconds=1000)
