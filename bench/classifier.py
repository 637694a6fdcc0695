"""Classifier figures: speed on synthetic 2 KB articles (issue 3) and quality on the dev set."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.figures import Figure
from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.evaluation import bench_classifier, evaluate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "news_dev.jsonl"
RUNS = 5


def figures() -> list[Figure]:
    classifier = Classifier.from_taxonomy()
    bench_classifier(classifier, 500)  # warm-up
    mixed = statistics.median(bench_classifier(classifier, 5000, seed=i) for i in range(RUNS))
    dense = statistics.median(
        bench_classifier(classifier, 2000, seed=i, dense=True) for i in range(RUNS)
    )
    out = [
        Figure(
            "classifier_articles_per_second",
            mixed,
            "articles/s",
            10_000,
            note=f"one core, synthetic ~2 KB feed-like mix, median of {RUNS}",
        ),
        Figure(
            "classifier_dense_articles_per_second",
            dense,
            "articles/s",
            note="worst case: every article on every topic",
        ),
    ]
    if CORPUS.exists():
        with CORPUS.open(encoding="utf-8") as lines:
            report = evaluate(classifier, lines)
        out.append(Figure("classifier_dev_micro_f1", report.micro_f1, "F1", 0.92, note=CORPUS.name))
    return out
