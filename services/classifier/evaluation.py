"""Offline use of the classifier: JSONL classification, evaluation against labels, a benchmark.

Input articles are JSON objects, one per line, with ``id``, ``title`` and ``text`` (or, when
``text`` is absent, ``summary`` and/or ``content``); labelled ones add ``labels`` (a list of
category names). These functions back ``dmzwatch classify``, ``dmzwatch eval`` and
``make bench``; none of them needs a broker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from dmzwatch.classifier.benchmark import synthetic_articles
from dmzwatch.classifier.engine import Classification, Classifier


class ArticleError(ValueError):
    """A JSONL line that is not a usable article; ``article_id`` is set when it was readable."""

    def __init__(self, message: str, article_id: str | None = None) -> None:
        super().__init__(message)
        self.article_id = article_id


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    title: str
    text: str
    labels: tuple[str, ...] | None


def parse_article(line: str) -> Article:
    """Read one JSONL article; raises :class:`ArticleError` saying what is wrong with it."""
    try:
        document: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ArticleError(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(document, dict):
        raise ArticleError(f"expected a JSON object, got {type(document).__name__}")
    raw_id = document.get("id")
    article_id = None if raw_id is None else str(raw_id)
    title = document.get("title") or ""
    if "text" in document:
        text = document.get("text") or ""
    else:
        parts = (document.get("summary"), document.get("content"))
        text = "\n\n".join(p for p in parts if isinstance(p, str) and p)
    if not isinstance(title, str) or not isinstance(text, str):
        raise ArticleError("'title' and 'text' must be strings", article_id)
    if not title.strip() and not text.strip():
        raise ArticleError("no 'title' or 'text' to classify", article_id)
    labels = document.get("labels")
    if labels is not None and (
        not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)
    ):
        raise ArticleError("'labels' must be a list of strings", article_id)
    return Article(article_id or "", title, text, None if labels is None else tuple(labels))


def decision_record(article_id: str, result: Classification) -> dict[str, object]:
    """The JSON-ready decision written by ``dmzwatch classify`` for one article."""
    return {
        "id": article_id,
        "labels": list(result.labels),
        "scores": dict(result.scores),
        "evidence": {label: list(lines) for label, lines in result.evidence.items()},
        "certainty": dict(result.certainty),
        "entities": {
            "people": list(result.entities.people),
            "places": list(result.entities.places),
            "organisations": list(result.entities.organisations),
        },
    }


def classify_stream(classifier: Classifier, lines: Iterable[str], out: TextIO) -> int:
    """Classify JSONL articles from ``lines`` into JSONL decisions on ``out``.

    Blank lines are skipped. A line that is not a usable article produces
    ``{"id": ... (when known), "error": "..."}`` and the stream goes on. Returns the number of
    such errors.
    """
    errors = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            article = parse_article(line)
        except ArticleError as exc:
            errors += 1
            failure: dict[str, object] = {"error": str(exc)}
            if exc.article_id is not None:
                failure = {"id": exc.article_id, **failure}
            out.write(json.dumps(failure, ensure_ascii=False) + "\n")
            continue
        result = classifier.classify(article.title, article.text)
        out.write(json.dumps(decision_record(article.id, result), ensure_ascii=False) + "\n")
    return errors


@dataclass(frozen=True, slots=True)
class LabelScores:
    """Precision, recall and F1 of one label; ``support`` is how many articles carry it.

    ``brier`` is the mean squared difference between the label's score and the truth (1 when
    the article carries the label, else 0): 0 is perfect, 0.25 is what always scoring 0.5 gets.
    """

    label: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int
    true_positives: int
    brier: float = 0.0


@dataclass(frozen=True, slots=True)
class Mistake:
    id: str
    gold: tuple[str, ...]
    predicted: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Per-label and micro-averaged scores over ``articles`` labelled articles."""

    labels: tuple[LabelScores, ...]
    micro_precision: float
    micro_recall: float
    micro_f1: float
    articles: int
    errors: int
    mistakes: tuple[Mistake, ...]
    classifier_version: str
    brier: float = 0.0  # over every label of every article

    def label(self, name: str) -> LabelScores:
        for scores in self.labels:
            if scores.label == name:
                return scores
        raise KeyError(name)


