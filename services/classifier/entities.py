"""Named entities by light-weight means: gazetteer hits and name cues found in one scan.

Places and organisations come from the taxonomy's gazetteers (canonical names, in order of first
mention). People come from two cues read in the original text right after a scan hit:

- a title ("President", "leader", "Minister", "Lt.") followed by capitalised words:
  "North Korean leader Kim Jong Un", "President Donald Trump";
- a Korean surname followed by a romanised given name of two syllables, spaced or hyphenated:
  "Kim Yong Chol", "Jang Song-thaek".

No regular expression runs over the whole text: the cues are checked only where the scan hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dmzwatch.classifier.matcher import Scan

# Name cues found by the scan: a title ("President") or a Korean surname ("Kim").
TITLE, SURNAME = -1, -2


# Up to three capitalised words after a title (the optional period is for "Lt.", "Mr.").
_CAPITALISED = re.compile(r"(\.?) ([A-Z][A-Za-z'\u2019-]*(?: [A-Z][A-Za-z'\u2019-]*){0,2})")
# A romanised given name of two syllables after a surname: "Jong-un", "Song-Thaek", "Jong Un".
# A syllable is optional initial consonants, a vowel cluster and an optional final, which
# rejects English words after a surname-like capital ("Song Is Over", "Park Avenue").
_SYLLABLE = r"[bcdghjkmnprstwy]{0,3}[aeiouwy]{1,3}(?:ng|n|k|l|m|p|r|t|ch)?"
_CAPITAL_SYLLABLE = (
    r"(?:[BCDGHJKMNPRSTWY][bcdghjkmnprstwy]{0,2}[aeiouwy]{1,3}|[AEIOUWY][aeiouwy]{0,2})"
    r"(?:ng|n|k|l|m|p|r|t|ch)?"
)
_GIVEN_NAME = re.compile(
    rf" {_CAPITAL_SYLLABLE}(?:-(?:{_SYLLABLE}|{_CAPITAL_SYLLABLE})| {_CAPITAL_SYLLABLE})"
    r"(?![A-Za-z])"
)

# Capitalised words that follow a title but are not names ("General Assembly", "The").
_NOT_NAME = frozenset(
    {
        "The", "A", "An", "And", "Of", "In", "On", "At", "For", "To", "With", "From", "By", "As",
        "Has", "Had", "Have", "Is", "Was", "Were", "Says", "Said", "Meets", "Met", "Who", "Will",
        "Would", "Also", "But", "After", "Before", "During", "This", "That", "Assembly",
        "Council", "Committee", "Department", "Office", "Ministry", "Bureau", "Party", "Affairs",
        "Staff", "Commission", "Secretary", "General", "Korea", "North", "South", "Chairman",
        "President", "Minister", "Leader", "Prime", "Vice", "Deputy", "Foreign", "Defence",
        "Defense", "State",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Entities:
    """People, places and organisations named in an article, each in order of first mention."""

    people: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()


def collect_entities(raw: str, scan: Scan) -> Entities:
    """Turn a scan's gazetteer hits and name cues over ``raw`` into :class:`Entities`.

    Surnames count only when capitalised ("song" is no name).
    """
    people: dict[str, str] = {}  # comparison key -> first spelling seen
    read: dict[str, tuple[str | None, int]] = {}  # cue and what follows -> (name, its length)
    named_until = -1  # end of the last name read, so "Kim" inside it is not read again
    for position, key in scan.name_cues:
        start = position - key.length
        last = position - key.tail
        for cue in key.name_cues:  # one cue per phrase, unless a title is also a surname
            # Most cues are not followed by a capitalised word ("officials said", "song"): a
            # look at the next characters ends those before any pattern runs.
            if start < named_until or not (
                raw[last + 2 : last + 3].isupper() or raw[last + 1 : last + 2] == "."
            ):
                continue
            # A story names the same people again and again ("Kim Jong Un said"): read each
            # spelling once.
            window = raw[start : last + 24]
            known = read.get(window)
            if known is not None:
                name, length = known
                if name:
                    named_until = start + length
                continue
            if cue == TITLE:
                name, named_end = _name_after_title(raw, start, last + 1)
            elif raw[start].isupper():
                name, named_end = _korean_name(raw, start, last + 1)
            else:
                continue
            read[window] = (name, named_end - start)
            if name:
                named_until = named_end
                people.setdefault(name.lower().replace("-", " "), name)
    # Gazetteer names are taken as found, whatever their case: the few that are also common
    # words ("china" the porcelain) are too rare in this news to pay a check on every hit.
    names = tuple(people.values())
    return Entities(
        _drop_partial_names(names) if len(names) > 1 else names,
        tuple(scan.places),
        tuple(scan.organisations),
    )


def _korean_name(raw: str, start: int, end: int) -> tuple[str | None, int]:
    """("Kim Jong Un", its end) for a surname at ``start``..``end``, else (None, end)."""
    found = _GIVEN_NAME.match(raw, end)
    if not found:
        return None, end
    return raw[start : found.end()], found.end()


def _name_after_title(raw: str, start: int, end: int) -> tuple[str | None, int]:
    """(the capitalised words right after a title, their end), e.g. "Donald Trump"."""
    found = _CAPITALISED.match(raw, end)
    if not found or (found.group(1) and end - start > 3):
        # "Lt. Viktor Belenko", "Mr. Kim"; after a longer title the period ends a sentence.
        return None, end
    words: list[str] = []
    for word in found.group(2).split(" "):
        possessive = word.endswith(("'s", "\u2019s"))
        word = word[:-2] if possessive else word.rstrip("-'\u2019")
        if word in _NOT_NAME or not word:
            break
        words.append(word)
        if possessive:
            break
    return (" ".join(words) or None), found.end()


def _drop_partial_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Drop "Trump" when "Donald Trump" is there and "Kim" when "Kim Jong Un" is."""
    if all(" " in n or "-" in n for n in names):
        return names
    full = [n.lower().replace("-", " ").split() for n in names if " " in n or "-" in n]
    kept = []
    for name in names:
        if " " not in name and "-" not in name:
            word = name.lower()
            if any(word in (f[0], f[-1]) for f in full):
                continue
        kept.append(name)
    return tuple(kept)
