"""Fixtures: a real broker, a real Redis and a model server, for the whole session.

Each runs as a child process on a free loopback port and is killed by PID at the
end. Workers are started per test module through the ``start_worker`` factory.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import redis.asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from hypothesis import settings as hypothesis_settings

from app.stack import (
    BROKER_START_TIMEOUT,
    BrokerKind,
    ManagedProcess,
    Stack,
    broker_process,
    free_port,
    model_server_process,
    redis_process,
    worker_process,
)

# Property tests draw the same examples on every run, so a failure repeats and a
# green run stays green; explore new examples with --hypothesis-profile=explore.
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("repeatable")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def stack(log_dir: Path) -> Iterator[Stack]:
    with Stack(log_dir=log_dir) as running:
        yield running


#: The broker the integration tests run on: tansu (the default) or kafka (Apache Kafka,
#: which needs Java 17+, and Maven for its first run).
TEST_BROKER = os.environ.get("FLOWDESK_TEST_BROKER", "tansu")


@pytest.fixture(scope="session")
def broker(stack: Stack, log_dir: Path) -> ManagedProcess:
    if TEST_BROKER not in BROKER_START_TIMEOUT:
        raise pytest.UsageError(f"FLOWDESK_TEST_BROKER is tansu or kafka, not {TEST_BROKER!r}")
    kind = cast(BrokerKind, TEST_BROKER)
    return stack.start(
        broker_process(port=free_port(), log_dir=log_dir, kind=kind),
        timeout=BROKER_START_TIMEOUT[kind],
    )


@pytest.fixture(scope="session")
def redis_server(stack: Stack, log_dir: Path) -> ManagedProcess:
    return stack.start(redis_process(port=free_port(), log_dir=log_dir), timeout=30)


@pytest.fixture(scope="session")
def redis_url(redis_server: ManagedProcess) -> str:
    return redis_server.address


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A connection to the session's Redis; tests keep to keys of their own."""
    conn = redis.asyncio.from_url(redis_url)
    yield conn
    await conn.aclose()


@pytest.fixture(scope="session")
def sim(stack: Stack, log_dir: Path) -> ManagedProcess:
    """The simulator backend, 20 ms per answer, no faults unless a test asks."""
    return stack.start(
        model_server_process(
            port=free_port(),
            log_dir=log_dir,
            backend="sim",
            extra_args=["--latency", "fixed:20", "--seed", "7"],
        ),
        timeout=30,
    )


@dataclass
class Cluster:
    """Addresses of the running stack, and the environment a worker needs."""

    broker: ManagedProcess
    redis: ManagedProcess
    model: ManagedProcess
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.broker.address.split("://", 1)[1]


@pytest.fixture(scope="session")
def cluster(
    broker: ManagedProcess,
    redis_server: ManagedProcess,
    sim: ManagedProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Cluster:
    data_dir = tmp_path_factory.mktemp("data")
    env = {
        "FLOWDESK_KAFKA_URL": broker.address,
        "FLOWDESK_REDIS_URL": redis_server.address,
        "FLOWDESK_LLM_BASE_URL": sim.address,
        "FLOWDESK_LLM_MODEL": "flowdesk-sim",
        "FLOWDESK_DATA_DIR": str(data_dir),
    }
    return Cluster(broker=broker, redis=redis_server, model=sim, data_dir=data_dir, env=env)


@pytest.fixture(scope="session")
async def topics(cluster: Cluster) -> None:
    """Every flowdesk topic, created before anything produces."""
    from app.settings import Settings
    from app.topics import ensure_topics

    await ensure_topics(Settings(kafka_url=cluster.broker.address))


StartWorker = Callable[..., ManagedProcess]


@pytest.fixture
def start_worker(cluster: Cluster, topics: None, log_dir: Path) -> Iterator[StartWorker]:
    """Factory: start a worker (own web port), wait until ready; stopped after the test."""
    started: list[ManagedProcess] = []

    def start(**extra_env: str) -> ManagedProcess:
        env = {**cluster.env, **extra_env}
        worker = worker_process(web_port=free_port(), log_dir=log_dir, env=env)
        worker.start()
        started.append(worker)
        worker.wait_healthy(90)
        return worker

    yield start
    for worker in reversed(started):
        worker.stop()


@pytest.fixture
async def producer(cluster: Cluster) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, linger_ms=0)
    await client.start()
    yield client
    await client.stop()


async def send_json(
    producer: AIOKafkaProducer, topic: str, value: Any, *, key: str | None = None
) -> None:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    await producer.send_and_wait(topic, data, key=key.encode() if key is not None else None)


async def collect(
    bootstrap: str,
    topics: list[str],
    *,
    want: Callable[[list[Any]], bool],
    within: float = 60.0,
) -> list[Any]:
    """Read ``topics`` from the beginning until ``want(messages)``, for ``within`` s at most."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    messages: list[Any] = []
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline and not want(messages):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                messages.extend(records)
    finally:
        await consumer.stop()
    return messages


def decoded(codec: Any, messages: Iterable[Any]) -> list[Any]:
    """The records of ``messages`` that ``codec`` can read.

    Topics are shared by every test of a run, and one test writes the Confluent wire
    format, which another test's single-object codec cannot read: skip those.
    """
    from app.errors import DecodeError

    records = []
    for message in messages:
        try:
            records.append(codec.decode(message.value))
        except DecodeError:
            continue
    return records


async def http_json(url: str, method: str = "GET", payload: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.request(method, url, json=payload) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def http_text(url: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url) as resp,
    ):
        return resp.status, await resp.text()


def chat_message(customer_id: str, text: str, *, message_id: str | None = None) -> dict[str, Any]:
    return {
        "message_id": message_id or uuid.uuid4().hex,
        "session_id": f"s-{customer_id}",
        "customer_id": customer_id,
        "text": text,
        "sent_at": "2026-11-25T09:30:00+01:00",
    }


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-full",
        action="store_true",
        help="run the fault suite (marker chaos) at full size, not the reduced one",
    )
    parser.addoption(
        "--chaos-repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each fault-suite test N times in one session, on one broker whose topics "
        "fill up as in a whole run",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: the fault suite (processes killed and restarted mid-stream)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    repeat = metafunc.config.getoption("--chaos-repeat")
    if repeat > 1 and metafunc.definition.get_closest_marker("chaos"):
        metafunc.fixturenames.append("chaos_round")
        metafunc.parametrize("chaos_round", range(repeat))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Integration tests share one stack; keep the cheap unit tests first.
    items.sort(key=lambda item: 1 if item.get_closest_marker("integration") else 0)
