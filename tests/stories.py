"""A labelled near-duplicate set, generated: stories, and their copies as other outlets run them.

Every story (``fixtures/stories.yaml``) was written for these tests. Stories come in look-alike
pairs (two purges in one week, two summits, two diplomat defections…) so that a clusterer that
merges on topic words fails. :func:`labelled_articles` turns each story into the wire original
plus copies that other outlets publish: tracking parameters, re-headlined or trimmed titles,
datelines and outlet boilerplate, reordered, shortened or trimmed leads. Deterministic for a
given seed.

Each record is ``{"id", "url", "title", "text", "source", "story"}`` (``story`` is the label; the
rest is what ``dmzwatch cluster`` reads).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Story:
    key: str
    title: str
    headlines: tuple[str, ...]  # how other desks re-headline it
    lead: tuple[str, ...]  # the opening sentences, in the wire's order
    body: tuple[str, ...] = ()


STORIES: tuple[Story, ...] = tuple(
    Story(
        item["key"],
        item["title"],
        tuple(item["headlines"]),
        tuple(item["lead"]),
        tuple(item.get("body", ())),
    )
    for item in yaml.safe_load((Path(__file__).parent / "fixtures" / "stories.yaml").read_text())[
        "stories"
    ]
)

# Outlets that carry the wire's stories; the first is the wire itself.
OUTLETS: tuple[str, ...] = (
    "korea-wire.example",
    "peninsula-post.example",
    "asia-desk.example",
    "daily-observer.example",
    "seoul-times.example",
    "northeast-monitor.example",
    "global-briefing.example",
    "pacific-herald.example",
)
DATELINES = (
    "SEOUL, April 14 (Korea Wire) -- ",
    "SEOUL (Peninsula Post) - ",
    "By Asia Desk staff | ",
    "Seoul, South Korea — ",
    "(KOREA WIRE) ",
)
BOILER_HEAD = (
    "Listen to this article. 3 min read. ",
    "Advertisement. ",
    "Breaking news. ",
)
BOILER_TAIL = (
    " This story was first published by Korea Wire and is republished with permission.",
    " Subscribe to our morning briefing for more news from the peninsula.",
    " Copyright 2026. All rights reserved. No part may be reproduced without permission.",
    " Related: Read our full coverage of North Korea.",
)
TITLE_PREFIXES = ("UPDATE 2-", "BREAKING: ", "Exclusive: ", "N. Korea: ")
TITLE_SUFFIXES = (" - Korea Wire", " | Peninsula Post", " : Asia Desk", " (VIDEO)")
TRACKING = ("?utm_source=rss&utm_medium=feed", "?fbclid=xyz", "?ref=homepage&utm_campaign=am")


def _slug(title: str) -> str:
    return "-".join("".join(c for c in w if c.isalnum()) for w in title.lower().split()[:8])


def _copy_title(story: Story, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(story.headlines)  # re-headlined
    if roll < 0.55:  # trimmed: the first part or the first words
        head = story.title.split(",")[0]
        words = head.split()
        return " ".join(words[: max(5, len(words) - rng.randint(1, 3))])
    if roll < 0.75:
        return rng.choice(TITLE_PREFIXES) + story.title
    if roll < 0.9:
        return story.title + rng.choice(TITLE_SUFFIXES)
    return story.title


def _copy_text(story: Story, rng: random.Random) -> str:
    lead = list(story.lead)
    roll = rng.random()
    if roll < 0.3:  # reordered: the second and third sentences swapped
        lead[1], lead[2] = lead[2], lead[1]
    elif roll < 0.55:  # shortened: the first two or three sentences only
        lead = lead[: rng.choice((2, 3))]
    elif roll < 0.7:  # the last sentence of the lead moved after the body
        lead = lead[:-1]
    sentences = lead + list(story.body) if rng.random() < 0.6 else lead
    if roll >= 0.55 and roll < 0.7:
        sentences.append(story.lead[-1])
    text = " ".join(sentences)
    if rng.random() < 0.5:
        text = rng.choice(DATELINES) + text
    if rng.random() < 0.3:
        text = rng.choice(BOILER_HEAD) + text
    if rng.random() < 0.5:
        text += rng.choice(BOILER_TAIL)
    return text


def _record(story: Story, outlet: str, title: str, text: str, query: str) -> dict[str, str]:
    url = f"https://{outlet}/news/{_slug(story.title)}{query}"
    ident = hashlib.blake2b(url.encode(), digest_size=8).hexdigest()
    return {
        "id": ident,
        "url": url,
        "title": title,
        "text": text,
        "source": outlet,
        "story": story.key,
    }


def labelled_articles(copies: int = 6, seed: int = 5) -> list[dict[str, str]]:
    """The wire original of every story and ``copies`` copies each, in a shuffled order.

    Originals come first within their story (the first article of a cluster names the story),
    but stories are interleaved, as a day's feeds would deliver them.
    """
    rng = random.Random(seed)
    per_story: list[list[dict[str, str]]] = []
    for story in STORIES:
        text = " ".join(story.lead + story.body)
        items = [_record(story, OUTLETS[0], story.title, text, "")]
        outlets = rng.sample(OUTLETS[1:], k=min(copies, len(OUTLETS) - 1))
        while len(outlets) < copies:
            outlets.append(f"outlet{len(outlets)}.example")
        for outlet in outlets:
            query = rng.choice(TRACKING) if rng.random() < 0.5 else ""
            items.append(
                _record(story, outlet, _copy_title(story, rng), _copy_text(story, rng), query)
            )
        per_story.append(items)
    out: list[dict[str, str]] = []
    while any(per_story):
        queue = rng.choice([q for q in per_story if q])
        out.append(queue.pop(0))
    return out


@dataclass(frozen=True)
class Score:
    copies: int
    found: int  # copies given the story of their original
    merged: tuple[tuple[str, str], ...]  # labelled stories that share a predicted story

    @property
    def recall(self) -> float:
        return self.found / self.copies if self.copies else 1.0


def score(articles: list[dict[str, str]], assigned: dict[str, str]) -> Score:
    """Near-duplicate recall and merges of ``assigned`` (article id → story id)."""
    original: dict[str, str] = {}
    copies = found = 0
    members: dict[str, set[str]] = {}
    for item in articles:
        predicted = assigned[item["id"]]
        members.setdefault(predicted, set()).add(item["story"])
        if item["story"] not in original:
            original[item["story"]] = predicted
            continue
        copies += 1
        found += predicted == original[item["story"]]
    merged = sorted((a, b) for labels in members.values() for a in labels for b in labels if a < b)
    return Score(copies, found, tuple(merged))
