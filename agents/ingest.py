"""Ingest: inbound channel messages to ``Query`` records, re-keyed by customer.

Upstream producers may send any key (or none); everything goes on with the
customer id as its key, so everything about one customer meets on one partition.
Chat and e-mail become queries at once; voice segments are re-keyed onto
``flowdesk.voice``, where ``agents.voice`` assembles each call.
"""

from __future__ import annotations

from collections.abc import Callable

from faust import StreamT
from faust.types import EventT

from app.acks import acked_when_done
from app.dlq import dead_letter, source_headers
from app.inbound import parse_chat, parse_email
from app.logs import log_context
from app.main import app
from app.metrics import EVENTS
from app.records import Query
from app.settings import get_settings
from app.sizes import check_ids, check_record, check_whole
from app.topics import (
    chat_inbound_topic,
    email_inbound_topic,
    queries_topic,
    voice_inbound_topic,
    voice_topic,
)
from app.voice import parse_voice_segment
from app.wire import query_codec

settings = get_settings()
#: The largest record a worker sends (``app.sizes``).
LIMIT = settings.producer_max_request_size

Parser = Callable[..., Query]


def arrived_ms(event: EventT) -> int:
    return int(event.message.timestamp * 1000)


async def _ingest(stream: StreamT, parse: Parser, channel: str) -> None:
    async for event in acked_when_done(stream):
        message = event.message
        try:
            check_whole(message.key, message.value, limit=LIMIT)
            query = parse(
                message.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                arrived_ms=arrived_ms(event),
                max_chars=settings.max_text_chars,
            )
            check_ids(
                message_id=query.query_id,
                customer_id=query.customer_id,
                session_id=query.session_id,
            )
            with log_context(query_id=query.query_id, customer_id=query.customer_id):
                key, value = query.customer_id.encode(), query_codec.encode(query)
                check_record(key, value, limit=LIMIT, what="its query")
                await queries_topic.send(key=key, value=value)
        except Exception as exc:  # bad input, or a bug: park it, never stop the stream
            await dead_letter(event, exc)
            continue
        EVENTS.labels(stage="ingest", result=channel).inc()


@app.agent(chat_inbound_topic)
async def ingest_chat(stream: StreamT) -> None:
    await _ingest(stream, parse_chat, "chat")


@app.agent(email_inbound_topic)
async def ingest_email(stream: StreamT) -> None:
    await _ingest(stream, parse_email, "email")


@app.agent(voice_inbound_topic)
async def ingest_voice(stream: StreamT) -> None:
    """Check each segment and re-key it by customer, with where it came from."""
    async for event in acked_when_done(stream):
        message = event.message
        try:
            check_whole(message.key, message.value, limit=LIMIT)
            segment = parse_voice_segment(message.value)
            check_ids(call_id=segment.call_id, customer_id=segment.customer_id)
            # A call's query id is its call id (agents.voice).
            with log_context(query_id=segment.call_id, customer_id=segment.customer_id):
                key = segment.customer_id.encode()
                headers = source_headers(
                    topic=message.topic, partition=message.partition, offset=message.offset
                )
                headers.append(("arrived_ms", str(arrived_ms(event)).encode()))
                check_record(key, message.value, headers, limit=LIMIT, what="the segment re-keyed")
                await voice_topic.send(key=key, value=message.value, headers=headers)
        except Exception as exc:  # bad input, or a bug: park it, never stop the stream
            await dead_letter(event, exc)
            continue
        EVENTS.labels(stage="ingest", result="voice_segment").inc()
