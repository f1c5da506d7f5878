"""One dead letter per source offset, across crashes, rebalances and takeovers.

A message is dead-lettered, and its offset committed a little later. A worker killed
in between leaves the dead letter on the broker with its offset not committed, and
the worker that takes the partition over reads the message again and would send it
again. The outcomes' guard (``app.published``) is not enough here: dead letters come
from every agent, on the inbound topics as well as the internal ones, and an inbound
record's timestamp is set by a producer upstream, whose clock this pipeline does not
control, so it cannot tell a message that arrived before the takeover from one after
it. A table keyed by source offset would have the same gap as the ``routed`` table
(written after the send, so a crash between the two leaves no record) and would have
to be partitioned like each source topic.

So the dead-letter topic itself is the record. Before a dead letter is sent, its
source (topic, partition, offset: the ``source.*`` headers every dead letter carries)
is looked up among the dead letters already on ``support.dlq``: every partition of
it, since their key is the inbound key, which may be any or none. Each partition is
read once per rebalance, from ``lookback`` seconds before the rebalance (at most
``max_records`` back), by the first dead letter after it, and kept until the next;
whatever another worker wrote for a partition this one now owns was written before
the rebalance. The dead letters this worker sends are remembered here as well (the
most recent ``remember`` of them), so that a message read again without a takeover
(a rebalance that left it here, uncommitted) finds its own. A failed read is logged
and the dead letter sent: at least once rather than lost.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, ParamSpec

from aiokafka import ConsumerRecord

from app.main import app, client_security
from app.metrics import DUPLICATE_DEAD_LETTERS
from app.published import ReadBack
from app.settings import get_settings
from app.topics import DLQ, SPECS

logger = logging.getLogger(__name__)

P = ParamSpec("P")

#: Where a message came from: (topic, partition, offset).
Source = tuple[str, int, int]


def source_key(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Source | None:
    """The source of a dead letter, from its ``source.*`` headers; None without them."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    found = {key: value for key, value in pairs if key.startswith("source.")}
    try:
        topic = found["source.topic"].decode()
        partition = int(found["source.partition"])
        offset = int(found["source.offset"])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    return topic, partition, offset


class DeadLettersSent(ReadBack):
    """The sources of the dead letters on the dead-letter topic, and of those sent here."""

    def __init__(
        self, *, topic: str, partitions: int, remember: int = 50_000, **options: Any
    ) -> None:
        super().__init__(**options)
        if partitions < 1 or remember < 1:
            raise ValueError("partitions and remember must be at least 1")
        self.topic = topic
        self.partitions = partitions
        self.remember = remember
        self._sent: OrderedDict[Source, None] = OrderedDict()
        #: When the last rebalance happened (epoch seconds): the partitions are read from
        #: ``lookback`` seconds before it.
        self.since = time.time()

    def key(self, record: ConsumerRecord[bytes, bytes]) -> Hashable:
        source = source_key(record.headers)
        if source is None:
            raise ValueError("no source headers")
        return source

    def forget(self) -> None:
        super().forget()
        self.since = time.time()

    def sent(self, source: Source) -> None:
        """A dead letter for ``source`` is out."""
        self._sent[source] = None
        self._sent.move_to_end(source)
        while len(self._sent) > self.remember:
            self._sent.popitem(last=False)

    async def contains(self, source: Source) -> bool:
        """Whether a dead letter for ``source`` was sent here or is on the topic."""
        if source in self._sent:
            return True
        partitions = [(self.topic, p) for p in range(self.partitions)]
        self.prefetch(partitions, since=self.since)
        for topic, partition in partitions:
            if source in await self.keys(topic, partition, since=self.since):
                return True
        return False


def once_per_source(
    ledger: Callable[[], DeadLettersSent | None],
) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, Awaitable[None]]]:
    """Make a dead-letter send (its ``source`` keyword: topic, partition, offset) skip a
    source that ``ledger()`` knows was dead-lettered (None: no ledger, every send goes)."""

    def wrap(send: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
        @functools.wraps(send)
        async def once(*args: P.args, **kwargs: P.kwargs) -> None:
            sent = ledger()
            source = _as_source(kwargs.get("source"))
            if sent is None or source is None:
                await send(*args, **kwargs)
                return
            try:
                seen = await sent.contains(source)
            except Exception:
                logger.exception("could not look %s up among the dead letters; sending it", source)
                seen = False
            if seen:
                # A replay (after a crash or a rebalance) of a message parked already.
                logger.info("%s[%s]@%s is dead-lettered already; not sending it again", *source)
                DUPLICATE_DEAD_LETTERS.inc()
                return
            await send(*args, **kwargs)
            sent.sent(source)

        return once

    return wrap


def _as_source(value: object) -> Source | None:
    if isinstance(value, tuple) and len(value) == 3:
        topic, partition, offset = value
        if isinstance(topic, str) and isinstance(partition, int) and isinstance(offset, int):
            return topic, partition, offset
    return None


_ledger: DeadLettersSent | None = None


def ledger() -> DeadLettersSent:
    """This worker's record of dead letters sent (one per process, made on first use)."""
    global _ledger
    if _ledger is None:
        settings = get_settings()
        _ledger = DeadLettersSent(
            topic=DLQ,
            partitions=SPECS[DLQ].partition_count(settings),
            bootstrap=",".join(settings.bootstrap_servers),
            client_options=client_security(settings),
        )
    return _ledger


@app.on_partitions_revoked.connect
async def _revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """A rebalance: what other workers wrote for the partitions assigned next is unknown."""
    if _ledger is not None:
        _ledger.forget()
