"""Parity check for changes that must not change any result (speed work, refactoring).

Classifies the same articles with this tree's classifier and with the classifier of another git
revision, and compares everything each returns: labels, scores, evidence, certainty, entities.
The articles are the recorded ones under ``../shared`` (the labelled corpus, its paragraphs and
runs of sentences, pairs of its articles cut at random lengths, the seed articles, and every
item of the sample feeds), the benchmark's synthetic ones, and random ones built from the
taxonomy's own phrases, in every case and next to every separator the matcher treats specially,
so that rare paths (exact-case phrases, stems, vetoes, hedges, name cues, long sentences,
non-ASCII text) are exercised::

    python -m dmzwatch.classifier.parity HEAD~1 --random 20000

It exits 1 and shows the first differences if there is any. Nothing here runs in the service.
"""

from __future__ import annotations

import argparse
import html
import importlib
import io
import json
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dmzwatch.classifier.benchmark import synthetic_articles
from dmzwatch.classifier.engine import Classification, Classifier
from dmzwatch.classifier.taxonomy import Phrase, Taxonomy

Article = tuple[str, str]

SHARED = Path(__file__).resolve().parents[3] / "shared"
_PACKAGE = "dmzwatch.classifier"
_FILLER = (
    "the", "a", "of", "and", "said", "on", "in", "to", "was", "with", "by", "for", "that", "it",
    "at", "as", "from", "his", "her", "their", "has", "been", "would", "after", "before",
    "Thursday", "officials", "reportedly", "party", "film", "song", "Park", "Song", "Kim", "Jong",
    "Un", "Gen.", "Lt.", "Mr.", "U.S.", "N.", "Korea", "Jan.", "St.", "No.", "The", "And", "Is",
    "Over", "Avenue", "Jong-un", "Song-thaek", "thus", "us", "US", "UN", "DPRK", "China", "china",
    "mountain", "Everest", "summit", "movie",
)  # fmt: skip
_SEPARATORS = (
    " ", " ", " ", " ", ". ", ", ", "\n", "\n\n", "-", "\u2019", "\u201c", "\u201d", "'s ", "(",
    ") ", ": ", "? ", "! ", " \u2014 ", "\u00a0", "\u0130", "\t", "'",
)  # fmt: skip


def fingerprint(result: Classification) -> tuple[Any, ...]:
    """Everything a classification says, in the order it says it."""
    entities = result.entities
    return (
        result.labels,
        tuple(result.scores.items()),
        tuple(result.evidence.items()),
        tuple(result.certainty.items()),
        (entities.people, entities.places, entities.organisations),
    )


def differences(first: Classifier, second: Classifier, articles: Iterable[Article]) -> list[int]:
    """Indices of the articles the two classifiers classify differently in any way."""
    return [
        index
        for index, (title, text) in enumerate(articles)
        if fingerprint(first.classify(title, text)) != fingerprint(second.classify(title, text))
    ]


def random_articles(taxonomy: Taxonomy, n: int, *, seed: int = 0) -> list[Article]:
    """``n`` articles of random phrases of ``taxonomy`` (in random case), filler words and
    separators, from a few words to a few thousand characters."""
    rng = random.Random(seed)
    vocabulary = [phrase.text.rstrip("*").strip() for phrase in _phrases(taxonomy)]
    articles = []
    for _ in range(n):
        words = rng.choice((5, 20, 60, 150, 300, 500))
        text = "".join(
            (_cased(rng, rng.choice(vocabulary)) if rng.random() < 0.45 else rng.choice(_FILLER))
            + rng.choice(_SEPARATORS)
            for _ in range(words)
        )
        title = "".join(
            _cased(rng, rng.choice(vocabulary)) + rng.choice(_SEPARATORS)
            for _ in range(rng.randint(0, 6))
        )
        articles.append((title, text))
    return articles


def recorded_articles(shared: Path = SHARED, *, seed: int = 7) -> list[Article]:
    """Articles made of the recorded text under ``shared`` (see the module docstring)."""
    articles: list[Article] = []
    corpus = shared / "corpus" / "news_dev.jsonl"
    labelled = []
    if corpus.exists():
        labelled = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    for article in labelled:
        title, text = article["title"], article["text"]
        articles.append((title, text))
        for paragraph in filter(str.strip, text.split("\n")):
            articles += [(title, paragraph), ("", paragraph)]
        sentences = re.split(r"(?<=\.) ", text)
        for start in range(0, len(sentences), 3):
            articles.append((sentences[start][:80], " ".join(sentences[start : start + 5])))
    rng = random.Random(seed)
    for _ in range(1500 if len(labelled) > 1 else 0):
        one, other = rng.sample(labelled, 2)
        cut = one["text"][: rng.randint(0, 3000)] + "\n" + other["text"][: rng.randint(0, 3000)]
        articles.append((one["title"], cut))
    for seed_file in sorted((shared / "seeds").glob("*.txt")):
        text = seed_file.read_text(encoding="utf-8")
        title, _, body = text.partition("\n")
        articles += [(title, body), ("", text)]
    for feed in sorted((shared / "feeds").glob("*.xml")):
        articles += _feed_items(feed.read_text(encoding="utf-8", errors="replace"))
    return articles


