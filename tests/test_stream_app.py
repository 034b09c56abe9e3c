"""The faust app factory's wiring, without a broker: topics, agent name, delivery settings."""

from __future__ import annotations

from arttag.model.fake_tagger import FakeTagger
from arttag.settings import KafkaSettings, StreamSettings
from arttag_stream.app import create_app


def test_create_app_wires_one_named_agent_on_both_artwork_topics(tmp_path):
    settings = StreamSettings(kafka=KafkaSettings(topic_prefix="p."), data_dir=tmp_path,
                              consumer_group="grp", batch_max_events=7)
    app = create_app(settings, FakeTagger(), agent_name="tagger-agent")
    assert app.conf.id == "grp"
    assert list(app.agents) == ["tagger-agent"]
    agent = app.agents["tagger-agent"]
    assert set(agent.channel.topics) == {"p.artworks.created.v1", "p.artworks.updated.v1"}
    assert app.conf.producer_acks == -1
    assert app.conf.web_enabled is False
    assert app.conf.consumer_auto_offset_reset == "earliest"


def test_two_apps_can_coexist_in_one_process(tmp_path):
    settings = StreamSettings(data_dir=tmp_path)
    a = create_app(settings, FakeTagger(), app_id="a")
    b = create_app(settings, FakeTagger(), app_id="b")
    assert a is not b and a.conf.id == "a" and b.conf.id == "b"


class _Monitor:
    def observe_artworks(self, artworks): ...

    def observe_suggestions(self, suggestions): ...

    def observe_feedback(self, feedback): ...


def test_with_a_monitor_a_second_agent_follows_feedback(tmp_path):
    settings = StreamSettings(kafka=KafkaSettings(topic_prefix="p."), data_dir=tmp_path)
    app = create_app(settings, FakeTagger(), agent_name="a", monitor=_Monitor())
    assert sorted(app.agents) == ["a", "a.feedback"]
    assert set(app.agents["a.feedback"].channel.topics) == {"p.tags.feedback.v1"}
