"""The returns rule (SPEC section 4) and how it overrules the model's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from factories import make_query
from hypothesis import given
from hypothesis import strategies as st

from app.answers import ModelAnswer, ProposedAction
from app.enrich import pick_order
from app.records import Action
from app.rules import (
    DAMAGED_RETURN_DAYS,
    NON_RETURNABLE,
    RETURN_DAYS,
    ReturnDecision,
    RuleResult,
    apply_rules,
    decide_return,
)

ASKED = "2026-11-25T10:00:00+00:00"


def order(
    order_id: str = "ORD-000001",
    *,
    delivered: str | None = "2026-11-20T10:00:00+00:00",
    categories: tuple[str, ...] = ("kitchen",),
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": "C1",
        "status": "delivered" if delivered else "shipped",
        "ordered_at": "2026-08-01T10:00:00+00:00",
        "delivered_at": delivered,
        "items": [
            {"sku": f"S{n}", "name": f"Item {n}", "category": category, "price": 10.0}
            for n, category in enumerate(categories)
        ],
    }


def decide(delivered: str | None, asked: str = ASKED, *, damaged: bool = False) -> ReturnDecision:
    return decide_return(
        order(delivered=delivered), damaged=damaged, asked_at=datetime.fromisoformat(asked)
    )


@pytest.mark.parametrize(
    ("delivered", "asked", "damaged", "reason"),
    [
        # 30 days: exactly 30 x 24 h is in time, one second more is not.
        ("2026-11-20T10:00:00+00:00", ASKED, False, "eligible"),
        ("2026-10-26T10:00:00+00:00", ASKED, False, "eligible"),
        ("2026-10-26T09:59:59+00:00", ASKED, False, "window_expired"),
        ("2026-10-25T10:00:00+00:00", ASKED, False, "window_expired"),
        # 90 days when damaged, with the same boundary.
        ("2026-10-25T10:00:00+00:00", ASKED, True, "eligible_damaged"),
        ("2026-08-27T10:00:00+00:00", ASKED, True, "eligible_damaged"),
        ("2026-08-27T09:59:59+00:00", ASKED, True, "window_expired"),
        ("2026-08-26T10:00:00+00:00", ASKED, True, "window_expired"),
        # The longer window applies whenever damage is reported.
        ("2026-11-20T10:00:00+00:00", ASKED, True, "eligible_damaged"),
        # A delivery recorded after the query (clocks disagree) is within the window.
        ("2026-11-25T10:05:00+00:00", ASKED, False, "eligible"),
        # Instants are compared, not the dates on the wall clocks.
        ("2026-10-26T23:30:00-05:00", "2026-11-25T06:00:00+01:00", False, "eligible"),
        # 29 days 23.5 hours, though the local dates are 31 days apart.
        ("2026-10-26T23:30:00-05:00", "2026-11-26T05:00:00+01:00", False, "eligible"),
        # 30 days 9.5 hours, though the local dates are 29 days apart.
        ("2026-10-27T00:30:00+09:00", "2026-11-25T20:00:00-05:00", False, "window_expired"),
        # The boundary exactly, in two offsets.
        ("2026-10-26T05:00:00-05:00", "2026-11-25T11:00:00+01:00", False, "eligible"),
        ("2026-10-26T05:00:00-05:00", "2026-11-25T11:00:01+01:00", False, "window_expired"),
        ("2026-10-26T10:00:00Z", ASKED, False, "eligible"),
        # Not delivered.
        (None, ASKED, False, "not_delivered"),
        ("", ASKED, False, "not_delivered"),
        (None, ASKED, True, "not_delivered"),
    ],
)
def test_the_return_window(delivered: str | None, asked: str, damaged: bool, reason: str) -> None:
    decision = decide(delivered, asked, damaged=damaged)
    assert decision.reason == reason
    assert decision.eligible == reason.startswith("eligible")
    assert decision.order_id == "ORD-000001"
    assert "ORD-000001" in decision.detail


def test_the_window_is_counted_in_hours_across_a_daylight_saving_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # back from +02:00 to +01:00 on 25 October 2026
    delivered = "2026-10-20T12:00:00+02:00"
    in_time = datetime(2026, 11, 19, 11, 0, 0, tzinfo=berlin)
    assert decide_return(order(delivered=delivered), damaged=False, asked_at=in_time).eligible
    late = in_time + timedelta(seconds=1)
    assert not decide_return(order(delivered=delivered), damaged=False, asked_at=late).eligible


def test_a_missing_delivered_at_key_is_not_delivered() -> None:
    undelivered = order()
    del undelivered["delivered_at"]
    decision = decide_return(undelivered, damaged=False, asked_at=datetime.fromisoformat(ASKED))
    assert decision.reason == "not_delivered"
    assert decision.detail == (
        "Order ORD-000001 has not been delivered yet, so it cannot be returned."
    )


@pytest.mark.parametrize(
    ("delivered", "asked", "damaged", "detail"),
    [
        (
            "2026-10-25T10:00:00+00:00",
            ASKED,
            False,
            "Order ORD-000001 can no longer be returned because its 30-day return window "
            "ended on 24 November 2026.",
        ),
        (
            "2026-08-26T10:00:00+00:00",
            ASKED,
            True,
            "Order ORD-000001 can no longer be returned because its 90-day return window "
            "for damaged items ended on 24 November 2026.",
        ),
        (
            "2026-11-20T10:00:00+00:00",
            ASKED,
            False,
            "Order ORD-000001 can be returned because it is within its 30-day return window, "
            "which ends on 20 December 2026.",
        ),
        # The date is the customer's: the window ends 2026-11-25T15:30Z, which is the
        # 25th at -05:00.
        (
            "2026-10-27T00:30:00+09:00",
            "2026-11-25T20:00:00-05:00",
            False,
            "Order ORD-000001 can no longer be returned because its 30-day return window "
            "ended on 25 November 2026.",
        ),
    ],
)
def test_the_detail_says_which_order_why_and_until_when(
    delivered: str, asked: str, damaged: bool, detail: str
) -> None:
    assert decide(delivered, asked, damaged=damaged).detail == detail


@pytest.mark.parametrize("category", sorted(NON_RETURNABLE))
def test_each_non_returnable_category(category: str) -> None:
    decision = decide_return(
        order(categories=(category,)), damaged=False, asked_at=datetime.fromisoformat(ASKED)
    )
    assert not decision.eligible
    assert decision.reason == "non_returnable_category"
    assert category in decision.detail and "whole order" in decision.detail


@pytest.mark.parametrize(
    ("categories", "delivered", "damaged", "reason"),
    [
        # One non-returnable item makes the whole order non-returnable.
        (("kitchen", "grocery"), "2026-11-20T10:00:00+00:00", False, "non_returnable_category"),
        (("digital", "toys"), "2026-11-20T10:00:00+00:00", True, "non_returnable_category"),
        # The category is the reason that never changes: it comes first.
        (("kitchen", "gift-card"), None, False, "non_returnable_category"),
        (("kitchen", "gift-card"), "2026-01-01T10:00:00+00:00", False, "non_returnable_category"),
        # Spelled differently, the same categories.
        (("Gift Card",), "2026-11-20T10:00:00+00:00", False, "non_returnable_category"),
        ((" PERSONAL_CARE ",), "2026-11-20T10:00:00+00:00", False, "non_returnable_category"),
        # Returnable categories only.
        (("kitchen", "toys", "garden"), "2026-11-20T10:00:00+00:00", False, "eligible"),
        ((), "2026-11-20T10:00:00+00:00", False, "eligible"),
    ],
)
def test_mixed_orders(
    categories: tuple[str, ...], delivered: str | None, damaged: bool, reason: str
) -> None:
    decision = decide_return(
        order(categories=categories, delivered=delivered),
        damaged=damaged,
        asked_at=datetime.fromisoformat(ASKED),
    )
    assert decision.reason == reason


def test_several_non_returnable_categories_are_all_named() -> None:
    decision = decide_return(
        order(categories=("grocery", "kitchen", "digital")),
        damaged=False,
        asked_at=datetime.fromisoformat(ASKED),
    )
    assert decision.detail == (
        "Order ORD-000001 cannot be returned because it contains items in the digital and "
        "grocery categories, which are never returnable, and a return covers the whole order."
    )


@pytest.mark.parametrize(
    ("delivered", "asked"),
    [("2026-11-20T10:00:00", ASKED), ("2026-11-20T10:00:00+00:00", "2026-11-25T10:00:00")],
)
def test_times_without_an_offset_are_refused(delivered: str, asked: str) -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        decide(delivered, asked)


offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
day = 24 * 3600
near_a_boundary = st.sampled_from([RETURN_DAYS * day, DAMAGED_RETURN_DAYS * day]).flatmap(
    lambda edge: st.integers(min_value=edge - 2, max_value=edge + 2)
)


@given(
    delivered_utc=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    elapsed=st.one_of(st.integers(min_value=-5 * day, max_value=120 * day), near_a_boundary),
    delivered_zone=offsets,
    asked_zone=offsets,
    damaged=st.booleans(),
)
def test_eligible_exactly_when_the_window_holds(
    delivered_utc: datetime,
    elapsed: int,
    delivered_zone: timezone,
    asked_zone: timezone,
    damaged: bool,
) -> None:
    # Whole seconds, so that the timestamps below subtract exactly.
    delivered_utc = delivered_utc.replace(microsecond=0)
    delivered_at = delivered_utc.astimezone(delivered_zone)
    asked_at = (delivered_utc + timedelta(seconds=elapsed)).astimezone(asked_zone)
    decision = decide_return(
        order(delivered=delivered_at.isoformat()), damaged=damaged, asked_at=asked_at
    )
    days = 90 if damaged else 30
    expected = asked_at.timestamp() - delivered_at.timestamp() <= days * 86_400
    assert decision.eligible == expected
    assert decision.reason == (
        ("eligible_damaged" if damaged else "eligible") if expected else "window_expired"
    )


# --- apply_rules -----------------------------------------------------------------------


def answer(
    text: str = "Sure, happy to help.", *actions: ProposedAction, **fields: Any
) -> ModelAnswer:
    return ModelAnswer(answer=text, actions=list(actions), **fields)


def proposed(kind: str, order_id: str | None = "ORD-000001", detail: str = "") -> ProposedAction:
    return ProposedAction(type=kind, order_id=order_id, detail=detail)


def actions_of(result: RuleResult) -> list[tuple[str, str | None]]:
    return [(a.type, a.order_id) for a in result.actions]


@pytest.mark.parametrize(
    ("model_actions", "kept"),
    [
        ([], []),
        ([proposed("return_label")], []),
        ([proposed("return_denied"), proposed("track_order")], [("track_order", "ORD-000001")]),
        ([proposed(" Return_Label "), proposed("RETURN_DENIED")], []),
        (
            [proposed("refund_request"), proposed("track_order")],
            [
                ("refund_request", "ORD-000001"),
                ("track_order", "ORD-000001"),
            ],
        ),
    ],
)
def test_other_intents_keep_the_models_answer_but_never_a_return_action(
    model_actions: list[ProposedAction], kept: list[tuple[str, str | None]]
) -> None:
    query = make_query(intent="order_status", order_ids=["ORD-000001"])
    model = answer(" It ships tomorrow. ", *model_actions, intent="shipping")
    result = apply_rules(query, model, order=order(), unknown_order=None)
    assert result.escalate is None
    assert result.text == "It ships tomorrow."
    assert result.intent == "shipping", "the model's intent stands"
    assert actions_of(result) == kept
    assert all(isinstance(a, Action) for a in result.actions)
    assert result.decision is None


def test_the_models_return_intent_alone_does_not_make_a_return_request() -> None:
    query = make_query(intent="other")
    model = answer("A label is on its way.", proposed("return_label"), intent="return")
    result = apply_rules(query, model, order=order(), unknown_order=None)
    assert result.actions == [] and result.decision is None


@pytest.mark.parametrize(
    ("mentioned", "unknown_order"),
    [([], None), (["ORD-999999"], "ORD-999999")],
)
def test_a_return_request_without_an_order_is_escalated(
    mentioned: list[str], unknown_order: str | None
) -> None:
    query = make_query(intent="return", order_ids=mentioned)
    model = answer("Your label is on its way.", proposed("return_label"))
    result = apply_rules(query, model, order=None, unknown_order=unknown_order)
    assert result.escalate == "no_order"
    assert result.text == "" and result.actions == [] and result.decision is None


def test_a_return_is_not_decided_for_an_order_the_customer_did_not_mean() -> None:
    query = make_query(intent="return", order_ids=["ORD-999999"])
    result = apply_rules(query, answer(), order=order(), unknown_order="ORD-999999")
    assert result.escalate == "no_order"


def test_a_mentioned_order_is_decided_even_when_another_mentioned_id_is_unknown() -> None:
    # app.enrich.pick_order gives the named order, and no unknown id, for this text.
    text = "Return ORD-000001 please, not ORD-999999."
    query = make_query(text=text, intent="return", order_ids=["ORD-000001", "ORD-999999"])
    found, unknown = pick_order({"ORD-000001": order()}, text, hinted=query.order_ids)
    result = apply_rules(query, answer(), order=found, unknown_order=unknown)
    assert result.escalate is None
    assert actions_of(result) == [("return_label", "ORD-000001")]


def test_a_return_is_not_decided_for_an_order_whatever_its_id_format() -> None:
    # The customer's orders are HO-...; HO-90002 is not theirs: no fallback to HO-90001.
    text = "I want to return ho-90002"
    query = make_query(text=text, intent="return", order_ids=[])
    found, unknown = pick_order({"HO-90001": order("HO-90001")}, text)
    assert (found, unknown) == (None, "HO-90002")
    result = apply_rules(query, answer(), order=found, unknown_order=unknown)
    assert result.escalate == "no_order"


ELIGIBLE = "2026-11-20T10:00:00+00:00"
EXPIRED = "2026-09-01T10:00:00+00:00"  # 85 days before ASKED


@pytest.mark.parametrize(
    ("delivered", "damaged", "model_actions", "action"),
    [
        (ELIGIBLE, False, [], "return_label"),
        (ELIGIBLE, False, [proposed("return_denied", detail="Too late.")], "return_label"),
        (EXPIRED, False, [proposed("return_label")], "return_denied"),
        (EXPIRED, True, [proposed("return_denied")], "return_label"),
        (None, False, [proposed("return_label")], "return_denied"),
        # Whatever else the model proposed goes too: the decision is the one action.
        (
            ELIGIBLE,
            False,
            [proposed("track_order"), proposed("return_label", "ORD-2")],
            "return_label",
        ),
        (EXPIRED, False, [proposed("refund_request")], "return_denied"),
    ],
)
def test_a_return_request_gets_exactly_the_decisions_action(
    delivered: str | None, damaged: bool, model_actions: list[ProposedAction], action: str
) -> None:
    query = make_query(
        intent="return", order_ids=["ORD-000001"], damaged=damaged, received_at=ASKED
    )
    model = answer("Whatever the model says.", *model_actions, intent="other")
    result = apply_rules(query, model, order=order(delivered=delivered), unknown_order=None)
    assert result.escalate is None
    assert result.intent == "return"
    assert actions_of(result) == [(action, "ORD-000001")]
    assert result.decision is not None
    assert result.actions[0].detail == result.decision.detail
    assert "Whatever the model says" not in result.text


def test_an_accepted_return_replaces_the_models_text() -> None:
    query = make_query(intent="return", received_at=ASKED)
    model = answer("Sorry, this order cannot be returned.", proposed("return_denied"))
    result = apply_rules(query, model, order=order(delivered=ELIGIBLE), unknown_order=None)
    assert result.text == (
        "Your return for order ORD-000001 is accepted: a prepaid return label is on its way "
        "to you by e-mail."
    )


def test_a_denied_return_states_the_reason_instead_of_the_models_text() -> None:
    query = make_query(intent="return", received_at=ASKED)
    model = answer("Good news, a return label is on its way!", proposed("return_label"))
    result = apply_rules(query, model, order=order(delivered=EXPIRED), unknown_order=None)
    assert result.text == (
        "Order ORD-000001 can no longer be returned because its 30-day return window ended "
        "on 1 October 2026."
    )
    assert result.actions[0].detail == result.text


def test_the_query_time_is_when_it_was_received_in_its_own_offset() -> None:
    late = make_query(intent="return", received_at="2026-11-26T05:30:01+01:00")
    in_time = make_query(intent="return", received_at="2026-11-26T05:30:00+01:00")
    # Delivered 2026-10-27T04:30Z: the window ends 2026-11-26T04:30Z, 05:30 at +01:00.
    delivered = order(delivered="2026-10-26T23:30:00-05:00")
    assert apply_rules(late, answer(), order=delivered, unknown_order=None).actions[0].type == (
        "return_denied"
    )
    assert apply_rules(in_time, answer(), order=delivered, unknown_order=None).actions[0].type == (
        "return_label"
    )
