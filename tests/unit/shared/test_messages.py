import json

import jsonschema
import pytest

from dmzwatch.shared.errors import InvalidMessage
from dmzwatch.shared.messages import Article, alert_json_schema, decode, encode
from tests.conftest import REPO, make_article


def test_articles_round_trip_through_json() -> None:
    article = make_article(authors=("A. Writer",), feed_tags=("korea",))
    assert decode(Article, encode(article)) == article


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "not a valid Article"),
        (b'{"schema_version": 2}', "schema_version"),
        (None, "empty message"),
    ],
)
def test_undecodable_messages_are_invalid(raw: bytes | None, fragment: str) -> None:
    with pytest.raises(InvalidMessage, match=fragment):
        decode(Article, raw)


def test_unknown_fields_are_refused_so_schema_drift_is_loud() -> None:
    body = json.loads(encode(make_article()))
    body["surprise"] = 1
    with pytest.raises(InvalidMessage, match="surprise"):
        decode(Article, json.dumps(body).encode())


def test_committed_alert_schema_matches_the_models() -> None:
    committed = json.loads((REPO / "shared/schemas/alert.schema.json").read_text())
    assert committed == alert_json_schema(), "run `make schemas` and commit the result"
    jsonschema.Draft202012Validator.check_schema(committed)
