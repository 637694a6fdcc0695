"""Dedup figures (issue 5): near-duplicate quality on the labelled set, the sweep behind the
chosen parameters, and Redis bytes per remembered article, exact and with signatures."""

from __future__ import annotations

import io
import json
import random
import time
import uuid
from datetime import UTC, datetime

import redis

from bench.figures import Figure
from dmzwatch.dedup import signature
from dmzwatch.dedup.app import redis_store
from dmzwatch.dedup.cluster import article_from, cluster_stream, memory_store
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.settings import CommonSettings
from tests.stories import STORIES, labelled_articles, score

SEEDS = range(1, 6)
ARTICLES = 10_000
WINDOW = 72 * 3600
WORDS = [f"w{n}" for n in range(5000)]


def quality(threshold: float = signature.DEFAULT_THRESHOLD) -> tuple[float, int, int]:
    """Recall, merged pairs of distinct stories, and copies, over the labelled set's seeds."""
    copies = found = merged = 0
    for seed in SEEDS:
        articles = labelled_articles(copies=7, seed=seed)
        out = io.StringIO()
        store = memory_store(ManualClock(), threshold=threshold)
        cluster_stream([json.dumps(a) for a in articles], out, store)
        assigned = {r["id"]: r["story_id"] for r in map(json.loads, out.getvalue().splitlines())}
        result = score(articles, assigned)
        copies += result.copies
        found += result.found
        merged += len(result.merged)
    return found / copies, merged, copies


def sweep() -> str:
    """Recall and merges at other thresholds, to see the margin on both sides of the chosen one."""
    lines = ["  threshold  recall  merged pairs"]
    for threshold in (0.06, 0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.34, 0.4):
        recall, merged, _ = quality(threshold)
        lines.append(f"  {threshold:9.2f}  {recall:6.3f}  {merged:12d}")
    return "\n".join(lines)


def margins() -> tuple[float, float]:
    """Least estimated similarity of a copy to its original; greatest between distinct stories."""
    signer = signature.Signer()
    least, greatest = 1.0, 0.0
    for seed in SEEDS:
        articles = labelled_articles(copies=7, seed=seed)
        signed = [(a["story"], signer.sign(a["title"], a["text"])) for a in articles]
        first: dict[str, signature.Signature] = {}
        for story, sig in signed:
            assert sig is not None
            if story not in first:
                first[story] = sig
            else:
                least = min(least, sig.similarity(first[story].packed))
        for i, (story, sig) in enumerate(signed):
            for other, osig in signed[i + 1 :]:
                if other != story and sig is not None and osig is not None:
                    greatest = max(greatest, sig.similarity(osig.packed))
    return least, greatest


def synthetic(n: int, rng: random.Random) -> dict[str, str]:
    """A distinct article (its own story: the worst case for memory) with a URL and a GUID."""
    title = " ".join(rng.choices(WORDS, k=10))
    text = " ".join(rng.choices(WORDS, k=90))
    outlet = f"outlet{n % 50}.example"
    return {"id": f"u{n:024x}", "url": f"https://{outlet}/{n}", "title": title, "text": text}


def bytes_per_article(client: redis.Redis, near_duplicates: bool) -> tuple[float, float, float]:
    """Redis bytes per remembered article over ``ARTICLES`` spread over one story window:
    (INFO used_memory delta, MEMORY USAGE summed over the keys, articles per second)."""
    prefix = f"dmzwatch-bench:{uuid.uuid4().hex[:8]}:"
    clock = ManualClock(datetime.now(UTC))
    settings = DedupSettings(redis_key_prefix=prefix, near_duplicates=near_duplicates)
    store = redis_store(settings, client, clock)
    rng = random.Random(11)
    try:
        before = int(client.info("memory")["used_memory"])
        started = time.monotonic()
        for n in range(ARTICLES):
            item = synthetic(n, rng)
            article = article_from(item, clock.now()).model_copy(
                update={"guid": f"guid-{n}", "feed_id": item["url"].split("/")[2]}
            )
            store.remember(article, f"bench/0/{n}")
            clock.advance(WINDOW / ARTICLES)
        seconds = time.monotonic() - started
        after = int(client.info("memory")["used_memory"])
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        usage = sum(int(client.memory_usage(k, samples=0) or 0) for k in keys)
        return (after - before) / ARTICLES, usage / ARTICLES, ARTICLES / seconds
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])


