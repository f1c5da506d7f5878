"""The worker's web endpoints (SPEC section 6): liveness, readiness, metrics."""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.main import app


def readiness() -> tuple[bool, dict[str, object]]:
    """Whether this worker has its partitions and has recovered its tables."""
    # TableManager has `recovery`; its declared interface (TableManagerT) does not.
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    rebalancing = bool(app.rebalancing)
    assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
    ready = recovered and not rebalancing
    return ready, {
        "ready": ready,
        "recovered": recovered,
        "rebalancing": rebalancing,
        "partitions": assigned,
    }


@app.page("/health")
async def health(self: View, request: Request) -> Response:
    return self.json({"status": "ok"})


@app.page("/ready")
async def ready(self: View, request: Request) -> Response:
    ok, detail = readiness()
    return self.json(detail, status=200 if ok else 503)


@app.page("/metrics")
async def metrics(self: View, request: Request) -> Response:
    # aiohttp refuses a charset inside ``content_type``; a header may carry one.
    return self.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
