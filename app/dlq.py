"""The dead-letter topic: the original bytes of a message that cannot be processed.

Headers (SPEC section 3) say what went wrong and where the message came from, so
an operator can fix the producer or replay the message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.types import EventT

from app.dlq_once import ledger, once_per_source, source_key
from app.errors import FlowdeskError, InputError, TooLarge
from app.metrics import DEAD_LETTERS
from app.settings import get_settings
from app.sizes import (
    HEADER_ROOM,
    ORIGINAL_SIZE,
    cut_to_fit,
    described,
    fits,
    is_size_error,
    topic_message_limit,
)
from app.status import RECENT
from app.topics import DLQ, dlq_topic

logger = logging.getLogger(__name__)

MAX_ERROR_MESSAGE = 1000


def dlq_headers(
    *, error: BaseException, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """The dead-letter headers for ``error`` on the message at topic/partition/offset."""
    error_type = error.error_type if isinstance(error, FlowdeskError) else type(error).__name__
    message = str(error)[:MAX_ERROR_MESSAGE] or type(error).__name__
    return [
        ("error.type", error_type.encode()),
        ("error.message", message.encode("utf-8", "replace")),
        *source_headers(topic=topic, partition=partition, offset=offset),
    ]


#: Headers that carry the inbound coordinates of a message re-keyed onto an internal
#: topic, so that its dead letter names where it really came from.
SOURCE_HEADERS = ("source.topic", "source.partition", "source.offset")


def source_headers(*, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    return [
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
    ]


def header_dict(message: Any) -> dict[str, bytes]:
    """A message's headers as a dict (Faust gives a list of pairs or a mapping)."""
    raw = message.headers or ()
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    return {key: value for key, value in pairs}


def source_of(message: Any) -> tuple[str, int, int]:
    """Where ``message`` came from: its ``source.*`` headers if re-keyed, else itself."""
    return source_key(header_dict(message)) or (message.topic, message.partition, message.offset)


async def dead_letter(event: EventT, error: BaseException) -> None:
    """Send the message behind ``event`` to the dead-letter topic, unchanged.

    Agents park every message they cannot process here rather than stop: bad input
    (an ``InputError``) is the sender's to fix; anything else is a bug in flowdesk,
    logged with its traceback.
    """
    message = event.message
    if not isinstance(error, InputError):
        logger.error(
            "failed on %s[%s]@%s",
            message.topic,
            message.partition,
            message.offset,
            exc_info=error,
        )
    await send_dead_letter(
        key=message.key, value=message.value or b"", error=error, source=source_of(message)
    )


@once_per_source(ledger)
async def send_dead_letter(
    *, key: bytes | None, value: bytes, error: BaseException, source: tuple[str, int, int]
) -> None:
    """Dead-letter ``value``, the original bytes of the inbound message at ``source``.

    Whole when it fits in one record, else cut to fit (``fit_dead_letter``). Logged
    and counted once the broker has it.
    """
    global _broker_limit
    limit = dead_letter_limit()
    while True:
        letter = fit_dead_letter(key=key, value=value, error=error, source=source, limit=limit)
        try:
            await _deliver(*letter)
            break
        except Exception as exc:
            if not is_size_error(exc) or limit <= 2 * HEADER_ROOM:
                raise
            # The producer let it through, so the broker holds less than the producer
            # may send: learn how much (else halve, keeping room for the headers), and
            # send it cut to that.
            logger.warning("%s refused a record of up to %d bytes: %s", DLQ, limit, exc)
            learned = await topic_message_limit(get_settings(), DLQ)
            if learned is None or learned >= limit:
                learned = max(limit // 2, 2 * HEADER_ROOM)
            limit = _broker_limit = learned
    named = dict(letter[2])
    cut = f" (cut from {named[ORIGINAL_SIZE].decode()} bytes)" if ORIGINAL_SIZE in named else ""
    topic, partition, offset = source
    logger.warning(
        "dead-lettered %s[%s]@%s%s: %s: %s",
        topic,
        partition,
        offset,
        cut,
        named["error.type"].decode(),
        named["error.message"].decode(errors="replace")[:200],
    )
    DEAD_LETTERS.labels(error_type=named["error.type"].decode()).inc()
    RECENT.add("dead_letter")


#: The dead-letter topic's own limit, when the broker refused a record the producer
#: allowed (``send_dead_letter``); None: the producer's limit holds.
_broker_limit: int | None = None


def dead_letter_limit() -> int:
    """The most bytes one dead letter may take: the producer's limit, or the broker's."""
    limit = get_settings().producer_max_request_size
    return min(limit, _broker_limit) if _broker_limit is not None else limit


def fit_dead_letter(
    *,
    key: bytes | None,
    value: bytes,
    error: BaseException,
    source: tuple[str, int, int],
    limit: int,
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The dead letter of ``value``: key, value and headers within ``limit`` bytes.

    A value that does not fit whole becomes a ``too_large`` dead letter cut to fit,
    whatever else was wrong with it (its own error type and message follow in
    ``error.message``). Every ``too_large`` letter carries ``original.size`` and
    ``original.sha256``.
    """
    topic, partition, offset = source
    headers = dlq_headers(error=error, topic=topic, partition=partition, offset=offset)
    if isinstance(error, TooLarge):
        # Every too_large letter says what the whole was, cut or not.
        headers = described(value, headers)
    if fits(key, value, headers, limit=limit):
        return key, value, headers
    if not isinstance(error, TooLarge):
        why = dict(headers)
        error = TooLarge(
            f"message of {len(value)} bytes does not fit in a dead letter of at most "
            f"{limit} bytes; {why['error.type'].decode()}: "
            f"{why['error.message'].decode(errors='replace')}"
        )
        headers = dlq_headers(error=error, topic=topic, partition=partition, offset=offset)
    return cut_to_fit(key, value, headers, limit=limit)


async def _deliver(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    """Send one dead letter and wait for the broker's answer."""
    delivered = await dlq_topic.send(key=key, value=value, headers=headers)
    await delivered
