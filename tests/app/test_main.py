"""The Faust app built from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from app.main import create_app
from app.settings import Settings


async def test_the_consumer_takes_its_fetch_wait_from_the_settings(tmp_path: Path) -> None:
    app = create_app(Settings(consumer_fetch_max_wait=0.02, data_dir=str(tmp_path)))
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
