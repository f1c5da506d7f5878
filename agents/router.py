"""Router: each outcome to its public topic: a channel's responses or escalations."""

from __future__ import annotations

import logging

from faust import StreamT

from app.dlq import dead_letter
from app.enrich import Turn, add_turn
from app.errors import InputError, ValidationError
from app.main import app
from app.metrics import ESCALATIONS, EVENTS
from app.pipeline import to_escalation, to_response
from app.settings import get_settings
from app.topics import escalations_topic, outcomes_topic, response_topics
from app.wire import escalation_codec, outcome_codec, response_codec
from tables.history import history

logger = logging.getLogger(__name__)
settings = get_settings()


@app.agent(outcomes_topic)
async def route(stream: StreamT) -> None:
    async for event in stream.events():
        try:
            outcome = outcome_codec.decode(event.message.value or b"")
            if outcome.route == "response":
                if outcome.channel not in response_topics:
                    raise ValidationError(f"no response topic for channel {outcome.channel!r}")
                topic = response_topics[outcome.channel]
                value = response_codec.encode(to_response(outcome))
            elif outcome.route == "escalation":
                topic = escalations_topic
                value = escalation_codec.encode(to_escalation(outcome))
            else:
                raise ValidationError(f"unknown route {outcome.route!r}")
        except InputError as exc:
            await dead_letter(event, exc)
            continue
        # Faust flushes the producer before it commits an offset, so this send is
        # on the broker before the outcome's offset is acknowledged.
        key = outcome.customer_id.encode()
        await topic.send(key=key, value=value)
        if outcome.route == "response" and settings.history_turns:
            # This agent runs one event at a time, so it may write the table.
            turn = Turn(
                query_id=outcome.query_id,
                arrived_ms=outcome.arrived_ms,
                channel=outcome.channel,
                question=outcome.question,
                answer=outcome.text,
            )
            history[key] = add_turn(history.get(key), turn, keep=settings.history_turns)
        EVENTS.labels(stage="router", result=outcome.route).inc()
        if outcome.route == "escalation":
            ESCALATIONS.labels(reason=outcome.reason).inc()
