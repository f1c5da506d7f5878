"""The Faust app built from the settings."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.exceptions import ConsumerNotStarted
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from app.main import (
    _ConsumerThread,
    _InLoopConsumerThread,
    apply_paused,
    create_app,
    position_or_none,
    topic_visible,
)
from app.settings import Settings
from app.stack import ManagedProcess


async def test_the_consumer_takes_its_fetch_wait_from_the_settings(tmp_path: Path) -> None:
    app = create_app(
        Settings(consumer_fetch_max_wait=0.02, kafka_flavour="tansu", data_dir=str(tmp_path))
    )
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    # aiokafka hands this to its fetcher when the consumer starts.
    assert consumer._fetch_max_wait_ms == 20


async def test_the_commit_passes_only_records_an_agent_finished(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=str(tmp_path)))
    topic = app.topic("flowdesk.queries", value_serializer="raw")
    # As an agent does when it starts: the topic is subscribed to, with acks.
    app.topics.add(topic)
    await app.topics._update_indices()  # type: ignore[attr-defined]
    consumer = app.consumer
    tp = TP("flowdesk.queries", 0)
    consumer._points.rebase(tp, 10)  # type: ignore[attr-defined]  # the committed offset

    def message(offset: int, *, reached_an_agent: bool = True) -> ConsumerMessage:
        record = ConsumerMessage(tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None)
        record.tracked = reached_an_agent
        return record

    # Offset 10: skipped by Faust's stream while the flow was suspended, acked all the same.
    consumer.ack(message(10, reached_an_agent=False))
    consumer.ack(message(11))
    consumer.ack(message(12))
    await consumer._add_gap(tp, 13, 14)  # a jump in the offsets read: records dropped
    assert consumer._new_offset(tp) is None, "offset 10 never reached an agent"
    consumer.ack(message(10))  # read again, and processed
    assert consumer._new_offset(tp) == 13
    assert consumer._acked[tp] == []


async def test_records_read_again_reach_the_agents_only_if_not_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Settings(data_dir=str(tmp_path)))
    consumer = app.consumer
    tp = TP("flowdesk.queries", 0)
    consumer._points.rebase(tp, 10)  # type: ignore[attr-defined]
    for offset in (12, 13):
        consumer._points.finish(tp, offset)  # type: ignore[attr-defined]

    async def fetched(self, timeout: float):  # noqa: ASYNC109 (Faust's signature)
        # The partition sought back to 10, its committed offset, after 10 and 11 were skipped.
        for offset in range(10, 15):
            yield tp, ConsumerMessage(tp.topic, 0, offset, 0.0, 0, None, b"k", b"v", None)

    monkeypatch.setattr(aiokafka_driver.Consumer, "getmany", fetched)
    delivered = [message.offset async for _, message in consumer.getmany(timeout=1.0)]
    assert delivered == [10, 11, 14]
    # What Faust handed on counts as delivered, the finished records dropped here too.
    assert consumer._delivered[tp] == 15  # type: ignore[attr-defined]
    assert consumer._reads == 1  # type: ignore[attr-defined]


async def test_a_partition_paused_on_purpose_is_not_reported_as_stuck(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=str(tmp_path)))
    consumer = app.consumer
    paused, read = TP("flowdesk-history-changelog", 0), TP("flowdesk.queries", 0)
    consumer.pause_partitions({paused})
    # Faust's check of the fetches aiokafka sends: it needs a started consumer, so it
    # raises here for a partition it checks, and is not run for a paused one.
    consumer.verify_event_path(0.0, paused)
    with pytest.raises(ConsumerNotStarted):
        consumer.verify_event_path(0.0, read)


@asynccontextmanager
async def filled_topic(
    broker: ManagedProcess, records: list[tuple[bytes, int]]
) -> AsyncIterator[tuple[str, AIOKafkaConsumer]]:
    """A new topic holding ``records`` (value, partition), and a started consumer of it
    with nothing assigned yet."""
    bootstrap = broker.address.split("://", 1)[1]
    topic = f"test-{uuid.uuid4().hex[:8]}"
    # Created, not left to the broker's auto-creation: Apache Kafka's gives one partition.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value, partition in records:
            await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        yield topic, consumer
    finally:
        await consumer.stop()


async def test_the_fetch_position_is_read_without_waiting(broker: ManagedProcess) -> None:
    async with filled_topic(broker, [(b"a", 0), (b"b", 0), (b"c", 0)]) as (topic, consumer):
        tp = TopicPartition(topic, 0)
        assert position_or_none(consumer, TP(topic, 0)) is None, "not assigned"
        consumer.assign([tp])
        got = await consumer.getmany(tp, timeout_ms=5000, max_records=2)
        assert [record.value for record in got[tp]] == [b"a", b"b"]
        assert position_or_none(consumer, TP(topic, 0)) == 2, "past what was handed out"
        consumer.seek(tp, 1)
        assert position_or_none(consumer, TP(topic, 0)) == 1
        assert position_or_none(consumer, TP(topic, 1)) is None, "another partition"


async def test_a_partition_faust_pauses_is_paused_in_aiokafka_and_loses_nothing(
    broker: ManagedProcess,
) -> None:
    async with filled_topic(broker, [(b"a", 0), (b"b", 1)]) as (topic, consumer):
        paused, read = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer.assign([paused, read])
        # Faust takes only its active partitions: what was fetched for the other one waits,
        # and holds back the fetches of every partition.
        got = await consumer.getmany(read, timeout_ms=5000)
        assert [record.value for record in got[read]] == [b"b"]
        records = consumer._fetcher._records
        for _ in range(100):
            if paused in records:
                break
            await asyncio.sleep(0.05)
        assert paused in records

        apply_paused(consumer, {TP(topic, 0)})
        assert consumer.paused() == {paused}
        assert paused not in records

        apply_paused(consumer, set())
        assert consumer.paused() == set()
        got = await consumer.getmany(paused, timeout_ms=5000)
        assert [record.value for record in got[paused]] == [b"a"], "the dropped fetch is read again"


async def test_the_consumer_runs_in_the_worker_event_loop(
    broker: ManagedProcess, tmp_path: Path
) -> None:
    app = create_app(Settings(kafka_url=broker.address, data_dir=str(tmp_path)))
    thread = app.consumer._thread  # type: ignore[attr-defined]
    assert isinstance(thread, _InLoopConsumerThread)
    async with filled_topic(broker, [(b"a", 0), (b"b", 0), (b"c", 1)]) as (topic, _):
        threads = threading.active_count()
        await thread.start()
        try:
            assert threading.active_count() == threads, "no thread of its own"
            consumer = thread._consumer
            assert consumer._client._loop is asyncio.get_running_loop()
            # A call into the consumer (Faust's call_thread) is an await in this loop.
            assert await thread.highwaters(TP(topic, 0), TP(topic, 1)) == {
                TP(topic, 0): 2,
                TP(topic, 1): 1,
            }
            assert await thread.earliest_offsets(TP(topic, 0)) == {TP(topic, 0): 0}
        finally:
            await thread.stop()
        assert consumer._closed, "stopping the service stops aiokafka's consumer"
        await thread.stop()  # a second stop does nothing


async def test_the_consumer_thread_of_faust_is_kept_on_request(tmp_path: Path) -> None:
    app = create_app(Settings(consumer_thread=True, data_dir=str(tmp_path)))
    thread = app.consumer._thread  # type: ignore[attr-defined]
    assert isinstance(thread, _ConsumerThread)
    assert not isinstance(thread, _InLoopConsumerThread)
    assert thread.thread_loop is not thread.parent_loop


def _metadata(topic: str, error: int, leaders: list[int]) -> dict[str, Any]:
    partitions = [
        {"error_code": 0, "partition": n, "leader": lead} for n, lead in enumerate(leaders)
    ]
    return {"topics": [{"error_code": error, "topic": topic, "partitions": partitions}]}


@pytest.mark.parametrize(
    ("response", "visible"),
    [
        (_metadata("t", 0, [1, 1, 1]), True),
        (_metadata("t", 0, [1, 1, 1, 1]), True),  # grown since: still there
        (_metadata("t", 0, [1, -1, 1]), False),  # a partition without its leader yet
        (_metadata("t", 0, [1, 1]), False),  # not all partitions known yet
        (_metadata("t", 3, []), False),  # UNKNOWN_TOPIC_OR_PARTITION
        (_metadata("t", 5, [1, 1, 1]), False),  # LEADER_NOT_AVAILABLE
        (_metadata("other", 0, [1, 1, 1]), False),
        ({"topics": []}, False),
    ],
)
def test_a_created_topic_is_used_once_the_metadata_shows_it_whole(
    response: dict[str, Any], visible: bool
) -> None:
    assert topic_visible(response, "t", 3) is visible
