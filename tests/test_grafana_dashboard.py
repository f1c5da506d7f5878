"""The Grafana dashboard queries only metrics a worker exports, through its Prometheus variable."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).parent.parent / "k8s" / "grafana" / "flowdesk-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: The series names Prometheus scrapes for each metric type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", ())  # a collapsed row holds its panels


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in panels(dashboard) for t in p.get("targets", ())]
    found += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def exported() -> set[str]:
    from prometheus_client import REGISTRY

    import app.metrics  # noqa: F401  (registers the metrics)

    names = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_every_metric_in_a_query_is_exported_by_the_worker() -> None:
    used = {name for query in queries(load()) for name in re.findall(r"\bflowdesk_\w+", query)}
    missing = used - exported()
    assert not missing, f"the dashboard queries metrics no worker exports: {sorted(missing)}"
    assert used >= {
        "flowdesk_events_total",
        "flowdesk_model_latency_seconds_bucket",
        "flowdesk_inflight_requests",
        "flowdesk_inflight_capacity",
        "flowdesk_model_retries_total",
        "flowdesk_breaker_state",
        "flowdesk_cache_total",
        "flowdesk_dlq_total",
        "flowdesk_escalations_total",
        "flowdesk_consumer_lag",
        "flowdesk_duplicate_llm_calls_total",
        "flowdesk_ratelimit_wait_seconds_total",
    }


def test_every_query_goes_to_the_chosen_prometheus() -> None:
    dashboard = load()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = []
    for panel in panels(dashboard):
        ids.append(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert "flowdesk_" in target["expr"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    assert len(ids) == len(set(ids)), "panel ids are unique"
