"""Every flowdesk setting, read once from ``FLOWDESK_*`` environment variables.

One frozen class: the workers, the CLI, the embedded stack and the tests all
read the same object, so a setting means the same thing everywhere. Defaults
work for the embedded stack of ``flowdesk dev``; production overrides them.
A setting may also come from a file in ``FLOWDESK_SECRETS_DIR`` (mounted secrets).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from app.errors import ConfigurationError

Serializer = Literal["avro", "json"]
KafkaFlavour = Literal["auto", "tansu", "kafka"]
KafkaSecurity = Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
TableStore = Literal["memory", "rocksdb"]
EventLoop = Literal["uvloop", "asyncio"]

#: The name the embedded model server answers to (``flowdesk model-server``).
EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"

#: Not a setting but where settings live: a folder whose files, named like the
#: variables (``flowdesk_llm_api_key``), hold values, as mounted Kubernetes Secrets do.
SECRETS_DIR_VARIABLE = "FLOWDESK_SECRETS_DIR"


class Settings(BaseSettings):
    """flowdesk settings; each field is the variable ``FLOWDESK_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="FLOWDESK_", frozen=True, extra="ignore")

    # --- Kafka -------------------------------------------------------------------------
    kafka_url: str = Field(
        "kafka://127.0.0.1:9092", description="Broker list; several separated by ';'."
    )
    kafka_security: KafkaSecurity = Field("plaintext", description="Kafka security protocol.")
    kafka_sasl_mechanism: SaslMechanism = Field("PLAIN", description="SASL mechanism.")
    kafka_sasl_username: str = Field("", description="SASL user name.")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password (secret).")
    kafka_ssl_cafile: str = Field("", description="CA bundle for TLS to the brokers.")
    kafka_cache_dir: str = Field(
        "",
        description="Where `flowdesk dev --broker kafka` keeps Apache Kafka's jars "
        "(empty: ~/.cache/flowdesk).",
    )
    topic_partitions: int = Field(
        8, ge=1, description="Partitions of every flowdesk topic when flowdesk creates it."
    )
    topic_replicas: int = Field(1, ge=1, description="Replication factor of created topics.")
    # Tansu's defects call for settings Apache Kafka does not want (app.kafka_flavour);
    # the four quirk settings below at 0 take the flavour's value.
    kafka_flavour: KafkaFlavour = Field(
        "auto",
        description="The broker, for its quirks: tansu, kafka (Apache Kafka or any other), "
        "or auto (ask it at start; Tansu names its cluster tansu_cluster).",
    )
    # JoinGroup waits half the session timeout on Tansu; short timeouts keep a
    # rebalance to seconds there.
    broker_session_timeout: float = Field(
        0.0, ge=0, description="Consumer session timeout, s (0: Tansu 6, Kafka 10)."
    )
    broker_heartbeat_interval: float = Field(
        0.0, ge=0, description="Heartbeat interval, s (0: Tansu 1, Kafka 3)."
    )
    broker_rebalance_timeout: float = Field(10.0, gt=0, description="Rebalance timeout, s.")
    # 1 keeps ListOffsets right on the embedded broker (table recovery depends on it);
    # Apache Kafka batches for throughput.
    producer_max_batch_size: int = Field(
        0,
        ge=0,
        description="Produce batch limit, bytes (0: Tansu 1, a record per batch; Kafka 16384).",
    )
    # The largest record a worker sends (aiokafka refuses a bigger one before sending).
    # An inbound message that cannot be dead-lettered whole within it is cut to fit
    # (app.sizes). Keep it at or below the broker's message.max.bytes.
    producer_max_request_size: int = Field(
        1_000_000,
        ge=16384,
        description="Largest record a worker sends, bytes; larger inbound messages are "
        "dead-lettered cut to fit (too_large).",
    )
    # The embedded broker answers a fetch only when its wait expires, not when data
    # arrives, so each hop between agents adds up to this much latency there. Apache
    # Kafka answers as soon as data arrives; 0.5 is its usual value.
    consumer_fetch_max_wait: float = Field(
        0.0,
        ge=0,
        le=5,
        description="Longest a fetch waits for data, s (0: Tansu 0.005, Kafka 0.5).",
    )
    # aiokafka's protocol code encodes and decodes a field at a time; a worker fetches
    # every partition it owns once per fetch wait (app.kafka_codec).
    kafka_fast_codec: bool = Field(
        True,
        description="Encode and decode Kafka requests and responses with compiled "
        "schemas (the same bytes as aiokafka's, in less CPU).",
    )
    # Before each fetch aiokafka walks every partition a worker owns (app.kafka_fetch).
    kafka_fast_fetch: bool = Field(
        True,
        description="Decide what each fetch asks for in fewer Python steps "
        "(the same decisions as aiokafka's, in half the CPU).",
    )
    # Faust runs its Kafka consumer in a thread of its own; in the worker's event loop a
    # record reaches its agent without crossing threads or waiting for the interpreter
    # lock (README, *Benchmark*).
    consumer_thread: bool = Field(
        False,
        description="Run the Kafka consumer in a thread of its own, as Faust does "
        "(false: in the worker's event loop).",
    )

    # --- Redis ------------------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Cache, limiter, dedupe.")

    # --- Model server ---------------------------------------------------------------------
    llm_base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="Any OpenAI-compatible server."
    )
    llm_model: str = Field(EMBEDDED_MODEL_NAME, description="Model name sent in requests.")
    llm_api_key: SecretStr = Field(SecretStr(""), description="Bearer token (secret).")
    llm_model_version: str = Field("1", description="Version recorded on every response.")
    llm_timeout: float = Field(20.0, gt=0, description="Timeout of one model request, s.")
    llm_deadline: float = Field(
        60.0, gt=0, description="Time for one query's model work, retries included, s."
    )
    shutdown_grace: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM, how long queries in flight may finish before the worker "
        "stops, s; the rest are re-processed by the worker that takes their partitions.",
    )
    llm_capacity: int = Field(64, ge=1, description="Model requests in flight per worker.")
    inference_window: int = Field(
        0,
        ge=0,
        description="Queries being answered at once per worker (the in-flight window); "
        "0: twice FLOWDESK_LLM_CAPACITY, so that a query's cache look-up, validation and "
        "send overlap other queries' model requests.",
    )
    llm_max_attempts: int = Field(4, ge=1, description="Attempts per model request.")
    llm_backoff_base: float = Field(0.2, ge=0, description="First retry backoff ceiling, s.")
    llm_backoff_max: float = Field(5.0, ge=0, description="Largest retry backoff, s.")
    llm_fallback_base_url: str = Field(
        "", description="Fallback server while the primary's breaker is open (empty: none)."
    )
    llm_fallback_model: str = Field("", description="Fallback model name (empty: none).")
    llm_fallback_model_version: str = Field("1", description="Version of the fallback model.")
    llm_rpm: int = Field(
        0, ge=0, description="Model requests per minute, all workers (0: no limit)."
    )
    llm_tpm: int = Field(0, ge=0, description="Model tokens per minute, all workers (0: no limit).")
    breaker_consecutive_failures: int = Field(
        5, ge=1, description="Failures in a row that open a breaker."
    )
    breaker_failure_rate: float = Field(
        0.5, gt=0, le=1, description="Failure share of the last 20 calls that opens a breaker."
    )
    breaker_cooldown: float = Field(10.0, gt=0, description="Seconds a breaker stays open.")
    cache_ttl: int = Field(86_400, ge=0, description="Result cache lifetime, s (0: no cache).")
    llm_max_tokens: int = Field(256, ge=1, description="max_tokens of each completion.")
    llm_temperature: float = Field(0.2, ge=0, le=2, description="Sampling temperature.")

    # --- Worker -----------------------------------------------------------------------------
    app_id: str = Field("flowdesk", description="Faust app id = consumer group id.")
    web_port: int = Field(6066, ge=1, le=65535, description="Worker web port.")
    web_host: str = Field("127.0.0.1", description="Worker web bind address.")
    data_dir: str = Field(".flowdesk", description="Worker state directory.")
    table_store: TableStore = Field(
        "memory", description="Where a worker keeps its tables: memory or rocksdb (in data_dir)."
    )
    table_standby_replicas: int = Field(
        1, ge=0, description="Standby copies of each table partition kept by other workers."
    )
    serializer: Serializer = Field("avro", description="Internal and outbound topic format.")
    schema_registry_url: str = Field("", description="Confluent registry for Avro, if any.")
    max_text_chars: int = Field(
        8000, ge=1, description="Longest inbound text accepted; longer is dead-lettered."
    )
    prompt_budget_tokens: int = Field(
        3000, ge=500, description="Prompt size limit, tokens (chars / 4); history goes first."
    )
    allowed_link_domains: str = Field(
        "shop.example", description="Domains (comma-separated) answers may link to."
    )
    outcome_dedupe_ttl: int = Field(
        7 * 86_400, ge=60, description="How long a routed query id is remembered, s."
    )
    history_turns: int = Field(6, ge=0, description="Conversation turns kept per customer.")
    orders_per_customer: int = Field(20, ge=1, description="Recent orders kept per customer.")
    voice_call_timeout: float = Field(
        60.0, gt=0, description="Silence after which a call without its final segment expires, s."
    )
    voice_gap_grace: float = Field(
        3.0,
        gt=0,
        description="Silence after which a call with its final segment but a gap is "
        "answered with the segments it has, s.",
    )
    # uvloop (libuv, in C) spends a fifth to a third less CPU per query than asyncio's
    # own loop in `flowdesk bench` (README, *Benchmark*).
    event_loop: EventLoop = Field(
        "uvloop", description="Worker event loop: uvloop, or asyncio (the standard one)."
    )
    # With FLOWDESK_CONSUMER_THREAD=true, Faust's Kafka consumer runs in a thread of its
    # own: while the event loop keeps the interpreter busy, that thread gets it back only
    # after this interval, once for each step of a fetch, and every hop between agents
    # waits. Shorter: less added latency under load, and less throughput (README,
    # *Benchmark*). With the consumer in the event loop (the default) no thread waits.
    switch_interval: float = Field(
        0.005,
        gt=0,
        le=1,
        description="How long a busy thread keeps Python's interpreter lock before the "
        "consumer thread may take it, s (sys.setswitchinterval; Python's default 0.005).",
    )
    log_format: LogFormat = Field("text", description="Worker log lines: text or json.")
    log_level: LogLevel = Field("info", description="Least severe level logged.")

    # --- Monitoring -------------------------------------------------------------------------
    drift_window: float = Field(60.0, ge=1, description="Tumbling window of the drift monitor, s.")
    drift_threshold: float = Field(
        0.2, gt=0, description="Drift score (PSI) that publishes to support.monitoring."
    )
    # Below a few hundred queries, windows of the same traffic differ by chance.
    drift_min_samples: int = Field(
        200, ge=1, description="Fewest queries in a window for it to be compared."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Read each time settings are built, as the variables are; a variable that is
        # set wins over its file.
        secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
        if secrets_dir:
            if not Path(secrets_dir).is_dir():
                raise ConfigurationError(
                    f"{SECRETS_DIR_VARIABLE} is {secrets_dir!r}, which is not a directory: "
                    f"mount the secret files there, or unset it"
                )
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @property
    def link_domains(self) -> frozenset[str]:
        return frozenset(
            d.strip().lower() for d in self.allowed_link_domains.split(",") if d.strip()
        )

    @field_validator("kafka_url")
    @classmethod
    def _check_kafka_url(cls, value: str) -> str:
        if not all(part.strip() for part in value.split(";")):
            raise ValueError(f"FLOWDESK_KAFKA_URL has an empty broker in {value!r}")
        return value

    @field_validator("llm_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"FLOWDESK_LLM_BASE_URL must be an http(s) URL ending in the API root, "
                f"such as http://127.0.0.1:8000/v1; got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("llm_fallback_base_url")
    @classmethod
    def _check_fallback_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"FLOWDESK_LLM_FALLBACK_BASE_URL must be an http(s) URL; got {value!r}"
            )
        return value.rstrip("/")

    @property
    def window_size(self) -> int:
        """Queries the inference window holds: ``inference_window``, else twice
        ``llm_capacity``."""
        return self.inference_window or 2 * self.llm_capacity

    @property
    def broker_list(self) -> list[str]:
        """The brokers as Faust URLs (``kafka://host:port``)."""
        return [
            b.strip() if "://" in b else f"kafka://{b.strip()}" for b in self.kafka_url.split(";")
        ]

    @property
    def bootstrap_servers(self) -> list[str]:
        """The brokers as ``host:port`` for aiokafka clients."""
        return [b.split("://", 1)[1] for b in self.broker_list]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
