"""Acks in offset order (app.acks), whatever order the work finishes in."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.acks import (
    CommitPoints,
    OrderedAcks,
    SkippedOffsets,
    UndeliveredRecords,
    acked_when_done,
    dropped_records,
    read_again_action,
    skip_heads,
)


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


def test_the_commit_point_moves_only_over_finished_offsets() -> None:
    points = CommitPoints()
    points.rebase("q-0", 10)
    points.finish("q-0", 11)
    points.finish("q-0", 12)
    assert points.advance("q-0") is None, "offset 10 was never finished"
    points.finish("q-0", 10)
    assert points.advance("q-0") == 13
    assert points.advance("q-0") is None, "nothing new"
    points.finish("q-0", 9)  # below the base: a record read again
    points.finish("q-0", 14)
    assert points.advance("q-0") is None
    assert points.finished == {"q-0": {14}}


def test_the_commit_point_moves_over_skipped_ranges_and_filled_offsets() -> None:
    points = CommitPoints()
    points.rebase("crm-0", 0)
    points.finish("crm-0", 0)
    points.finish("crm-0", 5)
    gap = {1: 5}  # offsets 1 to 4 compacted away
    assert points.advance("crm-0", skip=lambda offset: gap.get(offset, offset)) == 6
    points.rebase("in-0", 20)
    points.finish("in-0", 23)
    points.fill("in-0", 20, 23)  # read again, still missing
    assert points.advance("in-0") == 24


def test_a_new_assignment_sets_the_commit_points_afresh() -> None:
    points = CommitPoints()
    points.rebase("q-0", 10)
    points.finish("q-0", 12)
    points.rebase("q-1", 3)
    points.finish("q-1", 3)
    points.rebase("q-0", 13)  # committed elsewhere while another worker had it
    points.retain(["q-0"])
    assert points.bases == {"q-0": 13}
    assert points.finished == {}


def test_without_a_base_the_commit_point_starts_at_the_first_finished_offset() -> None:
    points = CommitPoints()
    points.finish("q-0", 4)
    points.finish("q-0", 5)
    assert points.advance("q-0") == 6


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


def test_records_fetched_and_never_delivered_are_reported_once_they_last() -> None:
    undelivered = UndeliveredRecords(after=10)
    # partition -> (offset after the last record delivered, fetch position)
    reads = {"q-1": (54, 66), "q-2": (40, 40), "q-3": (None, 9), "q-4": (7, None)}
    assert undelivered.check(reads, now=0, rounds=0) == []
    assert undelivered.check(reads, now=10, rounds=1) == [], "one read since: may be in transit"
    assert undelivered.check(reads, now=10, rounds=2) == [("q-1", 54, 66)]
    assert undelivered.check(reads, now=11, rounds=3) == [], "reported once, then watched afresh"
    assert undelivered.check(reads, now=21, rounds=5) == [("q-1", 54, 66)]


def test_records_still_being_delivered_are_not_undelivered() -> None:
    undelivered = UndeliveredRecords(after=10)
    assert undelivered.check({"q-0": (10, 20)}, now=0, rounds=0) == []
    # A batch held while the agents' buffers are full: no read completes.
    assert undelivered.check({"q-0": (10, 20)}, now=30, rounds=0) == []
    # Delivery goes on: the clock starts again.
    assert undelivered.check({"q-0": (15, 20)}, now=31, rounds=1) == []
    assert undelivered.check({"q-0": (15, 20)}, now=40, rounds=5) == []
    assert undelivered.check({"q-0": (20, 20)}, now=45, rounds=6) == []
    assert undelivered.check({"q-0": (20, 25)}, now=46, rounds=7) == []
    assert undelivered.check({}, now=60, rounds=20) == [], "a revoked partition is forgotten"
    assert undelivered.check({"q-0": (20, 25)}, now=61, rounds=21) == []


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


def test_skip_heads_use_the_lowest_acked_offset_else_an_idle_tail() -> None:
    gap, tail, done, fresh, busy = (
        TP("q", 0),
        TP("q", 1),
        TP("q", 2),
        TP("q", 3),
        TP("out", 0),
    )
    heads = skip_heads(
        [gap, tail, done, fresh, busy],
        committed={gap: 10, tail: 20, done: 30, fresh: None, busy: 5},
        finished={gap: [14, 12, 13]},
        busy={"out"},
        highwater={gap: 99, tail: 25, done: 30, fresh: 7, busy: 9}.get,
    )
    assert heads == {
        gap: (10, 12),  # acked past a gap: the lowest acked offset
        tail: (20, 25),  # nothing acked, records up to the high-water mark: the tail
        done: (30, 30),  # caught up: no gap
        fresh: (None, None),  # never committed: not judged
        busy: (5, None),  # its topic has records in the agents' hands: not judged
    }
    skipped = SkippedOffsets(after=10)
    assert skipped.check(heads, now=0) == []
    assert skipped.check(heads, now=10) == [(gap, 10, 12), (tail, 20, 25)]


class _ManualStream:
    """What ``acked_when_done`` uses of a Faust stream: noack(), events(), ack()."""

    def __init__(self, events: list[str]) -> None:
        self._events = events
        self.acked: list[str] = []
        self.manual = False

    def noack(self) -> _ManualStream:
        self.manual = True
        return self

    async def events(self):
        for event in self._events:
            yield event

    async def ack(self, event: str) -> bool:
        self.acked.append(event)
        return True


async def test_an_event_is_acked_when_the_body_is_done_with_it() -> None:
    stream = _ManualStream(["a", "b", "c"])
    seen = []
    async for event in acked_when_done(stream):  # type: ignore[arg-type]
        seen.append((event, list(stream.acked)))
        if event == "b":
            continue  # a dead letter or a duplicate: done with it all the same
    assert stream.manual, "Faust must not ack by itself"
    assert seen == [("a", []), ("b", ["a"]), ("c", ["a", "b"])]
    assert stream.acked == ["a", "b", "c"]


async def test_an_agent_with_a_backlog_lets_other_tasks_run_between_its_events() -> None:
    # Faust hands buffered events over without waiting, and a send with room does not
    # wait either: without a pass of the event loop per event, an agent with a backlog
    # would hold the loop until its buffer was empty.
    stream = _ManualStream([str(n) for n in range(5)])
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    seen = []
    try:
        async for _ in acked_when_done(stream):  # type: ignore[arg-type]
            seen.append(turns)
    finally:
        task.cancel()
    assert seen == sorted(set(seen)), f"the other task ran between events: {seen}"


async def test_an_event_whose_body_is_cancelled_is_not_acked() -> None:
    stream = _ManualStream(["a", "b", "c"])
    started = asyncio.Event()

    async def agent() -> None:
        async for event in acked_when_done(stream):  # type: ignore[arg-type]
            if event == "b":
                started.set()
                await asyncio.sleep(3600)  # a send, when the worker stops

    task = asyncio.create_task(agent())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)  # the closed generator's finaliser runs
    assert stream.acked == ["a"]


def test_the_records_of_a_batch_not_handed_on_are_found() -> None:
    batch = {
        "a": [Message("a", n) for n in (5, 6, 7)],
        "b": [Message("b", n) for n in (0, 1)],
        "c": [Message("c", 9)],
        "d": [],
    }
    # a: handed up to 6 (7 dropped); b: all handed; c: none handed.
    assert dropped_records(batch, {"a": 7, "b": 2}) == {"a": 7, "c": 9}
    assert dropped_records(batch, {"a": 8, "b": 2, "c": 10}) == {}


@given(
    offsets=st.lists(st.integers(0, 1000), min_size=1, max_size=30, unique=True),
    handed=st.integers(0, 30),
)
def test_dropped_records_start_at_the_first_record_not_handed_on(
    offsets: list[int], handed: int
) -> None:
    records = [Message("t", n) for n in sorted(offsets)]
    handed = min(handed, len(records))
    upto = {"t": records[handed - 1].offset + 1} if handed else {}
    dropped = dropped_records({"t": records}, upto)
    if handed == len(records):
        assert dropped == {}
    else:
        assert dropped == {"t": upto.get("t", records[0].offset)}
        assert dropped["t"] <= records[handed].offset


def test_a_stalled_partition_is_read_again_then_given_time_then_committed_past() -> None:
    decide = partial(read_again_action, settle=10.0)
    # Seen for the first time: read it again.
    assert decide(committed=40, finished=True, again=None, now=100.0) == "read"
    # Read again 3 s ago: what it reads is still arriving, whatever the committed offset.
    assert decide(committed=40, finished=True, again=(40, 97.0), now=100.0) == "wait"
    assert decide(committed=44, finished=True, again=(40, 97.0), now=100.0) == "wait"
    # 10 s later, the same gap before finished offsets: not in the log.
    assert decide(committed=40, finished=True, again=(40, 90.0), now=100.0) == "fill"
    # Part of it arrived: the rest is read again.
    assert decide(committed=44, finished=True, again=(40, 90.0), now=100.0) == "read"
    # A tail (nothing finished past it) is never committed past, only read again.
    assert decide(committed=40, finished=False, again=(40, 80.0), now=100.0) == "read"
