"""The router's look-up of outcomes a dead worker may have published (agents.router)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.types import TP

from agents import router
from app.topics import RESPONSES


async def test_a_query_that_arrived_before_the_takeover_is_looked_up_whoever_wrote_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tp = TP("flowdesk.outcomes", 3)
    monkeypatch.setitem(router.owned_since, tp, 1000.0)
    looked: list[str] = []

    async def contains(topic: str, partition: int, query_id: str, *, since: float) -> bool:
        looked.append(query_id)
        return True

    monkeypatch.setattr(router.published, "contains", contains)
    # Both outcomes were written after the takeover: answered again, from the cache.
    event = SimpleNamespace(message=SimpleNamespace(tp=tp, timestamp=1005.0))
    earlier = SimpleNamespace(query_id="q-earlier", arrived_ms=999_000)
    later = SimpleNamespace(query_id="q-later", arrived_ms=1_001_000)
    topic = RESPONSES["chat"]
    assert await router.published_before(event, topic, b"c-1", earlier)  # type: ignore[arg-type]
    assert not await router.published_before(event, topic, b"c-1", later)  # type: ignore[arg-type]
    assert looked == ["q-earlier"], "no other worker can have answered a query that came later"
