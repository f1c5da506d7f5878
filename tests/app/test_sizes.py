"""What fits in one record, and dead letters cut to fit, around the producer's limit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from hypothesis import event, given, settings
from hypothesis import strategies as st

from app import dlq
from app.dlq import dlq_headers, fit_dead_letter
from app.errors import DecodeError, TooLarge, ValidationError
from app.main import app
from app.settings import get_settings
from app.sizes import (
    HEADER_ROOM,
    MAX_ID_BYTES,
    ORIGINAL_KEY_SIZE,
    ORIGINAL_SHA256,
    ORIGINAL_SIZE,
    check_ids,
    check_record,
    check_table_value,
    check_whole,
    cut_to_fit,
    dead_letterable,
    fits,
    is_size_error,
    longest_prefix,
    record_size,
)

LIMITS = st.sampled_from([16_384, 100_000, 1_000_000, 1_048_576])
SOURCE = ("support.chat.inbound", 3, 1_234_567)


def headers_for(error: Exception) -> list[tuple[str, bytes]]:
    topic, partition, offset = SOURCE
    return dlq_headers(error=error, topic=topic, partition=partition, offset=offset)


@dataclass(frozen=True)
class Case:
    """A limit, a key and a value whose record is within a few hundred bytes of it
    (sizes only, so that a failing example prints short)."""

    limit: int
    key_size: int | None
    value_size: int
    byte: int

    @property
    def key(self) -> bytes | None:
        return None if self.key_size is None else b"k" * self.key_size

    @property
    def value(self) -> bytes:
        return bytes([self.byte]) * self.value_size


@st.composite
def near_limit(draw: st.DrawFn) -> Case:
    limit = draw(LIMITS)
    key_size = draw(
        st.one_of(st.none(), st.integers(0, 40), st.integers(0, limit), st.integers(0, 3 * limit))
    )
    key = None if key_size is None else b"k" * key_size
    # Around the most a dead letter can take, or around the most an inbound message may
    # take to be dead-lettered whole.
    if draw(st.booleans()):
        room = limit - record_size(key, b"", headers_for(DecodeError("x")))
    else:
        room = limit - record_size(key, b"", []) - HEADER_ROOM
    size = max(0, room + draw(st.integers(-300, 300)))
    return Case(limit, key_size, size, draw(st.integers(0, 255)))


def producer_accepts(limit: int, key: bytes | None, value: bytes, headers) -> bool:
    """Whether aiokafka's producer, limited to ``limit``, takes the record (its own check)."""
    producer = AIOKafkaProducer(max_request_size=limit)
    try:
        producer._serialize(key, value, headers)
    except MessageSizeTooLargeError:
        return False
    finally:
        producer._closed = True  # never started: nothing to close
    return True


