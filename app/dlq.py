"""The dead-letter topic: the original bytes of a message that cannot be processed.

Headers (SPEC section 3) say what went wrong and where the message came from, so
an operator can fix the producer or replay the message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.types import EventT

from app.dlq_once import ledger, once_per_source
from app.errors import FlowdeskError, InputError
from app.metrics import DEAD_LETTERS
from app.status import RECENT
from app.topics import dlq_topic

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
    headers = header_dict(message)
    try:
        return (
            headers["source.topic"].decode(),
            int(headers["source.partition"]),
            int(headers["source.offset"]),
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return message.topic, message.partition, message.offset


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
    """Dead-letter ``value``, the original bytes of the inbound message at ``source``."""
    topic, partition, offset = source
    headers = dlq_headers(error=error, topic=topic, partition=partition, offset=offset)
    logger.warning(
        "dead-lettered %s[%s]@%s: %s: %s",
        topic,
        partition,
        offset,
        headers[0][1].decode(),
        headers[1][1].decode(errors="replace")[:200],
    )
    await dlq_topic.send(key=key, value=value, headers=headers)
    DEAD_LETTERS.labels(error_type=headers[0][1].decode()).inc()
    RECENT.add("dead_letter")
