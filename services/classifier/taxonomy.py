"""The taxonomy: categories, evidence phrases, context groups and the entity lexicon, as data.

:func:`load_taxonomy` reads the versioned YAML file (see the header of the bundled
``taxonomy.yaml`` for the scoring model) into immutable value objects and validates it, raising
:class:`TaxonomyError` with the offending path on any mistake, so a bad file stops the service at
start-up instead of mis-classifying silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from dmzwatch.shared.errors import ConfigurationError

DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.yaml")


class TaxonomyError(ConfigurationError):
    """The taxonomy file is missing, malformed or inconsistent."""


# One character for one: hyphens, dashes, brackets, double quotes and opening single quotes
# separate words like spaces; the closing single quote is the apostrophe ("Workers’ Party").
_AS_SPACE = '-\u2013\u2014"\u201c\u201d\u2018()/\u00a0\t\r'
_ASCII_AS_SPACE = "".join(char for char in _AS_SPACE if char.isascii())


def normalise(text: str) -> str:
    """Lower-case ``text`` the way phrases are matched, keeping every character's offset.

    Hyphens, dashes, brackets and double quotes become spaces and curly apostrophes straight
    ones, so "Jong-un" matches "jong un" and "(Kim" starts a word. Each replacement is one
    character for one, which lets matches found in the normalised text be read back from the
    original (for entity names and evidence). Newlines are kept: they end sentences.
    """
    lowered = text.lower()
    if text.isascii():
        # Most articles: only the ASCII separators can occur (and lower() kept the length).
        for char in _ASCII_AS_SPACE:
            lowered = lowered.replace(char, " ")
        return lowered
    if len(lowered) != len(text):
        # A few characters lower-case to two ("İ"); keep offsets aligned at their expense.
        lowered = "".join(ch.lower()[:1] for ch in text)
    lowered = lowered.replace("\u2019", "'")
    for char in _AS_SPACE:
        # str.replace returns at once when the character cannot occur in the string.
        lowered = lowered.replace(char, " ")
    return lowered


@dataclass(frozen=True, slots=True)
class Phrase:
    """One pattern as written in the file.

    ``key`` is the normalised text to search for; ``stem`` allows any word ending after it;
    ``exact`` (set for phrases written in capitals) is the spelling the original text must have.
    """

    text: str
    key: str
    stem: bool
    exact: str | None

    @classmethod
    def parse(cls, raw: object, where: str) -> Phrase:
        if not isinstance(raw, str) or not raw.strip().rstrip("*").strip():
            raise TaxonomyError(f"{where}: a phrase must be a non-empty string, got {raw!r}")
        text = raw.strip()
        stem = text.endswith("*")
        body = text.rstrip("*").strip()
        exact = body if body.isupper() else None
        return cls(text=text, key=" ".join(normalise(body).split()), stem=stem, exact=exact)


@dataclass(frozen=True, slots=True)
class PhraseGroup:
    """Phrases sharing a weight and the context groups (any one of them) they require.

    A ``corroborating`` group only adds to evidence that a non-corroborating trigger of the
    same category has already established (generic words such as "talks" or "met").
    ``min_distinct`` is how many different phrases of the required groups must be near.
    ``veto`` (negative groups only) says whether a phrase also cancels the triggers near it.
    """

    weight: float
    requires: tuple[str, ...]
    phrases: tuple[Phrase, ...]
    corroborating: bool = False
    min_distinct: int = 1
    veto: bool = True


@dataclass(frozen=True, slots=True)
class Category:
    """A label: what it means, the evidence for it, what rules it out and where it fires."""

    name: str
    description: str
    threshold: float
    triggers: tuple[PhraseGroup, ...]
    negatives: tuple[PhraseGroup, ...]


@dataclass(frozen=True, slots=True)
class Scoring:
    """How hits become evidence and evidence a 0..1 score (documented in ``taxonomy.yaml``)."""

    title_weight: float = 2.0
    lead_weight: float = 1.5
    lead_chars: int = 400
    context_chars: int = 200
    veto_chars: int = 100
    sentence_cap: float = 2.5
    slope: float = 1.2


@dataclass(frozen=True, slots=True)
class EntityLexicon:
    """Gazetteers (canonical name -> aliases) and the cues for people's names."""

    titles: tuple[Phrase, ...]
    korean_surnames: tuple[Phrase, ...]
    places: Mapping[str, tuple[Phrase, ...]]
    organisations: Mapping[str, tuple[Phrase, ...]]


