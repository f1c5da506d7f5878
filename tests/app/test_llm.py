"""The model-server client against the simulator: answers and every failure kind."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from factories import make_query, sim_call

from app.errors import DeadlinePassed, InvalidModelOutput, ModelError, ModelUnavailable
from app.llm import LLMClient
from app.modelserver.sim import SimConfig, SimServer, parse_latency
from app.prompts import build_messages, response_format
from app.settings import Settings

QUERY = make_query(query_id="q", text="I want to return order ORD-123456")


@pytest.fixture
async def server() -> AsyncIterator[SimServer]:
    sim = SimServer(config=SimConfig(latency=parse_latency("fixed:5"), seed=1))
    await sim.start()
    yield sim
    await sim.stop()


async def client_for(server: SimServer, **settings: object) -> LLMClient:
    client = LLMClient(settings=Settings(llm_base_url=server.base_url, **settings))
    await client.start()
    return client


async def test_a_completion_carries_content_model_and_latency(server: SimServer) -> None:
    client = await client_for(server, llm_model="flowdesk-sim", llm_api_key="sk-test")
    try:
        completion = await client.complete(build_messages(QUERY), response_format=response_format())
    finally:
        await client.stop()
    assert json.loads(completion.content)["intent"] == "return"
    assert completion.model == "flowdesk-sim"
    assert completion.latency_ms >= 5
    assert completion.completion_tokens > 0


@pytest.mark.parametrize(
    ("changes", "error", "status"),
    [
        ({"error_rate": 1.0}, ModelUnavailable, 500),
        ({"rate_limit_rate": 1.0, "retry_after": 7}, ModelUnavailable, 429),
        ({"malformed_rate": 1.0}, None, None),
    ],
)
async def test_failures_become_model_errors(
    server: SimServer, changes: dict[str, object], error: type | None, status: int | None
) -> None:
    await sim_call(server, "POST", "/_sim/config", changes)
    client = await client_for(server)
    try:
        if error is None:  # malformed: the HTTP call works, the content is not JSON
            completion = await client.complete(build_messages(QUERY))
            with pytest.raises(json.JSONDecodeError):
                json.loads(completion.content)
            return
        with pytest.raises(error) as caught:
            await client.complete(build_messages(QUERY))
    finally:
        await client.stop()
    assert isinstance(caught.value, ModelUnavailable)
    if status == 429:
        assert caught.value.status == 429
        assert caught.value.retry_after == 7
    else:
        assert caught.value.status is not None and caught.value.status >= 500


async def test_a_hang_times_out_as_unavailable(server: SimServer) -> None:
    await sim_call(server, "POST", "/_sim/config", {"hang_rate": 1.0, "hang_seconds": 30})
    client = await client_for(server, llm_timeout=0.3)
    try:
        with pytest.raises(ModelUnavailable, match="Timeout"):
            await client.complete(build_messages(QUERY))
    finally:
        await client.stop()


async def test_connection_refused_is_unavailable() -> None:
    from app.stack import free_port

    client = LLMClient(settings=Settings(llm_base_url=f"http://127.0.0.1:{free_port()}/v1"))
    await client.start()
    try:
        with pytest.raises(ModelUnavailable, match=r"ClientConnectorError|Connect"):
            await client.complete(build_messages(QUERY))
    finally:
        await client.stop()


async def test_a_bad_request_is_not_retryable(server: SimServer) -> None:
    client = await client_for(server)
    try:
        with pytest.raises(ModelError) as caught:
            await client.complete([])  # the server refuses an empty conversation
    finally:
        await client.stop()
    assert not isinstance(caught.value, ModelUnavailable | InvalidModelOutput)


def test_the_client_refuses_a_useless_connection_limit() -> None:
    with pytest.raises(ValueError, match="connection_limit"):
        LLMClient(settings=Settings(), connection_limit=0)


async def test_no_more_requests_are_open_than_the_capacity() -> None:
    config = SimConfig(latency=parse_latency("fixed:50"), seed=1)
    async with SimServer(config=config) as server:
        client = await client_for(server, llm_capacity=2)
        try:
            calls = [asyncio.create_task(client.complete(build_messages(QUERY))) for _ in range(6)]
            await asyncio.sleep(0.02)
            assert client.open_requests == 2, "the other four wait before sending"
            await asyncio.gather(*calls)
            assert client.open_requests == 0
            stats = await sim_call(server, "GET", "/_sim/stats")
        finally:
            await client.stop()
    assert stats["total"] == 6
    assert stats["peak_in_flight"] == 2


async def test_a_query_whose_deadline_passes_while_it_waits_sends_nothing() -> None:
    config = SimConfig(latency=parse_latency("fixed:300"), seed=1)
    async with SimServer(config=config) as server:
        client = await client_for(server, llm_capacity=1)
        try:
            first = asyncio.create_task(client.complete(build_messages(QUERY)))
            await asyncio.sleep(0.02)
            # The only place is taken for 300 ms; this query has 100 ms left.
            with pytest.raises(DeadlinePassed):
                await client.complete(build_messages(QUERY), deadline=time.monotonic() + 0.1)
            await first
            stats = await sim_call(server, "GET", "/_sim/stats")
        finally:
            await client.stop()
    assert stats["total"] == 1


async def test_the_timeout_is_what_is_left_of_the_deadline() -> None:
    config = SimConfig(latency=parse_latency("fixed:500"), seed=1)
    async with SimServer(config=config) as server:
        client = await client_for(server, llm_timeout=20)
        try:
            with pytest.raises(ModelUnavailable, match="TimeoutError") as caught:
                await client.complete(build_messages(QUERY), deadline=time.monotonic() + 0.1)
        finally:
            await client.stop()
    assert not isinstance(caught.value, DeadlinePassed), "it was sent, and timed out"
