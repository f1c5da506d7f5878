"""What the agents do, as plain functions: a query in, an outcome out.

Kept apart from the agents so that each step can be tested without Kafka.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from app.answers import ModelAnswer, ProposedAction
from app.enrich import Context
from app.formatting import format_answer
from app.language import answer_language
from app.pii import redact
from app.records import Action, Escalation, Outcome, Query, SupportResponse
from app.rules import apply_rules


def escalate(query: Query, reason: str, *, model: str = "", model_version: str = "") -> Outcome:
    """An outcome handing ``query`` to a person for ``reason`` (SPEC section 4).

    ``model`` and ``model_version`` name the variant that failed, if one was asked.
    """
    return Outcome(
        query_id=query.query_id,
        customer_id=query.customer_id,
        channel=query.channel,
        route="escalation",
        text=query.text,
        received_at=query.received_at,
        arrived_ms=query.arrived_ms,
        reason=reason,
        model=model,
        model_version=model_version,
        query_intent=query.intent,
        sentiment=query.sentiment,
    )


def pre_model_outcome(query: Query, context: Context | None = None) -> Outcome | None:
    """The escalation a query gets without asking the model, if any (SPEC section 4).

    An injection attempt never reaches the model; a customer who asks for a person
    gets one rather than an answer; a return request with no order to decide on
    goes to a person without paying for a call whose answer the rules would drop.
    """
    if query.injection:
        return escalate(query, "prompt_injection")
    if query.intent == "human_request":
        return escalate(query, "human_requested")
    if context is not None and query.intent == "return" and context.order is None:
        return escalate(query, "no_order")
    return None


def finalize(outcome: Outcome, query: Query, context: Context | None) -> Outcome:
    """A response outcome with the business rules applied and formatted for its channel.

    The rules (``app.rules``) have the last word on returns, whatever the model
    proposed; the text is then shaped for the channel (``app.formatting``). The
    sentences the pipeline writes itself are in the customer's language
    (``app.language.answer_language``), as the model was asked to write.
    """
    if outcome.route != "response":
        return outcome
    context = context or Context()
    proposed = ModelAnswer.model_construct(
        answer=outcome.text,
        intent=outcome.intent,
        actions=[
            ProposedAction(type=a.type, order_id=a.order_id, detail=a.detail)
            for a in outcome.actions
        ],
        confidence=0.5,
    )
    language = answer_language(context.profile, query.text)
    result = apply_rules(
        query,
        proposed,
        order=context.order,
        unknown_order=context.unknown_order,
        language=language,
    )
    if result.escalate:
        return escalate(query, result.escalate)
    name = (context.profile or {}).get("name") or None
    text = format_answer(result.text, channel=query.channel, customer_name=name, language=language)
    return outcome.derive(text=text, intent=result.intent, actions=list(result.actions))


def response_outcome(
    query: Query,
    answer: ModelAnswer,
    *,
    model: str,
    model_version: str,
    model_latency_ms: float,
) -> Outcome:
    """A ``response`` outcome carrying the model's validated answer to ``query``."""
    return Outcome(
        query_id=query.query_id,
        customer_id=query.customer_id,
        channel=query.channel,
        route="response",
        # The model is untrusted: whatever PII it writes is redacted like the customer's.
        text=redact(answer.answer.strip()),
        received_at=query.received_at,
        arrived_ms=query.arrived_ms,
        intent=answer.intent,
        actions=[Action(type=a.type, order_id=a.order_id, detail=a.detail) for a in answer.actions],
        model=model,
        model_version=model_version,
        model_latency_ms=round(model_latency_ms, 3),
        question=query.text,
        query_intent=query.intent,
        sentiment=query.sentiment,
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def to_response(outcome: Outcome, *, now_ms: int | None = None) -> SupportResponse:
    """The public ``SupportResponse`` for a ``response`` outcome."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    return SupportResponse(
        # Derived from the query id, so a replayed query yields the same response id.
        response_id=uuid.uuid5(uuid.NAMESPACE_URL, f"flowdesk:{outcome.query_id}").hex,
        query_id=outcome.query_id,
        customer_id=outcome.customer_id,
        channel=outcome.channel,
        text=outcome.text,
        intent=outcome.intent,
        actions=list(outcome.actions),
        model=outcome.model,
        model_version=outcome.model_version,
        latency_ms=float(max(0, now_ms - outcome.arrived_ms)),
        created_at=now_iso(),
        model_latency_ms=outcome.model_latency_ms,
    )


def to_escalation(outcome: Outcome) -> Escalation:
    """The public ``Escalation`` for an ``escalation`` outcome."""
    return Escalation(
        query_id=outcome.query_id,
        customer_id=outcome.customer_id,
        channel=outcome.channel,
        reason=outcome.reason,
        text=outcome.text,
        created_at=now_iso(),
    )
