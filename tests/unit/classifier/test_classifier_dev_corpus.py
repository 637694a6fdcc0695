"""Issue 3's "done when" on the shared labelled data (skipped where that data is absent).

The corpus and seeds are test data kept beside the repository (``../shared``); nothing of them
is copied here. The thresholds are issue 3's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.evaluation import evaluate, format_report

SHARED = Path(__file__).resolve().parents[4] / "shared"
DEV_CORPUS = SHARED / "corpus" / "news_dev.jsonl"
SEEDS = SHARED / "seeds"

needs_corpus = pytest.mark.skipif(not DEV_CORPUS.exists(), reason=f"{DEV_CORPUS} absent")


@needs_corpus
def test_the_dev_corpus_reaches_the_quality_bar(classifier: Classifier) -> None:
    with DEV_CORPUS.open(encoding="utf-8") as lines:
        report = evaluate(classifier, lines)
    summary = format_report(report)
    assert report.errors == 0, summary
    assert report.micro_f1 >= 0.92, summary
    for row in report.labels:
        assert row.precision >= 0.90, summary
        assert row.recall >= 0.85, summary


@needs_corpus
def test_no_article_without_labels_raises_one(classifier: Classifier) -> None:
    with DEV_CORPUS.open(encoding="utf-8") as lines:
        articles = [json.loads(line) for line in lines if line.strip()]
    negatives = [a for a in articles if not a["labels"]]
    assert negatives
    fired = {
        a["id"]: labels
        for a in negatives
        if (labels := classifier.classify(a.get("title") or "", a.get("text") or "").labels)
    }
    assert fired == {}


@pytest.mark.parametrize(
    ("prefix", "labels"),
    [
        # Elite detained and assets seized (purge); half the story is the announced Hanoi
        # summit (summit).
        ("000_", ("purge", "summit")),
        # Officials defecting (defection); a crackdown on corrupt senior officials (purge); the
        # failed Vietnam talks are only the cause mentioned in the lead, not the subject.
        ("002_", ("purge", "defection")),
    ],
)
def test_the_seed_articles_get_the_labels_the_definitions_give(
    classifier: Classifier, prefix: str, labels: tuple[str, ...]
) -> None:
    found = sorted(SEEDS.glob(f"{prefix}*.txt")) if SEEDS.exists() else []
    if not found:
        pytest.skip(f"no seed {prefix}* in {SEEDS}")
    assert classifier.classify("", found[0].read_text(encoding="utf-8")).labels == labels
