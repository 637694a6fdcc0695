"""One Aho-Corasick automaton for every phrase of a taxonomy, and the single scan that uses it.

The automaton holds trigger, context, negative and hedge phrases and the entity gazetteers, so
one pass over the normalised text finds everything the engine needs, with where it stands.
Word boundaries are part of the automaton's keys, so it never even reports "us" inside "thus".

Every hit costs Python time, and a 2 KB news article has about 55 of them, most of them context or
gazetteer phrases ("Seoul", "officials") that matter only near a trigger or as a list of names.
So the scan does as little as it can per hit: each automaton key's value is a :class:`Key`
compiled with everything it means, and the scan files the automaton's own (position, key) pair
into the lists that need it, or the name it gives into a dictionary. Only exact-case checks are
done on the spot; offsets and evidence are worked out later, for the few hits that get that far.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import ahocorasick

from dmzwatch.classifier.entities import SURNAME, TITLE
from dmzwatch.classifier.taxonomy import Phrase, Taxonomy

# What a key means, as bit flags of Key.kind: which of the scan's collections its hits go to.
# An EXACT key has a phrase written in capitals ("US"): its meaning depends on the spelling.
# SEVERAL_NAMES marks the rare key that names more than one place or organisation.
CONTEXT, PLACE, ORGANISATION, TRIGGER, NEGATIVE, HEDGE, NAME_CUE, EXACT, SEVERAL_NAMES = (
    1 << bit for bit in range(9)
)
# Common kinds of hit with a branch of their own in the scan: "Seoul", "Workers' Party",
# "President".
_PLACE_CONTEXT = PLACE | CONTEXT
_ORGANISATION_CONTEXT = ORGANISATION | CONTEXT
_CUE_CONTEXT = NAME_CUE | CONTEXT

# Characters a word may start after and end before. Matching is done on " " + text + " " with
# every phrase keyed between one of each (a stem phrase, "re-defect*", only with a start), so
# the automaton never reports "korea" inside "korean" or the surname "o" inside every word.
_WORD_STARTS = (" ", "\n")
_WORD_ENDS = (" ", "\n", ",", ".", "'", ":", ";", "?", "!")

# A trigger phrase as the tally reads it, unpacked in one step per hit: (its index among the
# taxonomy's trigger phrases, category index, weight, the context groups of which one must be
# near, as a bit mask and as group indices (none needed: 0 and ()), corroborating,
# min_distinct). A corroborating trigger counts only next to another trigger of its category;
# min_distinct is how many different phrases of the groups must be near.
Trigger = tuple[int, int, float, int, tuple[int, ...], bool, int]

_NO_SPELLINGS: Mapping[str, Any] = MappingProxyType({})  # what a key without capitals has

# (destination, payload, exact spelling or None): one meaning of a phrase while compiling.
_Entry = tuple[str, int | str | Trigger, str | None]


@dataclass(frozen=True, slots=True)
class Key:
    """What an automaton key means. Found at automaton position ``p`` (the index of its last
    character in " " + text + " "), it covers the text from ``p - length`` to ``p - tail``.

    ``kind`` has a flag for each collection of :class:`Scan` the hit belongs in; the other
    fields are what the hit means there: canonical ``places`` and ``organisations`` (and
    ``name``, when the key names just one), the context groups (``contexts``, a bit per
    group) and (group, phrase index) ``context_phrases``, :data:`Trigger` rows, negative spec
    indices, hedges (0 each) and name cues (TITLE, SURNAME). An EXACT key instead maps each
    spelling of its capitalised phrases in the original text to the key it then is
    (``by_spelling``; any other spelling: ``otherwise``, None if it then means nothing).
    """

    kind: int
    length: int
    tail: int
    contexts: int = 0
    name: str = ""
    places: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()
    context_phrases: tuple[tuple[int, int], ...] = ()
    triggers: tuple[Trigger, ...] = ()
    negatives: tuple[int, ...] = ()
    hedges: tuple[int, ...] = ()
    name_cues: tuple[int, ...] = ()
    by_spelling: Mapping[str, Key | None] = field(default_factory=lambda: _NO_SPELLINGS)
    otherwise: Key | None = None


# A hit as the automaton reports it: (position, key); see Key for its offsets in the text.
Hit = tuple[int, Key]


@dataclass(frozen=True, slots=True)
class NegativeSpec:
    """A negative phrase of ``category``: costs ``weight``; if ``veto``, cancels nearby
    triggers."""

    category: int
    weight: float
    veto: bool


class Scan(NamedTuple):
    """What one pass over an article found: its hits, each list in the order the automaton
    reported them (by end position).

    ``located`` holds the context hits, ``triggers``, ``negatives``, ``hedges`` and
    ``name_cues`` what their names say; ``places`` and ``organisations`` the canonical names
    found, in order of first mention; ``longest`` is the most characters a hit covers. A
    NamedTuple (the cheapest object to build once per article) of the scan's own collections,
    which callers must treat as read-only.
    """

    located: list[Hit]
    triggers: list[Hit]
    negatives: list[Hit]
    hedges: list[Hit]
    name_cues: list[Hit]
    places: dict[str, None]
    organisations: dict[str, None]
    longest: int


class PhraseMatcher:
    """The compiled taxonomy. Immutable after construction; safe to share between threads."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        table: dict[tuple[str, bool], list[_Entry]] = {}

        def add(phrase: Phrase, destination: str, payload: int | str | Trigger) -> None:
            entry = (destination, payload, phrase.exact)
            table.setdefault((phrase.key, phrase.stem), []).append(entry)

        context_names = tuple(taxonomy.contexts)
        context_phrases = 0  # how many so far: each one's index
        for group_index, name in enumerate(context_names):
            for phrase in taxonomy.contexts[name]:
                add(phrase, f"context {group_index}", context_phrases)
                context_phrases += 1
        triggers: list[Trigger] = []
        negatives: list[NegativeSpec] = []
        for cat_index, category in enumerate(taxonomy.categories):
            for group in category.triggers:
                requires = tuple(context_names.index(r) for r in group.requires)
                mask = sum(1 << r for r in set(requires))
                for phrase in group.phrases:
                    trigger = (
                        len(triggers),
                        cat_index,
                        group.weight,
                        mask,
                        requires,
                        group.corroborating,
                        group.min_distinct,
                    )
                    add(phrase, "triggers", trigger)
                    triggers.append(trigger)
            for group in category.negatives:
                for phrase in group.phrases:
                    add(phrase, "negatives", len(negatives))
                    negatives.append(NegativeSpec(cat_index, group.weight, group.veto))
        for phrase in taxonomy.hedges:
            add(phrase, "hedges", 0)
        lexicon = taxonomy.entities
        for destination, gazetteer in (
            ("places", lexicon.places),
            ("organisations", lexicon.organisations),
        ):
            for name, aliases in gazetteer.items():
                for phrase in aliases:
                    add(phrase, destination, name)
        for cue, phrases in ((TITLE, lexicon.titles), (SURNAME, lexicon.korean_surnames)):
            for phrase in phrases:
                add(phrase, "name_cues", cue)

        words: dict[str, Key] = {}  # automaton key -> value; a later phrase's value wins
        for (key, stem), entries in table.items():
            # A phrase starting with punctuation (": reports") needs no word start.
            leads = _WORD_STARTS if key[0].isalnum() else ("",)
            # One value for every spelling of the phrase with as long a tail (all of its word
            # ends are one character): fewer objects for the scan to touch.
            values: dict[int, Key] = {}
            for tail in ("",) if stem else _WORD_ENDS:
                value = values.get(len(tail))
                if value is None:
                    # Offsets are relative to " " + text: one more than in the text itself.
                    value = _compile(entries, len(key) + len(tail), len(tail) + 1)
                    values[len(tail)] = value
                for lead in leads:
                    words[lead + key + tail] = value
        automaton: Any = ahocorasick.Automaton()
        # pyahocorasick finds a node's next node by a linear search of its children, in the
        # order they were added: adding the keys in order of their letters' frequency puts the
        # letters the text has most first. The order changes no result, only the search time.
        for word in sorted(words, key=_by_frequency):
            automaton.add_word(word, words[word])
        automaton.make_automaton()
        self._automaton = automaton
        self._longest = max((len(key) for key, _ in table), default=0) + 1
        self.triggers: tuple[Trigger, ...] = tuple(triggers)
        self.negatives: tuple[NegativeSpec, ...] = tuple(negatives)

    def scan(self, raw: str, text: str) -> Scan:
        """Scan ``text`` (``normalise(raw)``, same length) and return every hit."""
        # The hot path, run for every hit of every article: the commonest kinds of key are
        # tested first, and a hit is filed as the automaton made it.
        located: list[Hit] = []
        triggers: list[Hit] = []
        negatives: list[Hit] = []
        hedges: list[Hit] = []
        name_cues: list[Hit] = []
        places: dict[str, None] = {}
        organisations: dict[str, None] = {}
        for hit in self._automaton.iter(f" {text} "):
            key = hit[1]
            kind = key.kind
            if kind == CONTEXT:
                located.append(hit)
            elif kind == _PLACE_CONTEXT:
                located.append(hit)
                places[key.name] = None
            elif kind == TRIGGER:
                triggers.append(hit)
            elif kind == PLACE:
                places[key.name] = None
            elif kind == ORGANISATION:
                organisations[key.name] = None
            elif kind == _ORGANISATION_CONTEXT:
                located.append(hit)
                organisations[key.name] = None
            elif kind == _CUE_CONTEXT:
                located.append(hit)
                name_cues.append(hit)
            elif kind == NAME_CUE:
                name_cues.append(hit)
            else:
                # Everything else, in general: an exact spelling to check, a key with several
                # meanings or several names.
                if kind & EXACT:
                    position = hit[0]
                    spelling = raw[position - key.length : position - key.tail + 1]
                    resolved = key.by_spelling.get(spelling, key.otherwise)
                    if resolved is None:
                        continue
                    key, kind = resolved, resolved.kind
                    hit = (position, key)
                if kind & CONTEXT:
                    located.append(hit)
                for name in key.places:
                    places[name] = None
                for name in key.organisations:
                    organisations[name] = None
                if kind & TRIGGER:
                    triggers.append(hit)
                if kind & NEGATIVE:
                    negatives.append(hit)
                if kind & HEDGE:
                    hedges.append(hit)
                if kind & NAME_CUE:
                    name_cues.append(hit)
        return Scan(
            located,
            triggers,
            negatives,
            hedges,
            name_cues,
            places,
            organisations,
            self._longest,
        )


