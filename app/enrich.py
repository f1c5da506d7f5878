"""What the tables add to a query: the customer's profile, the order in question, history.

Plain functions over the plain values the tables hold (dicts and lists, as their
JSON changelogs carry them), so enrichment is tested without Kafka. The agents read
and write the tables; these functions decide what goes in and what comes out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from app.ordermatch import lookalike_order_ids, named_order_ids
from app.pii import PLACEHOLDERS, find_pii
from app.records import Query


@dataclass(frozen=True, kw_only=True)
class Turn:
    """One answered query of a conversation."""

    query_id: str
    arrived_ms: int
    channel: str
    question: str  # the redacted query text
    answer: str

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Turn:
        return cls(**{k: value[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True, kw_only=True)
class Context:
    """Everything the tables know that bears on one query."""

    profile: dict[str, Any] | None = None
    order: dict[str, Any] | None = None
    #: An order id the customer named but does not have (then ``order`` is None).
    unknown_order: str | None = None
    history: list[Turn] = field(default_factory=list)


def add_turn(turns: list[dict[str, Any]] | None, turn: Turn, *, keep: int) -> list[dict[str, Any]]:
    """``turns`` with ``turn`` in arrival order, once per query id, the last ``keep``."""
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, got {keep}")
    kept = [t for t in (turns or []) if t.get("query_id") != turn.query_id]
    kept.append(asdict(turn))
    kept.sort(key=lambda t: t.get("arrived_ms", 0))
    return kept[-keep:] if keep else []


def history_before(turns: list[dict[str, Any]] | None, query: Query) -> list[Turn]:
    """The turns that came before ``query``, oldest first.

    A query processed again after a crash sees the same history as the first time
    (its own turn and later ones are left out), so its prompt, and the result
    cache's key, do not change.
    """
    return [
        Turn.from_dict(t)
        for t in turns or []
        if t.get("query_id") != query.query_id and t.get("arrived_ms", 0) < query.arrived_ms
    ]


def upsert_order(
    orders: dict[str, dict[str, Any]] | None, order: dict[str, Any], *, keep: int
) -> dict[str, dict[str, Any]]:
    """``orders`` with ``order`` replacing any earlier event of its id; the ``keep``
    most recent by ``ordered_at``."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    merged = {**(orders or {}), order["order_id"]: order}
    if len(merged) <= keep:
        return merged
    newest = sorted(merged.values(), key=_ordered_at, reverse=True)[:keep]
    return {o["order_id"]: o for o in newest}


def pick_order(
    orders: dict[str, dict[str, Any]] | None, text: str, *, hinted: Iterable[str] = ()
) -> tuple[dict[str, Any] | None, str | None]:
    """The order a query is about, and the id the customer named but does not have.

    SPEC section 4: the order whose id the customer names in ``text``, found among
    that customer's own ``orders`` whatever the ids' format
    (``app.ordermatch.named_order_ids``; the first named wins), else the customer's most
    recent delivered one (by ``delivered_at``).

    An id the customer does not own decides nothing: when the text names none of the
    customer's ids but one of ``hinted`` (ids the classifier recognised by their
    format) or a word shaped like the customer's ids
    (``app.ordermatch.lookalike_order_ids``), there is no order, and that id is returned
    so that no return is decided for an order the customer did not mean. So it is when
    the customer's ids look like phone or card numbers and the text holds their
    redaction placeholder (``[PHONE]``, ``[CARD]``): the id it replaced may be one.
    """
    orders = orders or {}
    named = named_order_ids(text, orders)
    if named:
        return orders[named[0]], None
    owned = {_id_key(order_id) for order_id in orders}
    unknown = [i for i in hinted if _id_key(i) not in owned] + lookalike_order_ids(text, orders)
    unknown += _redacted_ids(text, orders)
    if unknown:
        return None, unknown[0]
    delivered = [o for o in orders.values() if o.get("delivered_at")]
    if not delivered:
        return None, None
    return max(delivered, key=lambda o: _parse(o["delivered_at"])), None


def _id_key(order_id: str) -> str:
    return order_id.strip().casefold()


def _redacted_ids(text: str, orders: dict[str, dict[str, Any]]) -> list[str]:
    """The placeholders in ``text`` that may stand for one of the customer's ids.

    Redaction runs before the orders are known, and an id shaped like a phone number
    ("555-1234", "0123456789") or a card number is redacted as one: which order the
    customer named cannot be told, so none is guessed.
    """
    shown = {kind for kind, placeholder in PLACEHOLDERS.items() if placeholder in text}
    if not shown:
        return []
    kinds = {match.kind for order_id in orders for match in find_pii(order_id)} & shown
    return [PLACEHOLDERS[kind] for kind in sorted(kinds)]


def _ordered_at(order: dict[str, Any]) -> datetime:
    return _parse(order["ordered_at"])


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def already_routed(routed: dict[str, int] | None, query_id: str) -> bool:
    return routed is not None and query_id in routed


def mark_routed(
    routed: dict[str, int] | None, query_id: str, *, now_ms: int, ttl_ms: int
) -> dict[str, int]:
    """``routed`` with ``query_id`` added and entries older than ``ttl_ms`` dropped."""
    horizon = now_ms - ttl_ms
    kept = {q: at for q, at in (routed or {}).items() if at >= horizon}
    kept[query_id] = now_ms
    return kept
