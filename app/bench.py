"""``flowdesk bench``: the pipeline against its baselines, measured in one run.

Phases, all against one model simulator at a fixed latency:

1. direct: an HTTP load generator calls the simulator with ``capacity`` requests
   in flight; the upper bound for any pipeline.
2. pipeline: ``count`` chat queries through a real worker (ingest, inference with
   ``capacity`` model requests in flight, router), as fast as they can go.
3. latency: the pipeline at half its capacity (``capacity / 2 / latency`` queries
   per second), for end-to-end latency and what the pipeline adds to the model's.
4. naive: the same pipeline with a window of one query, which awaits each model
   call in turn, as a plain Faust agent would.
5. workers=N (``--scale``): the pipeline phase on N workers of one consumer group,
   each with ``capacity`` model requests in flight, once the group has settled.
6. takeover (``--takeover``): two workers fed at a steady rate; after a third of the
   queries one is SIGKILLed. Measured: how long until the survivor owns every
   partition and is ready, the longest silence in the outcome stream, the latency of
   the queries in flight at the kill (from the kill to each one's outcome), and
   whether every query still got exactly one outcome.

Every pipeline phase runs on a fresh broker and Redis, so no offsets, cache
entries or backlog carry over from one phase to the next. Each phase but the
takeover first runs ``warmup`` queries (at most its own count) the same way and
does not count them: the figures are of a worker in its steady state, and the
cold start is reported apart, as the time to the phase's first outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from app.codecs import make_codec
from app.errors import ConfigurationError, StackError
from app.profile import Sampler, read_collapsed, summary
from app.prompts import build_messages, response_format
from app.records import Escalation, Outcome, Query, SupportResponse
from app.settings import Settings
from app.stack import (
    ManagedProcess,
    Stack,
    broker_process,
    free_port,
    model_server_process,
    redis_process,
    worker_process,
)
from app.status import percentile
from app.topics import (
    CHAT_INBOUND,
    ESCALATIONS,
    OUTCOMES,
    QUERIES,
    RESPONSES,
    SPECS,
    ensure_topics,
)

#: Workers the takeover phase runs (one of them is killed).
TAKEOVER_WORKERS = 2


@dataclass
class PhaseResult:
    name: str
    queries: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    #: Per query: end-to-end latency minus that query's own model call (pipelines only).
    added_ms: list[float] = field(default_factory=list, repr=False)
    cpu_seconds: float | None = None
    escalated: int = 0
    #: Where the worker's CPU went (``--profile``, the pipeline phase): app.profile.summary.
    profile: dict[str, Any] | None = field(default=None, repr=False)
    #: Queries sent and answered before the measured ones, not counted.
    warmup: int = 0
    #: Cold start: from the phase's first query sent to its first outcome, s.
    first_outcome_s: float | None = None
    #: Per hop (``HOPS``), each answered query's time there, ms (pipelines only).
    hops_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)

    @property
    def throughput(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "phase": self.name,
            "queries": self.queries,
            "seconds": round(self.seconds, 3),
            "throughput_qps": round(self.throughput, 2),
            "escalated": self.escalated,
            "warmup": self.warmup,
        }
        if self.first_outcome_s is not None:
            row["first_outcome_s"] = round(self.first_outcome_s, 3)
        for p in (50, 95, 99):
            value = percentile(self.latencies_ms, p)
            row[f"p{p}_ms"] = None if value is None else round(value, 1)
            added = percentile(self.added_ms, p)
            row[f"added_p{p}_ms"] = None if added is None else round(added, 1)
        if self.hops_ms:
            row["hops_ms"] = {
                hop: {
                    f"p{p}": None if (v := percentile(times, p)) is None else round(v, 1)
                    for p in (50, 99)
                }
                for hop, times in self.hops_ms.items()
            }
        if self.cpu_seconds is not None and self.queries:
            row["cpu_s_per_1000"] = round(self.cpu_seconds / self.queries * 1000, 3)
        return row


def _cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU time of a live process, from /proc (Linux)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _cpu_total(processes: Sequence[ManagedProcess]) -> float | None:
    """CPU seconds summed over live processes; None when one cannot be read."""
    seconds = [_cpu_seconds(p.pid) for p in processes]
    return None if any(s is None for s in seconds) else sum(s or 0.0 for s in seconds)


def largest_gap(timestamps_ms: Iterable[int], *, start_ms: int, end_ms: int | None = None) -> float:
    """The longest wait, in seconds, for the next outcome from ``start_ms`` on.

    Only outcomes in ``[start_ms, end_ms)`` count; the first wait is from ``start_ms``
    to the first of them, so a stream that goes silent at ``start_ms`` shows it.
    """
    times = sorted(t for t in timestamps_ms if t >= start_ms and (end_ms is None or t < end_ms))
    return max((b - a for a, b in zip([start_ms, *times], times, strict=False)), default=0) / 1000


def in_flight_latencies(
    sent_ms: dict[str, int], answered_ms: dict[str, int], *, killed_ms: int
) -> tuple[list[float], int]:
    """The queries in flight at a kill: sent before ``killed_ms`` and not answered before it.

    ``answered_ms``: query id -> when its first outcome was written. Returns each
    answered one's wait from the kill to its outcome (ms), and how many got none.
    """
    waits: list[float] = []
    unanswered = 0
    for query_id, sent in sent_ms.items():
        answered = answered_ms.get(query_id)
        if sent >= killed_ms or (answered is not None and answered < killed_ms):
            continue
        if answered is None:
            unanswered += 1
        else:
            waits.append(float(answered - killed_ms))
    return waits, unanswered


def parse_worker_counts(text: str) -> tuple[int, ...]:
    """``--scale``: a comma list of distinct worker counts, such as ``1,2,3``."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigurationError(
            f"--scale takes worker counts separated by commas, such as 1,2,3; got {text!r}"
        ) from None
    if any(n < 1 for n in counts) or len(set(counts)) != len(counts):
        raise ConfigurationError(f"--scale takes distinct worker counts of 1 or more; got {text!r}")
    return counts


