"""The records on flowdesk's internal and outbound topics.

Flat, typed Faust records; required fields first, defaults after. Their Avro
schemas are the ``.avsc`` files in ``app/schemas/`` (one per record, same name).
"""

import faust


class Action(faust.Record, include_metadata=False, namespace="flowdesk.Action"):
    """Something the pipeline decided to do for the customer (a return label, say)."""

    type: str
    order_id: str | None = None
    detail: str = ""


class Query(faust.Record, include_metadata=False, namespace="flowdesk.Query"):
    """One customer query, normalised from any channel (topic ``flowdesk.queries``)."""

    query_id: str
    customer_id: str
    channel: str
    text: str
    received_at: str
    arrived_ms: int  # Kafka timestamp of the inbound message; latency is measured from it
    source_topic: str
    source_partition: int
    source_offset: int
    session_id: str | None = None
    # Set by ingest from the cleaned, redacted text (app.classify): deterministic, cheap.
    intent: str = "other"
    sentiment: str = "neutral"
    injection: str = ""  # the injection pattern found, empty when none
    # Ids of the ORD-123456 shape the text mentions, in order: a hint; the order a
    # customer names is found among their own orders' ids at inference (app.enrich).
    order_ids: list[str] = []
    damaged: bool = False  # the customer reports the item damaged or defective


class Outcome(faust.Record, include_metadata=False, namespace="flowdesk.Outcome"):
    """What the pipeline decided for a query (topic ``flowdesk.outcomes``).

    ``route`` is ``response`` or ``escalation``; the router agent turns it into a
    ``SupportResponse`` or an ``Escalation`` on the public topics.
    """

    query_id: str
    customer_id: str
    channel: str
    route: str
    text: str
    received_at: str
    arrived_ms: int
    intent: str = "other"
    actions: list[Action] = []
    reason: str = ""
    model: str = ""
    model_version: str = ""
    model_latency_ms: float = 0.0
    question: str = ""  # the redacted query text, for the conversation history
    # The classifier's view of the query, for the drift monitor.
    query_intent: str = "other"
    sentiment: str = "neutral"


class SupportResponse(faust.Record, include_metadata=False, namespace="flowdesk.SupportResponse"):
    """One answer to a customer, on ``support.responses.<channel>``."""

    response_id: str
    query_id: str
    customer_id: str
    channel: str
    text: str
    intent: str
    actions: list[Action]
    model: str
    model_version: str
    latency_ms: float
    created_at: str
    #: The model call's own share of ``latency_ms`` (0 for a cached answer).
    model_latency_ms: float = 0.0


class Escalation(faust.Record, include_metadata=False, namespace="flowdesk.Escalation"):
    """A query handed to a person, on ``support.escalations``."""

    query_id: str
    customer_id: str
    channel: str
    reason: str
    text: str
    created_at: str
