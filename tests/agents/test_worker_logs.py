"""A real worker's JSON log: ids on the query's lines, no secret and no personal data."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from conftest import Cluster, chat_message, collect, decoded, send_json

from app.codecs import make_codec
from app.records import Escalation
from app.settings import Settings
from app.stack import free_port, worker_process
from app.topics import CHAT_INBOUND, ESCALATIONS

pytestmark = pytest.mark.integration

API_KEY = "sk-flowdesk-test-5e1f0c9a7b"
EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
FIELDS = {"ts", "level", "logger", "message", "query_id", "customer_id"}


@pytest.fixture
async def faulty_model() -> AsyncIterator[str]:
    """A model server that rejects every request, echoing the caller's key and account.

    Its error text reaches the worker's log (the model error is logged with the
    query), so the key and the personal data in it must be redacted there.
    """

    async def reject(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        detail = f"rejected: {auth} (account {EMAIL}, card {CARD})"
        return web.json_response({"error": {"message": detail}}, status=400)

    server = web.Application()
    server.router.add_post("/v1/chat/completions", reject)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_the_json_log_carries_ids_and_hides_secrets_and_pii(
    cluster: Cluster, topics: None, producer, faulty_model: str, tmp_path: Path
) -> None:
    env = {
        **cluster.env,
        "FLOWDESK_LOG_FORMAT": "json",
        "FLOWDESK_LLM_API_KEY": API_KEY,
        "FLOWDESK_LLM_BASE_URL": faulty_model,
    }
    # A log directory of its own: the file holds this worker's lines and nothing else.
    worker = worker_process(web_port=free_port(), log_dir=tmp_path, env=env)
    worker.start()
    try:
        worker.wait_healthy(90)
        customer = f"C-logs-{uuid.uuid4().hex[:6]}"
        message = chat_message(
            customer, f"I paid order ORD-424242 with card {CARD}, write to me at {EMAIL}."
        )
        query_id = message["message_id"]
        await send_json(producer, CHAT_INBOUND, message)

        codec = make_codec(Escalation, Settings())

        def escalated(messages: list) -> bool:
            return any(r.query_id == query_id for r in decoded(codec, messages))

        outcomes = await collect(cluster.bootstrap, [ESCALATIONS], want=escalated, within=60)
        assert escalated(outcomes), "the query was escalated (the model rejects everything)"
    finally:
        worker.stop()

    text = worker.log_path.read_text()
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = json.loads(line)  # every line, from the first one to shutdown
        assert isinstance(entry, dict) and FIELDS <= entry.keys(), f"line {number}: {line}"
        entries.append(entry)
    assert any(e["message"].startswith("worker ") for e in entries[:3]), "start line first"

    about_query = [e for e in entries if query_id in e["message"] + e.get("exc", "")]
    assert about_query, "the model's failure is logged for the query"
    for entry in about_query:
        assert (entry["query_id"], entry["customer_id"]) == (query_id, customer), entry
    warnings = [e for e in about_query if e["level"] == "WARNING"]
    assert warnings and "[SECRET]" in warnings[0]["message"], "the echoed key was redacted"

    for value in (API_KEY, EMAIL, CARD, CARD.replace(" ", "")):
        assert value not in text, f"{value!r} is in the worker's log"
