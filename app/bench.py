"""``flowdesk bench``: the pipeline against its baselines, measured in one run.

Phases, all against one model simulator at a fixed latency:

1. direct: an HTTP load generator calls the simulator with ``capacity`` requests
   in flight; the upper bound for any pipeline.
2. pipeline: ``count`` chat queries through a real worker (ingest, inference with
   an in-flight window of ``capacity``, router), as fast as they can go.
3. latency: the pipeline at half its capacity (``capacity / 2 / latency`` queries
   per second), for end-to-end latency and what the pipeline adds to the model's.
4. naive: the same pipeline with a window of one, which awaits each model call
   in turn, as a plain Faust agent would.

Every pipeline phase runs on a fresh broker and Redis, so no offsets, cache
entries or backlog carry over from one phase to the next.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tqdm import tqdm

from app.codecs import make_codec
from app.prompts import build_messages, response_format
from app.records import Query, SupportResponse
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
from app.topics import CHAT_INBOUND, ESCALATIONS, RESPONSES, ensure_topics


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
        }
        for p in (50, 95, 99):
            value = percentile(self.latencies_ms, p)
            row[f"p{p}_ms"] = None if value is None else round(value, 1)
            added = percentile(self.added_ms, p)
            row[f"added_p{p}_ms"] = None if added is None else round(added, 1)
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


async def run_direct(*, base_url: str, model: str, count: int, capacity: int) -> PhaseResult:
    """The upper bound: ``count`` completions with ``capacity`` in flight."""
    fmt = response_format()
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        body = {
            "model": model,
            "messages": build_messages(_query(f"direct-{n}", n)),
            "response_format": fmt,
            "max_tokens": 256,
        }
        started = time.perf_counter()
        async with session.post(f"{base_url}/chat/completions", json=body) as resp:
            await resp.read()
        latencies.append((time.perf_counter() - started) * 1000)

    async def loop(session: aiohttp.ClientSession, bar: tqdm) -> None:
        while not queue.empty():
            await one(session, queue.get_nowait())
            bar.update()

    connector = aiohttp.TCPConnector(limit=capacity)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        with tqdm(total=count, desc="direct", unit="q", leave=False) as bar:
            started = time.perf_counter()
            await asyncio.gather(*(loop(session, bar) for _ in range(capacity)))
            elapsed = time.perf_counter() - started
    return PhaseResult(name="direct", queries=count, seconds=elapsed, latencies_ms=latencies)


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


async def _drive_pipeline(
    *,
    name: str,
    bootstrap: str,
    count: int,
    rate: float | None,
    worker: ManagedProcess,
) -> PhaseResult:
    """Send ``count`` chat queries (paced at ``rate``/s, or all at once) and wait for all."""
    codec = make_codec(SupportResponse, Settings())
    run = uuid.uuid4().hex[:8]
    consumer = AIOKafkaConsumer(
        RESPONSES["chat"],
        ESCALATIONS,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{run}",
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    cpu_before = _cpu_seconds(worker.pid)
    latencies: list[float] = []
    added: list[float] = []
    escalated = 0
    last_ms = 0

    async def send() -> None:
        start = time.monotonic()
        for n in range(count):
            if rate is not None:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            query = _query(f"{run}-{n}", n)
            payload = {
                "message_id": query.query_id,
                "session_id": "bench",
                "customer_id": query.customer_id,
                "text": query.text,
                "sent_at": query.received_at,
            }
            await producer.send(CHAT_INBOUND, json.dumps(payload).encode())
        await producer.flush()

    first_sent = time.time()
    sender = asyncio.create_task(send())
    seen = 0
    try:
        with tqdm(total=count, desc=name, unit="q", leave=False) as bar:
            while seen < count:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        if record.topic == ESCALATIONS:
                            escalated += 1
                        else:
                            response = codec.decode(record.value or b"")
                            latencies.append(response.latency_ms)
                            added.append(response.latency_ms - response.model_latency_ms)
                        last_ms = max(last_ms, record.timestamp)
                        seen += 1
                        bar.update()
                if sender.done() and sender.exception():
                    raise sender.exception()  # type: ignore[misc]
        await sender
    finally:
        await producer.stop()
        await consumer.stop()
    cpu_after = _cpu_seconds(worker.pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return PhaseResult(
        name=name,
        queries=count,
        seconds=last_ms / 1000 - first_sent,
        latencies_ms=latencies,
        added_ms=added,
        cpu_seconds=cpu,
        escalated=escalated,
    )


def _pipeline_phase(
    *,
    name: str,
    log_dir: Path,
    sim: ManagedProcess,
    model: str,
    capacity: int,
    count: int,
    rate: float | None,
) -> PhaseResult:
    with Stack(log_dir=log_dir / name) as stack:
        broker = stack.start(broker_process(port=free_port(), log_dir=log_dir / name), timeout=30)
        redis = stack.start(redis_process(port=free_port(), log_dir=log_dir / name), timeout=30)
        env = {
            "FLOWDESK_KAFKA_URL": broker.address,
            "FLOWDESK_REDIS_URL": redis.address,
            "FLOWDESK_LLM_BASE_URL": sim.address,
            "FLOWDESK_LLM_MODEL": model,
            "FLOWDESK_LLM_CAPACITY": str(capacity),
            "FLOWDESK_DATA_DIR": str(log_dir / name / "data"),
        }
        bootstrap = broker.address.split("://", 1)[1]
        asyncio.run(ensure_topics(Settings(kafka_url=broker.address)))
        worker = stack.start(
            worker_process(web_port=free_port(), log_dir=log_dir / name, env=env), timeout=90
        )
        return asyncio.run(
            _drive_pipeline(name=name, bootstrap=bootstrap, count=count, rate=rate, worker=worker)
        )


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    count: int = 2000
    latency_ms: float = 200.0
    capacity: int = 64
    naive_count: int = 50
    latency_count: int = 1000

    def __post_init__(self) -> None:
        for name in ("count", "capacity", "naive_count", "latency_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be 0 or more")


def run_bench(config: BenchConfig, *, log_dir: Path | None = None) -> dict[str, Any]:
    """Run every phase; return the results (also what ``--json`` writes)."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="flowdesk-bench-"))
    model = "flowdesk-sim"
    results: list[PhaseResult] = []
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
                    base_url=sim.address, model=model, count=config.count, capacity=config.capacity
                )
            )
        )
        phase = partial(_pipeline_phase, log_dir=log_dir, sim=sim, model=model)
        results.append(
            phase(name="pipeline", capacity=config.capacity, count=config.count, rate=None)
        )
        half_rate = config.capacity / 2 / max(config.latency_ms / 1000, 0.001)
        results.append(
            phase(
                name="pipeline@half",
                capacity=config.capacity,
                count=config.latency_count,
                rate=half_rate,
            )
        )
        results.append(phase(name="naive", capacity=1, count=config.naive_count, rate=None))
    rows = [r.summary() for r in results]
    direct, pipeline, half, naive = results
    return {
        "config": asdict(config),
        "half_capacity_rate_qps": round(half_rate, 2),
        "phases": rows,
        "ratios": {
            "pipeline_vs_direct_throughput": round(pipeline.throughput / direct.throughput, 3),
            "pipeline_vs_naive_throughput": round(pipeline.throughput / naive.throughput, 2),
            "added_p99_ms_at_half_capacity": half.summary()["added_p99_ms"],
        },
        "logs": str(log_dir),
    }


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
    return "\n".join(lines)