@dataclass(frozen=True, slots=True)
class Taxonomy:
    version: str
    scoring: Scoring
    contexts: Mapping[str, tuple[Phrase, ...]]
    hedges: tuple[Phrase, ...]
    categories: tuple[Category, ...]
    entities: EntityLexicon


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read and validate a taxonomy file; ``None`` means the bundled ``taxonomy.yaml``."""
    source = Path(path) if path is not None else DEFAULT_TAXONOMY
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaxonomyError(f"{source}: cannot read the taxonomy: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{source}: not valid YAML: {exc}") from exc
    return parse_taxonomy(document, str(source))


def parse_taxonomy(document: object, where: str = "taxonomy") -> Taxonomy:
    """Validate an already-parsed YAML document (a mapping) into a :class:`Taxonomy`."""
    root = _mapping(document, where)
    version = root.get("version")
    if not isinstance(version, str | int | float) or not str(version).strip():
        raise TaxonomyError(f"{where}: 'version' is required")
    scoring = _scoring(root.get("scoring", {}), f"{where}.scoring")
    contexts = MappingProxyType(
        {
            name: _phrases(raw, f"{where}.contexts.{name}")
            for name, raw in _mapping(root.get("contexts", {}), f"{where}.contexts").items()
        }
    )
    certainty = _mapping(root.get("certainty", {}), f"{where}.certainty")
    hedges = _phrases(certainty.get("reported", []), f"{where}.certainty.reported")
    raw_categories = _mapping(root.get("categories"), f"{where}.categories")
    if not raw_categories:
        raise TaxonomyError(f"{where}.categories: at least one category is required")
    categories = tuple(
        _category(str(name), raw, contexts, f"{where}.categories.{name}")
        for name, raw in raw_categories.items()
    )
    entities = _lexicon(root.get("entities", {}), f"{where}.entities")
    return Taxonomy(str(version), scoring, contexts, hedges, categories, entities)


def _category(name: str, raw: object, contexts: Mapping[str, object], where: str) -> Category:
    body = _mapping(raw, where)
    if not name.isidentifier() or name != name.lower():
        raise TaxonomyError(f"{where}: category names are lower-case identifiers")
    threshold = _number(body.get("threshold"), f"{where}.threshold", positive=True)
    triggers = tuple(
        _group(g, contexts, f"{where}.triggers[{i}]")
        for i, g in enumerate(_list(body.get("triggers"), f"{where}.triggers"))
    )
    if not triggers:
        raise TaxonomyError(f"{where}.triggers: at least one trigger group is required")
    negatives = tuple(
        _group(g, contexts, f"{where}.negatives[{i}]")
        for i, g in enumerate(_list(body.get("negatives", []), f"{where}.negatives"))
    )
    description = str(body.get("description", "")).strip()
    return Category(name, description, threshold, triggers, negatives)


def _group(raw: object, contexts: Mapping[str, object], where: str) -> PhraseGroup:
    body = _mapping(raw, where)
    weight = _number(body.get("weight"), f"{where}.weight", positive=True)
    requires = tuple(str(r) for r in _list(body.get("requires", []), f"{where}.requires"))
    unknown = [r for r in requires if r not in contexts]
    if unknown:
        raise TaxonomyError(f"{where}.requires: unknown context group(s) {unknown}")
    phrases = _phrases(body.get("phrases"), f"{where}.phrases")
    if not phrases:
        raise TaxonomyError(f"{where}.phrases: at least one phrase is required")
    corroborating, veto = body.get("corroborating", False), body.get("veto", True)
    if not isinstance(corroborating, bool) or not isinstance(veto, bool):
        raise TaxonomyError(f"{where}: 'corroborating' and 'veto' are true or false")
    min_distinct = int(_number(body.get("min_distinct", 1), f"{where}.min_distinct", positive=True))
    if min_distinct > 1 and not requires:
        raise TaxonomyError(f"{where}.min_distinct: needs 'requires'")
    return PhraseGroup(weight, requires, phrases, corroborating, min_distinct, veto)


def _lexicon(raw: object, where: str) -> EntityLexicon:
    body = _mapping(raw, where)

    def gazetteer(key: str) -> Mapping[str, tuple[Phrase, ...]]:
        table = _mapping(body.get(key, {}), f"{where}.{key}")
        return MappingProxyType(
            {
                str(name): (
                    Phrase.parse(str(name), f"{where}.{key}"),
                    *_phrases(aliases or [], f"{where}.{key}.{name}"),
                )
                for name, aliases in table.items()
            }
        )

    return EntityLexicon(
        titles=_phrases(body.get("titles", []), f"{where}.titles"),
        korean_surnames=_phrases(body.get("korean_surnames", []), f"{where}.korean_surnames"),
        places=gazetteer("places"),
        organisations=gazetteer("organisations"),
    )


def _scoring(raw: object, where: str) -> Scoring:
    body = _mapping(raw, where)
    defaults = Scoring()
    return Scoring(
        title_weight=_number(
            body.get("title_weight", defaults.title_weight), f"{where}.title_weight"
        ),
        lead_weight=_number(body.get("lead_weight", defaults.lead_weight), f"{where}.lead_weight"),
        lead_chars=int(_number(body.get("lead_chars", defaults.lead_chars), f"{where}.lead_chars")),
        context_chars=int(
            _number(body.get("context_chars", defaults.context_chars), f"{where}.context_chars")
        ),
        veto_chars=int(_number(body.get("veto_chars", defaults.veto_chars), f"{where}.veto_chars")),
        sentence_cap=_number(
            body.get("sentence_cap", defaults.sentence_cap), f"{where}.sentence_cap", positive=True
        ),
        slope=_number(body.get("slope", defaults.slope), f"{where}.slope", positive=True),
    )


def _phrases(raw: object, where: str) -> tuple[Phrase, ...]:
    return tuple(Phrase.parse(p, where) for p in _list(raw, where))


def _mapping(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TaxonomyError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return {str(k): v for k, v in raw.items()}


def _list(raw: object, where: str) -> list[object]:
    if not isinstance(raw, list):
        raise TaxonomyError(f"{where}: expected a list, got {type(raw).__name__}")
    return list(raw)


def _number(raw: object, where: str, *, positive: bool = False) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TaxonomyError(f"{where}: expected a number, got {raw!r}")
    if raw < 0 or (positive and raw == 0):
        raise TaxonomyError(f"{where}: must be {'positive' if positive else 'non-negative'}")
    return float(raw)
