"""Record sizes: what fits in one Kafka record, and how a dead letter is cut to fit.

A producer refuses a record whose size, as aiokafka estimates it (the record batch
header, the most a record's own framing can take, the key, the value and the
headers), is over its ``max_request_size`` (``FLOWDESK_PRODUCER_MAX_REQUEST_SIZE``);
a broker refuses a batch over its ``message.max.bytes``. The checks here use the
producer's own estimate, so what they accept the producer sends.

An inbound message that cannot be dead-lettered whole goes to the dead-letter topic
cut to the longest prefix that fits, with headers giving its original size and
SHA-256 (``cut_to_fit``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from faust.serializers import codecs

from app.errors import TooLarge, ValidationError
from app.settings import Settings

logger = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

#: Headers of a dead letter cut to fit: the whole value's length in bytes and its
#: SHA-256 (hex), and the whole key's length when the key had to be cut too.
ORIGINAL_SIZE = "original.size"
ORIGINAL_SHA256 = "original.sha256"
ORIGINAL_KEY_SIZE = "original.key.size"

#: The longest id accepted (message, session, call, customer and order ids), in UTF-8
#: bytes. Ids are copied into keys, records and table entries (a customer's history
#: and routed records hold their query ids), so a huge id would make those too large.
MAX_ID_BYTES = 1024

#: Room kept for a dead letter's headers when deciding whether a message can be
#: dead-lettered whole: ``error.type``, ``error.message`` (at most 1000 characters,
#: so at most 4000 bytes), the ``source.*`` headers (a topic name has at most 249
#: characters) and the ``original.*`` ones, with their framing, take far less.
HEADER_ROOM = 8192


def record_size(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> int:
    """The size the producer counts for one record (aiokafka's upper bound)."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers)))


def fits(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]], *, limit: int
) -> bool:
    """Whether the record is within ``limit`` bytes (a producer's max request size)."""
    return record_size(key, value, headers) <= limit


def dead_letterable(key: bytes | None, value: bytes | None, *, limit: int) -> bool:
    """Whether a message can go to the dead-letter topic whole, whatever its headers."""
    return record_size(key, value, ()) + HEADER_ROOM <= limit


def check_whole(key: bytes | None, value: bytes | None, *, limit: int) -> None:
    """Raise ``TooLarge`` unless the message can be dead-lettered whole.

    Checked before anything else, so a message the pipeline could not park whole is
    never taken in: it is dead-lettered at once, cut to fit.
    """
    if not dead_letterable(key, value, limit=limit):
        size = len(value or b"") + len(key or b"")
        raise TooLarge(
            f"message of {size} bytes (key and value) is too large to forward whole: a "
            f"record holds at most {limit} bytes with its headers "
            f"(FLOWDESK_PRODUCER_MAX_REQUEST_SIZE)"
        )


def check_record(
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] = (),
    *,
    limit: int,
    what: str,
) -> None:
    """Raise ``TooLarge`` when the record ``what`` names would not fit in ``limit``."""
    size = record_size(key, value, headers)
    if size > limit:
        raise TooLarge(
            f"{what} would be a record of {size} bytes, more than the {limit} bytes one "
            f"may hold (FLOWDESK_PRODUCER_MAX_REQUEST_SIZE)"
        )


def check_table_value(table: Any, key: bytes, value: Any, *, limit: int, what: str) -> None:
    """Raise ``TooLarge`` when ``value`` would not fit in one record of ``table``'s changelog.

    Faust sends a table's changes from a buffer of its own, where a record that is
    too large stops the worker, so the agent checks before it writes.
    """
    check_record(key, codecs.dumps(table.value_serializer, value), limit=limit, what=what)


def check_ids(**ids: str | None) -> None:
    """Raise ``ValidationError`` for an id longer than ``MAX_ID_BYTES``."""
    for name, value in ids.items():
        size = len(value.encode("utf-8", "surrogatepass")) if value else 0
        if size > MAX_ID_BYTES:
            raise ValidationError(
                f"{name} is {size} bytes long; an id may have at most {MAX_ID_BYTES}"
            )


def longest_prefix(
    key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]], *, limit: int
) -> int:
    """The length of the longest prefix of ``value`` whose record fits in ``limit``.

    0 when not even an empty value fits.
    """
    room = limit - record_size(key, b"", headers)
    if room <= 0:
        return 0
    # The value's length prefix (a varint) grows with it: start at the room and step
    # down over the few bytes that prefix can take.
    n = min(len(value), room)
    while n > 0 and record_size(key, value[:n], headers) > limit:
        n -= 1
    return n


def described(value: bytes, headers: Headers) -> Headers:
    """``headers`` with ``original.size`` and ``original.sha256`` of ``value`` (once)."""
    if any(name == ORIGINAL_SIZE for name, _ in headers):
        return headers
    return [
        *headers,
        (ORIGINAL_SIZE, str(len(value)).encode()),
        (ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()),
    ]


def cut_to_fit(
    key: bytes | None, value: bytes, headers: Headers, *, limit: int
) -> tuple[bytes | None, bytes, Headers]:
    """``key``, ``value`` and ``headers`` as one record within ``limit``.

    Unchanged when they fit. Otherwise the headers gain ``original.size`` and
    ``original.sha256`` (of the whole value) and the value is cut to the longest
    prefix that fits; a key over half of the room is cut to half of it too (and
    ``original.key.size`` says how long it was), so that some of the value stays.
    ``ValueError`` when the headers alone do not fit.
    """
    if fits(key, value, headers, limit=limit):
        return key, value, headers
    headers = described(value, headers)
    if key is not None:
        room = limit - record_size(None, b"", headers)
        if len(key) > room // 2:
            headers.append((ORIGINAL_KEY_SIZE, str(len(key)).encode()))
            room = limit - record_size(None, b"", headers)
            key = key[: max(room // 2 - 8, 0)]
    if not fits(key, b"", headers, limit=limit):
        raise ValueError(f"headers of {record_size(None, b'', headers)} bytes exceed {limit}")
    return key, value[: longest_prefix(key, value, headers, limit=limit)], headers


def is_size_error(error: BaseException | None) -> bool:
    """Whether a send failed because the record was too large (the producer's check,
    which Faust wraps, or the broker's answer)."""
    while error is not None:
        if isinstance(error, (MessageSizeTooLargeError, RecordListTooLargeError)):
            return True
        error = error.__cause__
    return False


async def topic_message_limit(settings: Settings, topic: str) -> int | None:
    """The broker's ``max.message.bytes`` for ``topic``; None when it does not say.

    Asked only after the broker refused a record as too large (a broker that keeps
    no topic configs, such as the embedded one, says nothing).
    """
    from app.main import client_security

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=10_000,
        **client_security(settings),
    )
    try:
        await admin.start()
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})
        responses = await admin.describe_configs([resource])
    except Exception as exc:
        logger.warning("could not read %s's max.message.bytes: %s", topic, exc)
        return None
    finally:
        await admin.close()
    for response in responses:
        for resource_result in response.resources:
            for entry in resource_result[4]:
                if entry[0] == "max.message.bytes" and entry[1]:
                    return int(entry[1])
    return None
