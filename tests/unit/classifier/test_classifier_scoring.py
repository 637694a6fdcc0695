"""Scores, evidence and certainty: the shape of a decision and what moves it."""

from __future__ import annotations

import pytest

from dmzwatch.classifier.engine import MAX_EVIDENCE, MAX_EVIDENCE_CHARS, Classifier

DEFECTION_STORY = (
    "A North Korean soldier crossed the DMZ and defected to the South on Tuesday, the Joint "
    "Chiefs of Staff said. The defector was taken into custody by South Korean troops. He is "
    "the second soldier to defect across the border this year, and the military said it was "
    "questioning him about his motives and the route he took."
)
FILLER = (
    "Prices of rice and corn rose sharply in markets near the Chinese border. Weather "
    "forecasters expect heavy rain in the western provinces next week. Trade with China "
    "recovered to about half of its earlier level, according to customs data. "
)


def test_every_category_gets_a_score_between_0_and_1(classifier: Classifier) -> None:
    result = classifier.classify("Soldier defects across DMZ", DEFECTION_STORY)
    assert set(result.scores) == set(classifier.categories)
    assert all(0.0 <= score <= 1.0 for score in result.scores.values())


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("Soldier defects across DMZ", DEFECTION_STORY),
        ("Markets", FILLER),
        ("", ""),
        ("North Korea executes envoy", "The envoy was executed, officials said."),
    ],
)
def test_a_label_fires_exactly_when_its_score_reaches_one_half(
    classifier: Classifier, title: str, text: str
) -> None:
    result = classifier.classify(title, text)
    fired = {name for name, score in result.scores.items() if score >= 0.5}
    assert set(result.labels) == fired
    assert set(result.evidence) == set(result.labels) == set(result.certainty)


def test_labels_come_in_taxonomy_order(classifier: Classifier) -> None:
    result = classifier.classify(
        "Defections follow purge of Kim's uncle",
        "After the execution of Kim Jong Un's uncle and the purge of his aides, several "
        "officials close to him defected to South Korea, lawmakers in Seoul said. More "
        "defections of officials are expected as the purge widens.",
    )
    assert result.labels == ("purge", "defection")


def test_more_evidence_means_a_higher_score(classifier: Classifier) -> None:
    one = classifier.classify("", FILLER + "A soldier defected to the South on Tuesday.")
    two = classifier.classify("Soldier defects across DMZ", DEFECTION_STORY)
    assert one.scores["defection"] < 0.5 < two.scores["defection"]


def test_the_title_weighs_more_than_the_same_words_deep_in_the_text(
    classifier: Classifier,
) -> None:
    sentence = "A North Korean diplomat has defected to South Korea, officials in Seoul said."
    in_title = classifier.classify(sentence, FILLER * 2)
    deep = classifier.classify("Markets", FILLER * 2 + sentence)
    assert in_title.scores["defection"] > deep.scores["defection"]
    assert "defection" not in deep.labels


def test_evidence_is_at_most_three_short_deciding_sentences(classifier: Classifier) -> None:
    long_sentence = (
        "The defector who crossed the DMZ said that "
        + "conditions in the border units had worsened and that soldiers went hungry " * 8
        + "before he decided to defect to the South."
    )
    title = "Soldier defects to the South across the DMZ"
    result = classifier.classify(title, DEFECTION_STORY + " " + long_sentence)
    evidence = result.evidence["defection"]
    assert 1 <= len(evidence) <= MAX_EVIDENCE
    assert all(len(line) <= MAX_EVIDENCE_CHARS for line in evidence)
    assert evidence[0] == title  # the title weighs most


def test_hedged_wording_is_reported_and_plain_wording_confirmed(classifier: Classifier) -> None:
    reported = classifier.classify(
        "Army chief reportedly executed",
        "North Korea has reportedly executed its army chief, sources said. The general was "
        "allegedly purged for corruption and disloyalty to the leader, according to reports.",
    )
    confirmed = classifier.classify(
        "Army chief relieved of all posts",
        "North Korea's ruling party relieved the army chief of all posts at a politburo meeting, "
        "KCNA said. The general was removed from his post and expelled from the party.",
    )
    assert reported.certainty["purge"] == "reported"
    assert confirmed.certainty["purge"] == "confirmed"


def test_classification_is_a_pure_function_of_the_article(classifier: Classifier) -> None:
    first = classifier.classify("Soldier defects across DMZ", DEFECTION_STORY)
    assert classifier.classify("Markets", FILLER).labels == ()
    assert classifier.classify("Soldier defects across DMZ", DEFECTION_STORY) == first


def test_the_version_names_the_taxonomy_version(classifier: Classifier) -> None:
    assert classifier.version == f"rules-{classifier.taxonomy.version}"
    assert classifier.categories == ("purge", "summit", "defection")


def test_a_long_deciding_sentence_is_quoted_around_its_evidence(classifier: Classifier) -> None:
    padding = "conditions in the border units had worsened and soldiers went hungry, " * 6
    text = f"The soldier said {padding}so he defected to the South across the DMZ at night."
    result = classifier.classify("Soldier defects to the South", text)
    quoted = [line for line in result.evidence["defection"] if line.startswith("…")]
    assert quoted
    assert all(len(line) <= MAX_EVIDENCE_CHARS for line in quoted)
    assert "defected to the South" in quoted[0]
