"""End to end: chat messages through ingest, inference and router, on a real stack."""

from __future__ import annotations

import uuid

import pytest
from conftest import Cluster, StartWorker, chat_message, collect, send_json

from app.records import SupportResponse
from app.settings import Settings
from app.topics import CHAT_INBOUND, DLQ, ESCALATIONS, RESPONSES

pytestmark = pytest.mark.integration


def codec(kind: type):
    from app.codecs import make_codec

    return make_codec(kind, Settings())


@pytest.mark.parametrize("consumer_thread", ["false", "true"], ids=["in-loop", "thread"])
async def test_fifty_chat_messages_get_fifty_responses(
    cluster: Cluster, start_worker: StartWorker, producer, consumer_thread: str
) -> None:
    # The Kafka consumer in the worker's event loop (the default), or in Faust's thread.
    start_worker(FLOWDESK_CONSUMER_THREAD=consumer_thread)
    run = uuid.uuid4().hex[:8]
    sent = {}
    for i in range(50):
        customer = f"C-{run}-{i % 7}"
        message = chat_message(customer, f"Where is my order ORD-{100000 + i}? It is late.")
        sent[message["message_id"]] = customer
        # Upstream keys are not to be trusted: half the messages have none, half a wrong one.
        await send_json(producer, CHAT_INBOUND, message, key=None if i % 2 else "wrong-key")

    decode = codec(SupportResponse).decode

    def answered(messages: list) -> bool:
        return len({decode(m.value).query_id for m in messages} & sent.keys()) >= 50

    messages = await collect(cluster.bootstrap, [RESPONSES["chat"]], want=answered, within=90)
    ours = [(decode(m.value), m) for m in messages]
    ours = [(record, message) for record, message in ours if record.query_id in sent]

    assert sorted(r.query_id for r, _ in ours) == sorted(sent), "each query answered exactly once"
    for record, message in ours:
        assert record.customer_id == sent[record.query_id]
        assert message.key == record.customer_id.encode(), "outbound key is the customer id"
        assert record.channel == "chat"
        assert record.text and record.intent
        assert record.model == "flowdesk-sim"
        assert record.latency_ms >= 0


async def test_malformed_chat_goes_to_dlq_with_headers(
    cluster: Cluster, start_worker: StartWorker, producer
) -> None:
    start_worker()
    marker = uuid.uuid4().hex
    bad = {
        "not-json": f"{{oops {marker}".encode(),
        "missing-field": f'{{"message_id": "{marker}-m", "text": "hi"}}'.encode(),
        "bad-utf8": b'{"message_id": "' + marker.encode() + b'", "text": "\xff\xfe"}',
        "array": f'["{marker}"]'.encode(),
    }
    for raw in bad.values():
        await send_json(producer, CHAT_INBOUND, raw)
    good = chat_message(f"C-{marker}", "Hello, can I change my address?")
    await send_json(producer, CHAT_INBOUND, good)

    def ours(messages: list) -> list:
        return [m for m in messages if marker.encode() in (m.value or b"")]

    dead = await collect(
        cluster.bootstrap, [DLQ], want=lambda ms: len(ours(ms)) >= len(bad), within=60
    )
    dead = ours(dead)
    assert sorted(m.value for m in dead) == sorted(bad.values()), "original bytes, once each"
    for message in dead:
        headers = dict(message.headers)
        assert set(headers) >= {
            "error.type",
            "error.message",
            "source.topic",
            "source.partition",
            "source.offset",
        }
        assert headers["source.topic"] == CHAT_INBOUND.encode()
        assert int(headers["source.offset"]) >= 0
        assert headers["error.type"] in (b"decode_error", b"validation_error")
        assert headers["error.message"]
    types = {dict(m.headers)["error.type"] for m in dead}
    assert types == {b"decode_error", b"validation_error"}

    # The worker is still alive and answers the good message that came after the bad ones.
    decode = codec(SupportResponse).decode
    answered = await collect(
        cluster.bootstrap,
        [RESPONSES["chat"], ESCALATIONS],
        want=lambda ms: any(good["message_id"].encode() in (m.value or b"") for m in ms),
        within=60,
    )
    hits = [m for m in answered if good["message_id"].encode() in (m.value or b"")]
    assert len(hits) == 1
    assert decode(hits[0].value).query_id == good["message_id"]
