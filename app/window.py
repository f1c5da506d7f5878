"""The in-flight window: Flink's async wait operator, for a Faust agent.

At most ``capacity`` queries are being worked on at once; ``submit`` waits while
the window is full, so the agent stops reading (back-pressure). Work for one key
(a customer) runs in arrival order, one at a time, so a customer's answers come
out in the order they asked; different keys never wait for each other.

The window does not ack anything itself: each piece of work acks its own event
once its outcome is written, and Faust commits only the contiguous run of acked
offsets, so the committed offset never passes a query whose outcome is missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

from app.metrics import IN_FLIGHT, WINDOW_CAPACITY

logger = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]


class InFlightWindow:
    """Bounded, per-key ordered concurrency for async work."""

    def __init__(self, *, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._slots = asyncio.Semaphore(capacity)
        self._tails: dict[Hashable, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        WINDOW_CAPACITY.set(capacity)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def submit(self, key: Hashable, work: Work) -> None:
        """Start ``work`` once a slot is free, after the previous work of ``key``."""
        await self._slots.acquire()
        previous = self._tails.get(key)
        task = asyncio.create_task(self._run(key, previous, work))
        self._tails[key] = task
        self._tasks.add(task)
        IN_FLIGHT.set(len(self._tasks))
        task.add_done_callback(self._forget)

    async def _run(self, key: Hashable, previous: asyncio.Task[None] | None, work: Work) -> None:
        try:
            if previous is not None:
                # asyncio.wait never raises: the order holds even if that work failed.
                await asyncio.wait([previous])
            await work()
        except Exception:  # work handles its own errors; this is the last guard
            logger.exception("in-flight work for key %r failed", key)
        finally:
            self._slots.release()
            if self._tails.get(key) is asyncio.current_task():
                del self._tails[key]

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        IN_FLIGHT.set(len(self._tasks))

    async def drain(self) -> None:
        """Wait until every submitted piece of work has finished."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def finish(self, *, grace: float) -> int:
        """On shutdown: let the work in flight finish, for up to ``grace`` seconds.

        Returns how many pieces of work were still running when the grace ran out;
        they are left as they are (their events un-acked, to be processed again).
        """
        if not self._tasks:
            return 0
        logger.info("stopping: up to %g s for %d queries in flight", grace, len(self._tasks))
        try:
            await asyncio.wait_for(self.drain(), grace)
        except TimeoutError:
            logger.warning(
                "stopping: %d queries still in flight are left to be processed again",
                len(self._tasks),
            )
        return len(self._tasks)
