"""Settings: defaults of SPEC section 2, validation, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.stores import by_url
from pydantic import ValidationError

from app.errors import ConfigurationError
from app.main import create_app, kafka_credentials
from app.settings import EMBEDDED_MODEL_NAME, SECRETS_DIR_VARIABLE, Settings
from app.table_store import MemoryStore


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
    # The broker's quirks are asked of it; 0 takes its flavour's value (app.kafka_flavour).
    assert s.kafka_flavour == "auto"
    assert s.producer_max_batch_size == 0
    assert s.broker_session_timeout == 0


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


def test_the_window_holds_twice_the_model_capacity_unless_set() -> None:
    assert Settings(llm_capacity=20).window_size == 40
    assert Settings(llm_capacity=20, inference_window=25).window_size == 25


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


async def test_cli_clients_get_the_same_kafka_security() -> None:
    from app.main import client_security

    assert client_security(Settings()) == {"security_protocol": "PLAINTEXT"}
    sasl = client_security(
        Settings(
            kafka_security="sasl_ssl",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="svc",
            kafka_sasl_password="pw",
        )
    )
    assert sasl["security_protocol"] == "SASL_SSL"
    assert (sasl["sasl_mechanism"], sasl["sasl_plain_username"]) == ("SCRAM-SHA-256", "svc")
    assert sasl["sasl_plain_password"] == "pw"
    assert sasl["ssl_context"] is not None
    plain_sasl = client_security(Settings(kafka_security="sasl_plaintext"))
    assert plain_sasl["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in plain_sasl
    # aiokafka accepts them as they are.
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **sasl)
    assert producer.client._sasl_mechanism == "SCRAM-SHA-256"


def test_the_app_takes_its_credentials_and_standby_replicas_from_the_settings() -> None:
    import faust

    settings = Settings(
        kafka_security="sasl_plaintext",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
        table_standby_replicas=2,
    )
    app = create_app(settings)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "svc" and str(credentials.mechanism.value) == "SCRAM-SHA-512"
    assert app.conf.table_standby_replicas == 2


def test_secret_files_are_read_and_never_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Named like the variable, in any case, as a mounted Kubernetes Secret's keys.
    (tmp_path / "flowdesk_llm_api_key").write_text("sk-from-a-file\n")
    (tmp_path / "FLOWDESK_KAFKA_SASL_PASSWORD").write_text("pw-from-a-file")
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path))
    s = Settings()
    assert s.llm_api_key.get_secret_value() == "sk-from-a-file", "whitespace dropped"
    assert s.kafka_sasl_password.get_secret_value() == "pw-from-a-file"
    assert repr(s.llm_api_key) == "SecretStr('**********')"
    for text in (str(s), repr(s), s.model_dump_json()):
        assert "sk-from-a-file" not in text
        assert "pw-from-a-file" not in text


def test_a_secret_file_needs_the_prefix_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "llm_api_key").write_text("not-read")
    (tmp_path / "flowdesk_kafka_sasl_password").write_text("from-the-file")
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setenv("FLOWDESK_KAFKA_SASL_PASSWORD", "from-the-environment")
    s = Settings()
    assert s.llm_api_key.get_secret_value() == ""
    assert s.kafka_sasl_password.get_secret_value() == "from-the-environment"


def test_a_secrets_dir_that_is_not_a_directory_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match=SECRETS_DIR_VARIABLE):
        Settings()


def test_the_table_store_reaches_faust(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings().table_store == "memory"
    app = create_app(Settings(data_dir=str(tmp_path)))
    # The memory store that keeps its standby partitions (app.table_store).
    assert str(app.conf.store) == "flowdesk-memory:"
    assert by_url(app.conf.store) is MemoryStore
    monkeypatch.setenv("FLOWDESK_TABLE_STORE", "rocksdb")
    monkeypatch.setattr("app.main.find_spec", lambda name: object())
    app = create_app(Settings(data_dir=str(tmp_path)))
    assert str(app.conf.store) == "rocksdb:"
    monkeypatch.setenv("FLOWDESK_TABLE_STORE", "sqlite")
    with pytest.raises(ValidationError):
        Settings()


def test_rocksdb_without_rocksdict_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("app.main.find_spec", lambda name: None)
    with pytest.raises(ConfigurationError, match=r"flowdesk\[rocksdb\]"):
        create_app(Settings(table_store="rocksdb", data_dir=str(tmp_path)))


def test_rocksdb_tables_keep_their_data_with_rocksdict(tmp_path: Path) -> None:
    """Faust's RocksDB store on the rocksdict driver: write, read back, reopen."""
    pytest.importorskip("rocksdict")
    from faust.types import TP

    app = create_app(Settings(table_store="rocksdb", data_dir=str(tmp_path)))
    table = app.Table("kept", partitions=2)
    tp = TP(table.changelog_topic.get_topic_name(), 1)

    class Message:
        def __init__(self, offset: int, key: bytes, value: bytes | None) -> None:
            self.tp, self.partition, self.offset = tp, tp.partition, offset
            self.key, self.value = key, value

    class Event:
        def __init__(self, message: Message) -> None:
            self.message = message

    store = table._new_store()
    assert store.use_rocksdict
    batch = [
        Event(Message(5, b"a", b"1")),
        Event(Message(6, b"b", b"2")),
        Event(Message(7, b"b", None)),
    ]
    store.apply_changelog_batch(batch, to_key=None, to_value=None)
    assert store.persisted_offset(tp) == 7
    assert list(store._visible_items(store._db_for_partition(1))) == [(b"a", b"1")]
    store._dbs.clear()  # closes the databases, as a revoked partition does

    reopened = table._new_store()
    assert reopened.persisted_offset(tp) == 7
    assert reopened._contains(b"a") and not reopened._contains(b"b")
