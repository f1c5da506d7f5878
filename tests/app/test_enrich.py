"""Enrichment: what the tables add to a query, and how the prompt budget spends it."""

from __future__ import annotations

from typing import Any

import pytest
from factories import make_query

from app.enrich import (
    Context,
    Turn,
    add_turn,
    already_routed,
    history_before,
    mark_routed,
    pick_order,
    upsert_order,
)
from app.prompts import build_messages, estimate_tokens


def order(order_id: str, *, ordered: str, delivered: str | None = None, **extra: Any) -> dict:
    return {
        "order_id": order_id,
        "customer_id": "C1",
        "status": "delivered" if delivered else "shipped",
        "ordered_at": ordered,
        "delivered_at": delivered,
        "items": [{"sku": "S1", "name": "Kettle", "category": "kitchen", "price": 30.0}],
        **extra,
    }


def turn(n: int, arrived_ms: int) -> Turn:
    return Turn(
        query_id=f"q{n}", arrived_ms=arrived_ms, channel="chat", question=f"Q{n}", answer=f"A{n}"
    )


def test_the_latest_event_of_an_order_wins_and_only_recent_orders_are_kept() -> None:
    orders = upsert_order(None, order("ORD-000001", ordered="2026-01-01T10:00:00+00:00"), keep=2)
    orders = upsert_order(orders, order("ORD-000002", ordered="2026-02-01T10:00:00+00:00"), keep=2)
    updated = order("ORD-000001", ordered="2026-01-01T10:00:00+00:00", status="delivered")
    orders = upsert_order(orders, updated, keep=2)
    assert orders["ORD-000001"]["status"] == "delivered"
    orders = upsert_order(orders, order("ORD-000003", ordered="2026-03-01T10:00:00+01:00"), keep=2)
    assert set(orders) == {"ORD-000002", "ORD-000003"}, "the oldest order goes"


def test_the_mentioned_order_else_the_most_recent_delivered_one() -> None:
    orders = {
        "ORD-000001": order(
            "ORD-000001", ordered="2026-01-01T00:00:00+00:00", delivered="2026-01-05T00:00:00+00:00"
        ),
        # Delivered later in absolute time, though its local clock reads earlier.
        "ORD-000002": order(
            "ORD-000002", ordered="2026-01-02T00:00:00+00:00", delivered="2026-01-05T09:00:00+10:00"
        ),
        "ORD-000003": order(
            "ORD-000003", ordered="2026-01-03T00:00:00+00:00", delivered="2026-01-05T01:00:00+00:00"
        ),
        "ORD-000004": order("ORD-000004", ordered="2026-02-01T00:00:00+00:00"),
    }
    assert pick_order(orders, ["ORD-000002"])[0]["order_id"] == "ORD-000002"
    assert pick_order(orders, [])[0]["order_id"] == "ORD-000003"
    assert pick_order(orders, ["ORD-999999"]) == (None, "ORD-999999")
    assert pick_order(orders, ["ORD-999999", "ORD-000001"])[0]["order_id"] == "ORD-000001"
    assert pick_order({}, []) == (None, None)
    assert pick_order(None, []) == (None, None)


def test_history_keeps_the_last_turns_once_each_in_arrival_order() -> None:
    turns = None
    for n, at in [(1, 100), (3, 300), (2, 200), (3, 300)]:
        turns = add_turn(turns, turn(n, at), keep=2)
    assert [t["query_id"] for t in turns] == ["q2", "q3"]
    assert add_turn(turns, turn(4, 400), keep=0) == []
    with pytest.raises(ValueError):
        add_turn(turns, turn(4, 400), keep=-1)


def test_a_replayed_query_sees_the_history_it_saw_the_first_time() -> None:
    turns = [
        {"query_id": "q1", "arrived_ms": 100, "channel": "chat", "question": "a", "answer": "b"},
        {"query_id": "q2", "arrived_ms": 200, "channel": "chat", "question": "c", "answer": "d"},
        {"query_id": "q3", "arrived_ms": 300, "channel": "chat", "question": "e", "answer": "f"},
    ]
    query = make_query(query_id="q2", arrived_ms=200)
    assert [t.query_id for t in history_before(turns, query)] == ["q1"]


def test_without_context_the_prompt_is_the_system_prompt_and_the_message() -> None:
    messages = build_messages(make_query(text="Hi"))
    assert [m["role"] for m in messages] == ["system", "user"]


def test_context_goes_into_the_prompt_and_history_is_trimmed_first() -> None:
    history = [
        Turn(
            query_id=f"q{n}", arrived_ms=n, channel="chat", question="x" * 400, answer=f"{n}" * 400
        )
        for n in range(10)
    ]
    context = Context(
        profile={"name": "Ada", "tier": "gold", "locale": "en"},
        order=order(
            "ORD-123456", ordered="2026-01-01T00:00:00+00:00", delivered="2026-01-05T00:00:00+00:00"
        ),
        history=history,
    )
    query = make_query(text="Can I return it?")
    roomy = build_messages(query, context, budget_tokens=100_000)
    assert len(roomy) == 2 + 2 * 10
    assert "ORD-123456" in roomy[0]["content"] and "tier gold" in roomy[0]["content"]
    tight = build_messages(query, context, budget_tokens=900)
    assert estimate_tokens(tight) <= 900
    assert "ORD-123456" in tight[0]["content"], "facts outrank history"
    kept = (len(tight) - 2) // 2
    assert 0 < kept < 10
    # The newest turns are the ones kept, still oldest first.
    assert tight[-2]["content"] == "9" * 400 and tight[1]["role"] == "user"
    assert tight[2]["content"] == str(10 - kept) * 400
    assert tight[-1]["content"].endswith("Can I return it?\n</customer_message>")


def test_an_unknown_order_is_said_to_the_model() -> None:
    messages = build_messages(make_query(), Context(unknown_order="ORD-999999"))
    assert "ORD-999999: not found" in messages[0]["content"]


def test_routed_query_ids_are_remembered_for_the_ttl() -> None:
    routed = mark_routed(None, "q1", now_ms=1_000, ttl_ms=500)
    assert already_routed(routed, "q1") and not already_routed(routed, "q2")
    assert not already_routed(None, "q1")
    routed = mark_routed(routed, "q2", now_ms=1_400, ttl_ms=500)
    assert set(routed) == {"q1", "q2"}
    routed = mark_routed(routed, "q3", now_ms=1_501, ttl_ms=500)
    assert set(routed) == {"q2", "q3"}, "q1 is older than the ttl"
