"""One dead letter per source offset (app.dlq_once), without Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

from hypothesis import given
from hypothesis import strategies as st

from app.dlq import source_headers
from app.dlq_once import DeadLettersSent, Source, once_per_source, source_key
from app.published import Partition

topics = st.text(min_size=1, max_size=80)
numbers = st.integers(min_value=0, max_value=2**63 - 1)


@given(topic=topics, partition=numbers, offset=numbers, as_mapping=st.booleans())
def test_the_source_headers_read_back_as_written(
    topic: str, partition: int, offset: int, as_mapping: bool
) -> None:
    headers = [
        ("error.type", b"validation_error"),
        *source_headers(topic=topic, partition=partition, offset=offset),
    ]
    assert source_key(dict(headers) if as_mapping else headers) == (topic, partition, offset)


@given(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=20)), max_size=6))
def test_headers_without_a_whole_source_have_none(headers: list[tuple[str, bytes]]) -> None:
    pairs = [(k, v) for k, v in headers if k not in ("source.topic", "source.offset")]
    assert source_key(pairs) is None
    assert source_key(None) is None
    assert (
        source_key([("source.topic", b"t"), ("source.partition", b"x1"), ("source.offset", b"2")])
        is None
    )
    assert (
        source_key([("source.topic", b"\xff"), ("source.partition", b"1"), ("source.offset", b"2")])
        is None
    )


class Ledger(DeadLettersSent):
    """Dead letters already on the topic: ``on_topic``, per partition."""

    def __init__(self, on_topic: dict[int, set[Source]], *, remember: int = 100) -> None:
        super().__init__(topic="support.dlq", partitions=3, remember=remember, bootstrap="unused")
        self.on_topic = on_topic
        self.batches: list[list[Partition]] = []
        self.fail: Exception | None = None

    async def _read(
        self,
        partitions: list[Partition],
        *,
        since_ms: int,
        done: Callable[[Partition, set[Hashable]], None],
    ) -> int:
        self.batches.append(partitions)
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        for tp in partitions:
            done(tp, set(self.on_topic.get(tp[1], set())))
        return 0


def sender(ledger: Ledger) -> tuple[list[Source], Callable[..., object]]:
    sent: list[Source] = []

    @once_per_source(lambda: ledger)
    async def send(*, key: bytes | None, value: bytes, source: Source) -> None:
        sent.append(source)

    return sent, send


async def test_a_source_dead_lettered_by_another_worker_is_not_sent_again() -> None:
    before = ("support.chat.inbound", 4, 17)
    ledger = Ledger({2: {before}})
    sent, send = sender(ledger)
    await send(key=None, value=b"{", source=before)
    await send(key=b"c", value=b"{", source=("support.chat.inbound", 4, 18))
    assert sent == [("support.chat.inbound", 4, 18)]
    assert ledger.batches == [[("support.dlq", 0), ("support.dlq", 1), ("support.dlq", 2)]], (
        "every partition of the dead-letter topic, read once, together"
    )


async def test_a_source_sent_here_is_not_sent_again_even_after_a_rebalance() -> None:
    ledger = Ledger({})
    sent, send = sender(ledger)
    source = ("flowdesk.queries", 0, 0)
    await send(key=None, value=b"x", source=source)
    ledger.forget()
    await send(key=None, value=b"x", source=source)
    assert sent == [source]


async def test_only_the_most_recent_sources_sent_here_are_remembered() -> None:
    ledger = Ledger({}, remember=2)
    sent, send = sender(ledger)
    for offset in (1, 2, 3):
        await send(key=None, value=b"x", source=("t", 0, offset))
    await send(key=None, value=b"x", source=("t", 0, 1))
    assert [s[2] for s in sent] == [1, 2, 3, 1]


async def test_a_failed_look_up_sends_rather_than_loses_the_dead_letter() -> None:
    ledger = Ledger({0: {("t", 0, 5)}})
    ledger.fail = ConnectionError("broker away")
    sent, send = sender(ledger)
    await send(key=None, value=b"x", source=("t", 0, 5))
    assert sent == [("t", 0, 5)]


async def test_a_failed_send_is_not_counted_as_sent() -> None:
    ledger = Ledger({})
    calls = 0

    @once_per_source(lambda: ledger)
    async def send(*, source: Source) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("producer closed")

    source = ("t", 1, 1)
    try:
        await send(source=source)
    except RuntimeError:
        pass
    await send(source=source)
    assert calls == 2


async def test_without_a_ledger_or_a_source_every_send_goes() -> None:
    sent: list[object] = []

    @once_per_source(lambda: None)
    async def send(*, source: object) -> None:
        sent.append(source)

    await send(source=("t", 0, 1))
    await send(source=("t", 0, 1))
    ledger = Ledger({})
    unchecked = once_per_source(lambda: ledger)(send)
    await unchecked(source="not a triple")
    assert len(sent) == 3