async def run_direct(
    *, base_url: str, model: str, count: int, capacity: int, warmup: int = 0
) -> PhaseResult:
    """The upper bound: ``count`` completions with ``capacity`` in flight, measured after
    ``warmup`` more (which open the connections)."""
    fmt = response_format()
    latencies: list[float] = []

    async def one(session: aiohttp.ClientSession, query_id: str, n: int) -> float:
        body = {
            "model": model,
            "messages": build_messages(_query(query_id, n)),
            "response_format": fmt,
            "max_tokens": 256,
        }
        started = time.perf_counter()
        async with session.post(f"{base_url}/chat/completions", json=body) as resp:
            await resp.read()
        return (time.perf_counter() - started) * 1000

    async def run(
        session: aiohttp.ClientSession, name: str, total: int, prefix: str, into: list[float]
    ) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(total):
            queue.put_nowait(n)

        async def loop(bar: tqdm) -> None:
            while not queue.empty():
                n = queue.get_nowait()
                into.append(await one(session, f"{prefix}{n}", n))
                bar.update()

        with tqdm(total=total, desc=name, unit="q", leave=False) as bar:
            await asyncio.gather(*(loop(bar) for _ in range(capacity)))

    connector = aiohttp.TCPConnector(limit=capacity)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if warmup:
            await run(session, "direct warm-up", min(warmup, count), "direct-w", [])
        started = time.perf_counter()
        await run(session, "direct", count, "direct-", latencies)
        elapsed = time.perf_counter() - started
    return PhaseResult(
        name="direct",
        queries=count,
        seconds=elapsed,
        latencies_ms=latencies,
        warmup=min(warmup, count),
    )


def _query(query_id: str, n: int) -> Query:
    return Query(
        query_id=query_id,
        customer_id=f"B{n % 500:04d}",
        channel="chat",
        text=f"Where is my order ORD-{300000 + n}? Reference {query_id}.",
        received_at="2026-11-25T10:00:00+00:00",
        arrived_ms=0,
        source_topic=CHAT_INBOUND,
        source_partition=0,
        source_offset=n,
    )


@dataclass(frozen=True)
class _Outcome:
    query_id: str
    #: When the worker wrote it (the record's timestamp), ms since the epoch.
    timestamp_ms: int
    #: End-to-end latency and what the pipeline added to the model call; None when escalated.
    latency_ms: float | None = None
    added_ms: float | None = None
    #: The query's own model call, ms; None when escalated.
    model_ms: float | None = None


