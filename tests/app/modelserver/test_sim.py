"""Tests of the model simulator: latency parsing, canned answers, config, and the HTTP server."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.answers import parse_answer
from app.modelserver import SimConfig, SimServer, parse_latency
from app.modelserver.answers import (
    classify_intent,
    customer_text,
    find_order_id,
    simulate_answer,
    simulate_answer_json,
)
from app.modelserver.sim import Latency

REPO = Path(__file__).resolve().parents[3]


def _chat(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "whatever-the-client-asks",
        "messages": [
            {"role": "system", "content": "You are a support bot."},
            {"role": "user", "content": text},
        ],
        **extra,
    }


@asynccontextmanager
async def _sim(**config: Any) -> AsyncIterator[tuple[SimServer, aiohttp.ClientSession]]:
    config.setdefault("latency", parse_latency("fixed:0"))
    server = SimServer(config=SimConfig(**config))
    await server.start()
    try:
        # limit=0: the default pool of 100 connections would serialise big bursts.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            yield server, session
    finally:
        await server.stop()


async def _complete(
    server: SimServer, session: aiohttp.ClientSession, text: str = "hello", **extra: Any
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with session.post(f"{server.base_url}/chat/completions", json=_chat(text, **extra)) as r:
        return r.status, await r.json(), r


# --- latency --------------------------------------------------------------------------


def test_parse_fixed_latency() -> None:
    latency = parse_latency("fixed:200")
    assert latency == Latency(kind="fixed", params=(200.0,))
    assert latency.sample(random.Random(1)) == pytest.approx(0.2)
    assert str(latency) == "fixed:200"


def test_parse_latency_tolerates_case_and_spaces() -> None:
    assert parse_latency("  Uniform: 10 , 20 ") == Latency(kind="uniform", params=(10.0, 20.0))


def test_uniform_latency_stays_in_bounds_and_varies() -> None:
    latency = parse_latency("uniform:10,20")
    rng = random.Random(3)
    samples = [latency.sample(rng) for _ in range(500)]
    assert all(0.010 <= s <= 0.020 for s in samples)
    assert max(samples) - min(samples) > 0.008
    assert str(latency) == "uniform:10,20"


def test_lognormal_latency_has_the_given_median() -> None:
    latency = parse_latency("lognormal:100,0.5")
    rng = random.Random(5)
    samples = [latency.sample(rng) for _ in range(4000)]
    assert statistics.median(samples) == pytest.approx(0.100, rel=0.08)
    assert max(samples) > 0.2  # a tail, unlike fixed latency
    assert str(latency) == "lognormal:100,0.5"


def test_same_seed_gives_the_same_latencies() -> None:
    latency = parse_latency("lognormal:50,1")
    first = [latency.sample(random.Random(9)) for _ in range(3)]
    second = [latency.sample(random.Random(9)) for _ in range(3)]
    assert first == second


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "fixed",
        "fixed:",
        "fixed:abc",
        "fixed:1,2",
        "fixed:-1",
        "fixed:nan",
        "fixed:inf",
        "uniform:5",
        "uniform:20,10",
        "lognormal:0,1",
        "lognormal:100",
        "gauss:1,2",
        "200",
    ],
)
def test_bad_latency_is_a_clear_value_error(spec: str) -> None:
    with pytest.raises(ValueError, match=r"latency|fixed:MS"):
        parse_latency(spec)


def test_bad_latency_says_which_forms_work() -> None:
    with pytest.raises(ValueError, match=r"fixed:MS.*uniform:.*lognormal:"):
        parse_latency("gauss:1,2")


# --- canned answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I want to return my shoes, order ORD-12345", "return"),
        ("Can I get a refund? I was charged twice.", "refund"),
        ("Where is my order? It has not arrived yet", "order_status"),
        ("Can I track my parcel?", "order_status"),
        ("How much is shipping to Canada?", "shipping"),
        ("Does this jacket come in size M?", "product_question"),
        ("I forgot my password and can't log in", "account"),
        ("This is the worst service, totally unacceptable", "complaint"),
        ("Let me talk to a human please", "human_request"),
        ("Hello there", "other"),
    ],
)
def test_intent_from_keywords(text: str, intent: str) -> None:
    assert classify_intent(text)[0] == intent
    assert simulate_answer(text)["intent"] == intent


def test_return_with_order_id_proposes_a_label() -> None:
    answer = simulate_answer("Hi, I'd like to return the blue lamp from ORD-12345, it's broken.")
    assert answer["intent"] == "return"
    assert answer["actions"] == [{"type": "return_label", "order_id": "ORD-12345", "detail": ""}]
    assert "ORD-12345" in answer["answer"]


def test_return_without_order_id_asks_for_it() -> None:
    answer = simulate_answer("I want to return this")
    assert [a["type"] for a in answer["actions"]] == ["request_info"]
    assert answer["actions"][0]["order_id"] is None
    assert "order number" in answer["answer"]


def test_refund_with_a_return_proposes_both() -> None:
    actions = simulate_answer("Please refund ORD-777 and I'll return the item")["actions"]
    assert [(a["type"], a["order_id"]) for a in actions] == [
        ("return_label", "ORD-777"),
        ("refund_review", "ORD-777"),
    ]


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("ORD-12345 is late", "ORD-12345"),
        ("my order ord 55501 is late", "ORD-55501"),
        ("order #98765 never came", "ORD-98765"),
        ("order number 4242 please", "ORD-4242"),
        ("I ordered 3 items", None),
        ("no order here", None),
    ],
)
def test_order_id_extraction(text: str, order_id: str | None) -> None:
    assert find_order_id(text) == order_id


def test_only_the_customer_block_is_classified() -> None:
    # The pipeline's prompt names every intent; only the tagged customer text counts.
    prompt = (
        "Classify as return, refund, shipping or complaint.\n"
        "Channel: email\n<customer_message>\nDo you have this in red colour?\n</customer_message>"
    )
    assert customer_text(prompt) == "Do you have this in red colour?"
    assert simulate_answer(prompt)["intent"] == "product_question"


@pytest.mark.parametrize(
    "text",
    ["return ORD-1234", "hi", "I'm angry, where is my order #5555?", 'quote " and \\ backslash'],
)
def test_answer_json_is_what_the_pipeline_parses(text: str) -> None:
    content = simulate_answer_json(text)
    parsed = parse_answer(content)
    assert parsed.intent == simulate_answer(text)["intent"]
    assert parsed.answer.strip()
    assert 0.0 <= parsed.confidence <= 1.0
    assert simulate_answer_json(text) == content  # deterministic


def test_confidence_grows_with_evidence() -> None:
    vague = simulate_answer("hello")["confidence"]
    clear = simulate_answer("refund my money back for ORD-12345")["confidence"]
    assert vague < clear <= 0.95


# --- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("error_rate", 1.5),
        ("error_rate", -0.1),
        ("hang_rate", float("nan")),
        ("malformed_rate", "0.5"),
        ("rate_limit_rate", True),
        ("retry_after", -1),
        ("retry_after", 1.5),
        ("hang_seconds", -1),
        ("hang_seconds", float("inf")),
        ("latency", "fixed:10"),
        ("model", ""),
        ("seed", "abc"),
        ("log_limit", 0),
    ],
)
def test_sim_config_rejects_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        SimConfig(**{field: value})


def test_fault_rates_may_not_add_up_above_one() -> None:
    SimConfig(error_rate=0.5, malformed_rate=0.5)
    with pytest.raises(ValueError, match=r"add up to 1\.1"):
        SimConfig(error_rate=0.6, malformed_rate=0.5)


def test_config_json_and_updates() -> None:
    config = SimConfig()
    assert config.to_json()["latency"] == "fixed:50"
    updated = config.updated({"latency": "uniform:1,2", "error_rate": 1, "retry_after": 3.0})
    assert updated.latency == parse_latency("uniform:1,2")
    assert updated.error_rate == 1
    assert updated.retry_after == 3 and isinstance(updated.retry_after, int)
    assert config.error_rate == 0.0  # frozen: the original is unchanged
    with pytest.raises(ValueError, match="log_path"):
        config.updated({"log_path": "/tmp/x"})
    with pytest.raises(ValueError, match="latency"):
        config.updated({"latency": 5})


# --- server ---------------------------------------------------------------------------


async def test_models_and_health() -> None:
    async with _sim(model="sim-x") as (server, session):
        async with session.get(f"{server.base_url}/models") as r:
            assert r.status == 200
            assert await r.json() == {
                "object": "list",
                "data": [{"id": "sim-x", "object": "model", "owned_by": "flowdesk-sim"}],
            }
        async with session.get(f"{server.url}/health") as r:
            assert (r.status, await r.json()) == (200, {"status": "ok"})


async def test_completion_has_the_openai_shape_and_json_content() -> None:
    async with _sim(model="sim-x") as (server, session):
        text = "I want to return order ORD-12345"
        status, body, _ = await _complete(server, session, text)
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "sim-x"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int) and abs(body["created"] - time.time()) < 60
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    answer = parse_answer(content)
    assert answer.intent == "return"
    assert [(a.type, a.order_id) for a in answer.actions] == [("return_label", "ORD-12345")]
    usage = body["usage"]
    prompt_chars = len("You are a support bot.") + len(text)
    assert usage["prompt_tokens"] == prompt_chars // 4 + 1
    assert usage["completion_tokens"] == len(content) // 4 + 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_content_parts_are_read_as_text() -> None:
    async with _sim() as (server, session):
        payload = {"messages": [{"role": "user", "content": [{"type": "text", "text": "refund"}]}]}
        async with session.post(f"{server.base_url}/chat/completions", json=payload) as r:
            body = await r.json()
    assert json.loads(body["choices"][0]["message"]["content"])["intent"] == "refund"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"model": "m"}', "messages"),
        (b'{"messages": []}', "messages"),
        (b'{"messages": ["hi"]}', "messages"),
        (json.dumps(_chat("hi", stream=True)).encode(), "stream"),
    ],
)
async def test_bad_requests_get_an_openai_style_400(data: bytes, message: str) -> None:
    async with _sim() as (server, session):
        async with session.post(f"{server.base_url}/chat/completions", data=data) as r:
            assert r.status == 400
            error = (await r.json())["error"]
        async with session.get(f"{server.url}/_sim/stats") as r:
            stats = await r.json()
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"
    assert stats["rejected"] == 1 and stats["total"] == 0


async def test_error_rate_one_gives_server_errors() -> None:
    async with _sim(error_rate=1.0, seed=1) as (server, session):
        results = [await _complete(server, session) for _ in range(20)]
    statuses = {status for status, _, _ in results}
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    assert all(body["error"]["type"] == "server_error" for _, body, _ in results)


async def test_rate_limit_gives_429_with_retry_after() -> None:
    async with _sim(rate_limit_rate=1.0, retry_after=7) as (server, session):
        status, body, response = await _complete(server, session)
    assert status == 429
    assert response.headers["Retry-After"] == "7"
    assert body["error"]["code"] == "rate_limit_exceeded"


async def test_malformed_content_is_not_json() -> None:
    async with _sim(malformed_rate=1.0) as (server, session):
        status, body, _ = await _complete(server, session, "return ORD-12345")
    assert status == 200
    content = body["choices"][0]["message"]["content"]
    assert content.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


async def test_hang_makes_the_client_time_out() -> None:
    async with _sim(hang_rate=1.0, hang_seconds=5) as (server, session):
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await _complete_with_timeout(server, session, 0.3)
        assert time.monotonic() - started < 2
        requests = await _get_json(session, f"{server.url}/_sim/requests")
        assert [r["outcome"] for r in requests["requests"]] == ["hang"]
        # The client gave up: its handler is cancelled, not left sleeping 5 s.
        for _ in range(50):
            if (await _get_json(session, f"{server.url}/_sim/stats"))["in_flight"] == 0:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the hanging request stayed in flight after the client left")
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 3


async def _complete_with_timeout(
    server: SimServer, session: aiohttp.ClientSession, seconds: float
) -> None:
    timeout = aiohttp.ClientTimeout(total=seconds)
    url = f"{server.base_url}/chat/completions"
    async with session.post(url, json=_chat("hi"), timeout=timeout) as r:
        await r.read()


async def _get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as r:
        assert r.status == 200
        return await r.json()


async def test_latency_is_applied() -> None:
    async with _sim(latency=parse_latency("fixed:300")) as (server, session):
        started = time.monotonic()
        status, _, _ = await _complete(server, session)
        elapsed = time.monotonic() - started
    assert status == 200
    assert 0.3 <= elapsed < 1.5


async def test_request_log_records_and_clears(tmp_path: Path) -> None:
    log_path = tmp_path / "sim.jsonl"
    async with _sim(log_path=str(log_path)) as (server, session):
        before = time.time()
        for text in ("first", "second"):
            await _complete(server, session, text)
        log = (await _get_json(session, f"{server.url}/_sim/requests"))["requests"]
        assert [entry["messages"][-1]["content"] for entry in log] == ["first", "second"]
        assert all(entry["outcome"] == "ok" and entry["status"] == 200 for entry in log)
        assert all(entry["model"] == "whatever-the-client-asks" for entry in log)
        assert all(before - 1 <= entry["received_at"] <= time.time() for entry in log)
        async with session.delete(f"{server.url}/_sim/requests") as r:
            assert r.status == 200
        assert (await _get_json(session, f"{server.url}/_sim/requests"))["requests"] == []
        await _complete(server, session, "third")
        log = (await _get_json(session, f"{server.url}/_sim/requests"))["requests"]
        assert [entry["messages"][-1]["content"] for entry in log] == ["third"]
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [line["messages"][-1]["content"] for line in lines] == ["first", "second", "third"]


async def test_request_log_is_bounded() -> None:
    async with _sim(log_limit=3) as (server, session):
        for i in range(5):
            await _complete(server, session, f"msg {i}")
        log = (await _get_json(session, f"{server.url}/_sim/requests"))["requests"]
        stats = await _get_json(session, f"{server.url}/_sim/stats")
    assert [entry["messages"][-1]["content"] for entry in log] == ["msg 2", "msg 3", "msg 4"]
    assert stats["total"] == 5


async def test_config_endpoint_changes_behaviour() -> None:
    async with _sim() as (server, session):
        config_url = f"{server.url}/_sim/config"
        assert (await _get_json(session, config_url))["error_rate"] == 0.0
        assert (await _complete(server, session))[0] == 200

        async with session.post(config_url, json={"error_rate": 1.0}) as r:
            assert r.status == 200
            assert (await r.json())["error_rate"] == 1.0
        assert (await _complete(server, session))[0] >= 500
        assert server.config.error_rate == 1.0

        async with session.post(config_url, json={"error_rate": 0, "latency": "fixed:250"}) as r:
            assert (await r.json())["latency"] == "fixed:250"
        started = time.monotonic()
        assert (await _complete(server, session))[0] == 200
        assert time.monotonic() - started >= 0.25

        for bad in ({"error_rate": 2}, {"latency": "soon"}, {"log_path": "x"}, [1]):
            async with session.post(config_url, json=bad) as r:
                assert r.status == 400, bad
                assert (await r.json())["error"]["message"]
        assert (await _get_json(session, config_url))["latency"] == "fixed:250"


async def test_stats_count_outcomes_and_reset() -> None:
    async with _sim(error_rate=0.5, seed=11) as (server, session):
        statuses = [(await _complete(server, session))[0] for _ in range(40)]
        stats = await _get_json(session, f"{server.url}/_sim/stats")
        async with session.delete(f"{server.url}/_sim/stats") as r:
            reset = await r.json()
    errors = sum(status >= 500 for status in statuses)
    assert 0 < errors < 40
    assert stats["outcomes"]["error"] == errors
    assert stats["outcomes"]["ok"] == 40 - errors
    assert stats["total"] == 40 and stats["in_flight"] == 0
    assert reset["total"] == 0


async def test_same_seed_repeats_the_fault_sequence() -> None:
    async def outcomes(seed: int) -> list[int]:
        config = {"error_rate": 0.3, "rate_limit_rate": 0.2, "malformed_rate": 0.2, "seed": seed}
        async with _sim(**config) as (server, session):
            return [(await _complete(server, session))[0] for _ in range(30)]

    first, second, other = await outcomes(42), await outcomes(42), await outcomes(43)
    assert first == second
    assert first != other
    assert len(set(first)) > 2


async def test_concurrent_requests_are_not_serialised() -> None:
    async with _sim(latency=parse_latency("fixed:200")) as (server, session):
        started = time.monotonic()
        results = await asyncio.gather(*(_complete(server, session) for _ in range(200)))
        elapsed = time.monotonic() - started
        stats = await _get_json(session, f"{server.url}/_sim/stats")
    assert [status for status, _, _ in results] == [200] * 200
    assert elapsed < 5
    assert stats["peak_in_flight"] >= 100
    assert stats["outcomes"]["ok"] == 200 and stats["in_flight"] == 0


async def test_server_start_stop_are_idempotent() -> None:
    server = SimServer(config=SimConfig())
    with pytest.raises(RuntimeError, match="start"):
        _ = server.port
    await server.stop()
    await server.start()
    port = server.port
    await server.start()
    assert server.port == port and port > 0
    assert server.base_url == f"http://127.0.0.1:{port}/v1"
    await server.stop()
    await server.stop()


async def test_busy_port_says_what_to_do() -> None:
    async with SimServer(config=SimConfig()) as first:
        second = SimServer(config=SimConfig(), port=first.port)
        with pytest.raises(OSError, match="choose another port"):
            await second.start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_sim_serves_until_a_signal(signum: signal.Signals) -> None:
    port = _free_port()
    code = (
        "from app.modelserver import SimConfig, run_sim; "
        f"run_sim(config=SimConfig(model='cli-sim'), host='127.0.0.1', port={port})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        body = _wait_for_json(f"http://127.0.0.1:{port}/v1/models", proc)
        assert body["data"][0]["id"] == "cli-sim"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert f"http://127.0.0.1:{port}/v1" in out.decode()
    assert b"Traceback" not in err


def _wait_for_json(url: str, proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early: {proc.communicate()[1].decode()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return json.load(r)
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{url} did not answer within 20 s")
