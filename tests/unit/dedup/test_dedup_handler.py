import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.dedup.cluster import memory_store
from dmzwatch.dedup.handler import DedupHandler
from dmzwatch.dedup.metrics import DedupMetrics
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.messages import UniqueArticle
from dmzwatch.shared.runner import Context
from dmzwatch.shared.topics import TopicCatalogue
from tests.conftest import make_article

TOPICS = TopicCatalogue()


class Harness:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.clock = ManualClock()
        self.handler = DedupHandler(
            memory_store(self.clock), TOPICS, DedupMetrics(self.registry), self.clock
        )
        self.offset = 0

    def feed(self, article, offset: int | None = None):
        if offset is None:
            self.offset += 1
            offset = self.offset
        return self.handler.handle(article, Context("raw", 0, offset, article.article_id, 0))

    def dropped(self, kind: str) -> float:
        return (
            self.registry.get_sample_value("dmzwatch_dedup_duplicates_total", {"kind": kind}) or 0
        )


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_first_sighting_passes_on_as_its_own_story(h: Harness) -> None:
    [out] = h.feed(make_article(article_id="u1"))
    assert out.topic == TOPICS.articles_unique and out.key == "u1"
    assert isinstance(out.value, UniqueArticle) and out.value.story_id == "u1"


def test_the_same_article_on_the_next_poll_is_dropped(h: Harness) -> None:
    h.feed(make_article(article_id="u1"))
    assert h.feed(make_article(article_id="u1")) == ()
    assert h.dropped("url") == 1


def test_a_redelivered_record_is_not_mistaken_for_a_repeat(h: Harness) -> None:
    """A crash after the claim but before the commit re-delivers the same record."""
    first = h.feed(make_article(article_id="u1"), offset=7)
    again = h.feed(make_article(article_id="u1"), offset=7)
    assert first and again == first


def test_a_guid_seen_before_under_another_url_is_a_repeat(h: Harness) -> None:
    h.feed(make_article(article_id="u1", guid="g", url="https://news.example/a"))
    moved = make_article(article_id="u2", guid="g", url="https://news.example/a-amp", title="New")
    assert h.feed(moved) == ()
    assert h.dropped("guid") == 1


def test_another_outlets_verbatim_copy_joins_the_first_story(h: Harness) -> None:
    h.feed(make_article(article_id="u1", guid="g1", source="wire.example", title="Kim meets Moon"))
    copy = make_article(
        article_id="u2",
        guid="g2",
        source="paper.example",
        title="Kim meets Moon",
        url="https://paper.example/x",
    )
    [out] = h.feed(copy)
    assert out.value.story_id == "u1" and out.key == "u2"
    assert h.registry.get_sample_value("dmzwatch_dedup_unique_total", {"syndicated": "true"}) == 1


def test_the_same_text_again_from_the_same_outlet_is_a_repeat(h: Harness) -> None:
    h.feed(make_article(article_id="u1", guid="g1", title="Same"))
    assert (
        h.feed(make_article(article_id="u2", guid="g2", title="Same", url="https://news.example/b"))
        == ()
    )
    assert h.dropped("content") == 1


def test_a_changed_text_under_a_known_id_is_an_update_of_the_same_story(h: Harness) -> None:
    [first] = h.feed(make_article(article_id="u1", summary="Two officials were detained."))
    h.clock.advance(600)
    [update] = h.feed(make_article(article_id="u1", summary="Two officials were executed."))
    value = update.value
    assert isinstance(value, UniqueArticle)
    assert value.is_update and value.revision == 2 and value.story_id == "u1"
    assert value.first_seen_at == first.value.first_seen_at
    assert h.registry.get_sample_value("dmzwatch_dedup_stories_total", {"match": "update"}) == 1


def test_unchanged_repeats_of_an_update_and_a_text_flipping_back_are_dropped(h: Harness) -> None:
    h.feed(make_article(article_id="u1", summary="First version."))
    h.feed(make_article(article_id="u1", summary="Second version."))
    assert h.feed(make_article(article_id="u1", summary="Second version.")) == ()
    assert h.feed(make_article(article_id="u1", summary="First version.")) == ()


def test_a_redelivered_update_gets_the_same_revision(h: Harness) -> None:
    h.feed(make_article(article_id="u1", summary="First version."))
    first = h.feed(make_article(article_id="u1", summary="Second version."), offset=50)
    again = h.feed(make_article(article_id="u1", summary="Second version."), offset=50)
    assert again[0].value.revision == first[0].value.revision == 2


def test_unique_articles_carry_the_story_outlets_so_far(h: Harness) -> None:
    text = {"title": "Kim meets Moon", "summary": "They met at the border."}
    h.feed(make_article(article_id="u1", guid="g1", source="wire.example", **text))
    [out] = h.feed(
        make_article(
            article_id="u2", guid="g2", source="m.paper.example", url="https://x.example/2", **text
        )
    )
    assert out.value.story_outlets == ("wire.example", "paper.example")