# Lower-case characters from the most to the least frequent in English news; the rest follow.
_FREQUENCY_ORDER = " etaoinsrhldcumfpgywbvk\n,.j'xqz0123456789"
_RANK = {char: rank for rank, char in enumerate(_FREQUENCY_ORDER)}


def _by_frequency(word: str) -> tuple[int, ...]:
    """A sort key putting frequent letters first at every position (see ``PhraseMatcher``)."""
    rank = _RANK
    return tuple(rank.get(char, len(rank) + ord(char)) for char in word)


def _compile(entries: list[_Entry], length: int, tail: int) -> Key:
    """The automaton value of a key with these meanings (in file order); ``length`` and
    ``tail`` as in :class:`Key`."""
    spellings = {exact for _, _, exact in entries if exact is not None}
    plain = _key([(d, p) for d, p, exact in entries if exact is None], length, tail)
    if not spellings:
        assert plain is not None  # a key is only made for a phrase, so it means something
        return plain
    by_spelling = {
        spelling: _key([(d, p) for d, p, e in entries if e in (None, spelling)], length, tail)
        for spelling in sorted(spellings)
    }
    return Key(EXACT, length, tail, by_spelling=by_spelling, otherwise=plain)


def _key(meanings: list[tuple[str, int | str | Trigger]], length: int, tail: int) -> Key | None:
    """A key with these (destination, payload) meanings, in file order; None without any."""
    if not meanings:
        return None
    fields: dict[str, list[Any]] = {}
    for destination, payload in meanings:
        fields.setdefault(destination, []).append(payload)
    phrases = tuple(
        (int(destination.split()[1]), phrase)
        for destination, phrase in meanings
        if destination.startswith("context ") and isinstance(phrase, int)
    )
    places = tuple(fields.get("places", ()))
    organisations = tuple(fields.get("organisations", ()))
    groups = sum(1 << group for group in {group for group, _ in phrases})
    kinds = (
        (CONTEXT, phrases),
        (PLACE, places),
        (ORGANISATION, organisations),
        (SEVERAL_NAMES, len(places) + len(organisations) > 1),
        (TRIGGER, "triggers" in fields),
        (NEGATIVE, "negatives" in fields),
        (HEDGE, "hedges" in fields),
        (NAME_CUE, "name_cues" in fields),
    )
    return Key(
        kind=sum(flag for flag, present in kinds if present),
        length=length,
        tail=tail,
        contexts=groups,
        name=(places + organisations)[0] if len(places) + len(organisations) == 1 else "",
        places=places,
        organisations=organisations,
        context_phrases=phrases,
        triggers=tuple(fields.get("triggers", ())),
        negatives=tuple(fields.get("negatives", ())),
        hedges=tuple(fields.get("hedges", ())),
        name_cues=tuple(fields.get("name_cues", ())),
    )
