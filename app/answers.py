"""Parsing of the model's reply into a typed answer.

The model is an untrusted source: its reply is JSON we asked for, validated here,
and anything that does not fit is an ``InvalidModelOutput``.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from app.errors import InvalidModelOutput
from app.prompts import INTENTS, MAX_ANSWER_CHARS


class ProposedAction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(min_length=1, max_length=64)
    order_id: str | None = None
    detail: str = ""


class ModelAnswer(BaseModel):
    """The answer shape of ``app.prompts.ANSWER_SCHEMA``."""

    model_config = ConfigDict(extra="ignore")

    answer: str = Field(min_length=1, max_length=MAX_ANSWER_CHARS)
    intent: str = "other"
    actions: list[ProposedAction] = []
    confidence: float = Field(0.5, ge=0, le=1)


def parse_answer(content: str) -> ModelAnswer:
    """The model's message content as a ``ModelAnswer``."""
    try:
        payload = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidModelOutput(f"model reply is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidModelOutput("model reply is not a JSON object")
    try:
        answer = ModelAnswer.model_validate(payload)
    except PydanticValidationError as exc:
        raise InvalidModelOutput(f"model reply does not fit the answer schema: {exc}") from exc
    if not answer.answer.strip():
        raise InvalidModelOutput("model reply has an empty answer")
    if answer.intent not in INTENTS:
        answer = answer.model_copy(update={"intent": "other"})
    return answer
