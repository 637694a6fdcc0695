"""The rules classifier: multi-label decisions with calibrated scores, evidence and entities.

Contract used by the classifier service and the ``classify``/``eval`` commands::

    classifier = Classifier.from_taxonomy()          # or a path to another taxonomy.yaml
    result = classifier.classify(title, text)
    result.labels      # categories that fire, in taxonomy order (may be empty)
    result.scores      # every category -> 0..1; a label fires exactly when its score >= 0.5
    result.evidence    # fired category -> up to 3 deciding sentences, each <= 300 characters
    result.certainty   # fired category -> "reported" or "confirmed"
    result.entities    # people, places, organisations named

``classify`` is a pure function of its arguments: no I/O, no state kept between calls, so one
instance serves any number of threads. How evidence is weighed and calibrated is documented in
the header of ``taxonomy.yaml``, because the numbers live there.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dmzwatch.classifier.entities import Entities, collect_entities
from dmzwatch.classifier.matcher import PhraseMatcher
from dmzwatch.classifier.sentences import sentence_span
from dmzwatch.classifier.tally import Tally, hedge_starts
from dmzwatch.classifier.taxonomy import Taxonomy, load_taxonomy, normalise

__all__ = ["Classification", "Classifier", "Entities"]

MAX_EVIDENCE = 3
MAX_EVIDENCE_CHARS = 300
REPORTED, CONFIRMED = "reported", "confirmed"
_NOTHING: Mapping[str, Any] = MappingProxyType({})  # no evidence or certainty: no label fired


@dataclass(frozen=True, slots=True)
class Classification:
    """One article's decision (see the module docstring for each field's meaning)."""

    labels: tuple[str, ...]
    scores: Mapping[str, float]
    evidence: Mapping[str, tuple[str, ...]]
    certainty: Mapping[str, str]
    entities: Entities


class Classifier:
    """Scores articles against a :class:`Taxonomy` with one Aho-Corasick pass per article."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._taxonomy = taxonomy
        self._slope = taxonomy.scoring.slope
        self._matcher = PhraseMatcher(taxonomy)
        self._categories = tuple(c.name for c in taxonomy.categories)
        self._tally = Tally(self._matcher, taxonomy.scoring, len(self._categories))
        self._thresholds = tuple(c.threshold for c in taxonomy.categories)
        self._hedge_reach = taxonomy.scoring.veto_chars
        # The score is a pure function of few distinct arguments (evidence is a sum of a few
        # weights): remembered, most articles' scores are a dictionary look-up.
        self._score = lru_cache(maxsize=4096)(self._logistic)
        self._no_evidence_scores = tuple(self._score(0.0, t, False) for t in self._thresholds)
        # Per category: (its index, (name, threshold, score without evidence)).
        priors = self._no_evidence_scores
        self._decisions = tuple(
            enumerate(zip(self._categories, self._thresholds, priors, strict=True))
        )
        # Shared by every article without evidence: read-only views of dictionaries that are
        # never changed.
        self._no_evidence: Mapping[str, float] = MappingProxyType(
            dict(zip(self._categories, self._no_evidence_scores, strict=True))
        )

    @classmethod
    def from_taxonomy(cls, path: str | Path | None = None) -> Classifier:
        """Build from a taxonomy file; ``None`` means the bundled ``taxonomy.yaml``.

        Raises :class:`~dmzwatch.classifier.taxonomy.TaxonomyError` if the file is unusable.
        """
        return cls(load_taxonomy(path))

    @property
    def version(self) -> str:
        """``rules-<taxonomy version>``: recorded in every decision as its classifier version."""
        return f"rules-{self._taxonomy.version}"

    @property
    def categories(self) -> tuple[str, ...]:
        return self._categories

    @property
    def taxonomy(self) -> Taxonomy:
        return self._taxonomy

    def classify(self, title: str, text: str) -> Classification:
        """Decide which categories ``title`` + ``text`` (plain text) are about."""
        title = title or ""
        raw = f"{title}\n\n{text or ''}"
        normalised = normalise(raw)
        scan = self._matcher.scan(raw, normalised)
        entities = collect_entities(raw, scan)
        if not scan.triggers and not scan.negatives:
            # The fast reject: no trigger and no negative phrase, so no tally to run. Every
            # score is the no-evidence one, exactly what the tally would give.
            return Classification((), self._no_evidence, _NOTHING, _NOTHING, entities)
        totals, penalties, hits_by_category = self._tally.count(normalised, scan, len(title))
        labels: list[str] = []
        scores: dict[str, float] = {}
        evidence: dict[str, tuple[str, ...]] = {}
        certainty: dict[str, str] = {}
        hedges: list[int] | None = None
        score = self._score
        for index, (name, threshold, prior) in self._decisions:
            hits = hits_by_category[index]
            penalty = penalties[index]
            if not hits:
                # No evidence (most categories, most articles): it cannot fire.
                scores[name] = score(-penalty, threshold, False) if penalty else prior
                continue
            total = totals[index]
            fired = total - penalty >= threshold
            scores[name] = score(total - penalty, threshold, fired)
            if fired:
                labels.append(name)
                evidence[name] = _evidence(raw, normalised, hits)
                if hedges is None:
                    hedges = hedge_starts(scan)
                certainty[name] = _certainty(hits, total, hedges, self._hedge_reach)
        if not labels:
            return Classification((), MappingProxyType(scores), _NOTHING, _NOTHING, entities)
        return Classification(
            tuple(labels),
            MappingProxyType(scores),
            MappingProxyType(evidence),
            MappingProxyType(certainty),
            entities,
        )

    def _logistic(self, evidence: float, threshold: float, fired: bool) -> float:
        """The calibrated score: a logistic of the evidence, 0.5 at the threshold."""
        # The exponent is clamped so that a pile of negative phrases cannot overflow exp.
        exponent = min(700.0, self._slope * (threshold - evidence))
        score = round(1.0 / (1.0 + math.exp(exponent)), 4)
        if (score >= 0.5) != fired:  # rounding must not move a score across the decision line
            score = 0.5 if fired else 0.4999
        return score


