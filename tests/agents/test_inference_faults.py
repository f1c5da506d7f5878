"""The inference stage under faults, on a real stack: nothing lost, nothing doubled.

Each test runs its own simulator(s) with the faults it needs, and real workers.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

import aiohttp
import pytest
from conftest import Cluster, StartWorker, chat_message, collect, http_json, send_json

from app.codecs import make_codec
from app.records import Escalation, SupportResponse
from app.settings import Settings
from app.stack import ManagedProcess, Stack, free_port, model_server_process
from app.topics import CHAT_INBOUND, DLQ, ESCALATIONS, RESPONSES

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

RESPONSE = make_codec(SupportResponse, Settings())
ESCALATION = make_codec(Escalation, Settings())

# Short timeouts and backoffs keep the hang and retry paths fast in tests.
FAST = {
    "FLOWDESK_LLM_TIMEOUT": "0.5",
    "FLOWDESK_LLM_DEADLINE": "10",
    "FLOWDESK_LLM_MAX_ATTEMPTS": "6",
    "FLOWDESK_LLM_BACKOFF_BASE": "0.05",
    "FLOWDESK_LLM_BACKOFF_MAX": "0.5",
    "FLOWDESK_BREAKER_COOLDOWN": "0.5",
    "FLOWDESK_LLM_CAPACITY": "32",
}


@pytest.fixture
def sims(log_dir) -> object:
    stack = Stack(log_dir=log_dir)

    def start(*args: str, name: str = "flowdesk-sim") -> ManagedProcess:
        extra = ["--model-name", name, *args]
        proc = model_server_process(
            port=free_port(), log_dir=log_dir, backend="sim", extra_args=extra
        )
        return stack.start(proc, timeout=30)

    yield start
    stack.stop()


def query_id(message) -> str:
    """The query id of an outcome or a dead letter (dead letters carry the inbound JSON)."""
    if message.topic == ESCALATIONS:
        return ESCALATION.decode(message.value).query_id
    if message.topic == DLQ:
        found = re.search(rb'"message_id": "([0-9a-f]+)"', message.value or b"")
        return found.group(1).decode() if found else ""
    return RESPONSE.decode(message.value).query_id


async def send_queries(producer, count: int, *, customers: int = 20) -> dict[str, str]:
    run = uuid.uuid4().hex[:6]
    sent: dict[str, str] = {}
    for i in range(count):
        customer = f"C-{run}-{i % customers}"
        message = chat_message(customer, f"Please help with order ORD-{200000 + i}, run {run}.")
        sent[message["message_id"]] = customer
        await send_json(producer, CHAT_INBOUND, message)
    return sent


async def outcomes_of(
    cluster: Cluster, sent: dict[str, str], *, within: float
) -> tuple[Counter[str], list[Any]]:
    topics = [RESPONSES["chat"], ESCALATIONS, DLQ]

    def complete(messages: list) -> bool:
        return {query_id(m) for m in messages} >= sent.keys()

    messages = await collect(cluster.bootstrap, topics, want=complete, within=within)
    # Read once more after everything arrived, to catch late duplicates.
    messages = await collect(cluster.bootstrap, topics, want=lambda _: False, within=3)
    return Counter(qid for qid in (query_id(m) for m in messages) if qid in sent), messages


async def test_every_query_ends_exactly_once_under_model_faults(
    cluster: Cluster, start_worker: StartWorker, producer, sims
) -> None:
    sim = sims(
        "--latency",
        "uniform:10,60",
        "--error-rate",
        "0.2",
        "--hang-rate",
        "0.1",
        "--hang-seconds",
        "3",
        "--rate-limit-rate",
        "0.05",
        "--retry-after",
        "1",
        "--malformed-rate",
        "0.05",
        "--seed",
        "11",
    )
    start_worker(FLOWDESK_LLM_BASE_URL=sim.address, **FAST)
    sent = await send_queries(producer, 200)
    counts, messages = await outcomes_of(cluster, sent, within=150)

    missing = sent.keys() - counts.keys()
    doubled = {qid: n for qid, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} queries have no outcome"
    assert not doubled, f"queries with more than one outcome: {doubled}"
    routes = Counter(m.topic for m in messages if query_id(m) in sent)
    # With retries most survive the faults; the rest are escalated, none dead-lettered.
    assert routes[RESPONSES["chat"]] >= 150, routes
    assert routes[DLQ] == 0, routes
    status, stats = await http_json(sim.address.removesuffix("/v1") + "/_sim/stats")
    assert status == 200
    assert sum(stats["outcomes"].values()) > 200, "faults were injected and retried"


async def test_fallback_takes_over_while_the_primary_is_down(
    cluster: Cluster, start_worker: StartWorker, producer, sims
) -> None:
    primary = sims("--latency", "fixed:5", "--error-rate", "1.0", name="primary-model")
    fallback = sims("--latency", "fixed:5", name="fallback-model")
    worker = start_worker(
        **{
            **FAST,
            "FLOWDESK_BREAKER_COOLDOWN": "30",
            "FLOWDESK_LLM_BASE_URL": primary.address,
            "FLOWDESK_LLM_MODEL": "primary-model",
            "FLOWDESK_LLM_FALLBACK_BASE_URL": fallback.address,
            "FLOWDESK_LLM_FALLBACK_MODEL": "fallback-model",
            "FLOWDESK_LLM_FALLBACK_MODEL_VERSION": "fb-7",
        }
    )
    sent = await send_queries(producer, 40)
    counts, messages = await outcomes_of(cluster, sent, within=90)
    assert set(counts) == set(sent) and set(counts.values()) == {1}
    answers = [RESPONSE.decode(m.value) for m in messages if m.topic == RESPONSES["chat"]]
    answers = [a for a in answers if a.query_id in sent]
    assert len(answers) == 40, "the fallback answered every query"
    assert {(a.model, a.model_version) for a in answers} == {("fallback-model", "fb-7")}
    _, primary_log = await http_json(primary.address.removesuffix("/v1") + "/_sim/requests")
    assert len(primary_log["requests"]) < 40, "an open breaker spares the primary"
    async with aiohttp.ClientSession() as session, session.get(worker.address + "metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert re.search(r'flowdesk_breaker_state\{endpoint="primary"\} 2\.0', text), text[:2000]


async def test_the_redis_rate_limit_holds_across_two_workers(
    cluster: Cluster, start_worker: StartWorker, producer, sims
) -> None:
    sim = sims("--latency", "fixed:5")
    limited = {**FAST, "FLOWDESK_LLM_BASE_URL": sim.address, "FLOWDESK_LLM_RPM": "1200"}
    start_worker(**limited)
    start_worker(**limited)
    sent = await send_queries(producer, 160, customers=40)
    counts, _ = await outcomes_of(cluster, sent, within=120)
    assert set(counts) == set(sent)
    _, log = await http_json(sim.address.removesuffix("/v1") + "/_sim/requests")
    times = sorted(r["received_at"] for r in log["requests"])
    assert len(times) >= 160
    # The steady part: skip the first second (the burst allowance), measure the rest.
    steady = [t for t in times if t >= times[0] + 1.0]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    assert abs(rate - 20.0) / 20.0 < 0.05, f"measured {rate:.2f} requests/s against 20/s"