class _Traffic:
    """The bench's side of Kafka: chat queries out, outcomes (responses, escalations) in."""

    def __init__(self, *, bootstrap: str) -> None:
        settings = Settings()
        self.run = uuid.uuid4().hex[:8]
        self._responses = make_codec(SupportResponse, settings)
        self._escalations = make_codec(Escalation, settings)
        self._queries = make_codec(Query, settings)
        self._outcomes = make_codec(Outcome, settings)
        self._bootstrap = bootstrap
        #: query id -> the inbound record's timestamp, ms
        self.sent_ms: dict[str, int] = {}
        self._consumer = AIOKafkaConsumer(
            RESPONSES["chat"],
            ESCALATIONS,
            bootstrap_servers=bootstrap,
            group_id=f"bench-{self.run}",
            auto_offset_reset="earliest",
        )
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)

    async def __aenter__(self) -> _Traffic:
        await self._consumer.start()
        try:
            await self._producer.start()
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()
        await self._consumer.stop()

    def query_id(self, n: int, prefix: str = "") -> str:
        return f"{self.run}-{prefix}{n}"

    async def send(
        self,
        count: int,
        *,
        rate: float | None,
        sent: Callable[[int], None] | None = None,
        prefix: str = "",
    ) -> None:
        """Send ``count`` chat queries, paced at ``rate``/s or all at once; their ids
        are ``query_id(n, prefix)``.

        ``sent(n)`` is called once the ``n``th query has been handed to the producer.
        """
        start = time.monotonic()
        for n in range(count):
            if rate is not None:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            query = _query(self.query_id(n, prefix), n)
            payload = {
                "message_id": query.query_id,
                "session_id": "bench",
                "customer_id": query.customer_id,
                "text": query.text,
                "sent_at": query.received_at,
            }
            # The inbound record's timestamp is where the pipeline's latency starts.
            stamp = int(time.time() * 1000)
            self.sent_ms[query.query_id] = stamp
            await self._producer.send(
                CHAT_INBOUND, json.dumps(payload).encode(), timestamp_ms=stamp
            )
            if sent is not None:
                sent(n + 1)
        await self._producer.flush()

    async def outcomes(self, *, timeout_ms: int = 1000) -> list[_Outcome]:
        """The outcomes that arrived since the last call (waits up to ``timeout_ms``)."""
        found: list[_Outcome] = []
        batch = await self._consumer.getmany(timeout_ms=timeout_ms)
        for records in batch.values():
            for record in records:
                if record.topic == ESCALATIONS:
                    escalation = self._escalations.decode(record.value or b"")
                    found.append(_Outcome(escalation.query_id, record.timestamp))
                    continue
                response = self._responses.decode(record.value or b"")
                found.append(
                    _Outcome(
                        response.query_id,
                        record.timestamp,
                        response.latency_ms,
                        response.latency_ms - response.model_latency_ms,
                        response.model_latency_ms,
                    )
                )
        return found

    async def stage_stamps(
        self, query_ids: set[str], *, quiet_ms: int = 2000
    ) -> dict[str, dict[str, int]]:
        """When each of ``query_ids`` was written to ``flowdesk.queries`` and to
        ``flowdesk.outcomes`` (record timestamps, ms), read from the start of both;
        reading stops once all are found or nothing came for ``quiet_ms``."""
        codecs = {QUERIES: self._queries, OUTCOMES: self._outcomes}
        stamps: dict[str, dict[str, int]] = {QUERIES: {}, OUTCOMES: {}}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            await consumer.topics()  # the metadata, for partitions_for_topic
            consumer.assign(
                [
                    TopicPartition(topic, partition)
                    for topic in codecs
                    for partition in consumer.partitions_for_topic(topic) or ()
                ]
            )
            await consumer.seek_to_beginning()
            while any(len(found) < len(query_ids) for found in stamps.values()):
                batch = await consumer.getmany(timeout_ms=quiet_ms)
                if not batch:
                    break
                for tp, records in batch.items():
                    for record in records:
                        query_id = codecs[tp.topic].decode(record.value or b"").query_id
                        if query_id in query_ids:
                            stamps[tp.topic].setdefault(query_id, record.timestamp)
        finally:
            await consumer.stop()
        return stamps


#: The pipeline's three hops, each from one record's timestamp to the next one's.
HOPS = ("ingest", "inference", "router")


def hop_latencies(
    *,
    inbound: dict[str, int],
    queries: dict[str, int],
    outcomes: dict[str, int],
    responses: dict[str, tuple[int, float]],
) -> dict[str, list[float]]:
    """Per hop, the time each answered query spent there, ms, from record timestamps:
    ingest (inbound to ``flowdesk.queries``), inference without the query's own model
    call (to ``flowdesk.outcomes``) and router (to the response). ``responses``: query
    id -> (the response's timestamp, its model call's latency). Queries missing from any
    topic are left out; the three add up to the query's added latency."""
    hops: dict[str, list[float]] = {hop: [] for hop in HOPS}
    for query_id, (answered, model_ms) in responses.items():
        stamps = (inbound.get(query_id), queries.get(query_id), outcomes.get(query_id))
        if None in stamps:
            continue
        sent, queued, decided = cast(tuple[int, int, int], stamps)
        hops["ingest"].append(queued - sent)
        hops["inference"].append(decided - queued - model_ms)
        hops["router"].append(answered - decided)
    return hops


