"""Synthetic ~2 KB news articles for measuring classification speed (``make bench``).

The sentences are written for this benchmark (no real article is copied) to have what a North
Korea watcher's feed has: every article names Korea, its leaders, officials and capitals, which
are what the scan's gazetteer and context phrases hit. By default an article is like a feed's:
about half are about none of the categories and the rest about one of them. ``dense=True``
builds the worst case instead: every article draws on every category, so every label's
evidence, certainty and quotes are computed.
"""

from __future__ import annotations

import random

ARTICLE_CHARS = 2000

_GENERAL = (
    "North Korea fired a short-range ballistic missile into the sea off its east coast on "
    "Thursday, South Korea's Joint Chiefs of Staff said, the third launch this month.",
    "The launch came hours after officials in Seoul and Washington wrapped up a round of "
    "consultations on sanctions enforcement and on humanitarian aid to the North.",
    "State media KCNA said leader Kim Jong Un had inspected a new greenhouse farm in South "
    "Hamgyong Province and praised workers for exceeding their production targets.",
    "Prices of rice and corn in markets near the Chinese border rose sharply in the spring, "
    "according to traders in Sinuiju and Hyesan reached by telephone.",
    "The Ministry of Unification in Seoul declined to comment on the report, saying it was "
    "monitoring developments closely together with its allies.",
    "Satellite imagery published by analysts showed new construction at the Yongbyon nuclear "
    "complex, including what appeared to be an expanded enrichment building.",
    "Japan's government lodged a protest through diplomatic channels in Beijing, saying the "
    "missile had fallen outside its exclusive economic zone.",
    "Trade between China and North Korea recovered to about half of its pre-pandemic level "
    "last year, according to customs data released in Beijing.",
    "The Rodong Sinmun, newspaper of the ruling Workers' Party, carried a long editorial "
    "calling on citizens to overcome difficulties with self-reliance.",
    "Weather forecasters expect heavy rain in the western provinces next week, raising fears "
    "of flooding in farming areas that were badly hit two years ago.",
    "Experts said the country's economy remained under strain from sanctions, border closures "
    "and poor harvests, although some markets appear to have reopened.",
    "The United Nations Security Council is due to discuss the latest launches on Friday at a "
    "meeting requested by the United States, Japan and South Korea.",
)
_TOPICS = {
    "purge": (
        "A senior official of the Workers' Party was removed from his post and expelled from "
        "the party for what state media called anti-party acts, officials in Seoul said.",
        "The former minister was reportedly executed along with several aides after an "
        "investigation by the Ministry of State Security, according to sources.",
        "Analysts said the purge showed Kim Jong Un tightening his grip on the military and "
        "the party elite ahead of a party congress.",
        "Several generals were demoted and sent to re-education camps in what the regime "
        "described as a campaign against corruption among officials.",
    ),
    "summit": (
        "Kim Jong Un and Russian President Vladimir Putin are due to meet next month for a "
        "summit in Vladivostok, the Kremlin announced on Monday.",
        "The two leaders last met in 2019, and officials said the summit would focus on "
        "economic cooperation, food aid and military technology.",
        "South Korean President Lee Jae-myung said he hoped for a summit with the North's "
        "leader to resume talks that stalled after the Hanoi meeting.",
        "The leaders shook hands in front of cameras before holding talks behind closed doors "
        "that lasted more than two hours, state media reported.",
    ),
    "defection": (
        "A North Korean soldier crossed the Military Demarcation Line and defected to the "
        "South early on Tuesday, the Joint Chiefs of Staff said.",
        "The defector was being questioned by the National Intelligence Service about his "
        "motives and the route he took across the DMZ.",
        "A diplomat at the North Korean embassy in a European capital sought asylum with his "
        "family and has since arrived in Seoul, officials said.",
        "More than 200 North Koreans fled to the South last year, most of them women who "
        "travelled through China and Southeast Asia.",
    ),
}


def synthetic_articles(n: int, *, seed: int = 0, dense: bool = False) -> list[tuple[str, str]]:
    """``n`` (title, text) pairs of about ``ARTICLE_CHARS`` characters of text each."""
    rng = random.Random(seed)
    topics = list(_TOPICS)
    articles = []
    for _ in range(n):
        if dense:
            pool = [s for sentences in _TOPICS.values() for s in sentences] + list(_GENERAL)
            topical: tuple[str, ...] = tuple(pool)
        else:
            topic = rng.choice([*topics, None, None, None])
            topical = _TOPICS[topic] if topic else _GENERAL
            pool = list(_GENERAL)
        title = rng.choice(topical)[:90]
        sentences: list[str] = []
        size = 0
        while size < ARTICLE_CHARS:
            sentence = rng.choice(topical) if rng.random() < 0.3 else rng.choice(pool)
            sentences.append(sentence)
            size += len(sentence) + 1
        articles.append((title, " ".join(sentences)[:ARTICLE_CHARS]))
    return articles