def classifier_at(revision: str, workdir: Path) -> Classifier:
    """The bundled classifier as it was at git ``revision``, importable beside this one."""
    repository = Path(__file__).resolve().parents[2]
    git = shutil.which("git") or "git"
    archive = subprocess.run(  # noqa: S603 - git itself, the revision is a plain argument
        [git, "-C", str(repository), "archive", revision, "services/classifier"],
        check=True,
        capture_output=True,
    ).stdout
    name = "parity_" + re.sub(r"\W", "_", revision)
    package = workdir / name
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            extracted = tar.extractfile(member)
            assert extracted is not None
            target = package / Path(member.name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            data = extracted.read()
            if target.suffix == ".py":
                data = data.replace(_PACKAGE.encode(), name.encode())
            target.write_bytes(data)
    sys.path.insert(0, str(workdir))
    engine = importlib.import_module(f"{name}.engine")
    return engine.Classifier.from_taxonomy(package / "taxonomy.yaml")  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dmzwatch.classifier.parity")
    parser.add_argument("revision", help="git revision to compare this tree's classifier with")
    parser.add_argument("--random", type=int, default=20_000, help="random articles (20,000)")
    args = parser.parse_args(argv)
    current = Classifier.from_taxonomy()
    with tempfile.TemporaryDirectory() as workdir:
        previous = classifier_at(args.revision, Path(workdir))
        recorded = recorded_articles()
        synthetic = [
            article
            for seed in range(10)
            for dense in (False, True)
            for article in synthetic_articles(200, seed=1000 + seed, dense=dense)
        ]
        generated = random_articles(current.taxonomy, args.random)
        found = 0
        groups = (("recorded", recorded), ("benchmark", synthetic), ("random", generated))
        for kind, articles in groups:
            differing = differences(previous, current, articles)
            found += len(differing)
            print(f"{kind}: {len(articles):,} articles, {len(differing)} differences")
            for index in differing[:5]:
                title, text = articles[index]
                print(f"  {title[:60]!r} {text[:120]!r}")
                print(f"    {args.revision}: {fingerprint(previous.classify(title, text))}")
                print(f"    this tree: {fingerprint(current.classify(title, text))}")
    return 1 if found else 0


def _phrases(taxonomy: Taxonomy) -> list[Phrase]:
    phrases = [phrase for group in taxonomy.contexts.values() for phrase in group]
    for category in taxonomy.categories:
        for group in (*category.triggers, *category.negatives):
            phrases += group.phrases
    lexicon = taxonomy.entities
    phrases += [*taxonomy.hedges, *lexicon.titles, *lexicon.korean_surnames]
    for gazetteer in (lexicon.places, lexicon.organisations):
        for aliases in gazetteer.values():
            phrases += aliases
    return phrases


def _cased(rng: random.Random, phrase: str) -> str:
    draw = rng.random()
    if draw < 0.5:
        return phrase
    if draw < 0.7:
        return phrase.lower()
    if draw < 0.85:
        return phrase.title()
    return phrase.capitalize() if draw < 0.95 else phrase.upper()


def _feed_items(document: str) -> list[Article]:
    """(title, description) of each item or entry of a feed, as plain text."""

    def plain(fragment: str) -> str:
        fragment = html.unescape(fragment.replace("<![CDATA[", "").replace("]]>", ""))
        return html.unescape(re.sub(r"<[^>]+>", " ", fragment))

    items = []
    for item in re.findall(r"<(?:item|entry)\b.*?</(?:item|entry)>", document, re.S):
        title = re.search(r"<title[^>]*>(.*?)</title>", item, re.S)
        body = re.search(
            r"<(description|summary|content:encoded|content)[^>]*>(.*?)</\1>", item, re.S
        )
        items.append((plain(title.group(1)) if title else "", plain(body.group(2)) if body else ""))
    return items


if __name__ == "__main__":
    sys.exit(main())
