"""The taxonomy is data: categories and phrases are added in YAML, never in code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.evaluation import evaluate
from dmzwatch.classifier.taxonomy import DEFAULT_TAXONOMY, TaxonomyError, load_taxonomy

MISSILE_TEST: dict[str, Any] = {
    "description": "A state test-fires a ballistic or cruise missile.",
    "threshold": 3.0,
    "triggers": [
        {"weight": 2.0, "requires": ["state"], "phrases": ["missile", "missiles"]},
        {"weight": 1.5, "phrases": ["test-fired", "test-fire*", "launched", "fired"]},
    ],
    "negatives": [{"weight": 2.0, "phrases": ["fireworks", "space launch"]}],
}
MISSILE_STORY = (
    "North Korea fired a ballistic missile into the sea off its east coast, South Korea's "
    "military said. It was the third missile launched this month."
)


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _bundled() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DEFAULT_TAXONOMY.read_text(encoding="utf-8"))
    return document


def test_a_category_added_to_the_yaml_fires_without_code_changes(tmp_path: Path) -> None:
    document = _bundled()
    document["version"] = "test-1"
    document["categories"]["missile_test"] = MISSILE_TEST
    classifier = Classifier.from_taxonomy(_write(tmp_path, document))

    result = classifier.classify("North Korea test-fires missile", MISSILE_STORY)

    assert classifier.categories == ("purge", "summit", "defection", "missile_test")
    assert classifier.version == "rules-test-1"
    assert result.labels == ("missile_test",)
    assert result.evidence["missile_test"]
    line = '{"id": "1", "title": "Missile test", "text": "%s", "labels": ["missile_test"]}'
    assert evaluate(classifier, [line % MISSILE_STORY]).label("missile_test").f1 == 1.0


def test_a_phrase_added_to_the_yaml_is_matched(tmp_path: Path) -> None:
    title, text = "Vice premier liquidated", "The vice premier was liquidated, officials said."
    before = Classifier.from_taxonomy().classify(title, text)
    document = _bundled()
    document["categories"]["purge"]["triggers"].append(
        {"weight": 2.0, "requires": ["elite"], "phrases": ["liquidated"]}
    )
    after = Classifier.from_taxonomy(_write(tmp_path, document)).classify(title, text)
    assert "purge" not in before.labels
    assert "purge" in after.labels


def test_capitalised_phrases_match_only_in_capitals_and_stars_match_word_endings() -> None:
    taxonomy = load_taxonomy()
    by_text = {p.text: p for c in taxonomy.categories for g in c.triggers for p in g.phrases}
    assert by_text["re defect*"].stem
    contexts = {p.text: p for p in taxonomy.contexts["state"]}
    assert contexts["US"].exact == "US"
    assert contexts["north korea"].exact is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("version"), "version"),
        (lambda d: d["categories"]["purge"].pop("threshold"), "purge.threshold"),
        (lambda d: d["categories"]["purge"]["triggers"][0].update(requires=["nope"]), "nope"),
        (lambda d: d["categories"]["summit"].update(triggers=[]), "summit.triggers"),
        (lambda d: d["categories"].update({"Bad Name": MISSILE_TEST}), "lower-case"),
        (lambda d: d["scoring"].update(slope=0), "slope"),
        (lambda d: d.update(categories=[]), "categories"),
    ],
)
def test_a_broken_taxonomy_is_refused_naming_what_is_wrong(
    tmp_path: Path, mutate: Any, message: str
) -> None:
    document = _bundled()
    mutate(document)
    with pytest.raises(TaxonomyError, match=message):
        Classifier.from_taxonomy(_write(tmp_path, document))


def test_a_missing_or_unparsable_file_is_a_taxonomy_error(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="cannot read"):
        load_taxonomy(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: [unclosed", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        load_taxonomy(bad)
