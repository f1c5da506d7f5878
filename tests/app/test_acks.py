"""Acks in offset order (app.acks), whatever order the work finishes in."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from app.acks import OrderedAcks, SkippedOffsets


@dataclass(frozen=True)
class Message:
    tp: str
    offset: int


@dataclass(frozen=True)
class Event:
    message: Message


def events(tp: str, offsets: range) -> list[Event]:
    return [Event(Message(tp, n)) for n in offsets]


async def test_an_event_finished_early_waits_for_the_one_before_it() -> None:
    acked: list[int] = []

    async def ack(event: Event) -> None:
        acked.append(event.message.offset)

    acks = OrderedAcks(ack)
    first, second, third = events("q-0", range(3))
    for event in (first, second, third):
        acks.track(event)
    assert await acks.done(second) == 0
    assert await acks.done(third) == 0
    assert acked == [], "nothing may be acked past the unfinished offset 0"
    assert await acks.done(first) == 3
    assert acked == [0, 1, 2]
    assert len(acks) == 0


async def test_partitions_do_not_wait_for_each_other() -> None:
    acked: list[tuple[str, int]] = []

    async def ack(event: Event) -> None:
        acked.append((event.message.tp, event.message.offset))

    acks = OrderedAcks(ack)
    slow, fast = Event(Message("q-0", 7)), Event(Message("q-1", 3))
    acks.track(slow)
    acks.track(fast)
    await acks.done(fast)
    assert acked == [("q-1", 3)]


async def test_any_finishing_order_acks_every_offset_once_and_in_order() -> None:
    rng = random.Random(5)
    acked: dict[str, list[int]] = {"a": [], "b": []}

    async def ack(event: Event) -> None:
        await asyncio.sleep(0)  # interleave concurrent calls
        acked[event.message.tp].append(event.message.offset)

    acks = OrderedAcks(ack)
    batch = events("a", range(50)) + events("b", range(100, 150))
    for event in batch:
        acks.track(event)
    rng.shuffle(batch)
    await asyncio.gather(*(acks.done(event) for event in batch))
    assert acked == {"a": list(range(50)), "b": list(range(100, 150))}
    assert len(acks) == 0


async def test_a_partition_read_again_drops_what_was_queued_for_it() -> None:
    acked: list[int] = []

    async def ack(event: Event) -> None:
        acked.append(event.message.offset)

    acks = OrderedAcks(ack)
    stuck, before = events("q-0", range(5, 7))
    acks.track(stuck)  # never finishes: its outcome could not be written
    acks.track(before)
    again = Event(Message("q-0", 5))  # the partition came back; read from 5 again
    acks.track(again)
    assert len(acks) == 1
    assert await acks.done(again) == 1
    assert await acks.done(before) == 1, "no longer tracked: acked at once"
    assert acked == [5, 6]


def test_a_gap_at_the_committed_offset_is_reported_once_it_lasts() -> None:
    skipped = SkippedOffsets(after=10)
    heads = {"in-5": (515, 530), "in-1": (100, None), "in-2": (40, 40)}
    assert skipped.check(heads, now=0) == []
    assert skipped.check(heads, now=9) == []
    assert skipped.check(heads, now=10) == [("in-5", 515, 530)]
    assert skipped.check(heads, now=11) == [], "reported once, then watched afresh"
    assert skipped.check(heads, now=21) == [("in-5", 515, 530)]


def test_a_gap_that_moves_or_closes_is_not_a_skip() -> None:
    skipped = SkippedOffsets(after=10)
    assert skipped.check({"q-0": (10, 12)}, now=0) == []
    # The committed offset moved: work is going on, the clock starts again.
    assert skipped.check({"q-0": (12, 14)}, now=8) == []
    assert skipped.check({"q-0": (12, 14)}, now=17) == []
    assert skipped.check({"q-0": (14, None)}, now=30) == []
    assert skipped.check({"q-0": (14, 16)}, now=31) == []
    assert skipped.check({}, now=50) == [], "a revoked partition is forgotten"
    assert skipped.check({"q-0": (14, 16)}, now=51) == []
