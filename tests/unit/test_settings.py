from __future__ import annotations

import pytest

from signals_stream.errors import ConfigurationError
from signals_stream.settings import load_settings


def test_defaults_match_the_documented_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SIGNALS_BROKER",
        "SIGNALS_INPUT_TOPIC",
        "SIGNALS_WEB_PORT",
        "SIGNALS_INGEST_MODE",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.broker == "kafka://127.0.0.1:9092"
    assert settings.input_topic == "snowplow-enriched"
    assert settings.bad_events_topic == "signals-bad-events"
    assert settings.interventions_topic == "signals-interventions"
    assert settings.web_port == 6066
    assert settings.ingest_mode == "lean"


def test_environment_overrides_and_broker_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALS_BROKER", "k1:9092, kafka://k2:19092")
    monkeypatch.setenv("SIGNALS_INPUT_TOPIC", "enriched")
    settings = load_settings()
    assert settings.broker == "kafka://k1:9092;kafka://k2:19092"
    assert settings.bootstrap_servers == ["k1:9092", "k2:19092"]
    assert settings.input_topic == "enriched"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SIGNALS_WEB_PORT", "not-a-port"),
        ("SIGNALS_WEB_PORT", "70000"),
        ("SIGNALS_BROKER", "http://nope"),
        ("SIGNALS_INPUT_TOPIC", "bad topic name"),
        ("SIGNALS_PARTITIONS", "0"),
        ("SIGNALS_INGEST_MODE", "fast"),
    ],
)
def test_invalid_settings_fail_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message


def test_unknown_settings_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="SIGNALS_NO_SUCH_THING"):
        load_settings(no_such_thing=1)
