"""The drift monitor on a real stack: a stable mix raises nothing, a shifted one alerts.

The worker gets short windows (3 s) and a small minimum, and a model of its own
name, so its variant's baseline is this test's traffic and nobody else's.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import pytest
from conftest import Cluster, StartWorker, chat_message, collect, decoded, http_text, send_json

from app.codecs import make_codec
from app.records import SupportResponse
from app.settings import Settings
from app.stack import ManagedProcess, Stack, free_port, model_server_process
from app.topics import CHAT_INBOUND, MONITORING, RESPONSES

pytestmark = pytest.mark.integration

RESPONSE = make_codec(SupportResponse, Settings())
WINDOW = 3.0


@pytest.fixture
def model(log_dir) -> object:
    stack = Stack(log_dir=log_dir)
    name = f"drift-{uuid.uuid4().hex[:6]}"
    proc = model_server_process(
        port=free_port(),
        log_dir=log_dir,
        backend="sim",
        extra_args=["--model-name", name, "--latency", "fixed:20"],
    )
    yield name, stack.start(proc, timeout=30)
    stack.stop()


async def next_window() -> None:
    """Sleep until just after the next window boundary of the wall clock."""
    now = time.time()
    await asyncio.sleep(WINDOW - now % WINDOW + 0.1)


async def burst(cluster: Cluster, producer, texts: list[str]) -> None:
    """Send the texts (one customer each) and wait until every one is answered."""
    run = uuid.uuid4().hex[:6]
    sent = set()
    for i, text in enumerate(texts):
        message = chat_message(f"D-{run}-{i}", text)
        sent.add(message["message_id"])
        await send_json(producer, CHAT_INBOUND, message)

    def answered(messages: list) -> bool:
        return {r.query_id for r in decoded(RESPONSE, messages)} >= sent

    got = await collect(cluster.bootstrap, [RESPONSES["chat"]], want=answered, within=30)
    assert answered(got), "every query of the burst is answered"


async def drift_score(worker: ManagedProcess, variant: str, within: float = 10) -> float | None:
    """The variant's drift gauge once it is set (signals trail their answers a little)."""
    deadline = time.monotonic() + within
    while True:
        _, text = await http_text(worker.address + "metrics")
        pattern = rf'flowdesk_drift_score\{{variant="{re.escape(variant)}"\}} (\S+)'
        found = re.search(pattern, text)
        if found or time.monotonic() > deadline:
            return float(found.group(1)) if found else None
        await asyncio.sleep(0.3)


def english(first: int) -> list[str]:
    # New order ids each time: the same text would be answered from the cache.
    return [f"Where is my order ORD-{first + i}? It has not arrived yet." for i in range(30)]


GERMAN = [
    f"Hallo, wo ist meine Bestellung ORD-{400000 + i}? Das Paket ist leider immer noch "
    "nicht angekommen und ich warte schon seit zwei Wochen darauf. Bitte helfen Sie mir."
    for i in range(30)
]


async def test_a_shift_in_language_and_length_is_published_and_a_stable_mix_is_not(
    cluster: Cluster, start_worker: StartWorker, producer, model
) -> None:
    name, sim = model
    variant = f"{name}@1"
    worker = start_worker(
        FLOWDESK_LLM_BASE_URL=sim.address,
        FLOWDESK_LLM_MODEL=name,
        FLOWDESK_DRIFT_WINDOW=str(WINDOW),
        FLOWDESK_DRIFT_MIN_SAMPLES="20",
        FLOWDESK_DRIFT_THRESHOLD="0.2",
    )
    await next_window()
    await burst(cluster, producer, english(300000))  # the baseline
    await next_window()
    await burst(cluster, producer, english(310000))  # the same mix again
    await next_window()
    await burst(cluster, producer, GERMAN)  # closes the second window: judged, stable
    stable = await drift_score(worker, variant)
    assert stable is not None, "the second window was compared with the baseline"
    if stable >= 0.2:
        published = await collect(cluster.bootstrap, [MONITORING], want=lambda _: False, within=3)
        reports = [m.value.decode() for m in published if m.key == variant.encode()]
        raise AssertionError(f"the same mix scored {stable}: {reports}")
    await next_window()
    await burst(cluster, producer, GERMAN[:5])  # closes the German window

    def alerted(messages: list) -> bool:
        return any(m.key == variant.encode() for m in messages)

    published = await collect(cluster.bootstrap, [MONITORING], want=alerted, within=20)
    reports = [json.loads(m.value) for m in published if m.key == variant.encode()]
    assert len(reports) == 1, reports
    report = reports[0]
    assert report["variant"] == variant
    assert {"language", "length"} <= set(report["drifting"]), report
    assert report["score"] >= 0.2 and report["baseline_n"] == report["current_n"] == 30
    assert report["moved"]["language"][0]["label"] in ("de", "en")
    deadline = time.monotonic() + 10
    while (score := await drift_score(worker, variant)) != pytest.approx(report["score"]):
        assert time.monotonic() < deadline, f"the gauge shows {score}, not {report['score']}"
        await asyncio.sleep(0.3)