def _raise_if_failed(task: asyncio.Task[Any]) -> None:
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class _Collected:
    """The outcomes of one batch of bench queries."""

    latencies_ms: list[float] = field(default_factory=list)
    added_ms: list[float] = field(default_factory=list)
    escalated: int = 0
    #: query id -> (the response's timestamp, ms; its model call's latency, ms)
    responses: dict[str, tuple[int, float]] = field(default_factory=dict)
    first_sent: float = 0.0
    #: Kafka timestamps (epoch ms) of the first and the last outcome.
    first_ms: int = 0
    last_ms: int = 0


async def _collect(
    traffic: _Traffic,
    *,
    name: str,
    count: int,
    rate: float | None,
    prefix: str,
    workers: Sequence[ManagedProcess],
    stall_seconds: float,
) -> _Collected:
    """Send ``count`` chat queries (paced at ``rate``/s, or all at once) and wait for all;
    outcomes of other queries (an earlier batch's) are passed over."""
    expected = {traffic.query_id(n, prefix) for n in range(count)}
    got = _Collected(first_sent=time.time())
    answered: set[str] = set()
    sender = asyncio.create_task(traffic.send(count, rate=rate, prefix=prefix))
    progress_at = time.monotonic()
    try:
        with tqdm(total=count, desc=name, unit="q", leave=False) as bar:
            while len(answered) < count:
                for outcome in await traffic.outcomes():
                    if outcome.query_id in answered or outcome.query_id not in expected:
                        continue
                    answered.add(outcome.query_id)
                    if outcome.latency_ms is None or outcome.added_ms is None:
                        got.escalated += 1
                    else:
                        got.latencies_ms.append(outcome.latency_ms)
                        got.added_ms.append(outcome.added_ms)
                        got.responses[outcome.query_id] = (
                            outcome.timestamp_ms,
                            outcome.model_ms or 0.0,
                        )
                    got.first_ms = min(got.first_ms or outcome.timestamp_ms, outcome.timestamp_ms)
                    got.last_ms = max(got.last_ms, outcome.timestamp_ms)
                    progress_at = time.monotonic()
                    bar.update()
                _raise_if_failed(sender)
                if time.monotonic() - progress_at > stall_seconds:
                    raise StackError(
                        f"{name}: {count - len(answered)} of {count} queries have no outcome"
                        f" and none came for {stall_seconds:.0f} s; worker logs: "
                        + ", ".join(str(w.log_path) for w in workers)
                    )
        await sender
    finally:
        await _cancel(sender)
    return got


async def _drive_pipeline(
    *,
    name: str,
    bootstrap: str,
    count: int,
    rate: float | None,
    workers: Sequence[ManagedProcess],
    warmup: int = 0,
    on_measure: Callable[[], None] | None = None,
    stall_seconds: float = 120.0,
) -> PhaseResult:
    """Send ``warmup`` chat queries and wait for them, then measure ``count`` more, sent
    the same way (paced at ``rate``/s, or all at once).

    The warm-up is not counted: it takes the worker from its start (connections to the
    model server and Redis opened as concurrency rises, each topic's metadata fetched,
    code run for the first time) to the steady state the phase measures. How long its
    first query took is kept as the cold start. ``on_measure`` is called as the
    measured queries start.
    """
    async with _Traffic(bootstrap=bootstrap) as traffic:
        collect = partial(
            _collect, traffic, rate=rate, workers=workers, stall_seconds=stall_seconds
        )
        cold = None
        if warmup:
            got = await collect(name=f"{name} warm-up", count=warmup, prefix="w")
            cold = got.first_ms / 1000 - got.first_sent
        if on_measure is not None:
            on_measure()
        cpu_before = _cpu_total(workers)
        got = await collect(name=name, count=count, prefix="")
        cpu_after = _cpu_total(workers)
        stamps = await traffic.stage_stamps(set(got.responses))
        hops = hop_latencies(
            inbound=traffic.sent_ms,
            queries=stamps[QUERIES],
            outcomes=stamps[OUTCOMES],
            responses=got.responses,
        )
    if cold is None:
        cold = got.first_ms / 1000 - got.first_sent
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return PhaseResult(
        name=name,
        queries=count,
        seconds=got.last_ms / 1000 - got.first_sent,
        latencies_ms=got.latencies_ms,
        added_ms=got.added_ms,
        cpu_seconds=cpu,
        escalated=got.escalated,
        warmup=warmup,
        first_outcome_s=cold,
        hops_ms=hops,
    )


async def _owned(session: aiohttp.ClientSession, worker: ManagedProcess) -> set[int] | None:
    """The ``flowdesk.queries`` partitions of a ready worker; None while it is not ready."""
    try:
        async with session.get(worker.address + "ready") as resp:
            if resp.status != 200:
                return None
            body = json.loads(await resp.read())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    owned = set()
    for name in body.get("partitions", []):
        topic, _, partition = str(name).rpartition(":")
        if topic == QUERIES:
            owned.add(int(partition))
    return owned


