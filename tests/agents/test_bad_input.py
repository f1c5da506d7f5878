"""A bad-input run: generated malformed inbound messages mixed with good ones.

Every malformed message is malformed by construction (not JSON, not an object, a
required field missing or of the wrong type, empty or oversized text, broken
UTF-8), so the test knows the answer without asking the code under test. The
worker must never stop, dead-letter each bad message with its reason and the
coordinates of the original, and answer every good one.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Cluster, StartWorker, chat_message, collect, http_json
from test_scale_out import query_id

from app.dlq import header_dict
from app.topics import CHAT_INBOUND, DLQ, EMAIL_INBOUND, ESCALATIONS, RESPONSES

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.fixture
def count(request: pytest.FixtureRequest) -> int:
    """Malformed messages: 600, or 5000 with --chaos-full."""
    return 5000 if request.config.getoption("--chaos-full") else 600


def email_message(customer_id: str, body: str) -> dict[str, Any]:
    return {
        "message_id": uuid.uuid4().hex,
        "customer_id": customer_id,
        "from": "someone@example.com",
        "subject": "My order",
        "body": body,
        "received_at": "2026-11-25T09:30:00+01:00",
    }


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def malformed(rng: random.Random, good: dict[str, Any], text_field: str) -> tuple[bytes, str]:
    """One malformed variant of ``good``, and the error type it must get."""
    required = ["message_id", "customer_id", text_field]
    kind = rng.randrange(9)
    if kind == 0:  # random bytes that are no JSON object
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        try:
            if isinstance(json.loads(raw), dict):
                raw = b"{" + raw
        except ValueError:
            pass
        return raw, "decode_error"
    if kind == 1:  # JSON cut off
        raw = _json(good)
        return raw[: rng.randrange(1, len(raw) - 1)], "decode_error"
    if kind == 2:  # JSON, but not an object
        return _json(rng.choice([[good], 42, "text", None, True, []])), "decode_error"
    if kind == 3:  # broken UTF-8 inside a string
        return _json(good).replace(b'"Where', b'"\xff\xfeWhere', 1), "decode_error"
    payload = dict(good)
    if kind == 4:  # a required field missing
        del payload[rng.choice(required)]
    elif kind == 5:  # a required field of the wrong type
        payload[rng.choice(required)] = rng.choice([123, 4.5, ["x"], {"a": 1}, None, False])
    elif kind == 6:  # empty once cleaned (an e-mail's subject counts as text too)
        payload[text_field] = rng.choice(["", "   ", "\n\t ", "\u200b\u200b", "<p> </p>"])
        if "subject" in payload:
            payload["subject"] = ""
    elif kind == 7:  # too long
        payload[text_field] = "order " * 2000
    else:  # an empty value
        return b"", "decode_error"
    return _json(payload), "validation_error"


async def test_malformed_messages_are_dead_lettered_and_good_ones_answered(
    cluster: Cluster, start_worker: StartWorker, producer, count: int
) -> None:
    worker = start_worker()
    rng = random.Random(8)
    run = uuid.uuid4().hex[:6]
    bad: dict[tuple[str, int, int], str] = {}
    good: set[str] = set()
    makers: list[tuple[str, str, Callable[[str, str], dict[str, Any]]]] = [
        (CHAT_INBOUND, "text", chat_message),
        (EMAIL_INBOUND, "body", email_message),
    ]
    for n in range(count + count // 10):
        topic, field, make = makers[n % 2]
        message = make(f"F-{run}-{n % 50}", f"Where is order ORD-{700000 + n}? [{run}]")
        if n % 11 == 0:
            good.add(message["message_id"])
            await producer.send_and_wait(topic, _json(message), key=message["customer_id"].encode())
            continue
        raw, error_type = malformed(rng, message, field)
        sent = await producer.send_and_wait(topic, raw)
        bad[(topic, sent.partition, sent.offset)] = error_type

    def done(messages: list) -> bool:
        letters = {
            (h["source.topic"].decode(), int(h["source.partition"]), int(h["source.offset"]))
            for h in (header_dict(m) for m in messages if m.topic == DLQ)
        }
        answered = {query_id(m) for m in messages if m.topic != DLQ}
        return letters >= bad.keys() and answered >= good

    topics = [RESPONSES["chat"], RESPONSES["email"], ESCALATIONS, DLQ]
    messages = await collect(cluster.bootstrap, topics, want=done, within=240)
    letters: Counter[tuple[str, int, int]] = Counter()
    wrong: list[tuple[Any, str, str]] = []
    for m in messages:
        if m.topic != DLQ:
            continue
        h = header_dict(m)
        where = (h["source.topic"].decode(), int(h["source.partition"]), int(h["source.offset"]))
        if where not in bad:
            continue
        letters[where] += 1
        if h["error.type"].decode() != bad[where] or not h["error.message"]:
            wrong.append((where, bad[where], h["error.type"].decode()))
    missing = bad.keys() - letters.keys()
    assert not missing, f"{len(missing)} of {len(bad)} malformed messages not dead-lettered"
    assert not [w for w, n in letters.items() if n > 1], "a message dead-lettered twice"
    assert not wrong, f"dead-lettered with the wrong reason: {wrong[:5]}"
    answered = Counter(q for q in (query_id(m) for m in messages if m.topic != DLQ) if q in good)
    assert answered.keys() == good and set(answered.values()) == {1}
    assert worker.alive()
    status, _ = await http_json(worker.address + "health")
    assert status == 200
