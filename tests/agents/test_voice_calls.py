"""End to end: voice calls numbered from anywhere, answered when complete or after the grace."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from conftest import Cluster, StartWorker, collect, http_json, http_text, send_json

from app.codecs import make_codec
from app.records import SupportResponse
from app.settings import Settings
from app.topics import DLQ, RESPONSES, VOICE_INBOUND

pytestmark = pytest.mark.integration

RESPONSE = make_codec(SupportResponse, Settings())
#: Far below the 60 s silence timeout, far above a call's way through the pipeline.
WITHIN = 20.0


def call_segments(call_id: str, customer_id: str, start: int, words: list[str]) -> dict[int, Any]:
    """The segments of one call numbered from ``start``, by seq; the last is final."""
    final = start + len(words) - 1
    return {
        start + i: {
            "call_id": call_id,
            "customer_id": customer_id,
            "seq": start + i,
            "transcript": text,
            "final": start + i == final,
            "at": f"2026-11-25T09:00:{i:02d}+00:00",
        }
        for i, text in enumerate(words)
    }


def answers_for(messages: list, ids: set[str]) -> dict[str, list[SupportResponse]]:
    found: dict[str, list[SupportResponse]] = {}
    for message in messages:
        try:
            record = RESPONSE.decode(message.value)
        except Exception:  # another test's wire format on the shared topic
            continue
        if record.query_id in ids:
            found.setdefault(record.query_id, []).append(record)
    return found


async def prompts_with(cluster: Cluster, marker: str) -> list[str]:
    _, log = await http_json(cluster.model.address.removesuffix("/v1") + "/_sim/requests")
    texts = ["\n".join(m["content"] for m in r["messages"]) for r in log["requests"]]
    return [text for text in texts if marker in text]


async def voice_events(worker: Any, result: str) -> float:
    """The worker's ``flowdesk_events_total{stage="voice", result=...}``."""
    _, text = await http_text(worker.address + "metrics")
    name = f'flowdesk_events_total{{result="{result}",stage="voice"}} '
    values = [float(line.removeprefix(name)) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def dead_letters_of(messages: list, call_id: str) -> list[Any]:
    return [m for m in messages if call_id.encode() in (m.value or b"")]


async def test_calls_numbered_from_1_and_7_out_of_order_are_answered_when_complete(
    cluster: Cluster, start_worker: StartWorker, producer
) -> None:
    # A grace longer than the wait below: an answer within it came from completion.
    worker = start_worker(FLOWDESK_VOICE_GAP_GRACE="60")
    run = uuid.uuid4().hex[:8]
    one = call_segments(
        f"one-{run}", f"V1-{run}", 1, ["Hello, I want", "to know where", f"order {run}-A", "is."]
    )
    seven = call_segments(
        f"seven-{run}", f"V7-{run}", 7, ["Where is", f"my order {run}-B", "please?"]
    )
    deliveries = [(one, 1), (seven, 7), (one, 3), (one, 1), (seven, 9), (one, 4), (seven, 8)]
    deliveries += [(seven, 9), (one, 2)]
    # Keyed, so the worker reads them in the order sent: unkeyed, they spread over the
    # inbound partitions and may be reordered further, even the lowest seq after the final.
    for call, seq in deliveries:
        await send_json(producer, VOICE_INBOUND, call[seq], key=call[seq]["customer_id"])
    sent = time.monotonic()
    ids = {one[1]["call_id"], seven[7]["call_id"]}
    messages = await collect(
        cluster.bootstrap,
        [RESPONSES["voice"]],
        want=lambda ms: len(answers_for(ms, ids)) == 2,
        within=WITHIN,
    )
    elapsed = time.monotonic() - sent
    assert set(answers_for(messages, ids)) == ids, f"both calls answered within {WITHIN:g} s"
    assert elapsed < WITHIN

    # After the answer: a copy of the final is counted, a lower seq is dead-lettered.
    await send_json(producer, VOICE_INBOUND, seven[9], key=seven[9]["customer_id"])
    late = {**one[1], "seq": 0, "transcript": f"late words {run}", "final": False}
    await send_json(producer, VOICE_INBOUND, late, key=late["customer_id"])
    dead = dead_letters_of(
        await collect(
            cluster.bootstrap,
            [DLQ],
            want=lambda ms: bool(dead_letters_of(ms, one[1]["call_id"])),
            within=WITHIN,
        ),
        one[1]["call_id"],
    )
    await asyncio.sleep(2)  # a second answer, if there were one, would have come by now
    messages = await collect(
        cluster.bootstrap, [RESPONSES["voice"]], want=lambda _: False, within=2
    )
    found = answers_for(messages, ids)
    assert {call_id: len(answers) for call_id, answers in found.items()} == dict.fromkeys(ids, 1)

    [prompt_one] = await prompts_with(cluster, f"{run}-A")
    assert f"Hello, I want to know where order {run}-A is." in prompt_one
    assert f"late words {run}" not in prompt_one
    [prompt_seven] = await prompts_with(cluster, f"{run}-B")
    assert f"Where is my order {run}-B please?" in prompt_seven

    [letter] = dead
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["error.type"] == "voice_call"
    assert "not in the answer" in headers["error.message"]
    assert headers["source.topic"] == VOICE_INBOUND
    dead_seven = dead_letters_of(
        await collect(cluster.bootstrap, [DLQ], want=lambda _: False, within=2),
        seven[7]["call_id"],
    )
    assert dead_seven == [], "a copy of a segment the answer used is no dead letter"
    # Copies: seq 1 of the first call while open; seq 9 of the second after its answer.
    assert await voice_events(worker, "duplicate") >= 1
    assert await voice_events(worker, "late") >= 3, "seq 9 twice and seq 0, after the answers"
    assert await voice_events(worker, "grace_answered") == 0


async def test_a_call_with_a_gap_is_answered_after_the_grace_not_the_timeout(
    cluster: Cluster, start_worker: StartWorker, producer
) -> None:
    grace = Settings().voice_gap_grace
    assert grace < 10 < WITHIN < Settings().voice_call_timeout, "the defaults this test relies on"
    worker = start_worker()
    run = uuid.uuid4().hex[:8]
    call = call_segments(
        f"gap-{run}", f"VG-{run}", 5, ["My parcel", f"order {run}-C", "LOST WORDS", "is late."]
    )
    for seq in (5, 8, 6, 5):  # seq 7 never comes
        await send_json(producer, VOICE_INBOUND, call[seq], key=call[seq]["customer_id"])
    sent = time.monotonic()
    ids = {call[5]["call_id"]}
    messages = await collect(
        cluster.bootstrap,
        [RESPONSES["voice"]],
        want=lambda ms: bool(answers_for(ms, ids)),
        within=WITHIN,
    )
    elapsed = time.monotonic() - sent
    assert answers_for(messages, ids), f"answered within {WITHIN:g} s, not after the timeout"
    assert elapsed >= grace - 0.5, "not before the grace"
    # Sweeps come every 15 s: an answer this soon came from the call's own check.
    assert elapsed < grace + 8, f"answered {elapsed:.1f} s after the last segment"
    [prompt] = await prompts_with(cluster, f"{run}-C")
    assert "My parcel" in prompt and f"order {run}-C is late." in prompt
    assert "LOST WORDS" not in prompt
    assert await voice_events(worker, "grace_answered") >= 1
