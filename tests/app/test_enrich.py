"""Enrichment: what the tables add to a query, and how the prompt budget spends it."""

from __future__ import annotations

from typing import Any

import pytest
from factories import make_query
from hypothesis import assume, given, settings
from hypothesis import strategies as st

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
from app.pii import redact
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
    assert pick_order(orders, "is ORD-000002 returnable?")[0]["order_id"] == "ORD-000002"
    assert pick_order(orders, "can I return it?")[0]["order_id"] == "ORD-000003"
    hinted = ["ORD-999999"]
    assert pick_order(orders, "ORD-999999", hinted=hinted) == (None, "ORD-999999")
    both = pick_order(orders, "ORD-999999 or ORD-000001", hinted=[*hinted, "ORD-000001"])
    assert both == (orders["ORD-000001"], None), "a named order of the customer's wins"
    assert pick_order({}, "") == (None, None)
    assert pick_order(None, "ORD-000001") == (None, None)


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


# --- The order a customer names, whatever the CRM's id format ----------------------------


def several_orders(ids: list[str]) -> dict[str, dict]:
    """Orders of one customer, each delivered a day after the one before: the last of
    ``ids`` is the most recent delivered one."""
    return {
        order_id: order(
            order_id,
            ordered=f"2026-03-{n + 1:02d}T08:00:00+00:00",
            delivered=f"2026-03-{n + 2:02d}T08:00:00+00:00",
        )
        for n, order_id in enumerate(ids)
    }


@pytest.mark.parametrize(
    ("text", "picked", "unknown"),
    [
        ("I'd like to return #1000234, it is too small.", "1000234", None),
        ("return (ho-90001).", "HO-90001", None),
        ("order#1000234, the kettle", "1000234", None),
        ("Ich möchte A7-55-1023 zurückschicken", "A7-55-1023", None),
        ("ord-482913 arrived broken", "ORD-482913", None),
        # Named by nobody: the most recent delivered order ("0").
        ("I want to return my kettle", "0", None),
        ("I want to return 10002345", "0", None),
        # Shaped like one of the customer's ids, but not theirs: no order.
        ("I want to return 1000235", None, "1000235"),
    ],
)
def test_the_named_order_is_picked_not_the_most_recent(
    text: str, picked: str | None, unknown: str | None
) -> None:
    orders = several_orders(["1000234", "HO-90001", "A7-55-1023", "ORD-482913", "0"])
    found, not_owned = pick_order(orders, text)
    assert found is (orders[picked] if picked else None)
    assert not_owned == unknown


def test_an_id_the_customer_does_not_own_decides_nothing() -> None:
    orders = several_orders(["HO-90001", "HO-90017"])
    # Another customer's order, or a typo: no fallback to the most recent delivered one.
    assert pick_order(orders, "return HO-90002 please") == (None, "HO-90002")
    # An id of the pattern the classifier recognises, unlike the customer's.
    assert pick_order(orders, "return ORD-123456", hinted=["ORD-123456"]) == (None, "ORD-123456")
    # One of the customer's own ids named as well: that order is the one.
    both = pick_order(orders, "HO-90002, sorry, I mean HO-90001", hinted=["ORD-1"])
    assert both == (orders["HO-90001"], None)
    # A hinted id the customer owns is not unknown, even where the text does not name it.
    assert pick_order({"ORD-123456": orders["HO-90001"]}, "x", hinted=["ord-123456"])[1] is None


_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/"
_EDGE = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
generated_ids = st.builds(lambda a, b, c: a + b + c, _EDGE, st.text(_ID_CHARS, max_size=16), _EDGE)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(generated_ids, min_size=2, max_size=8, unique_by=str.casefold),
    st.data(),
)
def test_a_named_generated_id_is_picked_among_several_orders(ids: list[str], data) -> None:
    orders = several_orders(ids)
    # Any of them but the most recent delivered, which the fallback would give anyway.
    named = data.draw(st.sampled_from(ids[:-1]), label="named")
    hashed = data.draw(st.sampled_from(["", "#"]), label="hash")
    written = "".join(c.swapcase() if data.draw(st.booleans()) else c for c in named)
    before = data.draw(st.sampled_from(["", "(", " ", "注文", "order ", "«", "\n"]), label="before")
    after = data.draw(st.sampled_from(["", ")", ".", ", ", "です", "!", "» bitte"]), label="after")
    text = f"{before}{hashed}{written}{after}"
    # A shorter id of the customer's that is part of the named one is not named by it.
    assume(all(other.casefold() not in named.casefold() for other in ids if other != named))
    found, unknown = pick_order(orders, text)
    assert found is orders[named] and unknown is None


def test_a_redacted_id_of_the_customers_shape_decides_nothing() -> None:
    # Ids shaped like phone numbers are redacted at ingest (tests/app/test_pii.py).
    orders = several_orders(["555-1234", "555-9876"])
    text = redact("I want to return 555-1234")
    assert text == "I want to return [PHONE]"
    assert pick_order(orders, text) == (None, "[PHONE]")
    # Without a placeholder, or for ids no redaction touches, the fallback still holds.
    assert pick_order(orders, "I want to return it")[0] is orders["555-9876"]
    other = several_orders(["HO-90001", "HO-90017"])
    assert pick_order(other, redact("return it, call me on 555-1234"))[0] is other["HO-90017"]
