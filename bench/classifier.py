"""Classifier figures: speed on synthetic 2 KB articles (issue 3) and quality on the dev set.

Issue 3 asks for >= 10,000 articles/s *per core*: articles per CPU-second of one core. The
classifier runs single-threaded here, so each run is timed with the CPU time of the measuring
thread (``time.thread_time``), and that per-core figure is the one held against the limit. The
machine is shared with other engineers running tests: elapsed time then includes every moment
the thread waited for a core, which says more about the neighbours than about the classifier,
while CPU time counts only the work done (contention still costs something through shared
caches, which is why the median of several runs is taken). The wall-clock rate of the same runs
is reported beside it, without a limit, for honesty; so is the dense worst case (every article
on every topic), per core and wall.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.figures import Figure
from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.evaluation import Speed, evaluate, time_classifier

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "news_dev.jsonl"
RUNS = 7
MIXED_ARTICLES = 5000
DENSE_ARTICLES = 2000


def figures() -> list[Figure]:
    classifier = Classifier.from_taxonomy()
    time_classifier(classifier, 500)  # warm-up
    mixed = [time_classifier(classifier, MIXED_ARTICLES, seed=i) for i in range(RUNS)]
    dense = [time_classifier(classifier, DENSE_ARTICLES, seed=i, dense=True) for i in range(RUNS)]
    runs = f"median of {RUNS} runs"
    out = [
        Figure(
            "classifier_articles_per_second_per_core",
            _median(mixed, per_core=True),
            "articles/s",
            10_000,
            note=f"CPU time of one core, synthetic ~2 KB feed-like mix, {runs}",
        ),
        Figure(
            "classifier_articles_per_second_wall",
            _median(mixed, per_core=False),
            "articles/s",
            note=f"elapsed time of the same runs, one thread on a shared machine, {runs}",
        ),
        Figure(
            "classifier_dense_articles_per_second_per_core",
            _median(dense, per_core=True),
            "articles/s",
            note=f"worst case: every article on every topic; CPU time, {runs}",
        ),
        Figure(
            "classifier_dense_articles_per_second_wall",
            _median(dense, per_core=False),
            "articles/s",
            note=f"worst case, elapsed time of the same runs, {runs}",
        ),
    ]
    if CORPUS.exists():
        with CORPUS.open(encoding="utf-8") as lines:
            report = evaluate(classifier, lines)
        out.append(Figure("classifier_dev_micro_f1", report.micro_f1, "F1", 0.92, note=CORPUS.name))
    return out


def _median(runs: list[Speed], *, per_core: bool) -> float:
    return statistics.median(run.per_core if per_core else run.wall for run in runs)
