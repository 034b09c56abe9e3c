"""`arttag demo` prints suggestions under their artworks' titles with readable reasons, and leaves
a working system: the default topics exist, and it says what still runs and how to stop it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from arttag.kafka.admin import admin_client
from arttag.kafka.topics import TOPICS, topic_name
from arttag.settings import StreamSettings

pytestmark = pytest.mark.kafka


def _delete(kafka, names):
    admin = admin_client(kafka)
    for future in admin.delete_topics(list(names), operation_timeout=30).values():
        future.result()


def test_demo_runs_and_leaves_the_default_topics(kafka_settings, hashing_bundle_dir: Path, tmp_path: Path,
                                                 monkeypatch):
    from arttag_stream.demo import demo_events, run_demo

    # the demo's hashing bundle lives in the user cache: give it the session's bundle there
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bundles = tmp_path / "cache" / "arttag" / "bundles"
    shutil.copytree(hashing_bundle_dir.parent, bundles, symlinks=True)
    (bundles / hashing_bundle_dir.name).rename(bundles / "demo-hashing")
    monkeypatch.setenv("ARTTAG_METRICS_PORT", "0")
    lines: list[str] = []
    settings = StreamSettings(kafka=kafka_settings)
    defaults = [topic_name(spec.name, kafka_settings.topic_prefix) for spec in TOPICS]
    try:
        rc = run_demo(settings, encoder_kind="hashing", count=3, timeout_s=120, say=lines.append)
        text = "\n".join(lines)
        assert rc == 0, text
        existing = set(admin_client(kafka_settings).list_topics(timeout=10).topics)
        assert set(defaults) <= existing
        assert not any(".demo-" in t and t.startswith(kafka_settings.topic_prefix) for t in existing)
        assert "stop it with: deploy/kafka/kafka.sh stop" in text
        assert f"({len(defaults)} created now, 0 already there)" in text
        assert "arttag tail suggestions" in text and str(bundles / "demo-hashing") in text
        # every artwork's suggestions are printed under its title, each tag with its reason
        _, artworks = demo_events(3)
        assert len(artworks) == 3
        for artwork_id, meta in artworks.items():
            assert f"artwork {artwork_id} '{meta.title}' rev 1 · model " in text
        assert text.count("similar catalogued artwork") >= 3
    finally:
        existing = set(admin_client(kafka_settings).list_topics(timeout=10).topics)
        _delete(kafka_settings, [t for t in existing if t.startswith(kafka_settings.topic_prefix)])