def _certainty(
    hits: Sequence[tuple[int, float]], total: float, hedges: list[int], reach: int
) -> str:
    """ "reported" when half the evidence weight has a hedge (``hedges``: where each starts)
    within ``reach`` (its sentence)."""
    if not hedges:
        return REPORTED if total <= 0 else CONFIRMED  # what the loop below gives, sooner
    hedged = 0.0
    for start, weight in hits:
        at = bisect_left(hedges, start - reach)
        if at < len(hedges) and hedges[at] <= start + reach:
            hedged += weight
    return REPORTED if 2 * hedged >= total else CONFIRMED


def _evidence(raw: str, text: str, hits: Sequence[tuple[int, float]]) -> tuple[str, ...]:
    """The sentences of the strongest hits, at most ``MAX_EVIDENCE``, strongest first.

    ``text`` is ``normalise(raw)``, where sentence ends are quicker to find.
    """
    chosen: dict[str, None] = {}  # a title repeated as the first line is quoted once
    spans: list[tuple[int, int]] = []
    for hit, _ in sorted(hits, key=itemgetter(1), reverse=True):
        for low, high in spans:
            if low <= hit < high:
                break  # most hits share a sentence with a stronger one
        else:
            low, high = sentence_span(raw, text, hit)
            spans.append((low, high))
            chosen[_excerpt(raw, low, high, hit)] = None
            if len(chosen) == MAX_EVIDENCE:
                break
    return tuple(chosen)


def _excerpt(raw: str, start: int, end: int, hit: int) -> str:
    """``raw[start:end]``, whitespace collapsed, cut to ``MAX_EVIDENCE_CHARS`` around ``hit``."""
    if end - start <= MAX_EVIDENCE_CHARS:
        return _collapse(raw[start:end])
    # A long sentence (or a text without punctuation): keep the part around the hit.
    cut_start = max(start, hit - MAX_EVIDENCE_CHARS // 3)
    cut_end = min(end, cut_start + MAX_EVIDENCE_CHARS - 2)
    head = "…" if cut_start > start else ""
    tail = "…" if cut_end < end else ""
    return head + _collapse(raw[cut_start:cut_end]) + tail


def _collapse(text: str) -> str:
    """``" ".join(text.split())``: whitespace runs made one space, none at either end."""
    # Most sentences have no whitespace but single spaces (``isprintable`` is false for every
    # other whitespace character) and none at either end: they are returned as they are.
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(text.split())
