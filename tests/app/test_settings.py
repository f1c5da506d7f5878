"""Settings: defaults of SPEC section 2, validation, secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.main import kafka_credentials
from app.settings import EMBEDDED_MODEL_NAME, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FLOWDESK_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_spec_defaults() -> None:
    s = Settings()
    assert s.kafka_url == "kafka://127.0.0.1:9092"
    assert s.kafka_security == "plaintext"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.llm_base_url == "http://127.0.0.1:8000/v1"
    assert s.llm_model == EMBEDDED_MODEL_NAME
    assert s.llm_api_key.get_secret_value() == ""
    assert s.web_port == 6066
    assert s.serializer == "avro"
    assert s.schema_registry_url == ""
    # The embedded broker's needs (see README, "Settings").
    assert s.producer_max_batch_size == 1
    assert s.broker_session_timeout == 6


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWDESK_KAFKA_URL", "kafka://a:9092;b:9093")
    monkeypatch.setenv("FLOWDESK_WEB_PORT", "7000")
    monkeypatch.setenv("FLOWDESK_SERIALIZER", "json")
    monkeypatch.setenv("FLOWDESK_LLM_BASE_URL", "https://llm.example/v1/")
    s = Settings()
    assert s.broker_list == ["kafka://a:9092", "kafka://b:9093"]
    assert s.bootstrap_servers == ["a:9092", "b:9093"]
    assert s.web_port == 7000
    assert s.serializer == "json"
    assert s.llm_base_url == "https://llm.example/v1", "trailing slash dropped"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FLOWDESK_SERIALIZER", "xml"),
        ("FLOWDESK_WEB_PORT", "0"),
        ("FLOWDESK_KAFKA_URL", "kafka://a:1;;"),
        ("FLOWDESK_LLM_BASE_URL", "127.0.0.1:8000"),
        ("FLOWDESK_KAFKA_SECURITY", "tls"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.web_port = 1  # type: ignore[misc]


def test_api_key_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWDESK_LLM_API_KEY", "sk-very-secret")
    monkeypatch.setenv("FLOWDESK_KAFKA_SASL_PASSWORD", "hunter2")
    s = Settings()
    assert s.llm_api_key.get_secret_value() == "sk-very-secret"
    for text in (str(s), repr(s), s.model_dump_json()):
        assert "sk-very-secret" not in text
        assert "hunter2" not in text


def test_kafka_credentials_follow_the_security_setting() -> None:
    import faust

    assert kafka_credentials(Settings()) is None
    sasl = kafka_credentials(
        Settings(
            kafka_security="sasl_ssl",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="svc",
            kafka_sasl_password="pw",
        )
    )
    assert isinstance(sasl, faust.SASLCredentials)
    assert sasl.username == "svc"
    assert sasl.password == "pw"
    assert str(sasl.mechanism.value) == "SCRAM-SHA-512"
    assert sasl.ssl_context is not None
    assert isinstance(kafka_credentials(Settings(kafka_security="ssl")), faust.SSLCredentials)
