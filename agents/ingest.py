"""Ingest: inbound channel messages to ``Query`` records, re-keyed by customer.

Upstream producers may send any key (or none); the query goes on with the
customer id as its key, so everything about one customer meets on one partition.
"""

from __future__ import annotations

import logging

from faust import StreamT

from app.dlq import dead_letter
from app.errors import InputError
from app.inbound import parse_chat
from app.main import app
from app.metrics import EVENTS
from app.settings import get_settings
from app.topics import chat_inbound_topic, queries_topic
from app.wire import query_codec

logger = logging.getLogger(__name__)
settings = get_settings()


@app.agent(chat_inbound_topic)
async def ingest_chat(stream: StreamT) -> None:
    async for event in stream.events():
        message = event.message
        try:
            query = parse_chat(
                message.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                arrived_ms=int(message.timestamp * 1000),
                max_chars=settings.max_text_chars,
            )
        except InputError as exc:
            await dead_letter(event, exc)
            continue
        except Exception as exc:  # a bug must not stop the stream: park the message
            logger.exception("ingest failed on %s@%s", message.topic, message.offset)
            await dead_letter(event, exc)
            continue
        await queries_topic.send(key=query.customer_id.encode(), value=query_codec.encode(query))
        EVENTS.labels(stage="ingest", result="query").inc()
