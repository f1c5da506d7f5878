"""Reading outcomes and dead letters back from their topics (app.published,
app.dlq_once), on the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from conftest import Cluster
from factories import make_response

from app.dlq import source_headers
from app.dlq_once import DeadLettersSent
from app.published import PublishedOutcomes
from app.settings import Settings
from app.topics import DLQ, RESPONSES
from app.wire import response_codec

pytestmark = pytest.mark.integration

TOPIC = RESPONSES["chat"]


async def test_only_outcomes_on_the_partition_since_the_lookback_are_found(
    cluster: Cluster, topics: None, producer
) -> None:
    # With its partitions created as flowdesk creates them, not as a broker's
    # auto-creation would (Kafka: 1 partition).
    run = uuid.uuid4().hex[:8]
    old, new, elsewhere = f"{run}-old", f"{run}-new", f"{run}-elsewhere"
    now_ms = int(time.time() * 1000)
    for query_id, partition, timestamp_ms in (
        (old, 1, now_ms - 600_000),
        (new, 1, now_ms - 5_000),
        (elsewhere, 2, now_ms - 5_000),
    ):
        value = response_codec.encode(make_response(query_id=query_id))
        await producer.send_and_wait(TOPIC, value, partition=partition, timestamp_ms=timestamp_ms)
    await producer.send_and_wait(TOPIC, b"not a response", partition=1)

    published = PublishedOutcomes(
        bootstrap=",".join(Settings(kafka_url=f"kafka://{cluster.bootstrap}").bootstrap_servers),
        readers={TOPIC: lambda value: response_codec.decode(value).query_id},
        lookback=60,
    )
    taken_over = time.time()
    assert await published.contains(TOPIC, 1, new, since=taken_over)
    assert not await published.contains(TOPIC, 1, old, since=taken_over), "before the lookback"
    assert not await published.contains(TOPIC, 1, elsewhere, since=taken_over)
    assert published.reads == 1, "a partition is read once until the next rebalance"
    assert await published.contains(TOPIC, 2, elsewhere, since=taken_over)
    published.forget()
    assert await published.contains(TOPIC, 1, new, since=taken_over)
    assert published.reads == 3


async def test_a_takeover_reads_each_partition_once_and_all_of_them_together(
    cluster: Cluster, producer
) -> None:
    run = uuid.uuid4().hex[:8]
    partitions = range(4)  # the topic as auto-created
    for partition in partitions:
        value = response_codec.encode(make_response(query_id=f"{run}-{partition}"))
        await producer.send_and_wait(TOPIC, value, partition=partition)
    published = PublishedOutcomes(
        bootstrap=cluster.bootstrap,
        readers={TOPIC: lambda value: response_codec.decode(value).query_id},
    )
    taken_over = time.time()
    published.prefetch([(TOPIC, p) for p in partitions], since=taken_over)
    found = await asyncio.gather(
        *(
            published.contains(TOPIC, p, f"{run}-{q}", since=taken_over)
            for p in partitions
            for q in partitions
        )
    )
    assert found == [p == q for p in partitions for q in partitions]
    assert published.reads == len(partitions), "one read per partition, shared"


async def test_dead_letters_are_found_by_their_source_on_every_partition(
    cluster: Cluster, producer
) -> None:
    topic = f"{run_id()}.inbound"
    on_topic = [(topic, n % 3, 1000 + n) for n in range(6)]
    for n, (source_topic, partition, offset) in enumerate(on_topic):
        headers = [
            ("error.type", b"decode_error"),
            *source_headers(topic=source_topic, partition=partition, offset=offset),
        ]
        await producer.send_and_wait(DLQ, b"\x00{", partition=n % 4, headers=headers)
    await producer.send_and_wait(DLQ, b"no headers", partition=0)
    sent = DeadLettersSent(topic=DLQ, partitions=4, bootstrap=cluster.bootstrap)
    for source in on_topic:
        assert await sent.contains(source)
    assert not await sent.contains((topic, 0, 999))
    assert sent.reads == 4, "each partition of the dead-letter topic read once"


def run_id() -> str:
    return uuid.uuid4().hex[:8]