def evaluate(classifier: Classifier, lines: Iterable[str]) -> EvalReport:
    """Compare the classifier's labels with each article's ``labels`` (the gold standard).

    Lines that are blank are skipped; lines that are not usable labelled articles are counted in
    ``errors`` and left out. Gold labels the taxonomy does not know get a row too (recall 0).
    """
    names = list(classifier.categories)
    counts: dict[str, list[int]] = {}  # label -> [true positives, predicted, support]
    squared_errors: dict[str, float] = {}
    mistakes: list[Mistake] = []
    articles = errors = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            article = parse_article(line)
        except ArticleError:
            errors += 1
            continue
        if article.labels is None:
            errors += 1
            continue
        articles += 1
        gold = set(article.labels)
        result = classifier.classify(article.title, article.text)
        predicted = set(result.labels)
        for label in gold - set(names):
            names.append(label)
        for label in names:
            error = result.scores.get(label, 0.0) - (label in gold)
            squared_errors[label] = squared_errors.get(label, 0.0) + error * error
        for label in gold | predicted:
            tp_pred_support = counts.setdefault(label, [0, 0, 0])
            tp_pred_support[0] += label in gold and label in predicted
            tp_pred_support[1] += label in predicted
            tp_pred_support[2] += label in gold
        if gold != predicted:
            mistakes.append(Mistake(article.id, tuple(sorted(gold)), tuple(sorted(predicted))))
    rows = []
    for name in names:
        true_positives, predicted_count, support = counts.get(name, [0, 0, 0])
        brier = squared_errors.get(name, 0.0) / (articles or 1)
        rows.append(_scores(name, true_positives, predicted_count, support, brier))
    micro = _scores(
        "micro",
        sum(r.true_positives for r in rows),
        sum(r.predicted for r in rows),
        sum(r.support for r in rows),
    )
    return EvalReport(
        labels=tuple(rows),
        micro_precision=micro.precision,
        micro_recall=micro.recall,
        micro_f1=micro.f1,
        articles=articles,
        errors=errors,
        mistakes=tuple(mistakes),
        classifier_version=classifier.version,
        brier=sum(r.brier for r in rows) / len(rows) if rows else 0.0,
    )


def _scores(
    label: str, true_positives: int, predicted: int, support: int, brier: float = 0.0
) -> LabelScores:
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScores(label, precision, recall, f1, support, predicted, true_positives, brier)


def format_report(report: EvalReport) -> str:
    """A plain-text table of the report, then its mistakes (one per line)."""
    width = max([len("label"), len("micro"), *(len(r.label) for r in report.labels)])
    header = f"{'label':<{width}}  precision  recall      f1  support   brier"
    lines = [header, "-" * len(header)]
    for row in report.labels:
        lines.append(
            f"{row.label:<{width}}  {row.precision:9.3f}  {row.recall:6.3f}  {row.f1:6.3f}"
            f"  {row.support:7d}  {row.brier:6.3f}"
        )
    support = sum(r.support for r in report.labels)
    lines.append("-" * len(header))
    lines.append(
        f"{'micro':<{width}}  {report.micro_precision:9.3f}  {report.micro_recall:6.3f}"
        f"  {report.micro_f1:6.3f}  {support:7d}  {report.brier:6.3f}"
    )
    lines.append(
        f"{report.articles} articles, {report.errors} unusable lines, "
        f"classifier {report.classifier_version}"
    )
    for mistake in report.mistakes:
        gold = ",".join(mistake.gold) or "-"
        predicted = ",".join(mistake.predicted) or "-"
        lines.append(f"  mistake {mistake.id}: gold {gold}  predicted {predicted}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Speed:
    """One timed run of the classifier over ``articles`` articles on one thread.

    ``cpu_seconds`` is the CPU time of that thread (``time.thread_time``): the core's work,
    which other processes on the machine do not add to; ``wall_seconds`` is the elapsed time,
    which they do.
    """

    articles: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def per_core(self) -> float:
        """Articles per CPU-second of one core."""
        return self.articles / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    @property
    def wall(self) -> float:
        """Articles per second of elapsed time."""
        return self.articles / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def time_classifier(classifier: Classifier, n: int, *, seed: int = 0, dense: bool = False) -> Speed:
    """Classify ``n`` synthetic ~2 KB articles on the calling thread, measuring both its CPU
    time and the elapsed time of the same run (articles generated before timing starts)."""
    if n <= 0:
        raise ValueError("n must be positive")
    articles = synthetic_articles(n, seed=seed, dense=dense)
    classify = classifier.classify
    wall_started, cpu_started = time.perf_counter(), time.thread_time()
    for title, text in articles:
        classify(title, text)
    cpu, wall = time.thread_time() - cpu_started, time.perf_counter() - wall_started
    return Speed(n, cpu, wall)


def bench_classifier(
    classifier: Classifier,
    n: int,
    *,
    seed: int = 0,
    dense: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Classify ``n`` synthetic ~2 KB articles on one core; return articles per second.

    The articles are generated before timing starts (see :mod:`~dmzwatch.classifier.benchmark`
    for what they contain, and ``dense`` for the worst case).
    """
    if n <= 0:
        raise ValueError("n must be positive")
    articles = synthetic_articles(n, seed=seed, dense=dense)
    started = clock()
    for title, text in articles:
        classifier.classify(title, text)
    elapsed = clock() - started
    return n / elapsed if elapsed > 0 else float("inf")
