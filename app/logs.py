"""Worker logs: one line per record, stamped with the query and customer, never a secret.

Every record gets the ``query_id`` and ``customer_id`` of the work it was logged for,
taken from context variables that the agents set with ``log_context`` around each
message (asyncio tasks copy the context, so a value set inside a task stays in it).
Before a line is written, the values of the secret settings become ``[SECRET]`` and
customers' cards, e-mail addresses and phone numbers are redacted (``app.pii``), in
the message and in the traceback alike. ``FLOWDESK_LOG_FORMAT`` picks the text form
or one JSON object a line; ``FLOWDESK_LOG_LEVEL`` the least severe level written.

Faust (through mode) configures the root logger when a worker starts; the worker
class at the end of this module replaces that configuration with this one.
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import os
import re
import sys
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from faust.worker import Worker

from app.pii import redact
from app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

SECRET = "[SECRET]"

_query_id: ContextVar[str | None] = ContextVar("flowdesk_query_id", default=None)
_customer_id: ContextVar[str | None] = ContextVar("flowdesk_customer_id", default=None)


@contextmanager
def log_context(*, query_id: str | None = None, customer_id: str | None = None) -> Iterator[None]:
    """Stamp the records logged inside the block with these ids.

    An id left out (None) keeps the value of any enclosing block. The previous values
    come back when the block ends, however it ends.
    """
    tokens = []
    if query_id is not None:
        tokens.append((_query_id, _query_id.set(query_id)))
    if customer_id is not None:
        tokens.append((_customer_id, _customer_id.set(customer_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def key_text(key: bytes | None) -> str | None:
    """A message key as log text: the customer id, on every ``flowdesk.*`` topic."""
    return key.decode("utf-8", "replace") if key else None


def current_ids() -> tuple[str | None, str | None]:
    """The ``(query_id, customer_id)`` in effect here."""
    return _query_id.get(), _customer_id.get()


class ContextFilter(logging.Filter):
    """Sets ``query_id`` and ``customer_id`` on every record (None when unset).

    Ids given explicitly (``extra={"query_id": ...}``) are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "query_id"):
            record.query_id = _query_id.get()
        if not hasattr(record, "customer_id"):
            record.customer_id = _customer_id.get()
        return True


# PII needs an "@" (e-mail) or seven digits with at most three other characters
# between neighbours (the shortest phone number; cards are longer): one search rules
# out most log lines before the full redaction runs.
_MAYBE_PII = re.compile(r"@|\d(?:\D{0,3}\d){6}")


#: Secrets learnt at run time (the API keys of model variants): every Redactor hides them.
_RUNTIME_SECRETS: list[str] = []


def add_secret(value: str) -> None:
    """Hide ``value`` from every log line from now on."""
    if value and value not in _RUNTIME_SECRETS:
        _RUNTIME_SECRETS.append(value)
        _RUNTIME_SECRETS.sort(key=len, reverse=True)


class Redactor:
    """Removes secrets, then personal data, from a piece of log text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        return cls(secret_values(settings))

    def __call__(self, text: str) -> str:
        for secret in (*self.secrets, *_RUNTIME_SECRETS):
            if secret in text:
                text = text.replace(secret, SECRET)
        if _MAYBE_PII.search(text):
            text = redact(text)
        return text


def secret_values(settings: Settings) -> list[str]:
    """Every form in which a secret setting could reach a log line."""
    values = [
        settings.llm_api_key.get_secret_value(),
        settings.kafka_sasl_password.get_secret_value(),
    ]
    try:
        parts = urllib.parse.urlsplit(settings.schema_registry_url.strip())
        raw_password = parts.password
        raw_user = parts.username
    except ValueError:  # a URL urllib cannot read has no password it can read either
        raw_password = raw_user = None
    if raw_password:
        password = urllib.parse.unquote(raw_password)
        user = urllib.parse.unquote(raw_user or "")
        # As written in the URL, decoded, and as the Basic credentials app.registry sends.
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        values += [raw_password, password, token]
    return [value for value in values if value]


class _RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def message_of(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad format string must not lose the line
            message = f"{record.msg!r} (arguments do not fit: {exc})"
        return self.redactor(message)

    def exception_of(self, record: logging.LogRecord) -> str | None:
        """The traceback and stack of ``record``, redacted, or None."""
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return self.redactor("\n".join(parts)) if parts else None


class TextFormatter(_RedactingFormatter):
    """``[time] [pid] [LEVEL] [q=... c=...] logger: message``, then any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"[{self.formatTime(record)}] [{record.process}] [{record.levelname}]"
            f"{_ids_text(record)} {record.name}: {self.message_of(record)}"
        )
        exc = self.exception_of(record)
        return f"{line}\n{exc}" if exc else line


