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
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from dmzwatch.classifier.entities import Entities, collect_entities
from dmzwatch.classifier.matcher import Hit, PhraseMatcher, Scan
from dmzwatch.classifier.sentences import sentence_span
from dmzwatch.classifier.taxonomy import Taxonomy, load_taxonomy, normalise

__all__ = ["Classification", "Classifier", "Entities"]

MAX_EVIDENCE = 3
MAX_EVIDENCE_CHARS = 300
REPORTED, CONFIRMED = "reported", "confirmed"


@dataclass(frozen=True, slots=True)
class Classification:
    """One article's decision (see the module docstring for each field's meaning)."""

    labels: tuple[str, ...]
    scores: Mapping[str, float]
    evidence: Mapping[str, tuple[str, ...]]
    certainty: Mapping[str, str]
    entities: Entities


class _Tallies(NamedTuple):
    """Evidence per category (by index) while one article is scored; never leaves ``classify``.

    ``hits`` are the counted (start offset, weight) of each category. A NamedTuple of lists:
    the cheapest thing to build once per article.
    """

    totals: list[float]
    penalties: list[float]
    hits: list[list[tuple[int, float]]]


class Classifier:
    """Scores articles against a :class:`Taxonomy` with one Aho-Corasick pass per article."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._taxonomy = taxonomy
        self._matcher = PhraseMatcher(taxonomy)
        self._categories = tuple(c.name for c in taxonomy.categories)
        self._thresholds = tuple(c.threshold for c in taxonomy.categories)
        self._hedge_reach = taxonomy.scoring.veto_chars
        self._no_evidence_scores = tuple(self._score(0.0, t, False) for t in self._thresholds)
        # The trigger specs as plain tuples, unpacked in one step in the per-hit loop.
        self._trigger_rows = tuple(
            (t.category, t.weight, t.requires, t.corroborating, t.min_distinct)
            for t in self._matcher.triggers
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
        totals, penalties, hits_by_category = self._tally(normalised, scan, len(title))
        labels: list[str] = []
        scores: dict[str, float] = {}
        evidence: dict[str, tuple[str, ...]] = {}
        certainty: dict[str, str] = {}
        for index, name in enumerate(self._categories):
            total, penalty, hits = totals[index], penalties[index], hits_by_category[index]
            if not hits and not penalty:
                scores[name] = self._no_evidence_scores[index]  # most categories, most articles
                continue
            threshold = self._thresholds[index]
            fired = total - penalty >= threshold and bool(hits)
            scores[name] = self._score(total - penalty, threshold, fired)
            if fired:
                labels.append(name)
                evidence[name] = _evidence(raw, normalised, hits)
                certainty[name] = _certainty(hits, total, scan.hedges, self._hedge_reach)
        return Classification(
            labels=tuple(labels),
            scores=MappingProxyType(scores),
            evidence=MappingProxyType(evidence),
            certainty=MappingProxyType(certainty),
            entities=collect_entities(raw, scan),
        )

    def _score(self, evidence: float, threshold: float, fired: bool) -> float:
        """The calibrated score: a logistic of the evidence, 0.5 at the threshold."""
        # The exponent is clamped so that a pile of negative phrases cannot overflow exp.
        exponent = min(700.0, self._taxonomy.scoring.slope * (threshold - evidence))
        score = round(1.0 / (1.0 + math.exp(exponent)), 4)
        if (score >= 0.5) != fired:  # rounding must not move a score across the decision line
            score = 0.5 if fired else 0.4999
        return score

    def _tally(self, text: str, scan: Scan, title_end: int) -> _Tallies:
        """Sum each category's evidence and penalties (see the header of ``taxonomy.yaml``)."""
        # Run for every article: plain locals and tuple unpacking rather than helper calls.
        scoring = self._taxonomy.scoring
        count = len(self._categories)
        tallies = _Tallies([0.0] * count, [0.0] * count, [[] for _ in range(count)])
        vetoes: list[list[int]] = [[] for _ in self._categories]
        seen_negatives: set[int] = set()
        negative_specs = self._matcher.negatives
        for start, _, index in scan.negatives:
            spec = negative_specs[index]
            if spec.veto:
                vetoes[spec.category].append(start)
            if index not in seen_negatives:  # each distinct negative phrase costs once
                seen_negatives.add(index)
                tallies.penalties[spec.category] += spec.weight
        if not scan.triggers:
            return tallies
        for starts in vetoes:
            starts.sort()
        contexts = scan.contexts
        near, veto = scoring.context_chars, scoring.veto_chars
        title_weight, lead_weight = scoring.title_weight, scoring.lead_weight
        lead_end = title_end + 2 + scoring.lead_chars
        repeats: dict[int, int] = {}
        counted: list[tuple[int, int, float, bool]] = []
        # Per category, the span of its last counted hit and where that hit is in ``counted``:
        # overlapping phrases ("defected", "defected to the South") are one piece of evidence,
        # worth the strongest of them, and one occurrence counts once, in its first group.
        last: list[tuple[int, int, int]] = [(-1, -1, -1)] * count
        rows = self._trigger_rows
        bisect = bisect_left  # a local name: this loop runs for every trigger hit
        for start, end, index in scan.triggers:
            category, weight, requires, corroborating, min_distinct = rows[index]
            vetoed = vetoes[category]
            if vetoed:
                at = bisect(vetoed, start - veto)
                if at < len(vetoed) and vetoed[at] <= end + veto:
                    continue
            if requires:
                low, high = start - near, end + near
                for group in requires:
                    found = contexts[group]
                    at = bisect(found, (low,))
                    if at < len(found) and found[at][0] <= high:
                        break
                else:
                    continue
                if min_distinct > 1 and not _distinct(scan, requires, min_distinct, low, high):
                    continue
            nth = repeats[index] = repeats.get(index, 0) + 1
            if start < title_end:
                weight *= title_weight
            elif start < lead_end:
                weight *= lead_weight
            # The n-th repeat of a phrase adds 1/n: repetition matters, but less and less.
            hit = (category, start, weight / nth, corroborating)
            last_start, last_end, slot = last[category]
            if start <= last_end and last_start <= end:
                if hit[2] > counted[slot][2]:
                    counted[slot] = hit
                if end > last_end:
                    last[category] = (last_start, end, slot)
            else:
                last[category] = (start, end, len(counted))
                counted.append(hit)
        anchored = [False] * count
        for category, _, _, corroborating in counted:
            if not corroborating:
                anchored[category] = True
        # What one sentence of the text adds is capped: a single sentence, however loaded
        # ("... since the collapse of the 2019 summit between Kim and Trump in Hanoi"), is a
        # mention, not what the article is about. The title is exempt: it is the subject. Two
        # hits share a sentence when no ". " or line break stands between them: one search per
        # counted hit instead of finding every sentence of every article.
        cap = scoring.sentence_cap
        runs = [(-1, 0.0)] * count  # per category: (first start of the run, its sum)
        for category, start, weight, corroborating in counted:
            if corroborating and not anchored[category]:
                continue
            if start >= title_end:
                run_start, run_sum = runs[category]
                if (
                    run_start < 0
                    or text.find(". ", run_start, start) >= 0
                    or text.find("\n", run_start, start) >= 0
                ):
                    run_start, run_sum = start, 0.0
                if weight > cap - run_sum:
                    weight = cap - run_sum
                    if weight <= 0:
                        continue
                runs[category] = (run_start, run_sum + weight)
            tallies.totals[category] += weight
            tallies.hits[category].append((start, weight))
        return tallies


