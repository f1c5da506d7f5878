"""What is already on an output topic, read back after a takeover.

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
Dead letters are looked up the same way (``app.dlq_once``).

A takeover hands over many partitions at once, and their first replays arrive
together: ``ReadBack`` reads a partition once per rebalance, whoever asks; callers
asking for a partition being read wait for that read, and the partitions asked for
at once (``prefetch``, on assignment) are read by one consumer, concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

logger = logging.getLogger(__name__)

#: topic -> a function reading a record's query id (raises on another format)
QueryIdReaders = Mapping[str, Callable[[bytes], str]]

#: (topic, partition)
Partition = tuple[str, int]

#: How long a fetch of a read-back waits for records to arrive, ms.
READ_FETCH_WAIT_MS = 20


class ReadBack:
    """Keys of the records on topic partitions since a time, each partition read once
    until ``forget`` and the read shared by everyone who asks for it."""

    def __init__(
        self,
        *,
        bootstrap: str,
        client_options: Mapping[str, Any] | None = None,
        lookback: float = 120.0,
        max_records: int = 50_000,
        read_timeout: float = 30.0,
    ) -> None:
        if lookback < 0 or max_records < 1 or read_timeout <= 0:
            raise ValueError("lookback must be 0 or more, max_records and read_timeout above 0")
        self._bootstrap = bootstrap
        self._options = dict(client_options or {})
        self.lookback = lookback
        self.max_records = max_records
        self.read_timeout = read_timeout
        self._keys: dict[Partition, asyncio.Future[frozenset[Hashable]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Partitions read back so far.
        self.reads = 0

    def key(self, record: ConsumerRecord[bytes, bytes]) -> Hashable:
        """The key a record is looked up by; raises on a record of another format."""
        raise NotImplementedError

    def forget(self) -> None:
        """A rebalance: what another worker may have written is unknown again.

        Reads under way finish for those waiting on them, but are not kept.
        """
        self._keys.clear()

    def prefetch(self, partitions: Iterable[Partition], *, since: float) -> None:
        """Start reading, in the background and with one consumer, the ``partitions`` not
        read or being read since the last ``forget``: from ``lookback`` seconds before
        ``since`` (epoch seconds; when this worker took them over)."""
        wanted = [tp for tp in dict.fromkeys(partitions) if tp not in self._keys]
        if not wanted:
            return
        loop = asyncio.get_running_loop()
        futures = {tp: loop.create_future() for tp in wanted}
        for future in futures.values():
            # A read nobody waited for may fail unseen: it is logged, not warned about.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._keys.update(futures)
        since_ms = int((since - self.lookback) * 1000)
        task = loop.create_task(self._read_into(futures, since_ms=since_ms))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def keys(self, topic: str, partition: int, *, since: float) -> frozenset[Hashable]:
        """The keys on ``topic``/``partition`` (``prefetch`` for ``since``); raises when
        the partition could not be read (the next call tries again)."""
        tp = (topic, partition)
        if tp not in self._keys:
            self.prefetch([tp], since=since)
        # Shielded: a caller cancelled (its worker stopping) leaves the read to the others.
        return await asyncio.shield(self._keys[tp])

    async def _read_into(
        self, futures: Mapping[Partition, asyncio.Future[frozenset[Hashable]]], *, since_ms: int
    ) -> None:
        started = time.monotonic()
        try:
            found = await self._read(list(futures), since_ms=since_ms, done=self._settle(futures))
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else RuntimeError("read back cancelled")
            logger.warning("could not read %s back: %r", sorted(futures), failure)
            for tp, future in futures.items():
                if future.done():  # read to its end before the failure
                    continue
                future.set_exception(failure)
                if self._keys.get(tp) is future:  # the next caller reads it again
                    del self._keys[tp]
            if not isinstance(exc, Exception):
                raise
            return
        logger.info(
            "read %d records of %d partitions back (%s) in %.0f ms",
            found,
            len(futures),
            ", ".join(f"{topic}:{partition}" for topic, partition in sorted(futures)),
            (time.monotonic() - started) * 1000,
        )

    def _settle(
        self, futures: Mapping[Partition, asyncio.Future[frozenset[Hashable]]]
    ) -> Callable[[Partition, set[Hashable]], None]:
        def done(tp: Partition, keys: set[Hashable]) -> None:
            self.reads += 1
            if not futures[tp].done():
                futures[tp].set_result(frozenset(keys))

        return done

    async def _read(
        self,
        partitions: list[Partition],
        *,
        since_ms: int,
        done: Callable[[Partition, set[Hashable]], None],
    ) -> int:
        """Read ``partitions`` to their end, calling ``done`` for each as it gets there;
        returns how many records were kept."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            # Everything wanted is on the broker already, so a fetch need not wait for
            # more; and a broker that answers one request of a connection at a time
            # (the embedded one) held each offset look-up behind a fetch's full wait.
            fetch_max_wait_ms=READ_FETCH_WAIT_MS,
            **self._options,
        )
        deadline = time.monotonic() + self.read_timeout
        await consumer.start()
        kept = 0
        try:
            tps = [TopicPartition(topic, partition) for topic, partition in partitions]
            consumer.assign(tps)
            begins = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            found: dict[TopicPartition, set[Hashable]] = {tp: set() for tp in tps}
            pending = set()
            for tp in tps:
                if ends[tp] <= begins[tp]:
                    done((tp.topic, tp.partition), found[tp])
                else:
                    consumer.seek(tp, max(begins[tp], ends[tp] - self.max_records))
                    pending.add(tp)
            while pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {sorted(pending)} back took too long")
                batch = await consumer.getmany(*pending, timeout_ms=1000)
                for tp, records in batch.items():
                    for record in records:
                        if record.timestamp < since_ms or record.value is None:
                            continue
                        try:
                            found[tp].add(self.key(record))
                        except Exception:  # another format on a shared topic: not ours
                            continue
                        kept += 1
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                        done((tp.topic, tp.partition), found[tp])
        finally:
            await consumer.stop()
        return kept


def output_partitions(
    partition: int, *, source_partitions: int, topics: Mapping[str, int]
) -> list[Partition]:
    """Where the outcome of a record on ``partition`` of a topic with ``source_partitions``
    partitions can go, on ``topics`` (name -> partition count), all keyed alike: the same
    partition on a topic with as many partitions (the key hashes to the same one), every
    partition of any other."""
    return [
        (topic, p)
        for topic, count in topics.items()
        for p in ([partition] if count == source_partitions else range(count))
    ]


class PublishedOutcomes(ReadBack):
    """Query ids on the output topics' partitions, read on demand and cached."""

    def __init__(self, *, readers: QueryIdReaders, **options: Any) -> None:
        super().__init__(**options)
        self._readers = readers

    def key(self, record: ConsumerRecord[bytes, bytes]) -> Hashable:
        return self._readers[record.topic](record.value or b"")

    async def contains(self, topic: str, partition: int, query_id: str, *, since: float) -> bool:
        """Whether an outcome for ``query_id`` is on ``topic``/``partition``.

        ``since``: the time (epoch seconds) this worker took the outcome's partition
        over; the output partition is read from ``lookback`` seconds before it.
        """
        return query_id in await self.keys(topic, partition, since=since)
