"""Parsing of the inbound channel payloads (SPEC section 3) into ``Query`` records.

Plain functions: bytes in, a record out, or an ``InputError`` whose message is
what the dead-letter topic tells an operator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from app.classify import classify_intent, detect_injection, order_ids, reports_damage, sentiment
from app.errors import DecodeError, ValidationError
from app.pii import redact
from app.records import Query
from app.text import clean_text, normalise_email

M = TypeVar("M", bound=BaseModel)

#: The instants a timestamp may name: ``datetime``'s range less a year at each end, so
#: that no arithmetic the rules do on one (return windows) leaves the range.
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_SHOWN_CHARS = 60


def parse_timestamp(value: object) -> datetime:
    """``value``, an ISO-8601 timestamp with a UTC offset, as an aware ``datetime``.

    SPEC section 3: every timestamp on an inbound message is ISO-8601 with an offset.
    What ``datetime.fromisoformat`` reads is accepted when it carries an offset (``Z``,
    ``+01:00``...). Raises ``ValueError`` saying what is wrong: not such a text, no
    offset, or an instant out of the range ``EARLIEST`` to ``LATEST``.
    """
    if not isinstance(value, str):
        raise ValueError(
            f"must be an ISO-8601 timestamp string with a UTC offset, got {type(value).__name__}"
        )
    shown = repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "...")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{shown} is not an ISO-8601 timestamp (expected e.g. 2026-11-25T09:30:00+01:00 "
            "or 2026-11-25T08:30:00Z)"
        ) from None
    if parsed.utcoffset() is None:
        raise ValueError(
            f"{shown} has no UTC offset: timestamps are ISO-8601 with an offset, e.g. "
            "2026-11-25T09:30:00+01:00 or 2026-11-25T08:30:00Z"
        )
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise ValueError(
            f"{shown} is out of range: a timestamp must lie between "
            f"{EARLIEST.date()} and {LATEST.date()} UTC"
        )
    return parsed


def _timestamp_text(value: str) -> str:
    parse_timestamp(value)
    return value


#: An inbound timestamp: checked by ``parse_timestamp``, kept as the sender wrote it.
Timestamp = Annotated[str, AfterValidator(_timestamp_text)]


class ChatMessage(BaseModel):
    """``support.chat.inbound`` payload."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    text: str
    sent_at: Timestamp
    session_id: str | None = None


def decode_json_object(raw: bytes | None) -> dict[str, Any]:
    """``raw`` as a JSON object, or a ``DecodeError`` saying why not."""
    if not raw:
        raise DecodeError("empty message value")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError(f"value is not valid UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DecodeError(f"value is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise DecodeError(f"value is JSON {type(payload).__name__}, expected an object")
    return payload


def _validate(model: type[M], payload: dict[str, Any]) -> M:
    try:
        return model.model_validate(payload)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValidationError(f"invalid {model.__name__}: {problems}") from exc


def prepare_query(
    *,
    query_id: str,
    customer_id: str,
    channel: str,
    text: str,
    received_at: str,
    arrived_ms: int,
    source: tuple[str, int, int],
    max_chars: int,
    session_id: str | None = None,
    cleaned: bool = False,
) -> Query:
    """The ``Query`` for a customer's text: cleaned, size-checked, redacted, classified.

    Injection is looked for in the text before and after cleaning (cleaning strips
    tags, and a tag aimed at the prompt's delimiters is itself the attempt). PII is
    redacted before anything else reads the text, so no later stage, topic or log
    sees it; order ids survive redaction, so classification reads the redacted text.
    """
    clean = text if cleaned else clean_text(text)
    if not clean:
        raise ValidationError("text is empty after cleaning")
    if len(clean) > max_chars:
        raise ValidationError(
            f"text has {len(clean)} characters after cleaning, more than the limit "
            f"{max_chars} (FLOWDESK_MAX_TEXT_CHARS)"
        )
    # Cleaning usually changes nothing in a chat message: one look is the same as two.
    injection = detect_injection(text) or (clean != text and detect_injection(clean)) or ""
    redacted = redact(clean)
    topic, partition, offset = source
    return Query(
        query_id=query_id,
        customer_id=customer_id,
        channel=channel,
        text=redacted,
        received_at=received_at,
        arrived_ms=arrived_ms,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        session_id=session_id,
        intent=classify_intent(redacted),
        sentiment=sentiment(redacted).label,
        injection=injection,
        order_ids=order_ids(redacted),
        damaged=reports_damage(redacted),
    )


def parse_chat(
    raw: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    arrived_ms: int,
    max_chars: int,
) -> Query:
    """A chat message as a ``Query``; raises ``InputError`` for anything unusable."""
    message = _validate(ChatMessage, decode_json_object(raw))
    return prepare_query(
        query_id=message.message_id,
        customer_id=message.customer_id,
        channel="chat",
        text=message.text,
        received_at=message.sent_at,
        arrived_ms=arrived_ms,
        source=(topic, partition, offset),
        max_chars=max_chars,
        session_id=message.session_id,
    )


class EmailMessage(BaseModel):
    """``support.email.inbound`` payload."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    message_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    sender: str = Field("", alias="from")
    subject: str = ""
    body: str
    received_at: Timestamp


def parse_email(
    raw: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    arrived_ms: int,
    max_chars: int,
) -> Query:
    """An e-mail as a ``Query``: quoted mail and signature removed, subject kept."""
    message = _validate(EmailMessage, decode_json_object(raw))
    text = normalise_email(message.subject, message.body)
    return prepare_query(
        query_id=message.message_id,
        customer_id=message.customer_id,
        channel="email",
        text=text,
        received_at=message.received_at,
        arrived_ms=arrived_ms,
        source=(topic, partition, offset),
        max_chars=max_chars,
        cleaned=True,
    )


# --- CRM -------------------------------------------------------------------------------

Tier = Literal["standard", "gold", "vip"]


class Customer(BaseModel):
    """``crm.customers`` payload: a customer's profile (the latest one wins)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    customer_id: str = Field(min_length=1)
    name: str = ""
    email: str = ""
    tier: Tier = "standard"
    #: Empty when the CRM does not know it: the customer is then answered in the
    #: language they write in (``app.language``).
    locale: str = ""


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    name: str
    category: str
    price: float


class Order(BaseModel):
    """``crm.orders`` payload: the latest event per ``order_id`` wins."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    status: str
    ordered_at: AwareDatetime
    delivered_at: AwareDatetime | None = None
    items: list[OrderItem] = []

    @field_validator("ordered_at", "delivered_at", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        # pydantic would read a bare number as Unix time; SPEC says ISO-8601 text.
        return None if value is None else parse_timestamp(value)


def parse_customer(raw: bytes | None) -> Customer:
    return _validate(Customer, decode_json_object(raw))


def parse_order(raw: bytes | None) -> Order:
    return _validate(Order, decode_json_object(raw))
