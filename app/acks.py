"""What may be committed: offsets that agents finished, in order, and nothing skipped.

``CommitPoints`` is what the worker's consumer (``app.main``) commits from: the run of
finished offsets that follows the committed one, never an offset no agent processed.
``OrderedAcks`` acks the in-flight window's events in offset order, though the window
finishes them out of order (a fast answer for one customer overtakes a slow one for
another), so that finished offsets past a missing one always mean a skip, which
``SkippedOffsets`` finds and has read again; ``UndeliveredRecords`` finds the records
of a partition's tail that were fetched and dropped. ``acked_when_done`` acks an
agent's event only once its loop body is done with it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Literal, Protocol, cast

from faust import StreamT
from faust.streams import Stream
from faust.types import EventT


class _Message(Protocol):
    tp: Any
    offset: int


class _Event(Protocol):
    @property
    def message(self) -> _Message: ...


class OrderedAcks:
    """Per partition: events in the order read; each acked once it and all before it are done."""

    def __init__(self, ack: Callable[[Any], Awaitable[object]]) -> None:
        self._ack = ack
        # partition -> [offset, event, done] in the order read
        self._pending: dict[Hashable, deque[list[Any]]] = {}
        self._entries: dict[tuple[Hashable, int], list[Any]] = {}
        self._outbox: deque[Any] = deque()
        self._acking = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def track(self, event: _Event) -> None:
        """Note ``event`` as read; call in the order the stream delivers events."""
        tp, offset = event.message.tp, event.message.offset
        queue = self._pending.setdefault(tp, deque())
        if queue and offset <= queue[-1][0]:
            # Read again from an earlier offset (the partition came back after a
            # rebalance): what is queued will be processed again; start afresh.
            for stale in queue:
                del self._entries[(tp, stale[0])]
            queue.clear()
        entry = [offset, event, False]
        queue.append(entry)
        self._entries[(tp, offset)] = entry

    async def done(self, event: _Event) -> int:
        """``event`` is finished; ack it and every finished event behind it.

        Returns how many events were acked. An event no longer tracked (its
        partition was read again from an earlier offset) is acked at once.
        """
        tp, offset = event.message.tp, event.message.offset
        entry = self._entries.get((tp, offset))
        if entry is None or entry[1] is not event:
            self._outbox.append(event)
            await self._flush()
            return 1
        entry[2] = True
        queue = self._pending[tp]
        ready = []
        while queue and queue[0][2]:
            head = queue.popleft()
            del self._entries[(tp, head[0])]
            ready.append(head[1])
        if not queue:
            del self._pending[tp]
        # Into the outbox before the first await, and the outbox drained by one call at
        # a time: each event is acked once, and in order across concurrent calls.
        self._outbox.extend(ready)
        await self._flush()
        return len(ready)

    async def _flush(self) -> None:
        async with self._acking:
            while self._outbox:
                await self._ack(self._outbox.popleft())


class CommitPoints:
    """Per partition: how far the committed offset may move, over the offsets agents finished.

    Faust moves the committed offset over the run of *acked* offsets, and three of its
    shortcuts pass records that no agent processed: it lets one missing offset through
    (``Consumer._new_offset``, faust-streaming issue 606); it takes any jump in the
    offsets it reads for a gap to skip, which is right for compaction and transaction
    markers but also what a record dropped in a rebalance looks like; and its stream
    iterator acks the events it skips while the flow is suspended. Without a committed
    offset it starts from whatever was acked first. Here the base is always known (the
    committed offset read on assignment, or the partition's first offset when nothing is
    committed) and moves only over offsets an agent finished, or over ``skip`` ranges
    (compacted topics' gaps, and missing offsets read again and still missing).
    """

    def __init__(self) -> None:
        #: partition -> the offset the last commit reached or may reach (next to read)
        self.bases: dict[Hashable, int] = {}
        #: partition -> offsets at or past its base that an agent finished
        self.finished: dict[Hashable, set[int]] = {}

    def rebase(self, tp: Hashable, offset: int) -> None:
        """``tp`` is read from ``offset`` (its committed offset) on."""
        self.bases[tp] = offset
        left = {n for n in self.finished.pop(tp, ()) if n >= offset}
        if left:
            self.finished[tp] = left

    def retain(self, partitions: Collection[Hashable]) -> None:
        """Forget every partition but ``partitions``."""
        for tp in self.bases.keys() - set(partitions):
            del self.bases[tp]
        for tp in self.finished.keys() - set(partitions):
            del self.finished[tp]

    def finish(self, tp: Hashable, offset: int) -> None:
        """An agent is done with ``offset`` of ``tp``."""
        base = self.bases.get(tp)
        if base is None or offset >= base:
            self.finished.setdefault(tp, set()).add(offset)

    def fill(self, tp: Hashable, start: int, end: int) -> None:
        """Offsets ``start`` to ``end - 1`` are not in the log: move past them."""
        self.finished.setdefault(tp, set()).update(range(start, end))

    def advance(self, tp: Hashable, *, skip: Callable[[int], int] | None = None) -> int | None:
        """Move ``tp``'s base over the finished offsets that follow it; the new base, or
        None when it stays. ``skip(offset)`` gives the end of a range to move over
        unfinished (``offset`` itself when there is none).
        """
        done = self.finished.get(tp)
        if not done:
            return None
        start = self.bases.get(tp)
        if start is None:  # the partition's first offset could not be read
            start = min(done)
        end = start
        while True:
            if end in done:
                end += 1
            elif skip is not None and (past := skip(end)) > end:
                end = past
            else:
                break
        if end == start:
            return None
        self.bases[tp] = end
        left = {n for n in done if n >= end}
        if left:
            self.finished[tp] = left
        else:
            del self.finished[tp]
        return end


class SkippedOffsets:
    """Finds partitions where the consumer skipped offsets, so they can be read again.

    Every agent here finishes a partition's events in offset order, so once the event at
    the committed offset is finished the committed offset moves on. Offsets finished
    past a committed offset that stays put for ``after`` seconds mean the event at it
    was never delivered: Faust drops prefetched messages in a race when a rebalance
    suspends the stream (faust-streaming issues 221 and 596), and until the worker
    restarts it neither processes them nor (with ``CommitPoints``) commits past them.
    Seeking the partition back to its committed offset delivers them again (the
    consumer drops the records after them that were finished already). When the
    skipped records are the last of the partition, nothing is finished after them: the
    caller then passes the partition's high-water mark instead, if no record of its
    topic is being processed.
    """

    #: complete reads of the consumer a gap must outlast as well
    reads = 0

    def __init__(self, *, after: float) -> None:
        self.after = after
        # partition -> (low, high, first seen, s, reads then)
        self._seen: dict[Hashable, tuple[int, int, float, int]] = {}

    def check(
        self,
        heads: Mapping[Hashable, tuple[int | None, int | None]],
        *,
        now: float,
        rounds: int = 0,
    ) -> list[tuple[Hashable, int, int]]:
        """``heads``: partition -> (low, high): here the committed offset and the lowest
        finished offset not committed, or the high-water mark when nothing is finished
        or being processed. ``rounds``: complete reads of the consumer so far.

        Returns (partition, low, high) for each partition whose gap (high above low,
        both unchanged) has lasted ``after`` seconds and ``reads`` reads; it is then
        forgotten, so a seek is asked for once a period at most.
        """
        stalled = []
        for tp, (low, high) in heads.items():
            if low is None or high is None or high <= low:
                self._seen.pop(tp, None)
                continue
            seen = self._seen.get(tp)
            if seen is None or seen[:2] != (low, high):
                self._seen[tp] = (low, high, now, rounds)
            elif now - seen[2] >= self.after and rounds - seen[3] >= self.reads:
                stalled.append((tp, low, high))
                del self._seen[tp]
        for tp in self._seen.keys() - heads.keys():
            del self._seen[tp]
        return stalled


class UndeliveredRecords(SkippedOffsets):
    """Finds partitions whose fetched records Faust dropped before its agents saw them.

    Faust's ``Consumer.getmany`` drops the records of a batch whose partition was paused,
    or whose generation ended, while the batch was on its way; aiokafka has counted
    them consumed, so its fetch position is past them and they are never fetched again.
    ``SkippedOffsets`` finds such a gap once a later record of the partition is
    finished; when the dropped records were the partition's last, this finds them.
    ``check`` takes, per partition, (the offset after the last record delivered, or
    where the partition is read from; aiokafka's fetch position): a position past it
    for ``after`` seconds and two complete reads of the consumer (which do not complete
    while a batch is still being delivered, as when the agents' buffers are full).
    """

    reads = 2


ReadAgainAction = Literal["wait", "fill", "read"]


def read_again_action(
    *, committed: int, finished: bool, again: tuple[int, float] | None, now: float, settle: float
) -> ReadAgainAction:
    """What to do about a partition found stalled at ``committed``, with offsets
    ``finished`` past it or not (a tail), read again from ``again`` (offset, when) or
    never: ``wait`` while what was read again has had less than ``settle`` seconds to
    arrive; ``fill`` (commit past) a gap still there after reading it again, which is
    not in the log; else ``read`` it again."""
    if again is not None and now - again[1] < settle:
        return "wait"
    if again is not None and again[0] == committed and finished:
        return "fill"
    return "read"


def dropped_records(
    batch: Mapping[Any, Sequence[Any]], handed: Mapping[Any, int]
) -> dict[Any, int]:
    """Per partition of a fetched ``batch`` (partition -> records, each with an
    ``offset``), the first offset not handed on, when records were left over:
    ``handed`` gives, per partition, the offset after the last record handed on."""
    dropped = {}
    for tp, records in batch.items():
        if not records:
            continue
        first = handed.get(tp, records[0].offset)
        if records[-1].offset >= first:
            dropped[tp] = first
    return dropped


def skip_heads(
    partitions: Iterable[Any],
    *,
    committed: Mapping[Any, int | None],
    finished: Mapping[Any, Collection[int]],
    busy: Collection[str],
    highwater: Callable[[Any], int | None],
) -> dict[Hashable, tuple[int | None, int | None]]:
    """What ``SkippedOffsets.check`` takes, from the consumer's state.

    Per partition: its committed offset, and the lowest offset finished past it; when
    nothing is finished and no record of its topic (``busy``: topics with records being
    processed) is in the agents' hands, the high-water mark instead: records up to it
    that are still not committed were skipped at the partition's tail.
    """
    heads: dict[Hashable, tuple[int | None, int | None]] = {}
    for tp in partitions:
        done = finished.get(tp)
        after = min(done) if done else None
        if after is None and committed.get(tp) is not None and tp.topic not in busy:
            after = highwater(tp)
        heads[tp] = (committed.get(tp), after)
    return heads


async def acked_when_done(stream: StreamT) -> AsyncIterator[EventT]:
    """The events of ``stream``, each acked once the loop body has finished with it.

    Faust's own iteration acks the current event in a ``finally``: when a worker stops
    and cancels an agent in the middle of an event (awaiting a send, say), the
    iterator is closed, the event is acked anyway, and the commit on stopping can
    pass it with its output never sent. Here an event is acked only when the body asks
    for the next one, after ``continue`` too; a body that raises or is cancelled
    leaves it un-acked, so the worker taking the partition over reads it again.

    After each event the event loop gets one pass. Faust hands buffered events over
    without waiting, and a send with room does not wait either, so an agent with a
    backlog (ingest after a burst) would otherwise hold the loop until its buffer was
    empty, while the model replies and the other agents' events wait.
    """
    manual = cast(Stream, stream).noack()
    async for event in manual.events():
        yield event
        await manual.ack(event)
        await asyncio.sleep(0)
