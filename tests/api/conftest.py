"""API test fixtures: the real tagger of a bundle trained once per session, and the library's fake."""

from __future__ import annotations

import pytest
from arttag.events import ArtworkMetadata
from arttag.model.fake_tagger import FakeTagger


@pytest.fixture(scope="session")
def bundle_tagger(hashing_bundle_dir):
    from arttag.model.bundle import load_tagger

    tagger = load_tagger(hashing_bundle_dir)
    tagger.suggest([ArtworkMetadata(title="warm-up")])  # the first call loads lazily; keep it out of tests
    return tagger


@pytest.fixture
def tagger(bundle_tagger):
    return bundle_tagger


@pytest.fixture
def fake_tagger() -> FakeTagger:
    """Counts calls (``calls``) and answers each after a pause, so requests queue up behind it."""
    return FakeTagger(delay_s=0.2)
