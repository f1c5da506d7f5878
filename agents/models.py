"""Model management: definitions from ``support.models`` into the global models table.

A definition replaces the variant of the same ``name@version``; a message with no
value (a tombstone) removes it. Each worker's catalog re-reads the table within a
second, so a rollout or a drain needs no restart. A definition that does not
validate is dead-lettered with the reason and changes nothing.
"""

from __future__ import annotations

from faust import StreamT

from app.acks import acked_when_done
from app.catalog import parse_definition
from app.dlq import dead_letter
from app.errors import ValidationError
from app.main import app
from app.metrics import EVENTS
from app.settings import get_settings
from app.sizes import check_table_value, check_whole
from app.topics import models_topic
from tables.models import models

#: The largest record a worker sends (``app.sizes``).
LIMIT = get_settings().producer_max_request_size


@app.agent(models_topic)
async def manage_models(stream: StreamT) -> None:
    async for event in acked_when_done(stream):
        message = event.message
        try:
            if message.value is None:
                if not message.key:
                    raise ValidationError("a tombstone must carry the variant id as its key")
                models.pop(message.key, None)
                EVENTS.labels(stage="models", result="removed").inc()
                continue
            check_whole(message.key, message.value, limit=LIMIT)
            definition = parse_definition(message.key, message.value)
            key, value = definition.id.encode(), definition.model_dump(mode="json")
            check_table_value(models, key, value, limit=LIMIT, what="the definition")
        except Exception as exc:  # bad input, or a bug: park it, never stop the stream
            await dead_letter(event, exc)
            continue
        models[key] = value
        EVENTS.labels(stage="models", result="defined").inc()
