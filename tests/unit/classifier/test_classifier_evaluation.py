"""Offline classification of JSONL, evaluation against labels, and the benchmark function."""

from __future__ import annotations

import io
import json

import pytest

from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.evaluation import (
    Speed,
    bench_classifier,
    classify_stream,
    evaluate,
    format_report,
    time_classifier,
)

DEFECTION = {
    "id": "a1",
    "title": "North Korean diplomat defects to South",
    "text": "A senior North Korean diplomat has defected to South Korea with his family, "
    "officials in Seoul said. He is the highest-ranking diplomat to defect in years.",
}
NEUTRAL = {"id": "a2", "title": "Rice prices rise", "text": "Rice prices rose in markets."}


def _lines(*documents: object) -> list[str]:
    return [json.dumps(d) + "\n" for d in documents]


def test_each_article_becomes_one_decision_line(classifier: Classifier) -> None:
    out = io.StringIO()
    errors = classify_stream(classifier, _lines(DEFECTION, NEUTRAL), out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert errors == 0
    assert first["id"] == "a1"
    assert first["labels"] == ["defection"]
    assert set(first["scores"]) == {"purge", "summit", "defection"}
    assert first["evidence"]["defection"]
    assert first["certainty"] == {"defection": "confirmed"}
    assert "Seoul" in first["entities"]["places"]
    assert second["labels"] == []
    assert second["evidence"] == {}


def test_summary_and_content_stand_in_for_a_missing_text(classifier: Classifier) -> None:
    article = {"id": 7, "title": DEFECTION["title"], "summary": DEFECTION["text"], "content": ""}
    out = io.StringIO()
    classify_stream(classifier, _lines(article), out)
    decision = json.loads(out.getvalue())
    assert decision["id"] == "7"
    assert decision["labels"] == ["defection"]


def test_a_malformed_line_is_reported_and_the_stream_goes_on(classifier: Classifier) -> None:
    lines = [
        "{not json\n",
        "[1, 2]\n",
        json.dumps({"id": "x", "title": 3, "text": "t"}) + "\n",
        json.dumps({"id": "y"}) + "\n",
        "\n",
        *_lines(DEFECTION),
    ]
    out = io.StringIO()
    errors = classify_stream(classifier, lines, out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert errors == 4
    assert [r.get("id") for r in records] == [None, None, "x", "y", "a1"]
    assert all("error" in r for r in records[:4])
    assert records[4]["labels"] == ["defection"]


def test_evaluation_counts_precision_recall_and_f1_per_label(classifier: Classifier) -> None:
    labelled = [
        {**DEFECTION, "labels": ["defection"]},
        {**NEUTRAL, "labels": []},
        {**NEUTRAL, "id": "a3", "labels": ["purge"]},  # a purge the classifier cannot see
        {"id": "bad"},  # no labels: unusable for evaluation
    ]
    report = evaluate(classifier, _lines(*labelled))
    defection, purge = report.label("defection"), report.label("purge")
    assert (report.articles, report.errors) == (3, 1)
    assert (defection.precision, defection.recall, defection.f1) == (1.0, 1.0, 1.0)
    assert (purge.recall, purge.support) == (0.0, 1)
    assert report.micro_precision == 1.0
    assert report.micro_recall == 0.5
    assert report.micro_f1 == pytest.approx(2 / 3)
    assert [m.id for m in report.mistakes] == ["a3"]
    assert 0.0 <= defection.brier < 0.05 < purge.brier  # the unseen purge scored near 0
    assert report.brier == pytest.approx(sum(r.brier for r in report.labels) / 3)


def test_the_report_is_a_readable_table(classifier: Classifier) -> None:
    report = evaluate(classifier, _lines({**DEFECTION, "labels": ["defection"]}))
    text = format_report(report)
    assert text.splitlines()[0].split() == [
        "label",
        "precision",
        "recall",
        "f1",
        "support",
        "brier",
    ]
    assert any(line.startswith("defection") and "1.000" in line for line in text.splitlines())
    assert "micro" in text
    assert classifier.version in text


def test_the_benchmark_returns_articles_per_second(classifier: Classifier) -> None:
    assert bench_classifier(classifier, 20) > 0
    assert bench_classifier(classifier, 20, dense=True) > 0
    with pytest.raises(ValueError, match="positive"):
        bench_classifier(classifier, 0)


def test_the_timed_run_measures_cpu_and_elapsed_time_of_the_same_articles(
    classifier: Classifier,
) -> None:
    speed = time_classifier(classifier, 20, dense=True)
    assert speed.articles == 20
    assert speed.cpu_seconds > 0 and speed.wall_seconds > 0
    assert speed.per_core == pytest.approx(20 / speed.cpu_seconds)
    assert speed.wall == pytest.approx(20 / speed.wall_seconds)
    with pytest.raises(ValueError, match="positive"):
        time_classifier(classifier, 0)


def test_speeds_are_articles_over_seconds_of_cpu_or_of_the_clock() -> None:
    speed = Speed(articles=5000, cpu_seconds=0.4, wall_seconds=0.8)
    assert speed.per_core == pytest.approx(12_500)
    assert speed.wall == pytest.approx(6_250)
    assert Speed(10, 0.0, 0.0).per_core == float("inf")
