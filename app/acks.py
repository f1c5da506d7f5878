"""Acks in offset order, whatever order the work finishes in.

The in-flight window finishes queries out of order: a fast answer for one customer
overtakes a slow one for another. Faust commits the run of acked offsets that
follows the committed one, but its check of that run's start lets one missing
offset through (``Consumer._new_offset`` allows ``min(acked) - committed == 1``,
and skips the check while nothing is committed yet; faust-streaming issue 606):
an offset acked ahead of the one before it can be committed past it, and a crash
then loses the query in between. Acking each partition's events only once every
earlier one is done keeps the acked offsets contiguous, so the committed offset
never passes a query whose outcome is missing.
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
)
from typing import Any, Protocol, cast

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


class SkippedOffsets:
    """Finds partitions where the consumer skipped offsets, so they can be read again.

    Every agent here acks a partition's events in offset order, so once the event at
    the committed offset is acked the committed offset moves on. Offsets acked past
    a committed offset that stays put for ``after`` seconds mean the event at it was
    never delivered: Faust drops prefetched messages in a race when a rebalance
    suspends the stream (faust-streaming issues 221 and 596), and until the worker
    restarts it neither processes them nor commits past them. Seeking the partition
    back to its committed offset delivers them again (and the few after them, which
    the router's dedupe and the result cache absorb). When the skipped records are the
    last of the partition, nothing is acked after them: the caller then passes the
    partition's high-water mark instead, if no record of its topic is being processed.
    """

    def __init__(self, *, after: float) -> None:
        self.after = after
        # partition -> (committed offset, lowest acked offset, first seen, s)
        self._seen: dict[Hashable, tuple[int, int, float]] = {}

    def check(
        self, heads: dict[Hashable, tuple[int | None, int | None]], *, now: float
    ) -> list[tuple[Hashable, int, int]]:
        """``heads``: partition -> (committed offset, lowest acked offset not committed,
        or the high-water mark when nothing is acked or being processed).

        Returns (partition, committed, lowest acked) for each partition whose gap has
        lasted ``after`` seconds; it is then forgotten, so a seek is asked for once a
        period at most.
        """
        stalled = []
        for tp, (committed, acked) in heads.items():
            if committed is None or acked is None or acked <= committed:
                self._seen.pop(tp, None)
                continue
            seen = self._seen.get(tp)
            if seen is None or seen[:2] != (committed, acked):
                self._seen[tp] = (committed, acked, now)
            elif now - seen[2] >= self.after:
                stalled.append((tp, committed, acked))
                del self._seen[tp]
        for tp in self._seen.keys() - heads.keys():
            del self._seen[tp]
        return stalled


def skip_heads(
    partitions: Iterable[Any],
    *,
    committed: Mapping[Any, int | None],
    acked: Mapping[Any, Collection[int]],
    busy: Collection[str],
    highwater: Callable[[Any], int | None],
) -> dict[Hashable, tuple[int | None, int | None]]:
    """What ``SkippedOffsets.check`` takes, from the consumer's state.

    Per partition: its committed offset, and the lowest offset acked past it; when
    nothing is acked and no record of its topic (``busy``: topics with records being
    processed) is in the agents' hands, the high-water mark instead: records up to it
    that are still not committed were skipped at the partition's tail.
    """
    heads: dict[Hashable, tuple[int | None, int | None]] = {}
    for tp in partitions:
        done = acked.get(tp)
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
    """
    manual = cast(Stream, stream).noack()
    async for event in manual.events():
        yield event
        await manual.ack(event)
