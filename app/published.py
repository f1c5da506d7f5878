"""Outcomes already published, read back from the output topics after a takeover.

The router writes an outcome to its public topic, then records the query id in the
``routed`` table. A worker killed between the two leaves an outcome on the broker
without its record, and the worker that takes the partition over would send it a
second time: the outcome that worker wrote, or one written again after the takeover
when the query, not yet committed, was answered again (from the cache). So the
outcome of a query that arrived before this worker owned the partition, and has no
record, is looked up in the topic it would go to: the partition its key maps to, read
once from ``lookback`` seconds before the takeover (at most ``max_records`` records
back), its query ids kept in memory until the next rebalance. Queries that arrived
after the takeover never need this: no other worker can have answered them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

logger = logging.getLogger(__name__)

#: topic -> a function reading a record's query id (raises on another format)
QueryIdReaders = Mapping[str, Callable[[bytes], str]]


class PublishedOutcomes:
    """Query ids on the output topics' partitions, read on demand and cached."""

    def __init__(
        self,
        *,
        bootstrap: str,
        readers: QueryIdReaders,
        client_options: Mapping[str, Any] | None = None,
        lookback: float = 120.0,
        max_records: int = 50_000,
        read_timeout: float = 30.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._readers = readers
        self._options = dict(client_options or {})
        self.lookback = lookback
        self.max_records = max_records
        self.read_timeout = read_timeout
        self._ids: dict[tuple[str, int], set[str]] = {}
        #: Partitions read back so far.
        self.reads = 0

    def forget(self) -> None:
        """A rebalance: what another worker may have published is unknown again."""
        self._ids.clear()

    async def contains(self, topic: str, partition: int, query_id: str, *, since: float) -> bool:
        """Whether an outcome for ``query_id`` is on ``topic``/``partition``.

        ``since``: the time (epoch seconds) this worker took the outcome's partition
        over; the output partition is read from ``lookback`` seconds before it.
        """
        ids = self._ids.get((topic, partition))
        if ids is None:
            started = time.monotonic()
            ids = await self._read(topic, partition, since_ms=int((since - self.lookback) * 1000))
            self._ids[(topic, partition)] = ids
            self.reads += 1
            logger.info(
                "read %d outcomes of %s:%d back to check for replays (%.0f ms)",
                len(ids),
                topic,
                partition,
                (time.monotonic() - started) * 1000,
            )
        return query_id in ids

    async def _read(self, topic: str, partition: int, *, since_ms: int) -> set[str]:
        read_id = self._readers[topic]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, **self._options
        )
        await consumer.start()
        found: set[str] = set()
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            begin = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            if end <= begin:
                return found
            consumer.seek(tp, max(begin, end - self.max_records))
            deadline = time.monotonic() + self.read_timeout
            while await consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic}:{partition} back took too long")
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.timestamp < since_ms or record.value is None:
                        continue
                    try:
                        found.add(read_id(record.value))
                    except Exception:  # another format on a shared topic: not ours
                        continue
        finally:
            await consumer.stop()
        return found