async def _settle(
    workers: Sequence[ManagedProcess], *, partitions: int, within: float
) -> dict[int, set[int]]:
    """Wait until every worker is ready and together they own each partition once.

    Returns the partitions of ``flowdesk.queries`` each worker (by index) owns. Sending
    before this point would have the first queries wait out a rebalance.
    """
    deadline = time.monotonic() + within
    owners: dict[int, set[int] | None] = {}
    timeout = aiohttp.ClientTimeout(total=1)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < deadline:
            owners = {i: await _owned(session, w) for i, w in enumerate(workers)}
            owned = [p for p in owners.values() if p is not None]
            if len(owned) == len(workers) and sorted(x for p in owned for x in p) == list(
                range(partitions)
            ):
                return {i: p for i, p in owners.items() if p is not None}
            await asyncio.sleep(0.1)
    raise StackError(
        f"{len(workers)} workers did not settle within {within:.0f} s (partitions of "
        f"{QUERIES} owned per worker, None while not ready: {owners}); worker logs: "
        + ", ".join(str(w.log_path) for w in workers)
    )


def _start_group(
    stack: Stack,
    *,
    phase_dir: Path,
    sim: ManagedProcess,
    model: str,
    capacity: int,
    workers: int,
    window: int = 0,
) -> tuple[str, list[ManagedProcess], dict[int, set[int]]]:
    """A fresh broker and Redis, the topics, and ``workers`` workers of one group, settled;
    ``capacity`` model requests in flight each, an inference window of ``window`` queries
    (0: the workers' default).

    Returns the bootstrap address, the workers and the partitions of ``flowdesk.queries``
    each worker (by index) owns.
    """
    broker = stack.start(broker_process(port=free_port(), log_dir=phase_dir), timeout=30)
    redis = stack.start(redis_process(port=free_port(), log_dir=phase_dir), timeout=30)
    settings = Settings(kafka_url=broker.address)
    asyncio.run(ensure_topics(settings))
    env = {
        "FLOWDESK_KAFKA_URL": broker.address,
        "FLOWDESK_REDIS_URL": redis.address,
        "FLOWDESK_LLM_BASE_URL": sim.address,
        "FLOWDESK_LLM_MODEL": model,
        "FLOWDESK_LLM_CAPACITY": str(capacity),
        "FLOWDESK_INFERENCE_WINDOW": str(window),
    }
    ports: list[int] = []
    while len(ports) < workers:
        port = free_port()
        if port not in ports:
            ports.append(port)
    group = [
        worker_process(
            web_port=port,
            log_dir=phase_dir,
            env={**env, "FLOWDESK_DATA_DIR": str(phase_dir / f"data-{port}")},
        )
        for port in ports
    ]
    # Started together: they join the group in one rebalance rather than one each.
    for worker in group:
        worker.start()
        stack.processes.append(worker)
    for worker in group:
        worker.wait_healthy(90)
    partitions = SPECS[QUERIES].partition_count(settings)
    owners = asyncio.run(_settle(group, partitions=partitions, within=120))
    return broker.address.split("://", 1)[1], group, owners


def _pipeline_phase(
    *,
    name: str,
    log_dir: Path,
    sim: ManagedProcess,
    model: str,
    capacity: int,
    count: int,
    rate: float | None,
    warmup: int = 0,
    workers: int = 1,
    window: int = 0,
    profile: bool = False,
) -> PhaseResult:
    phase_dir = log_dir / name
    with Stack(log_dir=phase_dir) as stack:
        bootstrap, group, _ = _start_group(
            stack,
            phase_dir=phase_dir,
            sim=sim,
            model=model,
            capacity=capacity,
            workers=workers,
            window=window,
        )
        drive = partial(
            _drive_pipeline,
            name=name,
            bootstrap=bootstrap,
            count=count,
            rate=rate,
            workers=group,
            warmup=min(warmup, count),
        )
        if not profile or group[0].pid is None:
            return asyncio.run(drive())
        # Only the measured queries are sampled, not the warm-up.
        sampler = Sampler(pid=group[0].pid, output=phase_dir / "profile.txt")
        try:
            result = asyncio.run(drive(on_measure=sampler.start))
        finally:
            if sampler.started:  # not when the warm-up failed
                stacks = sampler.stop()
        result.profile = {"file": str(stacks), **summary(read_collapsed(stacks))}
        return result


