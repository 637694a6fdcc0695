"""Deployment files: compose validates against the Compose Specification; images are pinned."""

import json

import jsonschema
import pytest
import yaml

from tests.conftest import REPO, SHARED

COMPOSE_SPEC = SHARED / "schemas" / "compose-spec.json"


@pytest.fixture
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.mark.skipif(not COMPOSE_SPEC.exists(), reason="needs ../shared/schemas/compose-spec.json")
def test_compose_file_validates_against_the_compose_spec(compose: dict) -> None:
    jsonschema.Draft7Validator(json.loads(COMPOSE_SPEC.read_text())).validate(compose)


def test_every_image_is_pinned_and_every_service_has_a_healthcheck(compose: dict) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), name
        assert "healthcheck" in service, name


def test_topics_file_names_only_catalogue_topics() -> None:
    from dmzwatch.shared.kafka import load_topic_specs
    from dmzwatch.shared.topics import TopicCatalogue

    specs = load_topic_specs(REPO / "deploy/kafka/topics.yaml", TopicCatalogue())
    assert {s.name for s in specs} == set(TopicCatalogue().all())
    assert all(s.partitions == 6 for s in specs)
