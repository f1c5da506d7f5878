"""Every topic flowdesk reads or writes, with its partition count, in one table.

The Faust topic objects (used by agents) and the admin-side creation (used by
``flowdesk dev``, the load generator and the tests, before any worker runs) both
come from ``TOPICS``, so a name or a partition count is written once. All flowdesk
topics carry raw bytes: agents decode and encode themselves, so that a message
that cannot be decoded is dead-lettered with its original bytes instead of being
skipped by the framework.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.errors import TopicSetupError
from app.main import app, client_security
from app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

Role = Literal["inbound", "internal", "outbound", "control"]


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    name: str
    role: Role
    compacted: bool = False
    #: Created without a retention limit, so that every record stays readable.
    retained: bool = False
    #: Its own partition count; None: ``FLOWDESK_TOPIC_PARTITIONS``.
    partitions: int | None = None

    def partition_count(self, settings: Settings) -> int:
        return self.partitions or settings.topic_partitions


CHAT_INBOUND = "support.chat.inbound"
EMAIL_INBOUND = "support.email.inbound"
VOICE_INBOUND = "support.voice.inbound"
CUSTOMERS = "crm.customers"
ORDERS = "crm.orders"
INBOUND = {"chat": CHAT_INBOUND, "email": EMAIL_INBOUND, "voice": VOICE_INBOUND}
QUERIES = "flowdesk.queries"
OUTCOMES = "flowdesk.outcomes"
#: CRM events and voice segments re-keyed by customer (original bytes, source headers).
CRM = "flowdesk.crm"
VOICE = "flowdesk.voice"
RESPONSES = {
    "chat": "support.responses.chat",
    "email": "support.responses.email",
    "voice": "support.responses.voice",
}
ESCALATIONS = "support.escalations"
DLQ = "support.dlq"
#: Model definitions, managed by operators (``flowdesk models``); key ``name@version``.
MODELS = "support.models"
#: Drift reports of the monitor, for people and alerting.
MONITORING = "support.monitoring"
#: Per-query drift features, keyed by model variant, for the monitor's windows.
SIGNALS = "flowdesk.signals"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(name=CHAT_INBOUND, role="inbound"),
    TopicSpec(name=EMAIL_INBOUND, role="inbound"),
    TopicSpec(name=VOICE_INBOUND, role="inbound"),
    # Kept whole, not compacted: the CRM may send no key, which Kafka refuses on a
    # compacted topic, or another key, under which compaction would drop events.
    TopicSpec(name=CUSTOMERS, role="inbound", retained=True),
    TopicSpec(name=ORDERS, role="inbound", retained=True),
    TopicSpec(name=QUERIES, role="internal"),
    TopicSpec(name=CRM, role="internal"),
    TopicSpec(name=VOICE, role="internal"),
    TopicSpec(name=OUTCOMES, role="internal"),
    TopicSpec(name=SIGNALS, role="internal"),
    *(TopicSpec(name=name, role="outbound") for name in RESPONSES.values()),
    TopicSpec(name=ESCALATIONS, role="outbound"),
    TopicSpec(name=DLQ, role="outbound"),
    TopicSpec(name=MONITORING, role="outbound"),
    # One partition: the few definitions stay in the order operators sent them.
    TopicSpec(name=MODELS, role="control", compacted=True, partitions=1),
)


SPECS = {spec.name: spec for spec in TOPICS}


def _faust_topic(name: str) -> faust.TopicT:
    settings = get_settings()
    return app.topic(
        name,
        partitions=SPECS[name].partition_count(settings),
        replicas=settings.topic_replicas,
        key_serializer="raw",
        value_serializer="raw",
        compacting=SPECS[name].compacted or None,
    )


chat_inbound_topic = _faust_topic(CHAT_INBOUND)
email_inbound_topic = _faust_topic(EMAIL_INBOUND)
voice_inbound_topic = _faust_topic(VOICE_INBOUND)
customers_topic = _faust_topic(CUSTOMERS)
orders_topic = _faust_topic(ORDERS)
crm_topic = _faust_topic(CRM)
voice_topic = _faust_topic(VOICE)
queries_topic = _faust_topic(QUERIES)
outcomes_topic = _faust_topic(OUTCOMES)
response_topics = {channel: _faust_topic(name) for channel, name in RESPONSES.items()}
escalations_topic = _faust_topic(ESCALATIONS)
dlq_topic = _faust_topic(DLQ)
models_topic = _faust_topic(MODELS)
monitoring_topic = _faust_topic(MONITORING)
signals_topic = _faust_topic(SIGNALS)

#: Every Faust topic object; the worker declares them all when it starts.
ALL_FAUST_TOPICS = (
    chat_inbound_topic,
    email_inbound_topic,
    voice_inbound_topic,
    customers_topic,
    orders_topic,
    crm_topic,
    voice_topic,
    queries_topic,
    outcomes_topic,
    *response_topics.values(),
    escalations_topic,
    dlq_topic,
    models_topic,
    monitoring_topic,
    signals_topic,
)


async def ensure_topics(settings: Settings | None = None) -> list[str]:
    """Create every flowdesk topic that does not exist yet; return the names created.

    Brokers auto-create unknown topics with their own default partition count, which
    would silently break customer locality, so producers outside the workers call this
    before sending anything.
    """
    settings = settings or get_settings()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=10_000,
        **client_security(settings),
    )
    await admin.start()
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in TOPICS if spec.name not in existing]
        for spec in missing:
            config = {"cleanup.policy": "compact"} if spec.compacted else {}
            if spec.retained:
                config["retention.ms"] = "-1"
            new = NewTopic(
                name=spec.name,
                num_partitions=spec.partition_count(settings),
                replication_factor=settings.topic_replicas,
                topic_configs=config,
            )
            response = await admin.create_topics([new])
            for name, code, *_ in response.topic_errors:
                if code == TopicAlreadyExistsError.errno:
                    continue  # another process created it between list and create
                if code:
                    raise TopicSetupError(
                        f"the broker refused to create topic {name!r} (Kafka error {code}); "
                        f"create it by hand with {SPECS[name].partition_count(settings)} "
                        "partitions"
                    )
                created.append(name)
    finally:
        await admin.close()
    if created:
        logger.info("created topics: %s", ", ".join(created))
    return created
