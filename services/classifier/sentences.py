"""The sentence around an offset, found only for the few hits that are quoted as evidence.

Most articles fire no label, so no article is split into sentences: around a quoted hit a few
bounded ``str.rfind``/``str.find`` calls look for the nearest sentence ends: a period and a
space, or a line break (question and exclamation marks end too few news sentences to pay for
searches of their own). They search the normalised text (same offsets as the original), where
closing quotes are already spaces, so '." ' and '.” ' are found as ". ".
"""

from __future__ import annotations

# No sentence is searched for further than this either side of the hit.
_REACH = 400

# Words ending in a period that do not end a sentence ("Gen. Ri", "Jan. 5"); single capitals and
# dotted acronyms ("U.S.", "N. Korea") are recognised by shape.
_ABBREVIATIONS = frozenset(
    {"Gen", "Col", "Lt", "Sgt", "Capt", "Maj", "Adm", "Gov", "Sen", "Rep", "Mrs", "Mr", "Ms",
     "Dr", "St", "Jan", "Feb", "Mar", "Apr", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", "No",
     "Jr", "Sr", "Prof", "Vol"}
)  # fmt: skip


def sentence_span(raw: str, text: str, offset: int) -> tuple[int, int]:
    """(start, end) of the sentence holding ``offset``; ``end`` is exclusive.

    ``text`` is ``normalise(raw)``. A sentence reaching further than 400 characters from
    ``offset`` is cut there.
    """
    low = offset - _REACH if offset > _REACH else 0
    high = offset + _REACH if offset + _REACH < len(text) else len(text)
    at = text.rfind(". ", low, offset)
    while at > 0:
        # Four lower-case letters before the period: a sentence end, as abbreviations are
        # capitalised or short. Most periods are, and this test spares them a call.
        before = raw[at - 4 : at] if at >= 4 else raw[:at]
        if (before.islower() and before.isalpha()) or not _closes_abbreviation(raw, at):
            break
        at = text.rfind(". ", low, at)
    start = at + 2 if at >= 0 else low
    # A line break after the sentence end found is nearer: look only there.
    line = text.rfind("\n", start, offset)
    if line >= 0:
        start = line + 1
    at = text.find(". ", offset, high)
    while at > 0:
        before = raw[at - 4 : at] if at >= 4 else raw[:at]
        if (before.islower() and before.isalpha()) or not _closes_abbreviation(raw, at):
            break
        at = text.find(". ", at + 1, high)
    end = at + 1 if at >= 0 else high
    line = text.find("\n", offset, end)
    return start, line if line >= 0 else end


def _closes_abbreviation(raw: str, mark: int) -> bool:
    """Whether the period at ``mark`` closes an abbreviation ("Gen", "U.S", "N") rather than a
    sentence."""
    before = raw[max(0, mark - 5) : mark]
    if before[-4:].islower() and before[-4:].isalpha():
        return False  # abbreviations are capitalised or short; most sentences end otherwise
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    return (len(word) <= 2 and word[:1].isupper()) or "." in word or word in _ABBREVIATIONS
