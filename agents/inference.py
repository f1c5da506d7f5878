"""Inference: ask the model server about each query, emit an ``Outcome``."""

from __future__ import annotations

import logging

from faust import StreamT

from app.clients import llm_client
from app.dlq import dead_letter
from app.errors import InputError
from app.main import app
from app.pipeline import answer_query
from app.settings import get_settings
from app.topics import outcomes_topic, queries_topic
from app.wire import outcome_codec, query_codec

logger = logging.getLogger(__name__)
settings = get_settings()


@app.agent(queries_topic)
async def infer(stream: StreamT) -> None:
    async for event in stream.events():
        try:
            query = query_codec.decode(event.message.value or b"")
        except InputError as exc:
            await dead_letter(event, exc)
            continue
        try:
            outcome = await answer_query(
                query, llm=llm_client, model_version=settings.llm_model_version
            )
        except Exception as exc:  # a bug must not stop the stream: park the message
            logger.exception("inference failed for query %s", query.query_id)
            await dead_letter(event, exc)
            continue
        await outcomes_topic.send(
            key=outcome.customer_id.encode(), value=outcome_codec.encode(outcome)
        )
