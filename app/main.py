"""The Faust app: one per worker process. ``faust -A app.main worker`` runs it.

Agents (``agents/``), tables (``tables/``) and web views (``app.views``) register
themselves on ``app`` when autodiscovery imports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Hashable, Iterable, Mapping, Set
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.protocol.metadata import MetadataRequest
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message, TransportT
from mode import Service
from mode.utils.futures import maybe_async

from app import kafka_codec, kafka_fetch, table_store
from app.acks import (
    CommitPoints,
    SkippedOffsets,
    UndeliveredRecords,
    dropped_records,
    read_again_action,
    skip_heads,
)
from app.errors import ConfigurationError
from app.kafka_flavour import BrokerInfo, BrokerTuning, describe, detect, tuning
from app.logs import FlowdeskWorker
from app.metrics import SKIPPED_OFFSETS
from app.settings import Settings, get_settings


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.kafka_security not in ("ssl", "sasl_ssl"):
        return None
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)


def kafka_credentials(settings: Settings) -> Any:
    """The Faust credentials object ``FLOWDESK_KAFKA_SECURITY`` asks for, or None."""
    security = settings.kafka_security
    if security == "plaintext":
        return None
    context = _ssl_context(settings)
    if security == "ssl":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    )


def client_security(settings: Settings) -> dict[str, Any]:
    """The same security as keyword arguments of aiokafka's clients (CLI tools, admin)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security.upper()}
    context = _ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security.startswith("sasl"):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer with the fetch wait from the settings."""

    def _create_worker_consumer(self, transport: aiokafka_driver.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes a fixed fetch_max_wait_ms=1500, which on the embedded broker
        # adds up to 1.5 s to every hop; aiokafka reads this attribute at start.
        wait = getattr(self.app, "fetch_max_wait", 1.5)
        consumer._fetch_max_wait_ms = round(wait * 1000)
        return consumer


class _InLoopConsumerThread(_ConsumerThread):
    """Faust's consumer thread, run as a service of the worker's own event loop.

    Faust runs aiokafka's consumer in a thread with an event loop of its own and hands
    every call to it through queues, so each fetch crosses threads twice. While the
    worker's loop keeps the interpreter busy, that thread gets the interpreter lock back
    only after the switch interval, several times per fetch, and every hop between
    agents waited for it (README, *Benchmark*). Here the same code runs in the worker's
    loop: a call into the consumer is a plain await, and aiokafka's fetcher is one more
    task of that loop. ``FLOWDESK_CONSUMER_THREAD=true`` keeps Faust's thread.
    """

    # mode's ServiceThread waits for its thread to report the shutdown; there is none.
    wait_for_shutdown = False

    def __init__(
        self,
        consumer: aiokafka_driver.Consumer,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        **kwargs: Any,
    ) -> None:
        loop = loop or asyncio.get_event_loop()
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)

    # Service's own life cycle, not ServiceThread's, which starts a thread and stops
    # the children and futures from it.
    async def start(self) -> None:
        await Service.start(self)

    async def maybe_start(self) -> bool:
        return await Service.maybe_start(self)

    async def stop(self) -> None:
        await Service.stop(self)

    async def on_stop(self) -> None:
        await self.on_thread_stop()  # stops aiokafka's consumer

    def _stopped_set(self) -> None:
        self._stopped.set()

    def set_shutdown(self) -> None:
        self._shutdown.set()

    async def _stop_children(self) -> None:
        await self._default_stop_children()

    async def _stop_futures(self) -> None:
        await self._default_stop_futures()

    async def _stop_exit_stacks(self) -> None:
        await self._default_stop_exit_stacks()

    async def call_thread(self, fun: Any, *args: Any, **kwargs: Any) -> Any:
        # Some of the calls Faust hands over are plain functions (aiokafka's subscribe).
        return await maybe_async(fun(*args, **kwargs))


def highwater_or_none(consumer: Any, tp: TP) -> int | None:
    """``tp``'s high-water mark from the latest fetch response; None before the first
    fetch or while the assignment is changing."""
    try:
        highwater: int | None = consumer.highwater(tp)
    except Exception:  # not fetched yet, or the assignment is changing
        return None
    return highwater


def position_or_none(consumer: AIOKafkaConsumer, tp: TP) -> int | None:
    """aiokafka's fetch position of ``tp``, the offset after the records it handed out,
    read without waiting (an int read from the consumer's thread); None while it has
    none or the assignment is changing."""
    try:
        state = consumer._subscription._assigned_state(tp)
    except Exception:  # not assigned (any more)
        return None
    position: int | None = state.position if state.has_valid_position else None
    return position


#: How long offsets finished past a committed offset that does not move may last before
#: the partition is read again from that offset (``app.acks.SkippedOffsets``), s.
SKIPPED_OFFSETS_AFTER = 10.0

#: How long finished offsets past a committed offset that does not move may last before
#: it is read again, s. Every agent finishes a partition's events in offset order, so
#: such a gap is a skip as soon as it is seen; the wait only spares a seek for a gap that
#: closes by itself. Offsets read again get ``SKIPPED_OFFSETS_AFTER`` to arrive.
SKIPPED_GAP_AFTER = 2.0


def apply_paused(consumer: AIOKafkaConsumer, paused: Set[TP]) -> None:
    """Make aiokafka fetch none of ``paused`` and every other assigned partition.

    Faust pauses a partition (the changelogs of its active tables, all of them during a
    rebalance) only by no longer taking what aiokafka fetched for it; aiokafka goes on
    fetching it. A fetched record nobody takes holds back every fetch from its broker
    for 100 ms (aiokafka's prefetch backoff), and the router writes changelog records
    all the time: each hop of the pipeline stalled. Runs in the consumer's thread.
    """
    assigned = consumer.assignment()
    # A copy first: ``paused`` is Faust's own set, which the main thread changes.
    wanted = {TopicPartition(tp.topic, tp.partition) for tp in set(paused)} & assigned
    now = consumer.paused()
    if wanted - now:
        consumer.pause(*(wanted - now))
        # What was fetched for them is dropped; their position stays before it, so it
        # is fetched again on resuming.
        records = getattr(getattr(consumer, "_fetcher", None), "_records", {})
        for tp in wanted - now:
            records.pop(tp, None)
    if now - wanted:
        consumer.resume(*(now - wanted))


def _gap_end(gaps: Any, offset: int) -> int:
    """The end of the gap (an interval tree of offsets) at ``offset``, or ``offset``."""
    return max((interval.end for interval in gaps.at(offset)), default=offset)


class _Consumer(aiokafka_driver.Consumer):
    """Faust's consumer, committing only offsets its agents finished (``app.acks.CommitPoints``)
    and reading skipped offsets again (``app.acks.SkippedOffsets``,
    ``app.acks.UndeliveredRecords``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._points = CommitPoints()
        #: gaps before finished offsets, and tails below the high-water mark
        self._skipped = SkippedOffsets(after=SKIPPED_GAP_AFTER)
        self._skipped_tails = SkippedOffsets(after=SKIPPED_OFFSETS_AFTER)
        #: partition -> the offset it was last read again from, and when (monotonic)
        self._read_again_from: dict[TP, tuple[int, float]] = {}
        self._undelivered = UndeliveredRecords(after=SKIPPED_OFFSETS_AFTER)
        #: partition -> the offset after the last record ``getmany`` delivered, or the
        #: offset it is read from
        self._delivered: dict[TP, int] = {}
        #: complete ``getmany`` batches delivered
        self._reads = 0
        #: the batch ``getmany`` is delivering, the generation it was fetched in, and the
        #: seeks to committed offsets before it (``dropped_records``)
        self._batch: Mapping[TP, list[Any]] = {}
        self._batch_generation = 0
        self._batch_seeks = 0
        self._seeks = 0
        #: partition -> how often it was read again; and as it was when the batch came
        self._rereads: dict[TP, int] = {}
        self._batch_rereads: dict[TP, int] = {}

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        in_thread = getattr(self.app, "consumer_thread", True)
        kind = _ConsumerThread if in_thread else _InLoopConsumerThread
        return kind(self, loop=self.loop, beacon=self.beacon)

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        super().pause_partitions(tps)
        self._sync_paused()

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        super().resume_partitions(tps)
        self._sync_paused()

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        await super().on_partitions_assigned(assigned, generation_id)
        # A new assignment starts unpaused in aiokafka; Faust keeps its pauses.
        self._sync_paused()

    def _sync_paused(self) -> None:
        """Pause in aiokafka what Faust pauses (``apply_paused``), in the consumer thread.

        The set is read there, when the change is applied, not here: Faust pauses and
        resumes from both threads, and a copy taken here could be applied after a newer
        one, leaving a partition Faust reads paused in aiokafka.
        """
        thread = self._thread
        consumer = getattr(thread, "_consumer", None)
        loop = getattr(thread, "thread_loop", None)
        if consumer is None or loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(apply_paused, consumer, self._paused_partitions)

    def verify_event_path(self, now: float, tp: TP) -> None:
        # Faust's check logs an error, every few seconds once the worker has run for
        # stream_processing_timeout, for each partition aiokafka sends no fetch for: the
        # ones paused there on purpose (apply_paused) are not stuck.
        if tp in self._paused_partitions:
            return
        super().verify_event_path(now, tp)

    @Service.timer(2.0)
    async def _keep_paused_in_sync(self) -> None:
        # Every change applies itself; this mends one that met an assignment in flux.
        self._sync_paused()

    def ack(self, message: Message) -> bool:
        # Only a tracked message reached an agent: Faust's stream also acks the ones it
        # skips while the flow is suspended. A skipped offset read again and processed
        # is finished here, though Faust counts it acked already.
        if (
            message.tracked
            and not message.acked
            and self.app.topics.acks_enabled_for(message.topic)
        ):
            self._points.finish(message.tp, message.offset)
        acked: bool = super().ack(message)
        return acked

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109 (Faust's)
        records, active = await super()._wait_next_records(timeout)
        self._batch = records or {}
        self._batch_generation = self.app.consumer_generation_id
        self._batch_seeks = self._seeks
        self._batch_rereads = dict(self._rereads)
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (Faust's)
        handed: dict[TP, int] = {}
        async for tp, message in super().getmany(timeout):
            if self._rereads.get(tp, 0) != self._batch_rereads.get(tp, 0):
                # Fetched before the partition was read again from an earlier offset:
                # it comes again, and delivered now it would move Faust's read offset
                # past what is read again, which Faust would then drop.
                continue
            self._delivered[tp] = handed[tp] = message.offset + 1
            done = self._points.finished.get(tp)
            if done and message.offset in done:
                # Read again after a skip: only the skipped records go to the agents.
                continue
            if tp in self._rereads:
                # A record delivered while the seek back was made (one Faust's fetcher
                # loop was handing over) may have moved the read offset past again.
                read = self._read_offset.get(tp)
                if read is not None and message.offset < read:
                    self._read_offset[tp] = message.offset
            yield tp, message
        self._reads += 1
        await self._read_dropped_again(handed)

    async def _read_dropped_again(self, handed: Mapping[TP, int]) -> None:
        """Read again, at once, the records of the batch just delivered that Faust's
        ``getmany`` dropped (``app.acks.dropped_records``); aiokafka counts them
        consumed, and otherwise only ``UndeliveredRecords`` finds them, seconds later."""
        batch, self._batch = self._batch, {}
        dropped = dropped_records(batch, handed)
        if not dropped:
            return
        if (
            self.app.rebalancing
            or self.app.consumer_generation_id != self._batch_generation
            or self._seeks != self._batch_seeks
        ):
            # The assignment changed: the partitions are read from their committed
            # offsets again, which are below anything not delivered.
            self.log.info("records dropped in a rebalance: %s", dropped)
            return
        consumer = getattr(self._thread, "_consumer", None)
        assigned = self.assignment()
        for tp, first in dropped.items():
            if self._rereads.get(tp, 0) != self._batch_rereads.get(tp, 0):
                continue  # read again since: left out on purpose
            start = max(first, self._points.bases.get(tp, first))
            position = position_or_none(consumer, tp) if consumer is not None else None
            if tp not in assigned or position is None or position <= start:
                continue
            self.log.warning(
                "offsets %d to %d of %s were fetched and dropped before its agent saw "
                "them (flow %s); reading them again from %d",
                start,
                position - 1,
                tp,
                "active" if self.flow_active else "stopped",
                start,
            )
            SKIPPED_OFFSETS.labels(topic=tp.topic).inc(position - start)
            await self._read_again(tp, start)

    def _new_offset(self, tp: TP) -> int | None:
        gaps = self._gap.get(tp)
        new = self._points.advance(tp, skip=partial(_gap_end, gaps) if gaps else None)
        if new is not None:
            acked = self._acked[tp]
            acked[:] = [offset for offset in acked if offset >= new]
            index = self._acked_index[tp]
            index.difference_update([offset for offset in index if offset < new])
            if gaps:
                gaps.chop(0, new)
        return new

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # A jump in the offsets read is a gap to skip only where compaction makes gaps;
        # elsewhere it is records dropped in a rebalance, which are read again.
        if any(topic.compacting and tp.topic in topic.topics for topic in self.app.topics):
            await super()._add_gap(tp, offset_from, offset_to)

    async def _read_again(self, tp: TP, offset: int) -> None:
        """Seek ``tp`` back to ``offset``, so that its records from there are delivered
        again (the finished ones are dropped in ``getmany``)."""
        self._rereads[tp] = self._rereads.get(tp, 0) + 1
        # In the consumer's own thread, where aiokafka's fetcher runs.
        await self.seek_wait({tp: offset})
        self._forget_read_offsets({tp: offset})
        self._delivered[tp] = offset

    def _forget_read_offsets(self, offsets: Mapping[TP, int | None]) -> None:
        """Faust's fetcher loop drops every record below the last offset it delivered
        of a partition (``Consumer._read_offset``), which only its own ``seek`` and
        ``perform_seek`` reset, not ``seek_wait``: records read again after a seek to an
        earlier offset were all dropped, and taken for not in the log. This resets it
        as ``seek`` does."""
        for tp, offset in offsets.items():
            self._read_offset[tp] = offset if offset else None

    async def seek_to_committed(self) -> Mapping[TP, int]:
        # Faust's ``perform_seek``, which calls this, resets the read offsets itself.
        committed: Mapping[TP, int] = await super().seek_to_committed()
        await self._rebase(committed)
        return committed

    async def _rebase(self, committed: Mapping[TP, int | None]) -> None:
        """Commit points from the committed offsets read on assignment: for a partition
        with none, its first offset, where the group starts reading it."""
        acking = {
            tp: offset
            for tp, offset in committed.items()
            if self.app.topics.acks_enabled_for(tp.topic)
        }
        unknown = [tp for tp, offset in acking.items() if offset is None or offset < 0]
        first: Mapping[TP, int] = {}
        if unknown:
            try:
                first = await self.earliest_offsets(*unknown)
            except Exception:  # then Faust's rule: from the first offset finished
                self.log.exception("could not read the first offsets of %s", unknown)
        for tp, offset in acking.items():
            base = offset if offset is not None and offset >= 0 else first.get(tp)
            if base is None:
                self._points.bases.pop(tp, None)
            else:
                self._points.rebase(tp, base)
        self._points.retain(acking)
        self._seeks += 1
        self._read_again_from.clear()
        self._delivered = {cast(TP, tp): base for tp, base in self._points.bases.items()}

    @Service.timer(2.0)
    async def _read_skipped_offsets_again(self) -> None:
        if self.app.rebalancing:
            return
        heads = skip_heads(
            self.assignment(),
            committed=self._points.bases,
            finished=self._points.finished,
            # A full in-flight window holds records back in the fetcher too.
            busy={message.tp.topic for message in list(self._unacked_messages)},
            highwater=partial(highwater_or_none, self),
        )
        # A tail below the high-water mark may still be on its way to the agents, a gap
        # before finished offsets cannot be (``SKIPPED_GAP_AFTER``).
        gaps = {tp: head for tp, head in heads.items() if self._points.finished.get(tp)}
        tails = {tp: head for tp, head in heads.items() if tp not in gaps}
        now = time.monotonic()
        stalls = self._skipped.check(gaps, now=now) + self._skipped_tails.check(tails, now=now)
        for partition, committed, first_done in stalls:
            stalled = cast(TP, partition)
            action = read_again_action(
                committed=committed,
                finished=bool(self._points.finished.get(stalled)),
                again=self._read_again_from.get(stalled),
                now=now,
                settle=SKIPPED_OFFSETS_AFTER,
            )
            if action == "wait":
                continue
            if action == "fill":
                # Read again, and still missing: not in the log (transaction markers).
                self.log.warning(
                    "offsets %d to %d of %s are still missing after reading them again; "
                    "committing past them",
                    committed,
                    first_done - 1,
                    stalled,
                )
                self._points.fill(stalled, committed, first_done)
                continue
            self.log.warning(
                "offsets %d to %d of %s were never delivered to its agent; reading "
                "them again from %d",
                committed,
                first_done - 1,
                stalled,
                committed,
            )
            SKIPPED_OFFSETS.labels(topic=stalled.topic).inc(first_done - committed)
            self._read_again_from[stalled] = (committed, now)
            await self._read_again(stalled, committed)
        await self._read_undelivered_again()

    async def _read_undelivered_again(self) -> None:
        """Read again a partition's records fetched and dropped before any agent saw them
        (``app.acks.UndeliveredRecords``): at its tail, nothing finished after them
        shows the gap."""
        consumer = getattr(self._thread, "_consumer", None)
        if consumer is None:  # not started yet, or stopped
            return
        reads: dict[Hashable, tuple[int | None, int | None]] = {
            tp: (self._delivered.get(tp), position_or_none(consumer, tp))
            for tp in self.assignment()
            if self.app.topics.acks_enabled_for(tp.topic)
        }
        for partition, delivered, position in self._undelivered.check(
            reads, now=time.monotonic(), rounds=self._reads
        ):
            tp = cast(TP, partition)
            # Records below the committed offset are finished already.
            start = max(delivered, self._points.bases.get(tp, delivered))
            if start >= position:
                continue
            self.log.warning(
                "offsets %d to %d of %s were fetched but never delivered to its agent; "
                "reading them again from %d",
                start,
                position - 1,
                tp,
                start,
            )
            SKIPPED_OFFSETS.labels(topic=tp.topic).inc(position - start)
            await self._read_again(tp, start)


#: Longest a worker waits for a topic it created to appear in the cluster's metadata, s.
TOPIC_VISIBLE_TIMEOUT = 20.0


def topic_visible(metadata: Mapping[str, Any], topic: str, partitions: int) -> bool:
    """Whether a metadata response (``to_object()``) lists ``topic`` with at least
    ``partitions`` partitions, each with a leader."""
    for entry in metadata.get("topics", []):
        if entry.get("topic") != topic or entry.get("error_code"):
            continue
        leaders = [p.get("leader", -1) for p in entry.get("partitions", [])]
        return len(leaders) >= partitions and all(leader >= 0 for leader in leaders)
    return False


class _Transport(aiokafka_driver.Transport):
    """Faust's transport, with a topic it creates known to the cluster before it is used.

    Apache Kafka (KRaft) makes a new topic's partitions known a moment after it answers
    CreateTopics; Tansu at once. A worker that created its tables' changelogs joined its
    group while they were still unknown, without their partitions, and dead-lettered
    the records it wrote to those tables (Faust's ``PartitionsMismatch``).
    """

    Consumer = _Consumer

    async def _really_create_topic(
        self,
        owner: Service,
        client: Any,
        topic: str,
        partitions: int,
        replication: int,
        **kwargs: Any,
    ) -> None:
        await super()._really_create_topic(owner, client, topic, partitions, replication, **kwargs)
        deadline = time.monotonic() + TOPIC_VISIBLE_TIMEOUT
        request = MetadataRequest([topic], allow_auto_topic_creation=False)
        while time.monotonic() < deadline:
            node = client.get_random_node()
            if node is not None:
                with contextlib.suppress(Exception):  # asked again below
                    response = await asyncio.wait_for(client.send(node, request), 5)
                    if topic_visible(response.to_object(), topic, partitions):
                        return
            await asyncio.sleep(0.1)
        owner.log.warning(
            "topic %r is not in the cluster's metadata %.0f s after its creation",
            topic,
            TOPIC_VISIBLE_TIMEOUT,
        )


class FlowdeskApp(faust.App):
    """A Faust app whose Kafka consumer takes its fetch wait (seconds) as an argument, and
    runs in a thread of its own as Faust's does (``consumer_thread``) or in the app's
    event loop; it logs the broker settings it runs with (``app.kafka_flavour``)."""

    def __init__(
        self,
        id: str,
        *,
        fetch_max_wait: float = 1.5,
        consumer_thread: bool = True,
        broker_tuning: BrokerTuning | None = None,
        broker_info: BrokerInfo | None = None,
        **options: Any,
    ) -> None:
        self.fetch_max_wait = fetch_max_wait
        self.consumer_thread = consumer_thread
        self.broker_tuning = broker_tuning
        self.broker_info = broker_info
        super().__init__(id, **options)

    async def on_first_start(self) -> None:
        await super().on_first_start()
        if self.broker_tuning is not None:
            self.log.info("broker settings: %s", self.broker_tuning)
        if self.broker_info is not None:
            self.log.info("broker API versions aiokafka uses: %s", describe(self.broker_info))

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


def broker_tuning(
    settings: Settings,
) -> tuple[BrokerTuning, BrokerInfo | None]:
    """The settings for the broker's quirks (``app.kafka_flavour``), with what the broker
    said about itself when ``FLOWDESK_KAFKA_FLAVOUR=auto`` had it asked."""
    flavour = settings.kafka_flavour
    info = None
    if flavour == "auto":
        flavour, info = detect(
            settings.bootstrap_servers[0],
            ssl_context=_ssl_context(settings),
            sasl=settings.kafka_security.startswith("sasl"),
        )
    tuned = tuning(
        flavour,
        # 0: not set.
        session_timeout=settings.broker_session_timeout or None,
        heartbeat_interval=settings.broker_heartbeat_interval or None,
        producer_max_batch_size=settings.producer_max_batch_size or None,
        fetch_max_wait=settings.consumer_fetch_max_wait or None,
    )
    return tuned, info


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings``."""
    if settings.table_store == "rocksdb" and find_spec("rocksdict") is None:
        raise ConfigurationError(
            "FLOWDESK_TABLE_STORE=rocksdb needs rocksdict: pip install 'flowdesk[rocksdb]'"
        )
    if settings.kafka_fast_codec:
        kafka_codec.install()
    else:
        kafka_codec.uninstall()
    if settings.kafka_fast_fetch:
        kafka_fetch.install()
    else:
        kafka_fetch.uninstall()
    # Faust creates its datadir without parents.
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    tuned, info = broker_tuning(settings)
    # The flavour's values in place of the quirk settings left at 0.
    settings = settings.model_copy(
        update={
            "broker_session_timeout": tuned.session_timeout,
            "broker_heartbeat_interval": tuned.heartbeat_interval,
            "producer_max_batch_size": tuned.producer_max_batch_size,
            "consumer_fetch_max_wait": tuned.fetch_max_wait,
        }
    )
    return FlowdeskApp(
        settings.app_id,
        fetch_max_wait=settings.consumer_fetch_max_wait,
        consumer_thread=settings.consumer_thread,
        broker_tuning=tuned,
        broker_info=info,
        broker=settings.broker_list,
        broker_credentials=kafka_credentials(settings),
        autodiscover=["agents", "tables", "app.views"],
        origin="app",
        datadir=f"{settings.data_dir}/{settings.app_id}-{settings.web_port}",
        store=table_store.register() if settings.table_store == "memory" else "rocksdb://",
        table_standby_replicas=settings.table_standby_replicas,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replicas,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        producer_max_batch_size=settings.producer_max_batch_size,
        producer_max_request_size=settings.producer_max_request_size,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        # Its logging setup follows FLOWDESK_LOG_FORMAT and FLOWDESK_LOG_LEVEL.
        Worker=FlowdeskWorker,
    )


app = create_app(get_settings())


def main() -> None:
    """Entry point of ``python -m app.main``: the Faust command line."""
    app.main()


if __name__ == "__main__":
    main()
