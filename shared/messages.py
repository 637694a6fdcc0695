"""Versioned message models: the contracts between stages (see DESIGN.md).

Every message is a frozen pydantic model carrying ``schema_version``. A message with another
version, unknown fields or wrong types fails :func:`decode` with :class:`InvalidMessage`, which
the runner dead-letters. Bump ``schema_version`` (and accept both in the consumer) when a change
is not backwards compatible.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dmzwatch.shared.errors import InvalidMessage

ALERT_SCHEMA_URI = "https://dmzwatch.github.io/schemas/alert/v1.json"
ALERT_TYPE_PREFIX = "org.dmzwatch.alert."


class Message(BaseModel):
    """Base of every message: immutable, strict about unknown fields."""

    # Serialised messages always carry every field, so the public schema marks them required.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


class Article(Message):
    """One feed entry, normalised by the poller (topic ``articles.raw``)."""

    schema_version: Literal[1] = 1
    article_id: str = Field(
        description="Stable: from the canonical URL, else the GUID, else a content hash."
    )
    feed_id: str
    source: str = Field(description="Outlet domain, e.g. korea-wire.example")
    url: str | None = Field(description="Canonical URL")
    original_url: str | None
    guid: str | None
    title: str
    summary: str = ""
    content: str = ""
    authors: tuple[str, ...] = ()
    published_at: datetime | None = Field(description="UTC; null when the feed gives none")
    fetched_at: datetime
    language: str | None = None
    feed_tags: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The body the classifier reads: content when the feed has it, else the summary."""
        return self.content or self.summary


class UniqueArticle(Article):
    """An article seen for the first time (topic ``articles.unique``), with its story."""

    story_id: str = Field(description="Same for syndicated copies and rewrites of one story")
    first_seen_at: datetime
    revision: int = Field(
        1, ge=1, description="1 for the first version; more when the same article changed text"
    )
    story_outlets: tuple[str, ...] = Field(
        (),
        description="The story's independent outlets so far (this article's included); empty "
        "from a dedup that predates stories",
    )

    @property
    def is_update(self) -> bool:
        """A changed version of an article passed on before (same id, same story)."""
        return self.revision > 1


class Entities(Message):
    people: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()


class Decision(Message):
    """The classifier's verdict on one unique article (topic ``decisions``); labels may be empty."""

    schema_version: Literal[1] = 1
    article_id: str
    story_id: str
    labels: tuple[str, ...]
    scores: dict[str, float]
    evidence: dict[str, tuple[str, ...]]
    certainty: dict[str, Literal["reported", "confirmed"]] = Field(default_factory=dict)
    entities: Entities = Entities()
    classifier_version: str
    decided_at: datetime


class Corroboration(Message):
    sources: int = Field(ge=1, description="Number of independent outlets carrying the story")
    outlets: tuple[str, ...] = Field(
        description="Those outlets, by registrable domain (mirrors and aggregators of one outlet "
        "count once)"
    )


class AlertData(Message):
    """The payload of an alert CloudEvent."""

    schema_version: Literal[1] = 1
    category: str
    status: Literal["reported", "corroborated"] = Field(
        "reported",
        description="`reported` when first raised (version 1); `corroborated` in the one update "
        "sent when the story reaches the configured number of independent outlets",
    )
    version: int = Field(
        1, ge=1, description="Grows with each update of the same alert id; keep the highest"
    )
    story_id: str
    article_id: str
    title: str
    url: str | None
    source: str = Field(description="The outlet that reported it")
    published_at: datetime | None
    fetched_at: datetime
    score: float = Field(ge=0, le=1)
    certainty: Literal["reported", "confirmed"] = "confirmed"
    evidence: tuple[str, ...]
    entities: Entities
    corroboration: Corroboration
    feed_tags: tuple[str, ...] = ()
    classifier_version: str


class Alert(Message):
    """A CloudEvents 1.0 structured-mode JSON event (topics ``alerts.<category>``).

    ``id`` is deterministic: the same story and category always give the same id, so consumers
    can de-duplicate; ``data.version`` orders updates of one alert: version 1 is ``reported``, and
    at most one update (version 2, ``corroborated``) follows with the same id, on the same topic
    and key, once enough independent outlets carry the story.
    """

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str = "/dmzwatch/classifier"
    type: str = Field(pattern=r"^org\.dmzwatch\.alert\.[a-z0-9_]+$")
    subject: str = Field(description="The story id")
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = ALERT_SCHEMA_URI
    data: AlertData


class DeadLetter(Message):
    """A message a stage could not process (topic ``deadletter``), kept whole for replay."""

    schema_version: Literal[1] = 1
    stage: str
    error: str
    error_type: str
    topic: str | None
    partition: int | None
    offset: int | None
    key: str | None
    value_text: str | None = Field(description="The original value when it is UTF-8")
    value_base64: str = Field(description="The original value, byte for byte")
    failed_at: datetime


M = TypeVar("M", bound=Message)


def decode(model: type[M], raw: bytes | None) -> M:
    """Parse ``raw`` JSON into ``model``; raises :class:`InvalidMessage` saying what is wrong."""
    if raw is None:
        raise InvalidMessage("empty message (tombstone)")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        raise InvalidMessage(
            f"not a valid {model.__name__} v1: {where}: {first.get('msg')} "
            f"({exc.error_count()} error(s))"
        ) from exc


def encode(message: Message) -> bytes:
    """Serialise a message to compact JSON bytes."""
    return message.model_dump_json().encode()


def alert_json_schema() -> dict[str, object]:
    """The public JSON Schema of alerts, as committed in ``shared/schemas/alert.schema.json``."""
    schema = Alert.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = ALERT_SCHEMA_URI
    schema["title"] = "dmzwatch alert (CloudEvents 1.0, structured JSON)"
    schema["description"] = (
        "One alert per story and category. `id` is deterministic (same story and category, "
        "same id). An alert is first sent with `data.version` 1 and `data.status` `reported`; "
        "when copies of the story from enough independent outlets have been seen (mirrors and "
        "aggregators of one outlet count once; default 3, within the story window), exactly one "
        "update follows on the same topic with the same `id` and `subject`, `data.version` 2, "
        "`data.status` `corroborated` and `data.corroboration` filled (the first report's "
        "title, url and evidence are kept). An update is a whole alert, not a patch: consumers "
        "keep the highest `data.version` per `id` and ignore lower or equal ones, since "
        "delivery is at least once and versions may arrive out of order. A consumer that wants "
        "one notice per event acts on the first `id` it sees."
    )
    return schema
