"""End to end: inputs as outsiders write them, through a real worker.

A CRM whose order ids are not the load generator's `ORD-123456`, customers who write
them as they please, and timestamps that are not ISO-8601 with an offset.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from conftest import Cluster, StartWorker, chat_message, collect, send_json
from test_channels import (
    ESCALATION,
    RESPONSE,
    by_query,
    customer,
    customer_view,
    order,
    prompt_text,
    sim_requests,
    until,
)

from app.topics import (
    CHAT_INBOUND,
    CUSTOMERS,
    DLQ,
    EMAIL_INBOUND,
    ESCALATIONS,
    ORDERS,
    RESPONSES,
    VOICE_INBOUND,
)

pytestmark = pytest.mark.integration

ASKED = "2026-11-25T09:30:00+01:00"  # conftest.chat_message's sent_at


def delivered_order(cid: str, order_id: str, delivered: str) -> dict[str, Any]:
    return order(cid, order_id, ordered_at="2026-06-01T10:00:00+02:00", delivered_at=delivered)


async def test_the_named_order_is_decided_whatever_the_crms_id_format(
    cluster: Cluster, start_worker: StartWorker, producer
) -> None:
    worker = start_worker()
    run = uuid.uuid4().hex[:8]
    cid = f"N-{run}"
    await send_json(producer, CUSTOMERS, customer(cid))
    orders = [
        # Delivered 10 days before the queries: returnable.
        delivered_order(cid, "1000234", "2026-11-15T12:00:00+01:00"),
        # Delivered 60 days before: its 30-day window is over.
        delivered_order(cid, "HO-90001", "2026-09-26T12:00:00+02:00"),
        # The most recent delivered one, which a query naming no order would get.
        delivered_order(cid, "A7-55-1023", "2026-11-23T12:00:00+01:00"),
    ]
    for record in orders:
        await send_json(producer, ORDERS, record)

    async def orders_known() -> bool:
        status, body = await customer_view(worker, cid)
        return status == 200 and len(body["orders"]) == len(orders)

    assert await until(orders_known), "the CRM events reached the tables"

    asked = {
        "1000234": chat_message(cid, f"I want to return order #1000234, it is too small. {run}"),
        "HO-90001": chat_message(cid, f"I would like to return my kettle (ho-90001). {run}"),
        "A7-55-1023": chat_message(cid, f"Can I return order#a7-55-1023? Thanks {run}"),
        # Not one of the customer's orders: decides nothing, no fallback to A7-55-1023.
        "HO-90002": chat_message(cid, f"I want to return HO-90002 please {run}"),
        # Inside a longer number: not 1000234, so the most recent delivered one.
        "10002345": chat_message(cid, f"I want to return my blender, ref 10002345. {run}"),
    }
    for message in asked.values():
        await send_json(producer, CHAT_INBOUND, message)
    ids = {message["message_id"] for message in asked.values()}

    def outcomes(messages: list) -> dict[str, list]:
        responses = [m for m in messages if m.topic == RESPONSES["chat"]]
        escalations = [m for m in messages if m.topic == ESCALATIONS]
        return {**by_query(responses, RESPONSE, ids), **by_query(escalations, ESCALATION, ids)}

    messages = await collect(
        cluster.bootstrap,
        [RESPONSES["chat"], ESCALATIONS],
        want=lambda ms: len(outcomes(ms)) == len(ids),
        within=90,
    )
    found = outcomes(messages)
    assert set(found) == ids, "every query answered or escalated"

    def actions(named: str) -> list[tuple[str, str | None]]:
        [record] = found[asked[named]["message_id"]]
        return [(a.type, a.order_id) for a in record.actions]

    assert actions("1000234") == [("return_label", "1000234")]
    assert actions("HO-90001") == [("return_denied", "HO-90001")]
    assert actions("A7-55-1023") == [("return_label", "A7-55-1023")]
    assert actions("10002345") == [("return_label", "A7-55-1023")]
    [unknown] = found[asked["HO-90002"]["message_id"]]
    assert unknown.reason == "no_order"

    # The model was given the named order's facts, not the most recent one's.
    [request] = [
        r
        for r in await sim_requests(cluster)
        if "#1000234, it is too small" in r["messages"][-1]["content"]
    ]
    facts = request["messages"][0]["content"]
    assert "Order 1000234: status delivered" in facts
    assert "Order A7-55-1023:" not in facts


async def test_a_bad_timestamp_is_a_validation_error_dead_letter_before_any_model_call(
    cluster: Cluster, start_worker: StartWorker, producer
) -> None:
    worker = start_worker()
    run = uuid.uuid4().hex[:8]
    cid = f"T-{run}"
    # With a delivered order on record, a return request is a question for the model.
    await send_json(producer, ORDERS, delivered_order(cid, f"OK-{run}", "2026-11-20T10:00:00Z"))

    async def order_known() -> bool:
        status, body = await customer_view(worker, cid)
        return status == 200 and bool(body["orders"])

    assert await until(order_known), "the CRM event reached the table"
    # Return requests: the kind of query that used to reach the model and then fail.
    text = f"I want to return my kettle, it arrived broken. {run}"
    bad: dict[str, tuple[str, dict[str, Any], str]] = {}
    for n, sent_at in enumerate(["not a date", "2026-11-25T09:30:00", "9999-12-31T23:00:00-05:00"]):
        message = {**chat_message(cid, f"{text} chat-{n}"), "sent_at": sent_at}
        bad[message["message_id"]] = (CHAT_INBOUND, message, "sent_at")
    mail = {
        "message_id": f"mail-{run}",
        "customer_id": cid,
        "from": "someone@example.com",
        "subject": "Return",
        "body": f"{text} mail",
        "received_at": "25/11/2026 09:30",
    }
    bad[mail["message_id"]] = (EMAIL_INBOUND, mail, "received_at")
    segment = {
        "call_id": f"call-{run}",
        "customer_id": cid,
        "seq": 0,
        "transcript": f"{text} voice",
        "final": True,
        "at": "2026-11-25 09:30",
    }
    bad[segment["call_id"]] = (VOICE_INBOUND, segment, "at")
    crm_order = delivered_order(cid, f"HO-{run}", "2026-11-20T10:00:00")
    bad[crm_order["order_id"]] = (ORDERS, crm_order, "delivered_at")
    for topic, message, _ in bad.values():
        await send_json(producer, topic, message)
    # A good one after them, which the worker answers and the model is asked about.
    good = chat_message(cid, f"{text} good")
    await send_json(producer, CHAT_INBOUND, good)

    def ours(messages: list) -> list:
        return [m for m in messages if run.encode() in (m.value or b"")]

    dead = ours(await collect(cluster.bootstrap, [DLQ], want=lambda ms: len(ours(ms)) >= len(bad)))
    originals = {json.dumps(sent).encode(): (topic, field) for topic, sent, field in bad.values()}
    assert sorted(m.value for m in dead) == sorted(originals), "the original bytes, once each"
    for message in dead:
        topic, field = originals[message.value]
        headers = dict(message.headers)
        assert headers["source.topic"] == topic.encode()
        assert headers["error.type"] == b"validation_error"
        assert f": {field}: ".encode() in headers["error.message"], headers["error.message"]
        assert (
            b"ISO-8601" in headers["error.message"] or b"out of range" in headers["error.message"]
        )

    answered = await collect(
        cluster.bootstrap,
        [RESPONSES["chat"], ESCALATIONS],
        want=lambda ms: any(good["message_id"].encode() in (m.value or b"") for m in ms),
        within=60,
    )
    assert len(ours(answered)) == 1, "only the good message is answered or escalated"
    asked = [prompt_text(r) for r in await sim_requests(cluster) if run in prompt_text(r)]
    assert asked and all(f"{text} good" in prompt for prompt in asked), "no call for the bad"
