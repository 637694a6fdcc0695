"""The evidence tally: one scan's hits weighed into each category's evidence and penalties.

How hits become evidence is documented in the header of ``taxonomy.yaml``, where the numbers
live. This is the hottest Python of the classifier after the scan, run for every article with
a trigger hit, so it keeps to plain locals and tuple unpacking, with no helper call per hit.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import islice
from typing import Any

from dmzwatch.classifier.matcher import Hit, PhraseMatcher, Scan
from dmzwatch.classifier.taxonomy import Scoring

# What a tally returns, per category (by index): the evidence total, the penalties and the
# counted (start offset, weight) hits. Plain sequences: the cheapest thing to build per article.
Tallies = tuple[Sequence[float], Sequence[float], Sequence[Sequence[tuple[int, float]]]]


class Tally:
    """Weighs scans against one compiled taxonomy. Immutable; safe to share between threads."""

    def __init__(self, matcher: PhraseMatcher, scoring: Scoring, categories: int) -> None:
        self._scoring = scoring
        self._categories = categories
        self._negatives = matcher.negatives
        self._trigger_count = len(matcher.triggers)
        self._no_vetoes: Sequence[Sequence[int]] = ((),) * categories
        self._no_hits: Sequence[Sequence[tuple[int, float]]] = ((),) * categories
        self._empty: tuple[tuple[Any, ...], ...] = ((),) * categories
        # What every tally reads of the scoring, in one tuple (one look-up per article).
        self._constants = (
            scoring.context_chars,
            scoring.veto_chars,
            scoring.title_weight,
            scoring.lead_weight,
            scoring.lead_chars,
            scoring.sentence_cap,
        )

    def count(self, text: str, scan: Scan, title_end: int) -> Tallies:
        """Sum each category's evidence and penalties in ``text`` (the normalised article, whose
        title ends at ``title_end``); see the header of ``taxonomy.yaml``."""
        count = self._categories
        empty = self._empty  # ``list(map(list, empty))``: a new empty list per category
        totals = [0.0] * count
        penalties = [0.0] * count
        vetoes = self._no_vetoes  # per category, where its vetoing negatives start, sorted
        vetoing_found = False
        if scan.negatives:
            vetoing: list[list[int]] = list(map(list, empty))
            vetoes = vetoing
            seen_negatives: set[int] = set()
            negative_specs = self._negatives
            for position, key in scan.negatives:
                start = position - key.length
                for index in key.negatives:
                    spec = negative_specs[index]
                    if spec.veto:
                        vetoing[spec.category].append(start)
                        vetoing_found = True
                    if index not in seen_negatives:  # each distinct negative phrase costs once
                        seen_negatives.add(index)
                        penalties[spec.category] += spec.weight
            for starts in vetoing:
                starts.sort()
        if not scan.triggers:
            return totals, penalties, self._no_hits  # the penalties alone make the scores
        located, longest = scan.located, scan.longest
        context_start, context_groups = -1, 0  # the last context hit found near a trigger
        near, veto, title_weight, lead_weight, lead_chars, cap = self._constants
        lead_end = title_end + 2 + lead_chars
        repeats = [0] * self._trigger_count  # per trigger spec, how often it has counted
        # Per category, its counted (start, weight, corroborating) hits and how many of them are
        # not corroborating: a category without such an anchor counts nothing at all.
        counted: list[list[tuple[int, float, bool]]] = list(map(list, empty))
        anchors = [0] * count
        # Per category, the span covered by its last counted hit and the hits overlapping it
        # (that hit stays the last in ``counted``): overlapping phrases ("defected", "defected
        # to the South") are one piece of evidence, worth the strongest of them, and one
        # occurrence counts once, in its first group.
        last: list[tuple[int, int]] = [(-1, -1)] * count
        bisect = bisect_left  # a local name: this loop runs for every trigger hit
        for position, key in scan.triggers:
            start = position - key.length
            end = position - key.tail
            place = 1.0 if start >= lead_end else title_weight if start < title_end else lead_weight
            for index, category, weight, requires, groups, corroborating, minimum in key.triggers:
                if vetoing_found:
                    vetoed = vetoes[category]
                    if vetoed:
                        at = bisect(vetoed, start - veto)
                        if at < len(vetoed) and vetoed[at] <= end + veto:
                            continue
                if requires:
                    low, high = start - near, end + near
                    if minimum > 1:
                        # Different phrases of the groups near include one: one search.
                        if _distinct(scan, requires, groups, low, high, minimum) < minimum:
                            continue
                    # A phrase of a required group must start in low..high. Triggers come in
                    # clusters: the context that served the last one often serves this one.
                    elif not (context_groups & requires and low <= context_start <= high):
                        # Context hits are in order of their end, and none covers more than
                        # ``longest`` characters: look from the first ending at ``low`` on,
                        # until one must start later.
                        stop = high + longest
                        for found_at, context in islice(located, bisect(located, (low,)), None):
                            if found_at > stop:
                                break
                            if context.contexts & requires:
                                found_start = found_at - context.length
                                if low <= found_start <= high:
                                    context_start, context_groups = found_start, context.contexts
                                    break
                        else:
                            found_at = stop + 1  # no context hit at all from ``low`` on
                        if found_at > stop:
                            continue
                # The n-th repeat of a phrase adds 1/n: repetition matters, but less and less.
                nth = repeats[index] = repeats[index] + 1
                hit = (start, weight * place / nth, corroborating)
                mine = counted[category]
                last_start, last_end = last[category]
                if start <= last_end and last_start <= end:
                    replaced = mine[-1]  # the span's strongest hit so far
                    if hit[1] > replaced[1]:
                        mine[-1] = hit
                        if replaced[2] != corroborating:
                            anchors[category] += -1 if corroborating else 1
                    if end > last_end:
                        last[category] = (last_start, end)
                else:
                    last[category] = (start, end)
                    mine.append(hit)
                    if not corroborating:
                        anchors[category] += 1
        # What one sentence of the text adds is capped: a single sentence, however loaded
        # ("... since the collapse of the 2019 summit between Kim and Trump in Hanoi"), is a
        # mention, not what the article is about. The title is exempt: it is the subject. Two
        # hits share a sentence when no ". " or line break stands between them: one search per
        # counted hit instead of finding every sentence of every article.
        if not any(anchors):
            return totals, penalties, self._no_hits  # nothing counts, as in most articles
        hits: list[list[tuple[int, float]]] = list(map(list, empty))
        for category in range(count):
            if not anchors[category]:
                continue
            kept = hits[category]
            total, run_start, run_sum = 0.0, -1, 0.0  # the run: hits in one sentence so far
            for start, weight, _ in counted[category]:
                if start >= title_end:
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
                    run_sum += weight
                total += weight
                kept.append((start, weight))
            totals[category] = total
        return totals, penalties, hits


def hedge_starts(scan: Scan) -> list[int]:
    """Where each hedge of ``scan`` starts, in scan order: what ``certainty`` looks up."""
    return [position - key.length for position, key in scan.hedges for _ in key.hedges]


def _distinct(
    scan: Scan, mask: int, groups: tuple[int, ...], low: int, high: int, enough: int
) -> int:
    """How many different phrases of the context ``groups`` (``mask``: a bit per group) start
    in low..high, counted up to ``enough``."""
    located: list[Hit] = scan.located
    phrases: set[int] = set()
    stop = high + scan.longest
    for found_at, context in islice(located, bisect_left(located, (low,)), None):
        if found_at > stop:
            break
        if context.contexts & mask and low <= found_at - context.length <= high:
            for group, phrase in context.context_phrases:
                if group in groups:
                    phrases.add(phrase)
            if len(phrases) >= enough:
                break
    return len(phrases)
