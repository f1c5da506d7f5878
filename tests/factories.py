"""Test helpers: records with every field filled (any overridable), a fake clock, and
calls to the model simulator's control API."""

from __future__ import annotations

from typing import Any

import aiohttp

from app.modelserver.sim import SimServer
from app.records import Action, Escalation, Outcome, Query, SupportResponse


def make_query(**fields: Any) -> Query:
    base: dict[str, Any] = {
        "query_id": "q1",
        "customer_id": "C1",
        "channel": "chat",
        "text": "Where is my order?",
        "received_at": "2026-11-25T10:00:00+00:00",
        "arrived_ms": 1_000,
        "source_topic": "support.chat.inbound",
        "source_partition": 0,
        "source_offset": 7,
    }
    return Query(**{**base, **fields})


def make_outcome(**fields: Any) -> Outcome:
    base: dict[str, Any] = {
        "query_id": "q1",
        "customer_id": "C1",
        "channel": "chat",
        "route": "response",
        "text": "Hello",
        "received_at": "2026-11-25T10:00:00+00:00",
        "arrived_ms": 1_000,
    }
    return Outcome(**{**base, **fields})


def make_response(**fields: Any) -> SupportResponse:
    base: dict[str, Any] = {
        "response_id": "r1",
        "query_id": "q1",
        "customer_id": "C1",
        "channel": "chat",
        "text": "Your label is on its way. Ünïcode ✓",
        "intent": "return",
        "actions": [Action(type="return_label", order_id="ORD-1", detail="")],
        "model": "m",
        "model_version": "1",
        "latency_ms": 12.5,
        "created_at": "2026-11-25T10:00:00+00:00",
    }
    return SupportResponse(**{**base, **fields})


def make_escalation(**fields: Any) -> Escalation:
    base: dict[str, Any] = {
        "query_id": "q",
        "customer_id": "c",
        "channel": "email",
        "reason": "x",
        "text": "t",
        "created_at": "n",
    }
    return Escalation(**{**base, **fields})


class Clock:
    """A clock that moves only when a test sets ``now``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def sim_call(sim: SimServer, method: str, path: str, payload: object = None) -> dict:
    """The simulator's control API (``/_sim/...``): its JSON answer, which must be a 200."""
    url = sim.base_url.removesuffix("/v1") + path
    async with aiohttp.ClientSession() as session, session.request(method, url, json=payload) as r:
        assert r.status == 200, await r.text()
        answer: dict = await r.json()
        return answer
