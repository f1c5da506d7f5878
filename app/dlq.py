"""The dead-letter topic: the original bytes of a message that cannot be processed.

Headers (SPEC section 3) say what went wrong and where the message came from, so
an operator can fix the producer or replay the message.
"""

from __future__ import annotations

import logging

from faust.types import EventT

from app.errors import FlowdeskError
from app.metrics import DEAD_LETTERS
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
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
    ]


async def dead_letter(event: EventT, error: BaseException) -> None:
    """Send the message behind ``event`` to the dead-letter topic, unchanged."""
    message = event.message
    headers = dlq_headers(
        error=error, topic=message.topic, partition=message.partition, offset=message.offset
    )
    logger.warning(
        "dead-lettered %s[%s]@%s: %s",
        message.topic,
        message.partition,
        message.offset,
        headers[0][1].decode(),
    )
    await dlq_topic.send(key=message.key, value=message.value or b"", headers=headers)
    DEAD_LETTERS.labels(error_type=headers[0][1].decode()).inc()