@settings(max_examples=300, deadline=None)
@given(near_limit())
def test_a_letter_fits_whole_or_is_cut_to_the_longest_prefix_that_fits(case) -> None:
    limit, key, value = case.limit, case.key, case.value
    headers = headers_for(DecodeError("value is not JSON"))
    out_key, out_value, out_headers = cut_to_fit(key, value, headers, limit=limit)
    assert fits(out_key, out_value, out_headers, limit=limit)
    if fits(key, value, headers, limit=limit):
        assert (out_key, out_value, out_headers) == (key, value, headers)
        return
    named = dict(out_headers)
    assert named[ORIGINAL_SIZE] == str(len(value)).encode()
    assert named[ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest().encode()
    assert value.startswith(out_value)
    if len(out_value) < len(value):
        # The longest prefix: one byte more would not fit.
        assert not fits(out_key, value[: len(out_value) + 1], out_headers, limit=limit)
    if key is not None and out_key != key:
        # Only a key over half the room is cut, and to half of it.
        assert named[ORIGINAL_KEY_SIZE] == str(len(key)).encode()
        assert key.startswith(out_key) and len(out_key) > limit // 2 - HEADER_ROOM
        assert len(out_value) == len(value) or len(out_value) > limit // 2 - HEADER_ROOM
    else:
        assert ORIGINAL_KEY_SIZE not in named and len(out_value) < len(value)


@settings(max_examples=60, deadline=None)
@given(near_limit())
async def test_the_producer_takes_what_fits_and_refuses_a_byte_more(case) -> None:
    limit, key, value = case.limit, case.key, case.value
    headers = headers_for(ValidationError("text is too long"))
    out_key, out_value, out_headers = cut_to_fit(key, value, headers, limit=limit)
    assert producer_accepts(limit, out_key, out_value, out_headers)
    n = longest_prefix(out_key, value, out_headers, limit=limit)
    if n < len(value):
        assert not producer_accepts(limit, out_key, value[: n + 1], out_headers)


def test_the_header_room_holds_the_largest_dead_letter_headers() -> None:
    # error.message at its longest (1000 characters of 4 bytes each), a topic name of
    # the longest length Kafka allows, offsets of 20 digits, and the original.* headers.
    error = ValidationError("\U0001f600" * 5000)
    headers = dlq_headers(error=error, topic="t" * 249, partition=2**31, offset=2**63)
    headers += [
        (ORIGINAL_SIZE, str(2**40).encode()),
        (ORIGINAL_SHA256, b"0" * 64),
        (ORIGINAL_KEY_SIZE, str(2**40).encode()),
    ]
    assert record_size(None, b"", headers) - record_size(None, b"", []) <= HEADER_ROOM


@settings(max_examples=200, deadline=None)
@given(near_limit(), st.sampled_from([DecodeError("bad"), ValidationError("\u00e9" * 2000)]))
def test_a_message_that_can_be_dead_lettered_whole_is(case, error) -> None:
    limit, key, value = case.limit, case.key, case.value
    event("whole" if dead_letterable(key, value, limit=limit) else "too large")
    if not dead_letterable(key, value, limit=limit):
        with pytest.raises(TooLarge, match="too large to forward whole"):
            check_whole(key, value, limit=limit)
        return
    check_whole(key, value, limit=limit)
    out_key, out_value, out_headers = fit_dead_letter(
        key=key, value=value, error=error, source=SOURCE, limit=limit
    )
    assert (out_key, out_value) == (key, value)
    assert dict(out_headers)["error.type"] == error.error_type.encode()
    assert ORIGINAL_SIZE not in dict(out_headers)


@settings(max_examples=100, deadline=None)
@given(LIMITS, st.integers(1, 4), st.binary(min_size=1, max_size=1))
def test_a_dead_letter_too_large_to_send_whole_is_too_large_and_keeps_its_reason(
    limit: int, times: int, byte: bytes
) -> None:
    value = byte * (limit * times)
    out_key, out_value, out_headers = fit_dead_letter(
        key=b"C-1",
        value=value,
        error=ValidationError("text is too long"),
        source=SOURCE,
        limit=limit,
    )
    named = dict(out_headers)
    assert named["error.type"] == b"too_large"
    message = named["error.message"].decode()
    assert f"message of {len(value)} bytes" in message
    assert "validation_error: text is too long" in message
    assert named["source.topic"] == SOURCE[0].encode()
    assert named["source.offset"] == str(SOURCE[2]).encode()
    assert named[ORIGINAL_SIZE] == str(len(value)).encode()
    assert out_key == b"C-1" and value.startswith(out_value)
    assert limit - 200 < record_size(out_key, out_value, out_headers) <= limit


def test_a_record_or_a_table_value_too_large_is_named_in_the_error() -> None:
    check_record(b"k", b"v" * 1000, limit=2000, what="its query")
    with pytest.raises(TooLarge, match="its query would be a record of 2"):
        check_record(b"k", b"v" * 2000, limit=2000, what="its query")

    class Table:
        value_serializer = "json"

    # JSON escapes a quote: 600 of them take 1200 bytes in the changelog.
    check_table_value(Table(), b"k", {"a": "x" * 600}, limit=1000, what="the profile")
    with pytest.raises(TooLarge, match="the profile would be a record"):
        check_table_value(Table(), b"k", {"a": '"' * 600}, limit=1000, what="the profile")


def test_size_errors_are_told_from_other_send_errors() -> None:
    try:
        try:
            raise MessageSizeTooLargeError("The message is 2000100 bytes when serialized")
        except MessageSizeTooLargeError as exc:
            raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    except ProducerSendError as wrapped:
        assert is_size_error(wrapped)
    assert is_size_error(MessageSizeTooLargeError())
    assert not is_size_error(KafkaTimeoutError())
    assert not is_size_error(ProducerSendError("no transaction producer"))


def test_the_worker_producer_uses_the_setting() -> None:
    assert app.conf.producer_max_request_size == get_settings().producer_max_request_size


@given(st.text(min_size=0, max_size=300), st.integers(0, 4))
def test_an_id_longer_than_the_limit_is_a_validation_error(text: str, times: int) -> None:
    value = text * (times * 10)
    if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        with pytest.raises(ValidationError, match=r"customer_id is \d+ bytes long"):
            check_ids(message_id="m-1", customer_id=value)
    else:
        check_ids(message_id="m-1", customer_id=value, session_id=None)


class Broker:
    """Stands in for the dead-letter send: refuses records over its own limit, as a
    broker with a lower ``max.message.bytes`` answers (after the producer let them by)."""

    def __init__(self, limit: int, *, down: bool = False) -> None:
        self.limit = limit
        self.down = down
        self.kept: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []

    async def deliver(self, key, value, headers) -> None:
        if self.down:
            raise KafkaTimeoutError()
        if record_size(key, value, headers) > self.limit:
            raise MessageSizeTooLargeError()
        self.kept.append((key, value, headers))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch):
    def install(limit: int, *, learned: int | None, down: bool = False) -> Broker:
        fake = Broker(limit, down=down)
        monkeypatch.setattr(dlq, "_deliver", fake.deliver)
        monkeypatch.setattr(dlq, "_broker_limit", None)

        async def topic_message_limit(settings, topic):
            return learned

        monkeypatch.setattr(dlq, "topic_message_limit", topic_message_limit)
        return fake

    return install


