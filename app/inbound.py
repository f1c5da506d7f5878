"""Parsing of the inbound channel payloads (SPEC section 3) into ``Query`` records.

Plain functions: bytes in, a record out, or an ``InputError`` whose message is
what the dead-letter topic tells an operator.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from app.errors import DecodeError, ValidationError
from app.records import Query

M = TypeVar("M", bound=BaseModel)


class ChatMessage(BaseModel):
    """``support.chat.inbound`` payload."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    text: str
    sent_at: str
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
    text = message.text.strip()
    if not text:
        raise ValidationError("text is empty")
    if len(text) > max_chars:
        raise ValidationError(f"text has {len(text)} characters, more than the limit {max_chars}")
    return Query(
        query_id=message.message_id,
        customer_id=message.customer_id,
        channel="chat",
        text=text,
        received_at=message.sent_at,
        arrived_ms=arrived_ms,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        session_id=message.session_id,
    )
