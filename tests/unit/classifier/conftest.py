"""Fixtures for the classifier's unit tests."""

from __future__ import annotations

import pytest

from dmzwatch.classifier.engine import Classifier


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    """The bundled classifier, built once: building compiles the whole taxonomy."""
    return Classifier.from_taxonomy()