def _ids_text(record: logging.LogRecord) -> str:
    query_id = getattr(record, "query_id", None)
    customer_id = getattr(record, "customer_id", None)
    if query_id is None and customer_id is None:
        return ""
    parts = []
    if query_id is not None:
        parts.append(f"q={query_id}")
    if customer_id is not None:
        parts.append(f"c={customer_id}")
    return f" [{' '.join(parts)}]"


class JsonFormatter(_RedactingFormatter):
    """One JSON object a line: ``ts`` (UTC), ``level``, ``logger``, ``message``,
    ``query_id``, ``customer_id``, and ``exc`` when there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.message_of(record),
            "query_id": getattr(record, "query_id", None),
            "customer_id": getattr(record, "customer_id", None),
        }
        exc = self.exception_of(record)
        if exc:
            entry["exc"] = exc
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_handler(
    settings: Settings, *, stream: IO[str] | None = None, filename: str | None = None
) -> logging.Handler:
    """A handler writing ``settings``' log format to ``filename``, else ``stream``."""
    handler: logging.Handler
    if filename:
        handler = logging.FileHandler(filename, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    redactor = Redactor.from_settings(settings)
    formatter = (
        JsonFormatter(redactor) if settings.log_format == "json" else TextFormatter(redactor)
    )
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    return handler


def install_logging(
    settings: Settings, *, stream: IO[str] | None = None, filename: str | None = None
) -> logging.Handler:
    """Make the root logger write only through flowdesk's handler, at the set level.

    Handlers already on the root logger (Faust's, or an earlier call's) are removed,
    and Python warnings are logged too, so every line has the same form.
    """
    handler = make_handler(settings, stream=stream, filename=filename)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.captureWarnings(True)
    return handler


def freeze_startup_objects() -> int:
    """Leave what the start-up made (modules, the app, its agents and tables) out of the
    cyclic garbage collector's runs from now on; returns how many objects that is.

    A worker holds some 100,000 such objects, every one of them live for as long as
    the worker is. A full collection walked them all, and held the event loop for
    50 to 65 ms each time (measured under load): a stall in every query in flight.
    Their garbage is still freed by reference counting; only a reference cycle made
    of them alone would stay.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class FlowdeskWorker(Worker):
    """Faust's worker, logging as the settings say (the app's ``Worker`` setting).

    mode sets up logging when the worker starts and then calls
    ``on_setup_root_logger``; that is where this configuration replaces its own,
    for ``flowdesk worker`` and ``faust -A app.main worker`` alike. Faust's
    ``--loglevel`` gives way to ``FLOWDESK_LOG_LEVEL``. The progress spinner is off:
    it writes to the terminal outside the log.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["loglevel"] = get_settings().log_level
        super().__init__(*args, **kwargs)
        self.spinner = None

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        frozen = freeze_startup_objects()
        logger.info("%d objects of the start-up left out of garbage collection", frozen)

    def on_setup_root_logger(self, root_logger: logging.Logger, level: int) -> None:
        logfile = self.logfile
        if isinstance(logfile, str):
            install_logging(get_settings(), filename=logfile)
        else:
            install_logging(get_settings(), stream=logfile or self.stderr)
        loop = type(self.loop)
        logger.info(
            "event loop: %s.%s; interpreter switch interval %g s",
            loop.__module__,
            loop.__qualname__,
            sys.getswitchinterval(),
        )
        if self.quiet:
            # Faust printed no banner; what an operator looks for in it goes to the log.
            conf = self.app.conf
            logger.info(
                "worker %s (pid %s): web %s, data %s",
                conf.id,
                os.getpid(),
                conf.canonical_url if conf.web_enabled else "off",
                conf.datadir.absolute(),
            )