async def _run_takeover(
    *,
    bootstrap: str,
    workers: list[ManagedProcess],
    owners: dict[int, set[int]],
    rate: float,
    count: int,
    stall_seconds: float = 60.0,
    linger_seconds: float = 3.0,
) -> dict[str, Any]:
    """Feed the settled group (``owners``: the partitions of each worker) at ``rate``;
    SIGKILL one worker after a third; measure the takeover."""
    partitions = sum(len(owned) for owned in owners.values())
    # The worker with the most partitions: the largest share to take over.
    victim = max(owners, key=lambda i: (len(owners[i]), -i))
    survivors = [w for i, w in enumerate(workers) if i != victim]
    kill_after = max(1, count // 3)
    time_to_kill = asyncio.Event()

    def sent(n: int) -> None:
        if n == kill_after:
            time_to_kill.set()

    async def kill_and_wait() -> tuple[float, float]:
        await time_to_kill.wait()
        killed_at = time.time()
        await asyncio.to_thread(workers[victim].kill)
        await _settle(survivors, partitions=partitions, within=120)
        return killed_at, time.time() - killed_at

    counts: Counter[str] = Counter()
    answered_ms: dict[str, int] = {}
    stamps: list[int] = []
    latencies: list[float] = []
    async with _Traffic(bootstrap=bootstrap) as traffic:
        sender = asyncio.create_task(traffic.send(count, rate=rate, sent=sent))
        takeover = asyncio.create_task(kill_and_wait())
        progress_at = time.monotonic()
        linger_until: float | None = None
        both_done = False
        try:
            with tqdm(total=count, desc="takeover", unit="q", leave=False) as bar:
                while True:
                    for outcome in await traffic.outcomes(timeout_ms=200):
                        if not counts[outcome.query_id]:
                            bar.update()
                            progress_at = time.monotonic()
                        counts[outcome.query_id] += 1
                        answered_ms.setdefault(outcome.query_id, outcome.timestamp_ms)
                        stamps.append(outcome.timestamp_ms)
                        if outcome.latency_ms is not None:
                            latencies.append(outcome.latency_ms)
                    _raise_if_failed(sender)
                    _raise_if_failed(takeover)
                    if not (sender.done() and takeover.done()):
                        continue
                    now = time.monotonic()
                    if not both_done:
                        both_done, progress_at = True, max(progress_at, now)
                    if len(counts) >= count:
                        # All answered: read on a little, to see a late duplicate.
                        linger_until = linger_until or now + linger_seconds
                        if now >= linger_until:
                            break
                    elif now - progress_at > stall_seconds:
                        break
            killed_at, takeover_seconds = takeover.result()
        finally:
            await _cancel(sender, takeover)
        expected = [traffic.query_id(n) for n in range(count)]
        sent_ms = dict(traffic.sent_ms)
    killed_ms = round(killed_at * 1000)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    waits, unanswered = in_flight_latencies(sent_ms, answered_ms, killed_ms=killed_ms)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "workers": len(workers),
        "rate_qps": round(rate, 2),
        "queries": count,
        "stream_seconds": round(count / rate, 1),
        "killed_after": kill_after,
        "killed_at_ms": killed_ms,
        "victim_partitions": sorted(owners[victim]),
        "takeover_seconds": round(takeover_seconds, 2),
        "max_gap_seconds": round(largest_gap(stamps, start_ms=killed_ms), 2),
        "max_gap_before_kill_seconds": round(
            largest_gap(stamps, start_ms=min(stamps, default=killed_ms), end_ms=killed_ms), 2
        ),
        "lost": sum(1 for q in expected if not counts[q]),
        "duplicated": sum(1 for q in expected if counts[q] > 1),
        "p50_ms": None if p50 is None else round(p50, 1),
        "p99_ms": None if p99 is None else round(p99, 1),
        # The queries in flight at the kill, from the kill to their outcome.
        "in_flight": len(waits) + unanswered,
        "in_flight_unanswered": unanswered,
        "in_flight_p50_ms": rounded(percentile(waits, 50)),
        "in_flight_p99_ms": rounded(percentile(waits, 99)),
        "in_flight_max_ms": rounded(max(waits, default=None)),
    }


