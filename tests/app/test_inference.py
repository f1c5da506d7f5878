"""The resilient model call against real simulators: retries, breaker, fallback, deadline."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from factories import make_query, sim_call
from prometheus_client import REGISTRY

from app.cache import ResultCache
from app.catalog import Endpoint, ModelCatalog
from app.inference import Inferencer
from app.llm import LLMClient
from app.modelserver.sim import SimConfig, SimServer, parse_latency
from app.records import Query
from app.resilience import CircuitBreaker, RetryPolicy
from app.settings import Settings


def query(n: int = 0) -> Query:
    return make_query(
        query_id=f"q{n}", text=f"Where is my order ORD-{100000 + n}?", source_offset=n
    )


@pytest.fixture
async def sims() -> AsyncIterator[tuple[SimServer, SimServer]]:
    primary = SimServer(config=SimConfig(model="primary-m", latency=parse_latency("fixed:5")))
    fallback = SimServer(config=SimConfig(model="fallback-m", latency=parse_latency("fixed:5")))
    await primary.start()
    await fallback.start()
    yield primary, fallback
    await primary.stop()
    await fallback.stop()


@pytest.fixture
async def client() -> AsyncIterator[LLMClient]:
    llm = LLMClient(settings=Settings(llm_timeout=0.5))
    await llm.start()
    yield llm
    await llm.stop()


async def calls(sim: SimServer) -> int:
    return len((await sim_call(sim, "GET", "/_sim/requests"))["requests"])


def endpoint(
    sim: SimServer,
    name: str,
    *,
    consecutive_failures: int = 3,
    failure_rate: float = 0.5,
    cooldown: float = 60,
    fallback: bool = False,
) -> Endpoint:
    return Endpoint(
        name=name,
        base_url=sim.base_url,
        model=sim.config.model,
        version=f"{name}-v",
        api_key="",
        breaker=CircuitBreaker(
            name=name,
            consecutive_failures=consecutive_failures,
            failure_rate=failure_rate,
            cooldown=cooldown,
        ),
        fallback=fallback,
    )


def inferencer(
    client: LLMClient,
    primary: SimServer,
    fallback: SimServer | None = None,
    *,
    attempts: int = 3,
    deadline: float = 5.0,
    consecutive_failures: int = 3,
    failure_rate: float = 0.5,
    cache: ResultCache | None = None,
) -> Inferencer:
    return Inferencer(
        client=client,
        catalog=ModelCatalog(
            defaults=[
                endpoint(
                    primary,
                    "primary",
                    consecutive_failures=consecutive_failures,
                    failure_rate=failure_rate,
                ),
                *([endpoint(fallback, "fallback", fallback=True)] if fallback else []),
            ]
        ),
        retry=RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.05),
        deadline=deadline,
        rng=random.Random(0),
        cache=cache,
    )


async def test_an_answer_records_model_and_version(sims, client) -> None:
    primary, _ = sims
    outcome = await inferencer(client, primary).answer(query())
    assert outcome.route == "response"
    assert outcome.model == "primary-m"
    assert outcome.model_version == "primary-v"
    assert outcome.text
    assert outcome.model_latency_ms > 0


async def test_transient_errors_are_retried(sims, client) -> None:
    primary, _ = sims
    await sim_call(primary, "POST", "/_sim/config", {"error_rate": 0.5, "seed": 3})
    # A breaker that never opens here: this test is about retries alone.
    subject = inferencer(client, primary, attempts=8, consecutive_failures=50, failure_rate=1.0)
    outcomes = [await subject.answer(query(n)) for n in range(20)]
    assert all(o.route == "response" for o in outcomes), "every query survives 50% 5xx"
    assert await calls(primary) > 20, "some needed more than one attempt"


async def test_the_fallback_takes_over_when_the_primary_is_down(sims, client) -> None:
    primary, fallback = sims
    await sim_call(primary, "POST", "/_sim/config", {"error_rate": 1.0})
    subject = inferencer(client, primary, fallback)
    outcomes = [await subject.answer(query(n)) for n in range(10)]
    assert all(o.route == "response" for o in outcomes)
    assert all(o.model == "fallback-m" and o.model_version == "fallback-v" for o in outcomes)
    assert subject.endpoints[0].breaker.state == "open"
    assert await calls(primary) == 3, "once open, the primary gets no more calls"
    assert await calls(fallback) == 10


async def test_everything_down_escalates_within_the_deadline(sims, client) -> None:
    primary, fallback = sims
    for sim in sims:
        await sim_call(sim, "POST", "/_sim/config", {"error_rate": 1.0})
    subject = inferencer(client, primary, fallback, attempts=50, deadline=1.0)
    started = time.monotonic()
    outcome = await subject.answer(query())
    assert outcome.route == "escalation"
    assert outcome.reason == "model_unavailable"
    assert time.monotonic() - started < 1.5


async def test_a_hang_times_out_and_a_late_answer_is_ignored(sims, client) -> None:
    primary, _ = sims
    await sim_call(primary, "POST", "/_sim/config", {"hang_rate": 1.0, "hang_seconds": 2})
    subject = inferencer(client, primary, attempts=2, deadline=3.0)
    started = time.monotonic()
    outcome = await subject.answer(query())
    elapsed = time.monotonic() - started
    assert outcome.route == "escalation" and outcome.reason == "model_unavailable"
    assert elapsed < 1.5, "two 0.5 s timeouts, not two 2 s hangs"


async def test_retry_after_is_honoured(sims, client) -> None:
    primary, _ = sims
    await sim_call(primary, "POST", "/_sim/config", {"rate_limit_rate": 1.0, "retry_after": 1})
    subject = Inferencer(
        client=client,
        catalog=ModelCatalog(defaults=[endpoint(primary, "primary", consecutive_failures=10)]),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=5),
        deadline=5,
    )
    started = time.monotonic()
    outcome = await subject.answer(query())
    assert outcome.reason == "model_unavailable"
    assert time.monotonic() - started >= 1.0, "waited Retry-After before the second attempt"
    assert await calls(primary) == 2


async def test_invalid_output_is_asked_again_then_escalated(sims, client) -> None:
    primary, _ = sims
    await sim_call(primary, "POST", "/_sim/config", {"malformed_rate": 1.0})
    outcome = await inferencer(client, primary).answer(query())
    assert outcome.route == "escalation"
    assert outcome.reason == "invalid_model_output"
    assert await calls(primary) == 2, "asked exactly twice"


async def test_an_open_breaker_without_fallback_delays_until_it_half_opens(sims, client) -> None:
    primary, _ = sims
    await sim_call(primary, "POST", "/_sim/config", {"error_rate": 1.0})
    opened = asyncio.Event()
    breaker = CircuitBreaker(
        name="primary",
        consecutive_failures=2,
        cooldown=0.5,
        on_change=lambda _, state: opened.set() if state == "open" else None,
    )
    subject = Inferencer(
        client=client,
        catalog=ModelCatalog(
            defaults=[
                Endpoint(
                    name="primary",
                    base_url=primary.base_url,
                    model=primary.config.model,
                    version="v",
                    api_key="",
                    breaker=breaker,
                )
            ]
        ),
        retry=RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.02),
        deadline=5,
    )
    pending = asyncio.create_task(subject.answer(query()))
    await asyncio.wait_for(opened.wait(), timeout=5)
    await sim_call(primary, "POST", "/_sim/config", {"error_rate": 0.0})  # the outage ends
    outcome = await pending
    assert outcome.route == "response", "answered once the breaker half-opened"
    assert breaker.state == "closed"
    assert await calls(primary) == 3, "two failures, then one trial that succeeded"


async def test_rate_limit_answers_do_not_open_the_breaker(sims, client) -> None:
    primary, _ = sims
    await sim_call(primary, "POST", "/_sim/config", {"rate_limit_rate": 1.0, "retry_after": 0})
    subject = inferencer(client, primary, attempts=3, consecutive_failures=1)
    outcome = await subject.answer(query())
    assert outcome.reason == "model_unavailable"
    assert subject.endpoints[0].breaker.state == "closed", "a 429 means the server is up"
    assert await calls(primary) == 3


async def test_queries_out_of_time_waiting_for_a_request_do_not_open_the_breaker(sims) -> None:
    primary, _ = sims
    await sim_call(primary, "POST", "/_sim/config", {"latency": "fixed:400"})
    llm = LLMClient(settings=Settings(llm_capacity=1))
    await llm.start()
    try:
        subject = inferencer(llm, primary, deadline=0.2, consecutive_failures=2)
        first, *waiting = await asyncio.gather(*(subject.answer(query(n)) for n in range(3)))
    finally:
        await llm.stop()
    assert first.reason == "model_unavailable", "its own request timed out at the deadline"
    assert [o.reason for o in waiting] == ["model_unavailable"] * 2
    assert await calls(primary) == 1, "the two that waited sent nothing"
    assert subject.endpoints[0].breaker.state == "closed", "one failure, the server's"


def variant(sim: SimServer, version: str, **fields: object) -> dict:
    return {"name": "support", "version": version, "base_url": sim.base_url, **fields}


async def test_a_table_variant_sends_its_parameters_and_is_recorded_on_the_answer(
    sims, client
) -> None:
    primary, _ = sims
    table = {
        b"support@7": variant(
            primary, "7", model="served-name", params={"temperature": 0.9, "max_tokens": 77}
        )
    }
    subject = inferencer(client, primary)
    subject.catalog.source = table.items
    subject.catalog.refresh(force=True)
    outcome = await subject.answer(query())
    assert (outcome.model, outcome.model_version) == ("support", "7")
    request = (await sim_call(primary, "GET", "/_sim/requests"))["requests"][-1]
    assert request["model"] == "served-name"
    assert request["params"]["temperature"] == 0.9
    assert request["params"]["max_tokens"] == 77


async def test_a_variant_removed_mid_request_still_answers_its_queries(sims, client) -> None:
    primary, fallback = sims
    await sim_call(primary, "POST", "/_sim/config", {"latency": "fixed:400"})
    table = {b"support@1": variant(primary, "1")}
    subject = inferencer(client, primary)
    subject.catalog.source = table.items
    subject.catalog.refresh(force=True)
    in_flight = [asyncio.create_task(subject.answer(query(n))) for n in range(5)]
    await asyncio.sleep(0.1)
    table.clear()
    table[b"support@2"] = variant(fallback, "2")
    subject.catalog.refresh(force=True)
    after = await subject.answer(query(99))
    before = await asyncio.gather(*in_flight)
    assert {(o.route, o.model_version) for o in before} == {("response", "1")}
    assert (after.route, after.model_version) == ("response", "2")
    assert await calls(primary) == 5 and await calls(fallback) == 1


def duplicate_calls() -> float:
    return REGISTRY.get_sample_value("flowdesk_duplicate_llm_calls_total") or 0.0


async def test_a_replay_reads_the_cache_and_a_repeated_call_is_counted(
    sims, client, redis_client: redis.asyncio.Redis
) -> None:
    primary, _ = sims
    prefix = f"test:inference:{uuid.uuid4().hex}:"
    subject = inferencer(client, primary, cache=ResultCache(redis=redis_client, prefix=prefix))
    calls_before, duplicates_before = await calls(primary), duplicate_calls()

    first = await subject.answer(query(1))
    replay = await subject.answer(query(1))
    assert await calls(primary) == calls_before + 1  # the replay was read from the cache
    assert replay.text == first.text
    assert duplicate_calls() == duplicates_before

    # Once the answer has left the cache, a replay calls the model again: a duplicate.
    await redis_client.delete(*await redis_client.keys(f"{prefix}result:*"))
    await subject.answer(query(1))
    assert await calls(primary) == calls_before + 2
    assert duplicate_calls() == duplicates_before + 1
    # Another query's first call is not one.
    await subject.answer(query(2))
    assert duplicate_calls() == duplicates_before + 1
