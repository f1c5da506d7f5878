"""The Faust app: one per worker process. ``faust -A app.main worker`` runs it.

Agents (``agents/``), tables (``tables/``) and web views (``app.views``) register
themselves on ``app`` when autodiscovery imports them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TransportT

from app.logs import FlowdeskWorker
from app.settings import Settings, get_settings


def kafka_credentials(settings: Settings) -> Any:
    """The Faust credentials object ``FLOWDESK_KAFKA_SECURITY`` asks for, or None."""
    security = settings.kafka_security
    if security == "plaintext":
        return None
    context: ssl.SSLContext | None = None
    if security in ("ssl", "sasl_ssl"):
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    if security == "ssl":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    )


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer with the fetch wait from the settings."""

    def _create_worker_consumer(self, transport: aiokafka_driver.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes a fixed fetch_max_wait_ms=1500, which on the embedded broker
        # adds up to 1.5 s to every hop; aiokafka reads this attribute at start.
        wait = getattr(self.app, "fetch_max_wait", 1.5)
        consumer._fetch_max_wait_ms = round(wait * 1000)
        return consumer


class _Consumer(aiokafka_driver.Consumer):
    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(aiokafka_driver.Transport):
    Consumer = _Consumer


class FlowdeskApp(faust.App):
    """A Faust app whose Kafka consumer takes its fetch wait (seconds) as an argument."""

    def __init__(self, id: str, *, fetch_max_wait: float = 1.5, **options: Any) -> None:
        self.fetch_max_wait = fetch_max_wait
        super().__init__(id, **options)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings``."""
    # Faust creates its datadir without parents.
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return FlowdeskApp(
        settings.app_id,
        fetch_max_wait=settings.consumer_fetch_max_wait,
        broker=settings.broker_list,
        broker_credentials=kafka_credentials(settings),
        autodiscover=["agents", "tables", "app.views"],
        origin="app",
        datadir=f"{settings.data_dir}/{settings.app_id}-{settings.web_port}",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replicas,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        producer_max_batch_size=settings.producer_max_batch_size,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        # Its logging setup follows FLOWDESK_LOG_FORMAT and FLOWDESK_LOG_LEVEL.
        Worker=FlowdeskWorker,
    )


app = create_app(get_settings())


def main() -> None:
    """Entry point of ``python -m app.main``: the Faust command line."""
    app.main()


if __name__ == "__main__":
    main()