def _takeover_phase(
    *, log_dir: Path, sim: ManagedProcess, model: str, capacity: int, rate: float, count: int
) -> dict[str, Any]:
    phase_dir = log_dir / "takeover"
    with Stack(log_dir=phase_dir) as stack:
        bootstrap, group, owners = _start_group(
            stack,
            phase_dir=phase_dir,
            sim=sim,
            model=model,
            capacity=capacity,
            workers=TAKEOVER_WORKERS,
        )
        return asyncio.run(
            _run_takeover(bootstrap=bootstrap, workers=group, owners=owners, rate=rate, count=count)
        )


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    count: int = 2000
    latency_ms: float = 200.0
    capacity: int = 64
    naive_count: int = 50
    latency_count: int = 1000
    #: Worker counts of the scale-out phases.
    scale: tuple[int, ...] = ()
    #: Run the takeover phase: two workers, one SIGKILLed under steady traffic.
    takeover: bool = False
    #: Steady rate of the takeover phase, q/s; None: half of one worker's capacity.
    takeover_rate: float | None = None
    #: How long the takeover phase sends, s; the kill comes after a third of it.
    takeover_seconds: float = 30.0
    #: Sample the worker of the pipeline phase with py-spy (app.profile).
    profile: bool = False
    #: Queries each phase runs first, the same way, and does not count (at most its own
    #: count): they take a freshly started worker to its steady state.
    warmup: int = 200

    def __post_init__(self) -> None:
        for name in ("count", "capacity", "naive_count", "latency_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be 0 or more")
        if self.warmup < 0:
            raise ValueError("warmup must be 0 or more")
        if any(n < 1 for n in self.scale) or len(set(self.scale)) != len(self.scale):
            raise ValueError("scale must hold distinct worker counts of 1 or more")
        if self.takeover_rate is not None and self.takeover_rate <= 0:
            raise ValueError("takeover_rate must be above 0")
        if self.takeover_seconds <= 0:
            raise ValueError("takeover_seconds must be above 0")

    @property
    def half_capacity_rate(self) -> float:
        """Half of what one worker's window can carry: ``capacity / 2 / latency``, q/s."""
        return self.capacity / 2 / max(self.latency_ms / 1000, 0.001)


