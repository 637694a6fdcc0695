"""The parity check used for speed work: it finds any difference, and its articles are varied."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.parity import differences, random_articles, recorded_articles


def test_two_builds_of_one_taxonomy_classify_random_articles_alike(
    classifier: Classifier,
) -> None:
    articles = random_articles(classifier.taxonomy, 300, seed=3)
    assert differences(classifier, Classifier(classifier.taxonomy), articles) == []


def test_a_changed_threshold_is_found(classifier: Classifier) -> None:
    taxonomy = classifier.taxonomy
    purge = taxonomy.categories[0]
    moved = dataclasses.replace(purge, threshold=purge.threshold + 0.25)
    other = Classifier(dataclasses.replace(taxonomy, categories=(moved, *taxonomy.categories[1:])))
    articles = random_articles(taxonomy, 300, seed=3)
    # Its score moves in every article, except where both round to 0.0 (heavy penalties).
    assert len(differences(classifier, other, articles)) > len(articles) // 2


def test_random_articles_are_reproducible_and_reach_every_label(classifier: Classifier) -> None:
    articles = random_articles(classifier.taxonomy, 300, seed=5)
    assert articles == random_articles(classifier.taxonomy, 300, seed=5)
    assert articles != random_articles(classifier.taxonomy, 300, seed=6)
    fired = {label for title, text in articles for label in classifier.classify(title, text).labels}
    assert fired == set(classifier.categories)
    assert any(not classifier.classify(title, text).labels for title, text in articles)


def test_recorded_articles_take_the_corpus_seeds_and_feed_items(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "seeds").mkdir()
    (tmp_path / "feeds").mkdir()
    lines = [
        {"id": "1", "title": "One", "text": "First line. Second sentence.\nNext paragraph."},
        {"id": "2", "title": "Two", "text": "Another article."},
    ]
    corpus = "\n".join(json.dumps(line) for line in lines) + "\n"
    (tmp_path / "corpus" / "news_dev.jsonl").write_text(corpus, encoding="utf-8")
    (tmp_path / "seeds" / "000_a.txt").write_text("Seed title\nSeed body.", encoding="utf-8")
    (tmp_path / "feeds" / "f.xml").write_text(
        "<rss><channel><item><title>Item &amp; title</title>"
        "<description><![CDATA[<p>Item <b>text</b></p>]]></description></item>"
        "</channel></rss>",
        encoding="utf-8",
    )

    articles = recorded_articles(tmp_path)

    assert ("One", "First line. Second sentence.\nNext paragraph.") in articles
    assert ("", "Next paragraph.") in articles  # each paragraph, with and without its title
    assert ("One", "Next paragraph.") in articles
    assert ("Seed title", "Seed body.") in articles
    assert ("Item & title", " Item  text  ") in articles
    assert sum(title == "One" for title, _ in articles) > 3  # and pairs of articles, cut
