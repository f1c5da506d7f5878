"""Parsing chat payloads: good ones become queries, bad ones a clear InputError."""

from __future__ import annotations

import json

import pytest

from app.errors import DecodeError, ValidationError
from app.inbound import parse_chat

WHERE = {"topic": "support.chat.inbound", "partition": 3, "offset": 41, "arrived_ms": 1000}


def chat(**fields: object) -> bytes:
    payload = {
        "message_id": "m1",
        "session_id": "s1",
        "customer_id": "C1",
        "text": "  Where is my parcel?  ",
        "sent_at": "2026-11-25T10:00:00+01:00",
    }
    payload.update(fields)
    return json.dumps({k: v for k, v in payload.items() if v is not ...}).encode()


def test_a_chat_message_becomes_a_query() -> None:
    query = parse_chat(chat(), max_chars=100, **WHERE)
    assert query.query_id == "m1"
    assert query.customer_id == "C1"
    assert query.channel == "chat"
    assert query.text == "Where is my parcel?"
    assert query.session_id == "s1"
    assert (query.source_topic, query.source_partition, query.source_offset) == (
        "support.chat.inbound",
        3,
        41,
    )
    assert query.arrived_ms == 1000


def test_session_id_is_optional_and_extra_fields_are_ignored() -> None:
    query = parse_chat(chat(session_id=..., extra="x"), max_chars=100, **WHERE)
    assert query.session_id is None


@pytest.mark.parametrize(
    ("raw", "error", "says"),
    [
        (b"", DecodeError, "empty"),
        (None, DecodeError, "empty"),
        (b"\xff\xfe", DecodeError, "UTF-8"),
        (b"{nope", DecodeError, "not JSON"),
        (b"[1, 2]", DecodeError, "expected an object"),
        (chat(customer_id=...), ValidationError, "customer_id"),
        (chat(customer_id=42), ValidationError, "customer_id"),
        (chat(message_id=""), ValidationError, "message_id"),
        (chat(text=None), ValidationError, "text"),
        (chat(text="   "), ValidationError, "empty"),
        (chat(text="x" * 101), ValidationError, "limit 100"),
    ],
)
def test_bad_input_says_what_is_wrong(raw: bytes | None, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        parse_chat(raw, max_chars=100, **WHERE)
