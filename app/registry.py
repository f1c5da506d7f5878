"""A small synchronous client of a Confluent-compatible schema registry.

Codecs are built once per process at import and encode and decode synchronously,
so this client is synchronous too (``urllib.request``, an explicit timeout on
every request). It registers schemas and fetches them by id, caching both: a
process asks the registry once per schema, and not at all for messages written
with a schema it registered itself.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, cast

import fastavro

from app.errors import ConfigurationError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_ACCEPT = f"{CONTENT_TYPE}, application/vnd.schemaregistry+json, application/json"
#: Keys fastavro adds to a parsed schema; they are not Avro and never sent.
_FASTAVRO_KEYS = frozenset({"__fastavro_parsed", "__named_schemas"})
_CHECK = "check FLOWDESK_SCHEMA_REGISTRY_URL and that the registry is up"


def canonical_json(schema: Any) -> str:
    """``schema`` (plain or parsed by fastavro) as compact JSON with sorted keys.

    The same schema always gives the same text, so a registry that matches
    schemas by text returns the same id for it. Unlike the Avro parsing
    canonical form, defaults and docs are kept: the registry's compatibility
    check and every reader that resolves against this schema need the defaults.
    """
    return json.dumps(_strip(schema), sort_keys=True, separators=(",", ":"))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _FASTAVRO_KEYS}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


class _StatusError(Exception):
    """An HTTP error status from the registry, with its ``error_code`` and message."""

    def __init__(self, status: int, error_code: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


class SchemaRegistryClient:
    """Registers Avro schemas and looks them up by id; thread-safe, caches both ways.

    ``url`` is the registry root (``http://host:8081``); user and password in it
    (``https://key:secret@host``) are sent as HTTP basic auth and never shown in
    messages. Connection errors and 5xx answers are retried ``attempts`` times in
    all, with an exponential backoff from ``backoff`` seconds; registering is
    idempotent on the registry, so a retried POST cannot register twice.
    """

    def __init__(
        self, *, url: str, timeout: float = 5.0, attempts: int = 3, backoff: float = 0.1
    ) -> None:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"the schema registry URL must look like http://host:8081, got {url!r}; "
                "check FLOWDESK_SCHEMA_REGISTRY_URL"
            )
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts!r}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff!r}")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        self._root = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._auth: str | None = None
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._auth = f"Basic {token}"
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The registry root, without credentials."""
        return self._root

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """The id of ``schema`` under ``subject``, registering it if the registry lacks it.

        Raises ``ConfigurationError`` when the registry cannot be reached or
        rejects the schema (incompatible with the subject's earlier versions, or
        invalid); the message carries the registry's own reason.
        """
        text = canonical_json(schema)
        key = (subject, text)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
            path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
            try:
                answer = self._request("POST", path, {"schema": text})
            except _StatusError as exc:
                raise self._register_error(subject, exc) from exc
            schema_id = answer.get("id") if isinstance(answer, dict) else None
            if not isinstance(schema_id, int) or isinstance(schema_id, bool):
                raise ConfigurationError(
                    f"the schema registry at {self.url} answered the registration of "
                    f"subject {subject!r} without an id ({answer!r}); is it a Confluent-"
                    "compatible registry? check FLOWDESK_SCHEMA_REGISTRY_URL"
                )
            self._ids[key] = schema_id
            # Messages this process writes name this id; reading them needs no lookup.
            self._schemas.setdefault(schema_id, _parse(json.loads(text)))
            return schema_id

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        """The Avro schema (parsed by fastavro) the registry stores under ``schema_id``.

        Raises ``LookupError`` when the registry has no Avro schema with that id
        (HTTP 404, or a schema of another type), and ``ConfigurationError`` when it
        cannot be reached or answers with something that is not an Avro schema.
        """
        with self._lock:
            cached = self._schemas.get(schema_id)
            if cached is not None:
                return cached
            try:
                answer = self._request("GET", f"/schemas/ids/{int(schema_id)}", None)
            except _StatusError as exc:
                if exc.status == 404:
                    raise LookupError(
                        f"the schema registry at {self.url} has no schema with id {schema_id}"
                    ) from exc
                raise ConfigurationError(
                    f"the schema registry at {self.url} could not return schema id "
                    f"{schema_id} ({exc}); {_CHECK}"
                ) from exc
            if not isinstance(answer, dict) or not isinstance(answer.get("schema"), str):
                raise ConfigurationError(
                    f"the schema registry at {self.url} answered schema id {schema_id} "
                    f"without a schema ({answer!r}); is it a Confluent-compatible registry?"
                )
            schema_type = answer.get("schemaType", "AVRO")
            if schema_type != "AVRO":
                raise LookupError(f"schema id {schema_id} is a {schema_type} schema, not Avro")
            try:
                parsed = _parse(json.loads(answer["schema"]))
            except Exception as exc:  # json and fastavro raise several kinds
                raise ConfigurationError(
                    f"the schema registry at {self.url} returned schema id {schema_id}, "
                    f"which is not a valid Avro schema: {exc}"
                ) from exc
            self._schemas[schema_id] = parsed
            return parsed

    def _register_error(self, subject: str, exc: _StatusError) -> ConfigurationError:
        if exc.status == 409:
            return ConfigurationError(
                f"the schema registry at {self.url} rejected the schema of subject "
                f"{subject!r} as incompatible with its earlier versions: {exc.message}; "
                "make the change compatible (add fields with defaults, do not remove "
                "fields without one) or change the subject's compatibility level"
            )
        if exc.status == 422:
            return ConfigurationError(
                f"the schema registry at {self.url} rejected the schema of subject "
                f"{subject!r} as invalid: {exc.message}"
            )
        if exc.status in (401, 403):
            return ConfigurationError(
                f"the schema registry at {self.url} refused to register subject "
                f"{subject!r} ({exc}); check the credentials in FLOWDESK_SCHEMA_REGISTRY_URL"
            )
        return ConfigurationError(
            f"the schema registry at {self.url} could not register subject {subject!r} "
            f"({exc}); {_CHECK}"
        )

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """The parsed JSON answer; retries connection errors and 5xx answers."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": _ACCEPT}
        if data is not None:
            headers["Content-Type"] = CONTENT_TYPE
        if self._auth is not None:
            headers["Authorization"] = self._auth
        request = urllib.request.Request(
            self._root + path, data=data, headers=headers, method=method
        )
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                error = _http_error(exc)
                if exc.code < 500 or last:
                    raise error from exc
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                if last:
                    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                    raise ConfigurationError(
                        f"the schema registry at {self.url} did not answer {method} {path} "
                        f"after {self.attempts} attempt(s): {reason or type(exc).__name__}; "
                        f"{_CHECK}"
                    ) from exc
            else:
                try:
                    return json.loads(raw)
                except ValueError as exc:
                    raise ConfigurationError(
                        f"the schema registry at {self.url} answered {method} {path} with "
                        f"something that is not JSON; {_CHECK}"
                    ) from exc
            time.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # the last attempt returns or raises


def _http_error(exc: urllib.error.HTTPError) -> _StatusError:
    """The registry's ``{"error_code", "message"}`` body of an error status, if any."""
    try:
        body = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        body = None
    if isinstance(body, dict):
        code = body.get("error_code")
        message = str(body.get("message") or exc.reason)
        return _StatusError(exc.code, code if isinstance(code, int) else None, message)
    return _StatusError(exc.code, None, str(exc.reason))


def _parse(schema: Any) -> dict[str, Any]:
    return cast(dict[str, Any], fastavro.parse_schema(schema))