@pytest.mark.parametrize("learned", [400_000, None])
async def test_a_dead_letter_the_broker_refuses_is_sent_again_cut_to_its_limit(
    broker, learned: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    fake = broker(400_000, learned=learned)
    value = b"v" * 600_000  # fits the producer's limit, not the broker's
    error = ValidationError("text is too long")
    await dlq.send_dead_letter(key=b"C-1", value=value, error=error, source=SOURCE)
    (kept,) = fake.kept
    named = dict(kept[2])
    assert named["error.type"] == b"too_large"
    assert named[ORIGINAL_SIZE] == b"600000" and value.startswith(kept[1])
    # The limit learned (or the producer's halved until the broker took it) holds for
    # the next dead letters too.
    assert dlq.dead_letter_limit() == (learned or get_settings().producer_max_request_size // 4)
    await dlq.send_dead_letter(key=None, value=b"w" * 450_000, error=error, source=SOURCE)
    assert dict(fake.kept[1][2])["error.type"] == b"too_large"
    assert [r.getMessage()[:13] for r in caplog.records].count("dead-lettered") == 2


async def test_a_dead_letter_is_logged_only_once_the_broker_has_it(
    broker, caplog: pytest.LogCaptureFixture
) -> None:
    broker(10_000_000, learned=None, down=True)
    with pytest.raises(KafkaTimeoutError):
        await dlq.send_dead_letter(
            key=None, value=b"{", error=DecodeError("value is not JSON"), source=SOURCE
        )
    assert not [r for r in caplog.records if r.getMessage().startswith("dead-lettered")]


def test_every_too_large_letter_says_what_the_whole_was_even_when_it_fits() -> None:
    value = b'{"name": "' + b"n" * 5000 + b'"}'
    error = TooLarge("the profile would be a record of 2400191 bytes")
    out_key, out, headers = fit_dead_letter(
        key=b"C-1", value=value, error=error, source=SOURCE, limit=100_000
    )
    named = dict(headers)
    assert (out_key, out) == (b"C-1", value) and named["error.type"] == b"too_large"
    assert named[ORIGINAL_SIZE] == str(len(value)).encode()
    assert named[ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest().encode()
    assert [name for name, _ in headers].count(ORIGINAL_SIZE) == 1
