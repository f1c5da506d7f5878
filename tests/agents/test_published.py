"""Reading outcomes back from an output topic (app.published), on the real broker."""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import Cluster
from factories import make_response

from app.published import PublishedOutcomes
from app.settings import Settings
from app.topics import RESPONSES
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
