"""The live dashboard (``GET /``), rendered by headless Chromium against a real worker.

Chromium loads the page with a virtual-time budget: its timers run ahead (the page
polls ``/status`` a few times) while network requests are waited for, and it prints
the DOM as the page's own JavaScript left it. The figures are read from that DOM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import (
    Cluster,
    StartWorker,
    chat_message,
    collect,
    decoded,
    http_json,
    http_text,
    send_json,
)

from app.codecs import make_codec
from app.records import SupportResponse
from app.settings import Settings
from app.topics import CHAT_INBOUND, DLQ, RESPONSES

pytestmark = pytest.mark.integration

SENT = 12
CAPACITY = 16
BROWSER_TIMEOUT = 60.0
# Without the background-networking flags Chromium waits on the closed network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def chromium() -> str:
    """Chromium's path; the test is skipped without it, or fails if a browser is required."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        reason = "chromium is not installed (apt-get install -y --no-install-recommends chromium)"
        if os.environ.get("FLOWDESK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FLOWDESK_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return path


async def rendered_dom(chromium: str, url: str, *, profile: Path, budget_ms: int) -> str:
    """The DOM of ``url`` after ``budget_ms`` of the page's (virtual) time."""
    process = await asyncio.create_subprocess_exec(
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--dump-dom",
        f"--virtual-time-budget={budget_ms}",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own process group, so that a hung browser is stopped with all its children.
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(BROWSER_TIMEOUT):
            out, err = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT} s")
    tail = err.decode(errors="replace")[-2000:]
    assert process.returncode == 0, f"chromium exited with {process.returncode}:\n{tail}"
    assert out.strip(), f"chromium printed no DOM:\n{tail}"
    return out.decode()


@dataclass
class Element:
    attrs: dict[str, str]
    text: str = ""


class _ById(HTMLParser):
    """Every element that has an id: its attributes and the text inside it."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})

    def __init__(self) -> None:
        super().__init__()
        self.elements: dict[str, Element] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        element_id = values.get("id")
        if element_id:
            self.elements[element_id] = Element(values)
        if tag not in self.VOID:
            self._open.append((tag, element_id))

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id:
                self.elements[element_id].text += data


def by_id(dom: str) -> dict[str, Element]:
    parser = _ById()
    parser.feed(dom)
    parser.close()
    return parser.elements


async def status_when(worker_url: str, ready: object, *, within: float) -> dict:
    """``GET /status`` once ``ready(body)`` holds; the last body if it never does."""
    deadline = time.monotonic() + within
    while True:
        _, body = await http_json(worker_url + "status")
        if ready(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.5)


async def test_the_dashboard_shows_the_worker_s_real_figures(
    cluster: Cluster, start_worker: StartWorker, producer, chromium: str, tmp_path: Path
) -> None:
    worker = start_worker(FLOWDESK_LLM_CAPACITY=str(CAPACITY))
    run = uuid.uuid4().hex[:8]
    sent = set()
    for i in range(SENT):
        message = chat_message(f"W-{run}-{i}", f"Where is my order ORD-{200000 + i}? It is late.")
        sent.add(message["message_id"])
        await send_json(producer, CHAT_INBOUND, message)
    await send_json(producer, CHAT_INBOUND, f"{{not json {run}".encode())

    codec = make_codec(SupportResponse, Settings())
    answers = await collect(
        cluster.bootstrap,
        [RESPONSES["chat"]],
        want=lambda ms: {r.query_id for r in decoded(codec, ms)} >= sent,
        within=90,
    )
    assert {r.query_id for r in decoded(codec, answers)} >= sent, "every query answered"

    def dead_lettered(messages: list) -> bool:
        return any(run.encode() in (m.value or b"") for m in messages)

    dead = await collect(cluster.bootstrap, [DLQ], want=dead_lettered)
    assert dead_lettered(dead), "the malformed message is dead-lettered"

    # The charts draw whole 5 s buckets only: wait until the answers sit in one.
    def drawn(body: dict) -> bool:
        series = body["series"]
        whole = [b for b in series["buckets"] if b["seconds"] >= series["bucket_seconds"]]
        return sum(b["routes"].get("response", 0) for b in whole) >= SENT

    status = await status_when(worker.address, drawn, within=15)
    assert drawn(status), status["series"]
    # Workers share one consumer group, so messages an earlier test left unanswered
    # may be answered here too: the page must show what /status says, at least ours.
    before = status["last_minute"]["routes"]
    assert before.get("response", 0) >= SENT and before.get("dead_letter", 0) >= 1, status

    code, page = await http_text(worker.address)
    assert code == 200 and 'id="throughput"' in page, "GET / is the dashboard"

    dom = await rendered_dom(
        chromium, worker.address, profile=tmp_path / "chromium", budget_ms=5000
    )
    _, later = await http_json(worker.address + "status")
    after = later["last_minute"]["routes"]
    found = by_id(dom)

    def value(element_id: str) -> float:
        assert element_id in found, f"no #{element_id} in the rendered page:\n{dom[-3000:]}"
        return float(found[element_id].attrs["data-value"])

    def between(element_id: str, route: str) -> float:
        shown = value(element_id)
        assert before.get(route, 0) <= shown <= after.get(route, 0), (element_id, before, after)
        return shown

    assert found["state"].text == "live", f"the page could not read /status: {found['state'].text}"
    assert value("polls") >= 1
    assert found["worker"].text == f":{status['worker']}"
    assert found["ready"].text == "ready"
    responses = between("responses", "response")
    assert found["route-response"].text == str(int(responses))
    errors = between("errors", "dead_letter")
    assert found["route-dead_letter"].text == str(int(errors))
    escalations = between("escalations", "escalation")
    assert value("outcomes") == responses + errors + escalations
    assert value("throughput") == pytest.approx(value("outcomes") / 60, abs=0.001)
    p50, p95, p99 = (value(f"latency-p{p}") for p in (50, 95, 99))
    assert 0 < p50 <= p95 <= p99
    assert value("in-flight") == 0
    assert value("capacity") == CAPACITY
    assert value("partitions") == len(status["partitions"]) > 0
    assert value("consumer-lag") >= 0
    assert found["breaker-primary"].text == "closed"
    assert "flowdesk-sim" in found["model-primary"].text
    for chart in ("throughput-chart", "latency-chart"):
        assert float(found[chart].attrs["data-peak"]) > 0, f"#{chart} drew no traffic"
