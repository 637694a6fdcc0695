"""Deployment files: compose validates against the Compose Specification; images are pinned."""

import json
import re

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


def test_depends_on_waits_for_health_of_services_that_have_a_healthcheck(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert condition["condition"] in {
                "service_healthy",
                "service_completed_successfully",
            }, (name, dependency)
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["prometheus"]["depends_on"]["alertmanager"]["condition"] == "service_healthy"


def test_bind_mounts_exist_and_ops_services_get_their_configuration(compose: dict) -> None:
    mounts = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)
                mounts[target] = source
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/rules"] == "./deploy/prometheus/rules"
    assert mounts["/etc/alertmanager/alertmanager.yml"] == "./deploy/alertmanager/alertmanager.yml"
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/dmzwatch.yml").read_text()
    )["providers"][0]
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"


def test_prometheus_scrapes_every_service_loads_the_rules_and_alerts_alertmanager(
    compose: dict,
) -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {"poller:9101", "dedup:9102", "classifier:9103", "notifier:9104"}
    for target in targets:
        name, port = target.split(":")
        assert f"DMZWATCH_{name.upper()}_PORT" in compose["services"][name]["environment"]
        assert compose["services"][name]["environment"][f"DMZWATCH_{name.upper()}_PORT"] == port
    assert config["rule_files"] == ["rules/*.yml"]
    assert list((REPO / "deploy/prometheus/rules").glob("*.yml"))
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager.split(":")[0] in compose["services"]


def dashboards() -> dict[str, dict]:
    return {
        path.stem: json.loads(path.read_text())
        for path in (REPO / "deploy/grafana/dashboards").glob("*.json")
    }


def test_dashboards_use_the_provisioned_datasource_and_grafana_rate_windows() -> None:
    datasource = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    boards = dashboards()
    assert set(boards) == {"pipeline", "feeds", "notifications"}
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert panels, name
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in panels:
            assert panel["datasource"]["uid"] == datasource["uid"], (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                # Windows come from Grafana, so short scrape intervals and zooming both work.
                for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                    assert window in {"$__rate_interval", "$__range"}, (name, panel["title"])


def test_the_poller_s_websub_callback_is_published_and_off_unless_a_url_is_given(
    compose: dict,
) -> None:
    from dmzwatch.poller.settings import PollerSettings

    poller = compose["services"]["poller"]
    env = poller["environment"]
    port = env["DMZWATCH_WEBSUB_LISTEN_PORT"]
    assert int(port) == PollerSettings.model_fields["websub_listen_port"].default
    # Inside the container the default 127.0.0.1 would be unreachable from the host.
    assert env["DMZWATCH_WEBSUB_LISTEN_HOST"] == "0.0.0.0"
    # Published on the host's loopback only, for the TLS proxy in front of it.
    assert f"127.0.0.1:{port}:{port}" in poller["ports"]
    # Interpolated from the shell or .env, empty by default: WebSub stays off.
    placeholder = env["DMZWATCH_WEBSUB_CALLBACK_URL"]
    assert placeholder == "${DMZWATCH_WEBSUB_CALLBACK_URL:-}"
    assert PollerSettings(websub_callback_url="").websub_callback_url is None
