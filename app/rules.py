"""The returns rule (SPEC section 4), and how it overrides the model's answer.

Whether an order can be returned is decided here, never by the model: a return request
gets exactly one ``return_label`` or ``return_denied`` action, and a text that states
that decision in place of whatever the model wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from app.answers import ModelAnswer
from app.records import Action, Query
from app.wording import categories_phrase, format_date, wording

#: Item categories that are never returnable.
NON_RETURNABLE = frozenset({"grocery", "gift-card", "digital", "personal-care"})
#: Days after delivery during which an order can be returned.
RETURN_DAYS = 30
#: The same when the customer reports the item damaged, broken or defective.
DAMAGED_RETURN_DAYS = 90

#: The actions only these rules issue; a model proposing one is overruled.
RETURN_ACTIONS = frozenset({"return_label", "return_denied"})

ReturnReason = Literal[
    "eligible",
    "eligible_damaged",
    "not_delivered",
    "window_expired",
    "non_returnable_category",
]


@dataclass(frozen=True, kw_only=True)
class ReturnDecision:
    """Whether an order can be returned, and why, in words a customer can read."""

    order_id: str
    eligible: bool
    reason: ReturnReason
    detail: str


@dataclass(frozen=True, kw_only=True)
class RuleResult:
    """What the rules make of a query and the model's answer to it.

    Either an escalation (``escalate`` is the reason; no text, no actions) or the
    answer to send: ``text``, ``intent`` and ``actions``. ``decision`` is the
    return decision behind the answer, when there is one.
    """

    escalate: str | None = None
    text: str = ""
    intent: str = "other"
    actions: list[Action] = field(default_factory=list)
    decision: ReturnDecision | None = None


def decide_return(
    order: dict[str, Any], *, damaged: bool, asked_at: datetime, language: str = "en"
) -> ReturnDecision:
    """Whether ``order`` can be returned when asked at ``asked_at``.

    The checks, in order, and the first that fails decides:

    - an item in a ``NON_RETURNABLE`` category makes the whole order non-returnable:
      a return is made of a whole order (its action carries only the order id), and
      the category is a reason that never changes, so it is given even for an order
      not yet delivered;
    - an order without ``delivered_at`` is not delivered;
    - the window: ``RETURN_DAYS`` after delivery, ``DAMAGED_RETURN_DAYS`` when
      ``damaged``. It is measured between instants, not calendar dates, in whole
      periods of 24 hours: the order is returnable while
      ``delivered_at >= asked_at - days``, so a query exactly 30 x 24 h after
      delivery is still in time and one a second later is not. A delivery recorded
      after the query (clocks disagree) is within the window.

    The reason is ``eligible_damaged`` whenever the longer window applied. Both times
    must carry a UTC offset; the date in ``detail`` is given in ``asked_at``'s offset,
    the customer's. ``detail`` is written in ``language`` (``app.wording``).
    """
    words = wording(language)
    order_id = str(order["order_id"])
    asked_at = _aware(asked_at, "asked_at")
    banned = sorted(
        {_category(item) for item in order.get("items") or []} & NON_RETURNABLE,
    )
    if banned:
        return ReturnDecision(
            order_id=order_id,
            eligible=False,
            reason="non_returnable_category",
            detail=words.non_returnable.format(
                order_id=order_id, items=categories_phrase(banned, language)
            ),
        )
    delivered = order.get("delivered_at")
    if not delivered:
        return ReturnDecision(
            order_id=order_id,
            eligible=False,
            reason="not_delivered",
            detail=words.not_delivered.format(order_id=order_id),
        )
    delivered_at = _aware(datetime.fromisoformat(delivered), "delivered_at")
    days = DAMAGED_RETURN_DAYS if damaged else RETURN_DAYS
    # In UTC, so that subtracting days never lands on another wall-clock hour across a
    # daylight-saving change of asked_at's zone.
    window_end = delivered_at.astimezone(UTC) + timedelta(days=days)
    last_day = format_date(window_end.astimezone(asked_at.tzinfo), language)
    window = (words.damaged_window if damaged else words.window).format(days=days)
    if delivered_at.astimezone(UTC) < asked_at.astimezone(UTC) - timedelta(days=days):
        return ReturnDecision(
            order_id=order_id,
            eligible=False,
            reason="window_expired",
            detail=words.window_expired.format(order_id=order_id, window=window, date=last_day),
        )
    return ReturnDecision(
        order_id=order_id,
        eligible=True,
        reason="eligible_damaged" if damaged else "eligible",
        detail=words.within_window.format(order_id=order_id, window=window, date=last_day),
    )


def apply_rules(
    query: Query,
    answer: ModelAnswer,
    *,
    order: dict[str, Any] | None,
    unknown_order: str | None,
    language: str = "en",
) -> RuleResult:
    """The answer to ``query`` once the pipeline's rules have overruled the model.

    ``order`` and ``unknown_order`` are what ``app.enrich.pick_order`` found. A
    return request is a query the pipeline's classifier gave the intent ``return``
    (the model's intent does not count). For one:

    - with no order, or when the customer named an id they do not have
      (``unknown_order``), the query is escalated as ``no_order``: a return is never
      decided for an order the customer did not mean;
    - otherwise the actions are exactly the decision's ``return_label`` or
      ``return_denied`` for that order, and the text states the decision: the model's
      text is dropped, as it may contradict it. That text and the decision's
      ``detail`` are written in ``language`` (``app.wording``).

    Any other query keeps the model's text, intent and actions, less the
    ``return_label`` and ``return_denied`` it may have proposed.
    """
    if query.intent != "return":
        kept = [
            Action(type=a.type, order_id=a.order_id, detail=a.detail)
            for a in answer.actions
            if _action_type(a.type) not in RETURN_ACTIONS
        ]
        return RuleResult(text=answer.answer.strip(), intent=answer.intent, actions=kept)
    if order is None or unknown_order:
        return RuleResult(escalate="no_order", intent=query.intent)
    decision = decide_return(
        order,
        damaged=query.damaged,
        asked_at=datetime.fromisoformat(query.received_at),
        language=language,
    )
    if decision.eligible:
        action = Action(type="return_label", order_id=decision.order_id, detail=decision.detail)
        text = wording(language).return_accepted.format(order_id=decision.order_id)
    else:
        action = Action(type="return_denied", order_id=decision.order_id, detail=decision.detail)
        text = decision.detail
    return RuleResult(text=text, intent="return", actions=[action], decision=decision)


def _action_type(value: str) -> str:
    return value.strip().lower()


def _category(item: dict[str, Any]) -> str:
    """An item's category as ``NON_RETURNABLE`` spells it ("Gift card" is "gift-card")."""
    return "-".join(str(item.get("category") or "").lower().replace("_", " ").split())


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must carry a UTC offset, got {value.isoformat()}")
    return value
