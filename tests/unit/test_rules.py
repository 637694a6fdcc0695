"""Alert rules: every alert is documented (summary, description, a runbook note that exists) and
routed; promtool itself runs in tests/e2e/test_observability.py."""

import re

import pytest
import yaml

from tests.conftest import REPO

RULES = sorted((REPO / "deploy/prometheus/rules").glob("*.yml"))
RUNBOOKS = REPO / "deploy/runbooks.md"
SEVERITIES = {"page", "ticket", "info"}


def alerts() -> list[dict]:
    found = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(rule for rule in group["rules"] if "alert" in rule)
    return found


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_issue_s_alerts_exist() -> None:
    names = {rule["alert"] for rule in alerts()}
    for wanted in (
        "DmzwatchStageDown",
        "DmzwatchConsumerLagGrowing",
        "DmzwatchDeadLetters",
        "DmzwatchFeedStale",
        "DmzwatchFetchErrorRatio",
        "DmzwatchNotificationFailures",
        "DmzwatchAlertLatencyBudgetBurnFast",
        "DmzwatchAlertLatencyBudgetBurnSlow",
    ):
        assert wanted in names


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_annotations_and_a_runbook_note(rule: dict) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    path, _, anchor = annotations["runbook_url"].partition("#")
    assert (REPO / path) == RUNBOOKS
    assert anchor == rule["alert"].lower()
    assert anchor in anchors(RUNBOOKS.read_text())


def test_every_runbook_note_belongs_to_an_alert() -> None:
    notes = set(re.findall(r"^### (\w+)$", RUNBOOKS.read_text(), flags=re.MULTILINE))
    assert notes == {rule["alert"] for rule in alerts()}


def test_the_readme_links_every_alert_to_its_runbook_note() -> None:
    readme = (REPO / "README.md").read_text()
    for rule in alerts():
        link = f"(deploy/runbooks.md#{rule['alert'].lower()})"
        assert link in readme, rule["alert"]


def test_alertmanager_routes_pages_apart() -> None:
    config = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    pages = [r for r in config["route"]["routes"] if r["matchers"] == ['severity="page"']]
    assert len(pages) == 1 and pages[0]["receiver"] in receivers
