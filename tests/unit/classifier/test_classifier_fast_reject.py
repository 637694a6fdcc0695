"""The fast reject: articles with nothing to weigh skip the tally, and score as if they had not.

An article without trigger hits has no evidence, so it skips the evidence tally (and, without
negative phrases either, the scoring loop). These tests pin that the short cut gives the
scores the full way gives: each such article is classified again with an inert trigger added
(a trigger phrase with none of its required context near, which counts nothing but sends the
article the full way). Articles that just reach or just miss a threshold are checked against
the documented formula with evidence counted by hand.
"""

from __future__ import annotations

import math

import pytest

from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.matcher import PhraseMatcher
from dmzwatch.classifier.taxonomy import normalise

# More than the 400 characters of the lead, and nothing in it a trigger or a negative, so the
# sentences after it weigh exactly their phrases' weights.
LEAD = (
    "Rain fell across the western provinces on Monday and farmers said the harvest would be late. "
) * 5
# "executed" is a purge trigger, but only next to officials or the like: here it counts nothing.
INERT = " The old mill was executed in red brick."


@pytest.fixture(scope="module")
def matcher(classifier: Classifier) -> PhraseMatcher:
    return PhraseMatcher(classifier.taxonomy)


def _trigger_hits(matcher: PhraseMatcher, title: str, text: str) -> int:
    raw = f"{title}\n\n{text}"
    return len(matcher.scan(raw, normalise(raw)).triggers)


def _logistic(classifier: Classifier, evidence: float, threshold: float = 3.0) -> float:
    """The score the header of ``taxonomy.yaml`` documents, worked out independently."""
    slope = classifier.taxonomy.scoring.slope
    return round(1.0 / (1.0 + math.exp(slope * (threshold - evidence))), 4)


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("Harvest news", LEAD),  # nothing at all: no trigger, no negative
        ("", "Prices of rice rose in the markets."),
        ("Film review", LEAD + "The new film opened on Friday."),  # a negative phrase only
        ("Film review", "The horror film's sequel broke box office records."),
    ],
)
def test_an_article_with_nothing_to_weigh_scores_as_the_full_tally_would(
    classifier: Classifier, matcher: PhraseMatcher, title: str, text: str
) -> None:
    assert _trigger_hits(matcher, title, text) == 0  # the short cut is taken
    assert _trigger_hits(matcher, title, text + INERT) == 1  # the full way is taken

    fast = classifier.classify(title, text)
    full = classifier.classify(title, text + INERT)

    assert fast.labels == full.labels == ()
    assert dict(fast.scores) == dict(full.scores)
    assert not fast.evidence and not fast.certainty


def test_without_evidence_every_category_gets_the_logistic_of_its_penalties(
    classifier: Classifier,
) -> None:
    nothing = classifier.classify("Harvest news", LEAD)
    assert dict(nothing.scores) == dict.fromkeys(classifier.categories, _logistic(classifier, 0))

    film = classifier.classify("Film review", LEAD + "The new film opened on Friday.")
    # "film" is one negative phrase of purge, weighing 2.0.
    assert film.scores["purge"] == _logistic(classifier, -2.0)
    assert film.scores["summit"] == _logistic(classifier, 0)


@pytest.mark.parametrize(
    ("last_trigger", "evidence", "fires"),
    [
        ("executed", 1.25 + 2.0, True),  # "arrested" and "executed" just reach purge's 3.0
        ("jailed", 1.25 + 1.25, False),  # "arrested" and "jailed" just miss it
    ],
)
def test_an_article_near_a_threshold_scores_the_logistic_of_its_evidence(
    classifier: Classifier, last_trigger: str, evidence: float, fires: bool
) -> None:
    text = (
        f"{LEAD}Officials said the former minister was arrested. "
        f"Later, officials said his deputy was {last_trigger}."
    )
    # The inert trigger goes first, far from the officials: it changes nothing either.
    for opening in ("", INERT.strip() + " "):
        result = classifier.classify("Harvest news", opening + text)
        assert result.scores["purge"] == _logistic(classifier, evidence)
        assert (result.labels == ("purge",)) is fires
