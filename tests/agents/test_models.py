"""Model management at run time, on a real stack: rollout, sticky split, drain, bad input.

Definitions go to ``support.models`` exactly as ``flowdesk models`` sends them; the
workers are never restarted. Every definition a test makes is removed again at the
end, so the other tests keep the settings' model.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

import pytest
from conftest import Cluster, StartWorker, chat_message, collect, decoded, http_json, send_json

from app import modelctl
from app.catalog import ModelDefinition
from app.codecs import make_codec
from app.dlq import header_dict
from app.records import SupportResponse
from app.settings import Settings
from app.stack import ManagedProcess, Stack, free_port, model_server_process
from app.topics import CHAT_INBOUND, DLQ, MODELS, RESPONSES

pytestmark = pytest.mark.integration

RESPONSE = make_codec(SupportResponse, Settings())


@pytest.fixture
def sims(log_dir) -> object:
    stack = Stack(log_dir=log_dir)

    def start(name: str, latency: str) -> ManagedProcess:
        extra = ["--model-name", name, "--latency", latency]
        proc = model_server_process(
            port=free_port(), log_dir=log_dir, backend="sim", extra_args=extra
        )
        return stack.start(proc, timeout=30)

    yield start
    stack.stop()


@pytest.fixture
async def models(cluster: Cluster) -> AsyncIterator[Callable[..., object]]:
    """Define variants of a model named for this test; all removed afterwards."""
    settings = Settings(kafka_url=cluster.broker.address)
    name = f"support-{uuid.uuid4().hex[:6]}"
    defined: set[str] = set()

    async def define(version: str, base_url: str, **fields: object) -> ModelDefinition:
        definition = ModelDefinition(name=name, version=version, base_url=base_url, **fields)
        await modelctl.define(settings, definition)
        defined.add(version)
        return definition

    define.name = name  # type: ignore[attr-defined]
    define.settings = settings  # type: ignore[attr-defined]
    yield define
    for version in defined:
        await modelctl.remove(settings, name, version)


async def serving(
    workers: list[ManagedProcess], expected: dict[str, float], within: float = 20
) -> None:
    """Wait until every worker's ``/status`` lists exactly these variants and weights."""
    deadline = time.monotonic() + within
    for worker in workers:
        seen: object = None
        while time.monotonic() < deadline:
            _, status = await http_json(f"{worker.address}status")
            seen = {m["endpoint"]: m["weight"] for m in status["models"]}
            if seen == expected:
                break
            await asyncio.sleep(0.3)
        else:
            raise AssertionError(f"worker {worker.name} serves {seen}, not {expected}")


async def ask(
    cluster: Cluster, producer, customers: list[str], tag: str, *, within: float = 60
) -> dict[str, list[tuple[str, str]]]:
    """One query per customer; (model, version) of each answer, per customer."""
    sent = {}
    for customer in customers:
        message = chat_message(customer, f"Where is my parcel? {tag}")
        sent[message["message_id"]] = customer
        await send_json(producer, CHAT_INBOUND, message, key=customer)

    def done(messages: list) -> bool:
        return {r.query_id for r in decoded(RESPONSE, messages)} >= sent.keys()

    messages = await collect(cluster.bootstrap, [RESPONSES["chat"]], want=done, within=within)
    answers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for response in decoded(RESPONSE, messages):
        if response.query_id in sent:
            answers[response.customer_id].append((response.model, response.model_version))
    assert sum(len(a) for a in answers.values()) == len(sent), "one answer per query"
    return answers


async def test_a_rollout_splits_traffic_sticky_per_customer_and_drains_without_loss(
    cluster: Cluster, start_worker: StartWorker, producer, sims, models
) -> None:
    old = sims("model-old", "fixed:20")
    new = sims("model-new", "fixed:20")
    # Two workers: the definitions reach both through the global table.
    workers = [start_worker(), start_worker()]
    name = models.name
    customers = [f"C-models-{uuid.uuid4().hex[:4]}-{i}" for i in range(24)]

    await models("1", old.address)
    await serving(workers, {f"{name}@1": 1.0})
    first = await ask(cluster, producer, customers, "first")
    assert {a for answers in first.values() for a in answers} == {(name, "1")}

    # Roll out version 2 beside version 1, half the traffic each.
    await models("2", new.address)
    await serving(workers, {f"{name}@1": 1.0, f"{name}@2": 1.0})
    second = await ask(cluster, producer, customers + customers, "second")
    for customer, answers in second.items():
        assert len(set(answers)) == 1, f"{customer} was answered by {answers}"
    versions = {answers[0][1] for answers in second.values()}
    assert versions == {"1", "2"}, "both versions take a share"

    # Drain version 1 while its model is slow and queries are in flight on it.
    await http_json(
        old.address.removesuffix("/v1") + "/_sim/config", "POST", {"latency": "fixed:1500"}
    )
    on_old = [c for c, answers in second.items() if answers[0][1] == "1"]
    in_flight = asyncio.create_task(ask(cluster, producer, on_old, "in-flight"))
    await asyncio.sleep(0.8)  # sent and inside the worker's window
    await models("1", old.address, weight=0)
    drained = await in_flight
    assert {a for answers in drained.values() for a in answers} == {(name, "1")}, (
        "queries in flight when version 1 was drained are answered by it"
    )
    await serving(workers, {f"{name}@1": 0.0, f"{name}@2": 1.0})
    after = await ask(cluster, producer, on_old, "after")
    assert {a for answers in after.values() for a in answers} == {(name, "2")}


async def test_a_bad_definition_is_dead_lettered_and_changes_nothing(
    cluster: Cluster, start_worker: StartWorker, producer
) -> None:
    worker = start_worker()
    bad = json.dumps({"name": "x", "version": "1", "base_url": "ftp://nowhere"}).encode()
    await producer.send_and_wait(MODELS, bad, key=b"x@1")

    def found(messages: list) -> bool:
        return any(m.value == bad for m in messages)

    letters = [m for m in await collect(cluster.bootstrap, [DLQ], want=found) if m.value == bad]
    assert letters, "the bad definition was dead-lettered"
    headers = header_dict(letters[0])
    assert headers["error.type"] == b"validation_error"
    assert b"base_url" in headers["error.message"]
    assert headers["source.topic"] == MODELS.encode()
    _, status = await http_json(f"{worker.address}status")
    assert "x@1" not in {m["endpoint"] for m in status["models"]}


def test_the_models_command_sets_lists_drains_and_removes(cluster: Cluster, sim) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "FLOWDESK_KAFKA_URL": cluster.broker.address}

    def flowdesk(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "models", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = flowdesk("set", name, "3", "--base-url", sim.address, "--param", "temperature=0.4")
    assert f"sent {name}@3" in out
    assert f"{name}@3" in out and '{"temperature": 0.4}' in out
    assert f"{name}@3" in flowdesk("drain", name, "3")
    listed = json.loads(flowdesk("list", "--json"))
    mine = [d for d in listed if d["name"] == name]
    assert len(mine) == 1
    assert (mine[0]["version"], mine[0]["weight"]) == ("3", 0.0)
    assert mine[0]["params"]["temperature"] == 0.4, "a drain keeps the rest of the definition"
    flowdesk("remove", name, "3")
    assert name not in flowdesk("list")

    refused = subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "set", name, "4", "--base-url", "nowhere"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "base_url" in refused.stderr and "http(s) URL" in refused.stderr
