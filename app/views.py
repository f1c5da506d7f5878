"""The worker's web endpoints (SPEC section 6): liveness, readiness, metrics, customers.

Also the live dashboard (``GET /``), one page that draws ``GET /status``.
"""

from __future__ import annotations

from importlib.resources import files

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.clients import inferencer, llm_client
from app.main import app, highwater_or_none
from app.metrics import CONSUMER_LAG, IN_FLIGHT
from app.settings import get_settings
from app.status import RECENT
from tables.crm import customers, orders
from tables.history import history

settings = get_settings()

#: The dashboard: one self-contained page (inline CSS, JS and SVG), read once.
DASHBOARD = files("app").joinpath("static/dashboard.html").read_text(encoding="utf-8")


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


def consumer_lag() -> list[tuple[str, int, int]]:
    """(topic, partition, lag) for each assigned partition with a known high-water mark."""
    consumer = app.consumer
    committed = consumer._committed_offset  # type: ignore[attr-defined]
    lags = []
    for tp in sorted(consumer.assignment()):
        highwater = highwater_or_none(consumer, tp)
        if highwater is None:
            continue
        lags.append((tp.topic, tp.partition, max(0, highwater - (committed.get(tp) or 0))))
    return lags


CONSUMER_LAG.source = consumer_lag


@app.page("/status")
async def status(self: View, request: Request) -> Response:
    """A JSON summary for people; Prometheus scrapes ``/metrics``."""
    ready, detail = readiness()
    return self.json(
        {
            "worker": app.conf.canonical_url.port,
            "ready": ready,
            "last_minute": RECENT.summary(60.0),
            "series": RECENT.series(bucket=5.0, window=300.0),
            "in_flight": llm_client.open_requests,
            "capacity": settings.llm_capacity,
            "queries_in_window": int(next(iter(IN_FLIGHT.collect())).samples[0].value),
            "window": settings.window_size,
            "breakers": {e.name: e.breaker.state for e in inferencer.endpoints},
            "models": inferencer.catalog.describe(),
            "partitions": detail["partitions"],
            "consumer_lag": sum(lag for _, _, lag in consumer_lag()),
        }
    )


# Registered before Faust's own index view at "/", which therefore never answers.
@app.page("/")
async def dashboard(self: View, request: Request) -> Response:
    """The live dashboard: it polls ``/status`` every 2 s and draws it."""
    return self.html(DASHBOARD, headers={"Cache-Control": "no-cache"})


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


@app.page("/customers/{customer_id}")
@app.table_route(table=customers, match_info="customer_id")
async def customer(self: View, request: Request, customer_id: str) -> Response:
    """What the tables hold for one customer, from the worker that owns the key.

    Any worker answers: Faust forwards the request to the owner of the key's
    partition (the same for all three tables: they share the key and its bytes).
    """
    key = customer_id.encode()
    profile = customers.get(key)
    recent = sorted(
        (orders.get(key) or {}).values(), key=lambda o: o.get("ordered_at", ""), reverse=True
    )
    turns = history.get(key) or []
    body = {
        "customer_id": customer_id,
        "profile": profile,
        "orders": recent,
        "history": turns,
        "served_by": app.conf.canonical_url.port,
    }
    found = profile is not None or bool(recent) or bool(turns)
    return self.json(body, status=200 if found else 404)