def _certainty(hits: list[tuple[int, float]], total: float, hedges: list[Hit], reach: int) -> str:
    """ "reported" when half the evidence weight has a hedge within ``reach`` (its sentence)."""
    hedged = 0.0
    for start, weight in hits:
        at = bisect_left(hedges, (start - reach,))
        if at < len(hedges) and hedges[at][0] <= start + reach:
            hedged += weight
    return REPORTED if 2 * hedged >= total else CONFIRMED


def _distinct(scan: Scan, groups: tuple[int, ...], minimum: int, low: int, high: int) -> bool:
    """Whether ``minimum`` different phrases of the context ``groups`` start in range."""
    distinct = {
        phrase
        for group in groups
        for start, _, phrase in scan.contexts[group]
        if low <= start <= high
    }
    return len(distinct) >= minimum


def _evidence(raw: str, text: str, hits: list[tuple[int, float]]) -> tuple[str, ...]:
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
        return " ".join(raw[start:end].split())
    # A long sentence (or a text without punctuation): keep the part around the hit.
    cut_start = max(start, hit - MAX_EVIDENCE_CHARS // 3)
    cut_end = min(end, cut_start + MAX_EVIDENCE_CHARS - 2)
    head = "…" if cut_start > start else ""
    tail = "…" if cut_end < end else ""
    return head + " ".join(raw[cut_start:cut_end].split()) + tail
