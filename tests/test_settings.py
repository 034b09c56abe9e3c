from __future__ import annotations

from arttag.settings import ApiSettings, StreamSettings


def test_nested_settings_from_environment(monkeypatch):
    monkeypatch.setenv("ARTTAG_KAFKA__BOOTSTRAP_SERVERS", "broker.example:9093")
    monkeypatch.setenv("ARTTAG_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ARTTAG_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("ARTTAG_KAFKA__SASL_USERNAME", "arttag")
    monkeypatch.setenv("ARTTAG_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("ARTTAG_BATCH_MAX_EVENTS", "7")
    settings = StreamSettings()
    assert settings.batch_max_events == 7
    config = settings.kafka.confluent_config()
    assert config["bootstrap.servers"] == "broker.example:9093"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)


def test_each_process_has_its_own_settings_class():
    assert ApiSettings().port == 8000
    assert not hasattr(ApiSettings(), "batch_max_events")
