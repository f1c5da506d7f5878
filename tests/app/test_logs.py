"""Worker logs: ids on every line, JSON lines, and no secret or personal data (no Kafka)."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from pydantic import SecretStr

from app import logs
from app.logs import (
    ContextFilter,
    FlowdeskWorker,
    JsonFormatter,
    Redactor,
    TextFormatter,
    current_ids,
    freeze_startup_objects,
    install_logging,
    log_context,
    secret_values,
)
from app.settings import Settings

API_KEY = "sk-live-4f9a8b7c6d5e"
SASL_PASSWORD = "kafka-pa55word"
REGISTRY_PASSWORD = "reg/secret@1"  # written %-encoded in the URL
EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
PHONE = "+44 20 7946 0958"

SETTINGS = Settings(
    llm_api_key=SecretStr(API_KEY),
    kafka_sasl_password=SecretStr(SASL_PASSWORD),
    schema_registry_url="https://flowdesk:reg%2Fsecret%401@registry.example:8081",
    log_format="json",
)
REGISTRY_TOKEN = base64.b64encode(f"flowdesk:{REGISTRY_PASSWORD}".encode()).decode()
FORBIDDEN = [
    API_KEY,
    SASL_PASSWORD,
    REGISTRY_PASSWORD,
    "reg%2Fsecret%401",
    REGISTRY_TOKEN,
    EMAIL,
    CARD,
    CARD.replace(" ", ""),
    PHONE,
]


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing JSON lines to a buffer, through the real handler."""
    stream = io.StringIO()
    handler = logs.make_handler(SETTINGS, stream=stream)
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def clean_root() -> Iterator[logging.Logger]:
    """The root logger, given back as it was (handlers, level) after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_a_json_line_has_the_fields_and_the_ids(capture) -> None:
    logger, stream = capture
    with log_context(query_id="q-1", customer_id="C-7"):
        logger.warning("model slow for %s", "primary")
    logger.info("no ids here")

    first, second = lines(stream)
    assert first["level"] == "WARNING"
    assert first["logger"] == logger.name
    assert first["message"] == "model slow for primary"
    assert (first["query_id"], first["customer_id"]) == ("q-1", "C-7")
    assert "exc" not in first
    ts = datetime.fromisoformat(first["ts"])
    assert ts.utcoffset() == timedelta(0), "timestamps are UTC"
    assert abs(datetime.now(ts.tzinfo) - ts) < timedelta(minutes=1)
    assert (second["query_id"], second["customer_id"]) == (None, None)


def test_an_exception_is_one_json_line_with_its_traceback(capture) -> None:
    logger, stream = capture
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("failed")
    assert len(stream.getvalue().splitlines()) == 1
    (line,) = lines(stream)
    assert line["level"] == "ERROR"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad\nthing" in line["exc"]


def test_the_text_format_shows_the_ids_when_set() -> None:
    formatter = TextFormatter(Redactor())
    record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    ContextFilter().filter(record)
    assert formatter.format(record).endswith("[INFO] app.x: hello you")
    with log_context(query_id="q-2", customer_id="C-3"):
        record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "hello", (), None)
        ContextFilter().filter(record)
    assert "[INFO] [q=q-2 c=C-3] app.x: hello" in formatter.format(record)


def test_explicit_ids_on_a_record_are_kept(capture) -> None:
    logger, stream = capture
    with log_context(query_id="q-outer"):
        logger.info("x", extra={"query_id": "q-given"})
    assert lines(stream)[0]["query_id"] == "q-given"


def test_log_context_nests_and_restores() -> None:
    assert current_ids() == (None, None)
    with log_context(customer_id="C-1"):
        with log_context(query_id="q-1"):
            assert current_ids() == ("q-1", "C-1")
        assert current_ids() == (None, "C-1")
        with pytest.raises(RuntimeError), log_context(query_id="q-2", customer_id="C-2"):
            raise RuntimeError
        assert current_ids() == (None, "C-1")
    assert current_ids() == (None, None)


async def test_each_task_keeps_its_own_ids(capture) -> None:
    logger, stream = capture
    both_set = asyncio.Barrier(2)

    async def handle(query_id: str, customer_id: str) -> None:
        with log_context(query_id=query_id, customer_id=customer_id):
            await both_set.wait()  # the other task has set its ids by now
            logger.info("working on %s", query_id)
            await asyncio.sleep(0)
            logger.info("done with %s", query_id)

    with log_context(customer_id="C-outer"):
        await asyncio.gather(handle("q-a", "C-a"), handle("q-b", "C-b"))
        logger.info("after")
        assert current_ids() == (None, "C-outer")

    seen = lines(stream)
    assert len(seen) == 5
    for line in seen[:4]:
        query_id = line["message"].split()[-1]
        assert line["query_id"] == query_id
        assert line["customer_id"] == "C-" + query_id[-1]
    assert (seen[4]["query_id"], seen[4]["customer_id"]) == (None, "C-outer")


def test_secrets_and_pii_never_reach_a_line(capture) -> None:
    logger, stream = capture
    with log_context(query_id="q-9", customer_id="C-9"):
        logger.warning(
            "upstream said: Bearer %s for %s, card %s, call %s",
            API_KEY,
            EMAIL,
            CARD,
            PHONE,
        )
        logger.info(
            "registry https://flowdesk:reg%%2Fsecret%%401@registry.example:8081 "
            "(password %s, Basic %s), sasl %s",
            REGISTRY_PASSWORD,
            REGISTRY_TOKEN,
            SASL_PASSWORD,
        )
        try:
            raise ConnectionError(f"auth {API_KEY} rejected for {EMAIL} / {CARD} / {PHONE}")
        except ConnectionError:
            logger.exception("call failed with key %s", API_KEY, stack_info=True)
    text = stream.getvalue()
    for value in FORBIDDEN:
        assert value not in text, f"{value!r} was logged"
    first, second, third = lines(stream)
    assert first["message"] == (
        "upstream said: Bearer [SECRET] for [EMAIL], card [CARD], call [PHONE]"
    )
    assert "[SECRET]" in second["message"] and "[SECRET]" in third["message"]
    assert "auth [SECRET] rejected for [EMAIL] / [CARD] / [PHONE]" in third["exc"]
    assert (third["query_id"], third["customer_id"]) == ("q-9", "C-9")


def test_the_text_format_redacts_too() -> None:
    stream = io.StringIO()
    handler = logs.make_handler(SETTINGS.model_copy(update={"log_format": "text"}), stream=stream)
    logger = logging.getLogger("test.logs.text")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise KeyError(API_KEY)
        except KeyError:
            logger.exception("lookup for %s failed", EMAIL)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "lookup for [EMAIL] failed" in text
    assert "KeyError: '[SECRET]'" in text
    assert API_KEY not in text and EMAIL not in text


def test_secret_values_come_from_the_settings() -> None:
    assert set(secret_values(SETTINGS)) == {
        API_KEY,
        SASL_PASSWORD,
        REGISTRY_PASSWORD,
        "reg%2Fsecret%401",
        REGISTRY_TOKEN,
    }
    # Empty secrets and a registry URL without a password give nothing to hide.
    assert secret_values(Settings(schema_registry_url="http://user@registry:8081")) == []
    assert secret_values(Settings(schema_registry_url="http://[bad")) == []


def test_redaction_leaves_ordinary_lines_alone() -> None:
    redactor = Redactor.from_settings(Settings())
    line = "consumer lag on flowdesk.queries[3]@1042 is 17; ORD-123456 at 2026-11-25 09:30"
    assert redactor(line) == line


def test_install_logging_replaces_the_root_handlers(clean_root: logging.Logger) -> None:
    stream = io.StringIO()
    clean_root.addHandler(logging.StreamHandler(io.StringIO()))
    install_logging(SETTINGS.model_copy(update={"log_level": "warning"}), stream=stream)
    assert len(clean_root.handlers) == 1
    assert clean_root.level == logging.WARNING
    logging.getLogger("test.logs.root").info("not at this level")
    with log_context(query_id="q-r"):
        logging.getLogger("test.logs.root").warning("to %s", EMAIL)
    (line,) = lines(stream)
    assert (line["message"], line["query_id"]) == ("to [EMAIL]", "q-r")


def test_the_worker_hook_replaces_fausts_logging(
    clean_root: logging.Logger, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from app.main import app, create_app

    assert create_app(Settings(data_dir=str(tmp_path))).conf.Worker is FlowdeskWorker
    monkeypatch.setattr(logs, "get_settings", lambda: SETTINGS)
    stream = io.StringIO()
    loop = asyncio.new_event_loop()
    try:
        worker = FlowdeskWorker(app, loop=loop, stdout=stream, stderr=stream, quiet=True)
        assert worker.loglevel == "info", "FLOWDESK_LOG_LEVEL, not Faust's default"
        assert worker.spinner is None
        # What mode runs when the worker starts: its own setup, then the hook.
        worker.redirect_stdouts = False
        worker._setup_logging()
    finally:
        loop.close()
    (handler,) = clean_root.handlers
    assert isinstance(handler.formatter, JsonFormatter)
    logging.getLogger("faust.test").info("partition assigned, key %s", API_KEY)
    records = lines(stream)
    assert records[0]["message"].startswith(
        "event loop: asyncio.unix_events._UnixSelectorEventLoop; interpreter switch interval"
    )
    assert records[1]["message"].startswith(f"worker {app.conf.id} (pid ")
    assert records[-1]["message"] == "partition assigned, key [SECRET]"


def test_a_secret_learnt_at_run_time_is_hidden_too() -> None:
    from app.logs import add_secret

    redactor = Redactor()
    add_secret("sk-variant-0123456789")
    assert redactor("key sk-variant-0123456789 used") == "key [SECRET] used"


def test_start_up_objects_are_left_out_of_later_collections() -> None:
    made_at_start_up = [[n] for n in range(1000)]  # tracked by the collector
    try:
        frozen = freeze_startup_objects()
        assert frozen == gc.get_freeze_count() >= len(made_at_start_up)
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in tracked for o in made_at_start_up)
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