def run_bench(config: BenchConfig, *, log_dir: Path | None = None) -> dict[str, Any]:
    """Run every phase; return the results (also what ``--json`` writes)."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="flowdesk-bench-"))
    model = "flowdesk-sim"
    results: list[PhaseResult] = []
    scaled: dict[int, PhaseResult] = {}
    takeover: dict[str, Any] | None = None
    half_rate = config.half_capacity_rate
    with Stack(log_dir=log_dir) as stack:
        sim = stack.start(
            model_server_process(
                port=free_port(),
                log_dir=log_dir,
                backend="sim",
                extra_args=["--latency", f"fixed:{config.latency_ms:g}", "--model-name", model],
            ),
            timeout=30,
        )
        results.append(
            asyncio.run(
                run_direct(
                    base_url=sim.address,
                    model=model,
                    count=config.count,
                    capacity=config.capacity,
                    warmup=config.warmup,
                )
            )
        )
        phase = partial(
            _pipeline_phase, log_dir=log_dir, sim=sim, model=model, warmup=config.warmup
        )
        results.append(
            phase(
                name="pipeline",
                capacity=config.capacity,
                count=config.count,
                rate=None,
                profile=config.profile,
            )
        )
        results.append(
            phase(
                name="pipeline@half",
                capacity=config.capacity,
                count=config.latency_count,
                rate=half_rate,
            )
        )
        results.append(
            phase(name="naive", capacity=1, window=1, count=config.naive_count, rate=None)
        )
        for workers in config.scale:
            scaled[workers] = phase(
                name=f"workers={workers}",
                capacity=config.capacity,
                count=config.count,
                rate=None,
                workers=workers,
            )
        if config.takeover:
            rate = config.takeover_rate or half_rate
            takeover = _takeover_phase(
                log_dir=log_dir,
                sim=sim,
                model=model,
                capacity=config.capacity,
                rate=rate,
                count=max(3, round(rate * config.takeover_seconds)),
            )
    direct, pipeline, half, naive = results
    report: dict[str, Any] = {
        "config": asdict(config),
        "half_capacity_rate_qps": round(half_rate, 2),
        "phases": [r.summary() for r in [*results, *scaled.values()]],
        "ratios": {
            "pipeline_vs_direct_throughput": round(pipeline.throughput / direct.throughput, 3),
            "pipeline_vs_naive_throughput": round(pipeline.throughput / naive.throughput, 2),
            "added_p99_ms_at_half_capacity": half.summary()["added_p99_ms"],
        },
    }
    if scaled:
        report["cpu_count"] = os.cpu_count()
    if 1 in scaled:
        for workers, result in scaled.items():
            if workers > 1:
                report["ratios"][f"throughput_{workers}_vs_1"] = round(
                    result.throughput / scaled[1].throughput, 2
                )
    if takeover is not None:
        report["takeover"] = takeover
    if pipeline.profile is not None:
        report["profile"] = pipeline.profile
    report["logs"] = str(log_dir)
    return report


def format_table(report: dict[str, Any]) -> str:
    """One table for people: every phase, then the ratios."""
    columns = [
        ("phase", "phase", 14),
        ("queries", "queries", 8),
        ("throughput_qps", "q/s", 9),
        ("p50_ms", "p50 ms", 8),
        ("p95_ms", "p95 ms", 8),
        ("p99_ms", "p99 ms", 8),
        ("added_p50_ms", "added p50", 10),
        ("added_p99_ms", "added p99", 10),
        ("cpu_s_per_1000", "CPU s/1k", 9),
        ("escalated", "escalated", 9),
    ]
    lines = ["  ".join(f"{title:>{width}}" for _, title, width in columns)]
    for row in report["phases"]:
        cells = []
        for key, _, width in columns:
            value = row.get(key)
            cells.append(f"{'-' if value is None else value:>{width}}")
        lines.append("  ".join(cells))
    cfg = report["config"]
    ratios = report["ratios"]
    lines.append("")
    lines.append(
        f"model latency {cfg['latency_ms']:g} ms, capacity {cfg['capacity']}, "
        f"half-capacity rate {report['half_capacity_rate_qps']} q/s"
    )
    lines.append(
        f"pipeline / direct throughput: {ratios['pipeline_vs_direct_throughput']:.1%}   "
        f"pipeline / naive throughput: {ratios['pipeline_vs_naive_throughput']}x"
    )
    lines.append(
        f"added p99 at half capacity: {ratios['added_p99_ms_at_half_capacity']} ms"
        "   (added = end-to-end latency, inbound Kafka timestamp to response,"
        " minus the query's own model call)"
    )
    half = next((row for row in report["phases"] if row["phase"] == "pipeline@half"), None)
    if half and half.get("hops_ms"):
        hops = ", ".join(
            f"{hop} {times['p50']}/{times['p99']}" for hop, times in half["hops_ms"].items()
        )
        lines.append(
            f"added latency at half capacity by hop, p50/p99 ms: {hops}"
            "   (record timestamps; inference without the model call)"
        )
    cold = ", ".join(
        f"{row['phase']} {row['first_outcome_s']} s"
        for row in report["phases"]
        if row.get("first_outcome_s") is not None
    )
    lines.append(
        f"each phase first ran min({cfg['warmup']}, its queries) warm-up queries, not"
        f" counted; first outcome after the worker started: {cold or '-'}"
    )
    scale = [
        f"{key.split('_')[1]} workers {value}x"
        for key, value in ratios.items()
        if key.startswith("throughput_") and key.endswith("_vs_1")
    ]
    if cfg["latency_ms"] == 0:
        lines.append(
            f"pipeline ceiling (model answers at once): {report['phases'][1]['throughput_qps']}"
            " q/s on one worker"
        )
    if scale:
        lines.append(
            f"throughput against 1 worker: {', '.join(scale)}"
            f"   (all workers share this machine's {report.get('cpu_count') or '?'} cores"
            " with the broker, Redis, simulator and bench; CPU s/1k sums the workers)"
        )
    takeover = report.get("takeover")
    if takeover:
        lines.append(
            f"takeover: {takeover['workers']} workers at {takeover['rate_qps']} q/s, one"
            f" SIGKILLed (partitions {takeover['victim_partitions']}) after"
            f" {takeover['killed_after']} of {takeover['queries']} queries: the others own"
            f" every partition and are ready {takeover['takeover_seconds']} s later;"
            f" longest gap in outcomes {takeover['max_gap_seconds']} s"
            f" ({takeover['max_gap_before_kill_seconds']} s before the kill);"
            f" lost {takeover['lost']}, duplicated {takeover['duplicated']}"
        )
        lines.append(
            f"  {takeover['in_flight']} queries in flight at the kill, from the kill to"
            f" their outcome: p50 {takeover['in_flight_p50_ms']} ms,"
            f" p99 {takeover['in_flight_p99_ms']} ms, max {takeover['in_flight_max_ms']} ms;"
            f" {takeover['in_flight_unanswered']} unanswered"
        )
        sent_after_kill = takeover["stream_seconds"] * (
            1 - takeover["killed_after"] / takeover["queries"]
        )
        if takeover["takeover_seconds"] > sent_after_kill:
            lines.append(
                "  (the stream ended before the takeover did, so the gap includes time"
                " without traffic: raise --takeover-seconds)"
            )
    profile = report.get("profile")
    if profile:
        lines.append(
            f"profile of the pipeline worker ({profile['samples']} samples; {profile['file']}):"
        )
        packages = ", ".join(f"{name} {pct}%" for name, pct in profile["packages"].items())
        lines.append(f"  own time by package: {packages}")
        for key, title in (("own", "own time"), ("total", "flowdesk's, with callees")):
            lines.append(f"  top functions, {title}:")
            lines.extend(
                f"    {row['percent']:5.1f}%  {row['function']} ({row['where']})"
                for row in profile[key]
            )
    return "\n".join(lines)
