"""One story per event: exact and near-duplicate detection, updates, and the story's outlets.

For each raw article (see :meth:`StoryStore.remember`):

1. **Article record** (by article id). A new id is claimed. A known id whose record token is
   one of its recent revisions' is a re-delivery: the same answer again. A known id with a text
   seen among its recent revisions is a repeat (dropped); with a new text it is an *update*:
   the next revision, passed on in the same story.
2. **GUID** (same feed): a GUID first seen under another article id is a repeat (``guid``).
3. **Text**: the same normalised title and text seen first from the same outlet is a repeat
   (``content``); from another outlet it is a verbatim copy and joins that story (``exact``).
4. **Near duplicates**: otherwise the MinHash of the title and lead is looked up in the story
   index; a story whose first article is at least ``threshold`` similar (estimated Jaccard) and
   no older than the window is joined (``near``); else the article starts a story named after
   itself (``new``), created only if no story was created meanwhile (or it looks again).
5. **Outlets**: the article's independent outlet (``outlets``) joins the story's outlets, while
   the story is younger than the window (a late copy still joins the story, not its count).

Every step is idempotent for a re-delivered record (claims hold the article id or record
token), so a crash anywhere re-delivers and gets the same story.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from dmzwatch.dedup.entries import (
    MAX_OUTLETS,
    ArticleRecord,
    ContentRecord,
    OutletsRecord,
    article_hash,
    article_name,
    content_name,
    digest,
    guid_name,
    outlet_hash,
    outlets_name,
    pack_id,
)
from dmzwatch.dedup.index import Candidate, NewStory, StoryIndex
from dmzwatch.dedup.local_index import earlier_sharing
from dmzwatch.dedup.outlets import Outlets
from dmzwatch.dedup.records import Claim, Get, If, Op, RecordStore, Reply, Swap
from dmzwatch.dedup.signature import DEFAULT_THRESHOLD, Signature, Signer, similarities
from dmzwatch.dedup.store import DuplicateKind, Match, SeenStore, Sighting
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import InvalidMessage, RetryableError
from dmzwatch.shared.identity import content_fingerprint
from dmzwatch.shared.messages import Article

ATTEMPTS = 8  # compare-and-swap rounds before giving up (the runner then retries the record)
BATCH_ATTEMPTS = 3  # look-up-and-create rounds of a whole batch before going one by one


@dataclass(slots=True)
class _Pending:
    """An article of a batch on its way through ``remember_many``."""

    index: int
    article: Article
    fingerprint: str
    outlet: str
    record: ArticleRecord
    story: str = ""
    match: Match = "new"
    # worked out once: each is needed several times on the way
    own: bytes = field(init=False)  # the article id's hash
    ours: bytes = field(init=False)  # the outlet's hash
    name: bytes = field(init=False)  # of the article's record
    encoded: bytes = field(init=False)  # ``record``, encoded

    def __post_init__(self) -> None:
        self.own = article_hash(self.article.article_id)
        self.ours = outlet_hash(self.outlet)
        self.name = article_name(self.article.article_id)
        self.encoded = self.record.encode()

    @property
    def own_id(self) -> str:
        return self.article.article_id

    def content(self) -> ContentRecord:
        return ContentRecord(self.own, self.story, self.ours)


class StoryStore(SeenStore):
    """The SeenStore: ``records`` keeps exact-match records and the stories' outlets for the
    dedup TTL, ``index`` (None: exact matching only) the stories' signatures for the window."""

    def __init__(
        self,
        records: RecordStore,
        index: StoryIndex | None,
        outlets: Outlets,
        clock: Clock,
        *,
        window_seconds: int,
        threshold: float = DEFAULT_THRESHOLD,
        signer: Signer | None = None,
    ) -> None:
        self._articles = records
        self._index = index
        self._outlets = outlets
        self._clock = clock
        self._window = window_seconds
        self._threshold = threshold
        self._signer = signer or (Signer() if index is not None else None)

    def remember(self, article: Article, token: str) -> Sighting:
        now = self._clock.now()
        fingerprint = content_fingerprint(article.title, article.text)
        outlet = self._outlets(article.source)
        record, revision = self._revision(
            article, bytes.fromhex(fingerprint)[:6], digest(token, 6), now
        )
        if revision is None:
            return Sighting(_repeat_kind(article), record.story or article.article_id)
        first_seen = None if record.revisions == 1 and not record.story else record.first_seen
        seen_at = None if first_seen is None else datetime.fromtimestamp(first_seen, UTC)
        if record.story:
            match: Match = "update" if revision > 1 else record.match
            if revision > 1:  # a verbatim copy of the new text joins the same story
                content = ContentRecord(
                    article_hash(article.article_id), record.story, outlet_hash(outlet)
                )
                self._articles.claim(content_name(fingerprint), content.encode())
            outlets = self._join(record.story, outlet, now)
            return Sighting(None, record.story, match, revision, outlets, seen_at)
        story, match, duplicate = self._decide(article, fingerprint, outlet, now)
        if duplicate is not None:
            return Sighting(duplicate, story)
        outlets = self._join(story, outlet, now)
        name = article_name(article.article_id)
        self._articles.swap(name, record.encode(), record.decided(story, match).encode())
        return Sighting(None, story, match, revision, outlets, seen_at)

    def remember_many(self, items: Sequence[tuple[Article, str]]) -> list[Sighting | Exception]:
        """The batch form of ``remember`` in a few round trips. For articles new to dedup (the
        usual case) each step above is one script call (or pipeline) for the whole batch, and
        steps that do not depend on each other share one: claim the records, claim the GUIDs
        (of the new records: conditions in the call) and read the texts; look up the
        signatures; create the batch's new stories at once (a story started earlier in the
        batch is a candidate too, when it shares a band); claim the texts, record the stories
        and claim their outlets (of the articles whose text claim lets them join: conditions
        in the call); add the outlets to the stories that had some (compare-and-swap, again on
        conflict). A known article id, an id met twice in the
        batch, or an index another replica changed meanwhile goes through ``remember``'s
        one-by-one path."""
        now = self._clock.now()
        results: list[Sighting | Exception | None] = [None] * len(items)
        later: list[int] = []  # handled one by one once the batch is done
        batch: list[_Pending] = []
        ids: set[str] = set()
        for i, (article, token) in enumerate(items):
            if article.article_id in ids:
                later.append(i)
                continue
            ids.add(article.article_id)
            try:
                pack_id(article.article_id)
            except InvalidMessage as exc:
                results[i] = exc
                continue
            fingerprint = content_fingerprint(article.title, article.text)
            text = bytes.fromhex(fingerprint)[:6]
            record = ArticleRecord.first(int(now.timestamp()), text, digest(token, 6))
            batch.append(_Pending(i, article, fingerprint, self._outlets(article.source), record))
        # one call: claim the records, then the GUIDs of those whose record was new (as
        # ``remember`` does), read every text (a read changes nothing; only the texts of the
        # articles decided here are looked at)
        n = len(batch)
        guided = [k for k, p in enumerate(batch) if p.article.guid and p.article.url]
        ops: list[Op] = [Claim(p.name, p.encoded) for p in batch]
        for k in guided:
            article = batch[k].article
            ops.append(If(Claim(guid_name(article.feed_id, article.guid or ""), batch[k].own), k))
        ops += [Get(content_name(p.fingerprint)) for p in batch]
        replies = self._articles.run_many(ops)
        guids: list[Reply] = [None] * n
        for k, reply in zip(guided, replies[n : n + len(guided)], strict=True):
            guids[k] = reply
        reads = replies[n + len(guided) :]
        claimed: list[_Pending] = []
        answers: list[tuple[Reply, Reply]] = []  # per claimed article: its GUID's, its text's
        for k, (p, reply) in enumerate(zip(batch, replies[:n], strict=True)):
            won, held = cast(tuple[bool, bytes], reply)
            if won:
                claimed.append(p)
                answers.append((guids[k], reads[k]))
                continue
            known = ArticleRecord.decode(held)
            text_hash, token_hash = p.record.recent[0]  # this record's
            if known.revision_of(token_hash) is None and known.knows(text_hash):  # a plain repeat
                results[p.index] = Sighting(_repeat_kind(p.article), known.story or p.own_id)
            else:  # an update or a re-delivery
                later.append(p.index)
        batch = claimed
        self._decide_many(batch, answers, results, now)
        decided = [p for p in batch if results[p.index] is None]
        # One call: claim the texts; record the story of each article that joins it and claim
        # the story's outlets record. An exact copy joins whatever its text claim says; any
        # other joins when its text claim won (the usual case: a condition in the call), else
        # unless the text's first article is another of its outlet's (a ``content`` repeat),
        # then in one more call. A crash after the records are swapped re-delivers articles
        # whose record names their story: they join the outlets again (idempotent).
        m = len(decided)
        created = int(now.timestamp())
        ops = [Claim(content_name(p.fingerprint), p.content().encode()) for p in decided]
        for k, p in enumerate(decided):
            for op in self._recording(p, created):
                ops.append(op if p.match == "exact" else If(op, k))
        replies = self._articles.run_many(ops)
        joining: list[_Pending] = []
        claims: list[tuple[bool, bytes]] = []  # of each joining one's outlets record
        late: list[_Pending] = []  # joins after all
        for k, p in enumerate(decided):
            outlets_claim = replies[m + 2 * k + 1]
            if outlets_claim is not None:
                joining.append(p)
                claims.append(cast(tuple[bool, bytes], outlets_claim))
                continue
            _, held = cast(tuple[bool, bytes], replies[k])
            first = ContentRecord.decode(held)
            if first.article != p.own and first.outlet == p.ours:  # another replica's meanwhile
                results[p.index] = Sighting("content", first.story)
            else:
                late.append(p)
        if late:  # in batch order with the others: two joins of one story keep their order
            again = self._articles.run_many(
                [op for p in late for op in self._recording(p, created)]
            )
            by_index = dict(zip([p.index for p in joining], claims, strict=True))
            for p, reply in zip(late, again[1::2], strict=True):
                by_index[p.index] = cast(tuple[bool, bytes], reply)
            joining = sorted([*joining, *late], key=lambda p: p.index)
            claims = [by_index[p.index] for p in joining]
        joins = self._join_many([(p.story, p.outlet) for p in joining], now, claims)
        for p, outlets in zip(joining, joins, strict=True):
            if isinstance(outlets, Exception):
                results[p.index] = outlets
            else:
                results[p.index] = Sighting(None, p.story, p.match, 1, outlets, None)
        first_of = {p.own_id: p for p in batch}  # the records this batch created
        one_by_one: set[str] = set()
        for i in sorted(later):  # in batch order: an id met twice keeps its order
            article = items[i][0]
            recorded = first_of.get(article.article_id)
            earlier = results[recorded.index] if recorded is not None else None
            if (
                recorded is not None
                and isinstance(earlier, Sighting)
                and article.article_id not in one_by_one
                and _text_hash(article) == recorded.record.recent[0][0]
            ):
                # The same text again under an id this batch recorded: what ``remember``
                # would find (an unchanged repeat of that record, its story once decided).
                story = earlier.story_id if earlier.duplicate is None else ""
                results[i] = Sighting(_repeat_kind(article), story or article.article_id)
                continue
            one_by_one.add(article.article_id)
            try:
                results[i] = self.remember(*items[i])
            except RetryableError:
                raise
            except Exception as exc:
                results[i] = exc
        return [r if r is not None else RuntimeError("no result") for r in results]

    @staticmethod
    def _recording(p: _Pending, created: int) -> tuple[Swap, Claim]:
        """The article's record naming its story, and the first claim of the story's outlets
        (``_join_many``'s)."""
        outlets = OutletsRecord(created, (p.outlet,))
        return (
            Swap(p.name, p.encoded, p.record.decided(p.story, p.match).encode()),
            Claim(outlets_name(p.story), outlets.encode()),
        )

    def _decide_many(
        self,
        batch: list[_Pending],
        answers: list[tuple[Reply, Reply]],
        results: list[Sighting | Exception | None],
        now: datetime,
    ) -> None:
        """``_decide`` for a batch of newly claimed articles, given each one's GUID claim
        (None: it has none) and text read (``remember_many`` makes them with the records'
        claims): sets each one's story and match, or its result when it is a repeat."""
        near: list[_Pending] = []
        for p, (guid, text) in zip(batch, answers, strict=True):
            if guid is not None:
                won, holder = cast(tuple[bool, bytes], guid)
                if not won and holder != p.own:
                    results[p.index] = Sighting("guid", p.article.article_id)
                    continue
            held = cast(bytes | None, text)
            first = ContentRecord.decode(held) if held is not None else None
            if first is None or first.article == p.own:
                near.append(p)
            elif first.outlet == p.ours:
                results[p.index] = Sighting("content", first.story)
            else:
                p.story, p.match = first.story, "exact"
        self._near_many(near, now)

    def _near_many(self, batch: list[_Pending], now: datetime) -> None:
        """``_near`` for a batch: one pipelined lookup, then every new story at once."""
        signed: list[tuple[_Pending, Signature]] = []
        signatures: list[Signature | None] = (
            self._signer.sign_many([(p.article.title, p.article.text) for p in batch])
            if self._signer
            else [None] * len(batch)
        )
        for p, signature in zip(batch, signatures, strict=True):
            p.story, p.match = p.article.article_id, "new"
            if signature is not None and self._index is not None:
                signed.append((p, signature))
        if not signed or self._index is None:
            return
        for _ in range(BATCH_ATTEMPTS):
            if self._create_batch(signed, now):
                return
        for p, _ in signed:  # other replicas keep changing the index: one by one
            p.story, p.match = self._near(p.article, now)

    def _create_batch(self, signed: list[tuple[_Pending, Signature]], now: datetime) -> bool:
        """Look the batch up, decide each article's story (stories started earlier in the batch
        are candidates too, when they share a band) and create the new stories at once; False
        when another replica changed the index since the look-up (nothing was created). Every
        candidate's similarity is computed at once, before the decisions."""
        assert self._index is not None
        bands = [s.bands for _, s in signed]
        lookups = self._index.lookup_many(bands)
        versions = {lookup.version for lookup in lookups}
        if len(versions) != 1:
            return False
        oldest = now.timestamp() - self._window
        created = int(now.timestamp())
        earlier = earlier_sharing(bands)  # the batch's articles sharing a band with each one
        left: list[bytes] = []
        right: list[bytes] = []
        for (_, signature), lookup, others in zip(signed, lookups, earlier, strict=True):
            right += [c.signature for c in lookup.candidates]
            right += [signed[j][1].packed for j in others]
            left += [signature.packed] * (len(lookup.candidates) + len(others))
        scores = iter(similarities(left, right))
        started = [False] * len(signed)  # whether each article starts a story
        new: list[NewStory] = []
        for i, ((p, signature), lookup) in enumerate(zip(signed, lookups, strict=True)):
            own = p.article.article_id
            p.story, p.match = own, "new"
            found = [(c, next(scores)) for c in lookup.candidates]
            ours: dict[str, tuple[Candidate, float]] = {}
            for j in earlier[i]:
                score = next(scores)
                if started[j]:
                    story_id = signed[j][0].article.article_id
                    ours.setdefault(story_id, (Candidate(story_id, created, b""), score))
            found += ours.values()
            if any(c.story_id == own for c, _ in found):
                continue  # our own story: this record was handled before
            best: tuple[float, int, Candidate] | None = None
            for candidate, score in found:
                if candidate.created < oldest or score < self._threshold:
                    continue
                if best is None or (score, -candidate.created) > best[:2]:
                    best = (score, -candidate.created, candidate)
            if best is not None:
                p.story, p.match = best[2].story_id, "near"
            else:
                started[i] = True
                new.append(NewStory(own, signature.packed, signature.bands))
        return self._index.create_many(new, versions.pop())

    def _revision(
        self, article: Article, text: bytes, token: bytes, now: datetime
    ) -> tuple[ArticleRecord, int | None]:
        """The article's record and this record's revision (None: an unchanged repeat)."""
        name = article_name(article.article_id)
        fresh = ArticleRecord.first(int(now.timestamp()), text, token)
        won, raw = self._articles.claim(name, fresh.encode())
        for _ in range(ATTEMPTS):
            if won:
                return fresh, 1
            record = ArticleRecord.decode(raw)
            revision = record.revision_of(token)
            if revision is not None:
                return record, revision
            if record.knows(text):
                return record, None
            revised = record.revised(text, token)
            if self._articles.swap(name, raw, revised.encode()):
                return revised, revised.revisions
            current = self._articles.get(name)
            if current is None:
                won, raw = self._articles.claim(name, fresh.encode())
            else:
                raw = current
        raise RetryableError(f"the record of {article.article_id} keeps changing")

    def _decide(
        self, article: Article, fingerprint: str, outlet: str, now: datetime
    ) -> tuple[str, Match, DuplicateKind | None]:
        """The story and how it was found, or the duplicate kind and the story it repeats."""
        own = article_hash(article.article_id)
        if article.guid and article.url:
            won, holder = self._articles.claim(guid_name(article.feed_id, article.guid), own)
            if not won and holder != own:
                return article.article_id, "new", "guid"
        ours = outlet_hash(outlet)
        story = ""
        match: Match = "new"
        held = self._articles.get(content_name(fingerprint))
        if held is not None:
            first = ContentRecord.decode(held)
            if first.article != own:
                if first.outlet == ours:
                    return first.story, "new", "content"
                story, match = first.story, "exact"
        if not story:
            story, match = self._near(article, now)
        won, held = self._articles.claim(
            content_name(fingerprint), ContentRecord(own, story, ours).encode()
        )
        if not won:  # another replica took this text meanwhile
            first = ContentRecord.decode(held)
            if first.article != own and first.outlet == ours and match != "exact":
                return first.story, "new", "content"
        return story, match, None

    def _near(self, article: Article, now: datetime) -> tuple[str, Match]:
        own = article.article_id
        if self._index is None or self._signer is None:
            return own, "new"
        signature = self._signer.sign(article.title, article.text)
        if signature is None:
            return own, "new"
        oldest = now.timestamp() - self._window
        for _ in range(ATTEMPTS):
            lookup = self._index.lookup(signature.bands)
            best: tuple[float, int, Candidate] | None = None
            for candidate in lookup.candidates:
                if candidate.story_id == own:
                    return own, "new"  # our own story: this record was handled before
                score = signature.similarity(candidate.signature)
                if candidate.created < oldest or score < self._threshold:
                    continue
                if best is None or (score, -candidate.created) > best[:2]:
                    best = (score, -candidate.created, candidate)
            if best is not None:
                return best[2].story_id, "near"
            if self._index.create(own, signature.packed, signature.bands, lookup.version):
                return own, "new"
        raise RetryableError("the story index kept changing during a lookup")

    def _join(self, story: str, outlet: str, now: datetime) -> tuple[str, ...]:
        """Add ``outlet`` to the story's outlets while the story is in its window; returns them."""
        (outlets,) = self._join_many([(story, outlet)], now)
        if isinstance(outlets, Exception):
            raise outlets
        return outlets

    def _join_many(
        self,
        joins: Sequence[tuple[str, str]],
        now: datetime,
        claims: Sequence[tuple[bool, bytes]] | None = None,
    ) -> list[tuple[str, ...] | Exception]:
        """``_join`` for each (story, outlet), in order, in a few round trips: claim every
        story's outlets record, then compare-and-swap the outlet into those that exist (two
        joins of one story in a batch: the second swap fails, reads again and retries).
        ``claims``: the answers of those first claims (``OutletsRecord(now, (outlet,))``
        each, in order) when the caller made them."""
        names = [outlets_name(story) for story, _ in joins]
        fresh = [OutletsRecord(int(now.timestamp()), (outlet,)) for _, outlet in joins]
        results: list[tuple[str, ...] | Exception | None] = [None] * len(joins)
        pending: list[tuple[int, bytes]] = []  # (join, the record it last read)
        if claims is None:
            claims = self._articles.claim_many(
                [(name, record.encode()) for name, record in zip(names, fresh, strict=True)]
            )
        for i, (won, raw) in enumerate(claims):
            if won:
                results[i] = fresh[i].outlets
            else:
                pending.append((i, raw))
        for _ in range(ATTEMPTS):
            swaps: list[tuple[int, bytes, OutletsRecord]] = []
            for i, raw in pending:
                record, outlet = OutletsRecord.decode(raw), joins[i][1]
                closed = now.timestamp() - record.created > self._window
                if outlet in record.outlets or closed or len(record.outlets) >= MAX_OUTLETS:
                    results[i] = record.outlets
                else:
                    swaps.append((i, raw, OutletsRecord(record.created, (*record.outlets, outlet))))
            done = self._articles.swap_many(
                [(names[i], raw, joined.encode()) for i, raw, joined in swaps]
            )
            again = []
            for (i, _, joined), swapped in zip(swaps, done, strict=True):
                if swapped:
                    results[i] = joined.outlets
                else:
                    again.append(i)
            if not again:
                break
            current = self._articles.claim_many([(names[i], fresh[i].encode()) for i in again])
            pending = []
            for i, (won, raw) in zip(again, current, strict=True):
                if won:  # it expired meanwhile: this join started it again
                    results[i] = fresh[i].outlets
                else:
                    pending.append((i, raw))
        return [
            r
            if r is not None
            else RetryableError(f"the outlets of story {joins[i][0]} keep changing")
            for i, r in enumerate(results)
        ]


def _text_hash(article: Article) -> bytes:
    """The text hash an article record keeps for ``article``."""
    return bytes.fromhex(content_fingerprint(article.title, article.text))[:6]


def _repeat_kind(article: Article) -> DuplicateKind:
    """Why an unchanged repeat of a known article id is dropped."""
    return "url" if article.article_id.startswith("u") else "id"