def batched_rate(client: redis.Redis, near_duplicates: bool, batch: int = 500) -> float:
    """Articles per second through ``remember_many`` (the handler's path: one batch per poll,
    pipelined), on the same kind of distinct articles as :func:`bytes_per_article`."""
    prefix = f"dmzwatch-bench:{uuid.uuid4().hex[:8]}:"
    clock = ManualClock(datetime.now(UTC))
    settings = DedupSettings(redis_key_prefix=prefix, near_duplicates=near_duplicates)
    store = redis_store(settings, client, clock)
    rng = random.Random(12)
    articles = []
    for n in range(ARTICLES // 2):
        item = synthetic(n, rng)
        articles.append(
            article_from(item, clock.now()).model_copy(
                update={"guid": f"guid-{n}", "feed_id": item["url"].split("/")[2]}
            )
        )
    try:
        started = time.monotonic()
        for first in range(0, len(articles), batch):
            chunk = articles[first : first + batch]
            store.remember_many([(a, f"bench/0/{first + i}") for i, a in enumerate(chunk)])
            clock.advance(WINDOW / ARTICLES * len(chunk))
        return len(articles) / (time.monotonic() - started)
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])


def figures() -> list[Figure]:
    recall, merged, copies = quality()
    least, greatest = margins()
    print(
        "dedup similarity threshold sweep (labelled set, seeds 1-5):\n"
        + sweep()
        + f"\n  estimated similarity: copies to their original >= {least:.3f}; "
        f"articles of distinct stories <= {greatest:.3f}; threshold "
        f"{signature.DEFAULT_THRESHOLD}\n"
    )
    out = [
        Figure(
            "dedup_near_duplicate_recall",
            recall,
            "recall",
            0.95,
            note=f"{copies} copies of {len(STORIES)} stories, {len(SEEDS)} seeds",
        ),
        Figure("dedup_copy_similarity_min", least, "Jaccard (est.)", note="to its original"),
        Figure("dedup_distinct_similarity_max", greatest, "Jaccard (est.)", note="any two stories"),
        Figure(
            "dedup_distinct_stories_kept_apart",
            1.0 - merged / (len(STORIES) * (len(STORIES) - 1) // 2),
            "share of look-alike pairs",
            1.0,
            note=f"{merged} pairs of distinct stories merged (must be 0)",
        ),
    ]
    client = redis.Redis.from_url(CommonSettings().redis_url.get_secret_value())
    try:
        client.ping()
    except redis.ConnectionError:
        print("Redis unreachable: no memory figures")
        return out
    encoding = client.config_get("hash-max-listpack-entries")
    for near, limit, name in ((False, 300, "exact"), (True, 2048, "near")):
        info, usage, rate = bytes_per_article(client, near)
        value = max(info, usage)
        out.append(
            Figure(
                f"dedup_redis_bytes_per_article_{name}",
                value,
                "bytes",
                limit,
                higher_is_better=False,
                note=f"{ARTICLES} distinct articles over 72 h; INFO delta {info:.0f}, "
                f"MEMORY USAGE {usage:.0f}; {encoding}",
            )
        )
        out.append(
            Figure(
                f"dedup_articles_per_second_{name}",
                rate,
                "articles/s",
                note="one client, one article at a time (remember)",
            )
        )
        out.append(
            Figure(
                f"dedup_articles_per_second_{name}_batched",
                batched_rate(client, near),
                "articles/s",
                note="one client, batches of 500 (remember_many: pipelined, the handler's path)",
            )
        )
    return out
