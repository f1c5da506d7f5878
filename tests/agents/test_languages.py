# Customers write full-width letters and punctuation: these texts keep them on purpose.
# ruff: noqa: RUF001
"""End to end: customers writing in Chinese and Spanish, through a real worker."""

from __future__ import annotations

import uuid

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

from app.topics import CHAT_INBOUND, CUSTOMERS, ESCALATIONS, ORDERS, RESPONSES

pytestmark = pytest.mark.integration


async def test_requests_for_a_person_in_chinese_and_spanish_are_escalated_without_the_model(
    cluster: Cluster, start_worker: StartWorker, producer
) -> None:
    start_worker()
    run = uuid.uuid4().hex[:8]
    chinese = chat_message(f"Z-{run}", f"转人工！！我的快递三天没动了 {run}")
    spanish = chat_message(f"S-{run}", f"oye, pásame con una persona de verdad porfa {run}")
    for message in (chinese, spanish):
        await send_json(producer, CHAT_INBOUND, message)
    ids = {chinese["message_id"], spanish["message_id"]}
    messages = await collect(
        cluster.bootstrap,
        [ESCALATIONS, RESPONSES["chat"]],
        want=lambda ms: (
            len(by_query([m for m in ms if m.topic == ESCALATIONS], ESCALATION, ids)) == 2
        ),
        within=60,
    )
    found = by_query([m for m in messages if m.topic == ESCALATIONS], ESCALATION, ids)
    assert {query_id: [e.reason for e in found[query_id]] for query_id in ids} == {
        chinese["message_id"]: ["human_requested"],
        spanish["message_id"]: ["human_requested"],
    }
    assert not by_query([m for m in messages if m.topic == RESPONSES["chat"]], RESPONSE, ids)
    assert not [r for r in await sim_requests(cluster) if run in prompt_text(r)], "no model call"


async def test_a_return_request_in_chinese_gets_the_rules_decision_in_chinese(
    cluster: Cluster, start_worker: StartWorker, producer
) -> None:
    worker = start_worker()
    run = uuid.uuid4().hex[:8]
    cid = f"Z-{run}"
    # No locale in the CRM: the language comes from what the customer writes.
    profile = customer(cid, name="Li Wei")
    del profile["locale"]
    await send_json(producer, CUSTOMERS, profile)
    # Delivered three weeks before the query: inside the 30-day window.
    await send_json(producer, ORDERS, order(cid, "HO-90001"))

    async def profile_known() -> bool:
        status, body = await customer_view(worker, cid)
        return status == 200 and body["profile"] is not None and bool(body["orders"])

    assert await until(profile_known), "the CRM events reached the tables"
    query = chat_message(cid, f"你好，水壶不太好用，我想退货 {run}")
    await send_json(producer, CHAT_INBOUND, query)
    messages = await collect(
        cluster.bootstrap,
        [RESPONSES["chat"], ESCALATIONS],
        want=lambda ms: any(query["message_id"].encode() in (m.value or b"") for m in ms),
        within=60,
    )
    hits = [m for m in messages if query["message_id"].encode() in (m.value or b"")]
    assert [m.topic for m in hits] == [RESPONSES["chat"]], "answered once, not escalated"
    answer = RESPONSE.decode(hits[0].value)
    assert answer.intent == "return"
    assert [(a.type, a.order_id) for a in answer.actions] == [("return_label", "HO-90001")]
    assert "HO-90001" in answer.text and "退货" in answer.text, answer.text
    assert "退货期" in answer.actions[0].detail, answer.actions[0].detail
    [request] = [r for r in await sim_requests(cluster) if run in prompt_text(r)]
    assert "Write the answer in Chinese." in prompt_text(request)
