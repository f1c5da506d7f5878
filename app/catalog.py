"""Which model answers a query: the model definitions, weights and sticky routing.

Operators manage models at run time by sending definitions to the control topic
``support.models`` (``flowdesk models``). The ``models`` agent checks each one and
keeps it in a global table, so every worker holds every definition, and each
worker's ``ModelCatalog`` reads that table. Until the table holds a definition,
the settings' model (``FLOWDESK_LLM_*``) and fallback answer; from the first
definition on, the table alone decides.

A query goes to one of the variants that take traffic (weight above 0), chosen by
weighted rendezvous hashing of its customer id: a customer stays with the same
variant while the set of variants stays the same, and a weight change moves only
the customers it must. Fallback variants take no share of traffic; they answer
when the chosen variant cannot. A query keeps the endpoints it was given for all
its retries, so draining or removing a variant never loses a request in flight.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from app.errors import DecodeError, ValidationError
from app.logs import add_secret
from app.metrics import BREAKER_STATE, MODEL_WEIGHT
from app.resilience import CircuitBreaker

logger = logging.getLogger(__name__)

#: How often a worker re-reads the models table, s: the longest a change waits.
REFRESH_SECONDS = 1.0


class ModelParams(BaseModel):
    """Sampling parameters of a model variant; unset ones keep the settings' values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=32_768)
    top_p: float | None = Field(None, gt=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None

    def request_params(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ModelDefinition(BaseModel):
    """One model variant, as carried by ``support.models`` (JSON) and the models table.

    API keys never travel on the topic: ``api_key_env`` names the environment
    variable that holds the variant's key on the workers (empty: the settings' key).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")
    version: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9._-]+$")
    base_url: str
    model: str = Field("", max_length=200, description="Name sent to the server; else name.")
    weight: float = Field(1.0, ge=0, le=1_000_000)
    fallback: bool = False
    params: ModelParams = ModelParams()
    api_key_env: str = Field("", max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$|^$")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL of the API root, got {value!r}")
        return value.rstrip("/")

    @property
    def id(self) -> str:
        """``name@version``: the key on the topic and in the table."""
        return variant_id(self.name, self.version)

    @property
    def served_model(self) -> str:
        return self.model or self.name


def variant_id(name: str, version: str) -> str:
    return f"{name}@{version}"


def parse_definition(key: bytes | None, value: bytes) -> ModelDefinition:
    """A definition from a control message; raises an ``InputError`` that says why not."""
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"a model definition must be a JSON object: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"a model definition must be a JSON object, got {type(data).__name__}")
    try:
        definition = ModelDefinition.model_validate(data)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'definition'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ValidationError(f"invalid model definition: {problems}") from exc
    if key is not None and key.decode("utf-8", "replace") != definition.id:
        raise ValidationError(
            f"the message key {key.decode('utf-8', 'replace')!r} must be the variant id "
            f"{definition.id!r} (name@version)"
        )
    return definition


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """One model variant a worker can call, with its own circuit breaker."""

    #: The breaker's and the metrics' name: ``primary``/``fallback``, or ``name@version``.
    name: str
    base_url: str
    #: The model name sent in requests.
    model: str
    version: str
    api_key: str
    breaker: CircuitBreaker
    weight: float = 1.0
    fallback: bool = False
    #: Request parameters that override the settings' (temperature, max_tokens...).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The model name responses record; empty: the name the server reports.
    label: str = ""


def _score(customer_id: str, endpoint: Endpoint) -> float:
    """Weighted rendezvous score: the highest wins, with probability weight / total."""
    digest = hashlib.blake2b(f"{customer_id}\x00{endpoint.name}".encode(), digest_size=8).digest()
    uniform = (int.from_bytes(digest, "big") + 1) / (2**64 + 2)  # in (0, 1)
    return -endpoint.weight / math.log(uniform)


BreakerFactory = Callable[[str], CircuitBreaker]
Source = Callable[[], Iterable[tuple[Any, Any]]]


class ModelCatalog:
    """The model variants of this worker: the table's definitions, else the defaults."""

    def __init__(
        self,
        *,
        defaults: Iterable[Endpoint],
        breaker: BreakerFactory | None = None,
        source: Source | None = None,
        api_key: str = "",
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.defaults = tuple(defaults)
        if not self.defaults:
            raise ValueError("a model catalog needs at least one default endpoint")
        self._breaker = breaker or (lambda name: CircuitBreaker(name=name))
        #: (key, definition dict) pairs; the worker gives it the models table's items.
        self.source = source
        self._api_key = api_key
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._next_refresh = 0.0
        self._seen: dict[str, Any] = {}
        self._endpoints: tuple[Endpoint, ...] = self.defaults
        self._from_table = False
        self._publish()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every variant currently defined, in a stable order."""
        self.refresh()
        return self._endpoints

    def route(self, customer_id: str) -> tuple[Endpoint, ...]:
        """The endpoints to try for this customer: the chosen variant, then fallbacks.

        Empty when no variant takes traffic and there is no fallback.
        """
        self.refresh()
        serving = [e for e in self._endpoints if not e.fallback and e.weight > 0]
        fallbacks = tuple(e for e in self._endpoints if e.fallback)
        if not serving:
            return fallbacks
        chosen = max(serving, key=lambda e: (_score(customer_id, e), e.name))
        return (chosen, *fallbacks)

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the source (at most every ``REFRESH_SECONDS``) and apply any change."""
        if self.source is None:
            return
        now = self._clock()
        if not force and now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_SECONDS
        current = {_text(key): value for key, value in self.source()}
        if current == self._seen:
            return
        self._seen = current
        definitions = []
        for key, value in sorted(current.items()):
            try:
                definitions.append(ModelDefinition.model_validate(value))
            except PydanticValidationError as exc:  # written by something else than the agent
                logger.error("ignoring the invalid model definition %s: %s", key, exc)
        self.apply(definitions)

    def apply(self, definitions: Iterable[ModelDefinition]) -> None:
        """Serve exactly these definitions (none: the defaults)."""
        old = {e.name: e for e in self._endpoints}
        endpoints = []
        for d in sorted(definitions, key=lambda d: d.id):
            previous = old.get(d.id)
            same_server = previous is not None and previous.base_url == d.base_url
            endpoints.append(
                Endpoint(
                    name=d.id,
                    base_url=d.base_url,
                    model=d.served_model,
                    version=d.version,
                    api_key=self._key(d),
                    breaker=previous.breaker if same_server and previous else self._breaker(d.id),
                    weight=d.weight,
                    fallback=d.fallback,
                    params=d.params.request_params(),
                    label=d.name,
                )
            )
        self._from_table = bool(endpoints)
        self._endpoints = tuple(endpoints) or self.defaults
        gone = set(old) - {e.name for e in self._endpoints}
        for name in gone:
            _remove_label(name)
        self._publish()
        logger.info(
            "models now: %s",
            ", ".join(
                f"{e.name} (weight {e.weight:g}{', fallback' if e.fallback else ''})"
                for e in self._endpoints
            ),
        )

    def _key(self, definition: ModelDefinition) -> str:
        if not definition.api_key_env:
            return self._api_key
        key = self._environ.get(definition.api_key_env)
        if key is None:
            logger.error(
                "model %s names the API key variable %s, which this worker does not have; "
                "calling it without a key",
                definition.id,
                definition.api_key_env,
            )
        if key:
            add_secret(key)
        return key or ""

    def _publish(self) -> None:
        for e in self._endpoints:
            MODEL_WEIGHT.labels(endpoint=e.name).set(0 if e.fallback else e.weight)

    def describe(self) -> list[dict[str, Any]]:
        """The variants for people (``/status``, ``flowdesk models``): no keys."""
        endpoints = self.endpoints
        total = sum(e.weight for e in endpoints if not e.fallback)
        return [
            {
                "endpoint": e.name,
                "model": e.label or e.model,
                "version": e.version,
                "url": e.base_url,
                "weight": e.weight,
                "share": 0.0 if e.fallback or not total else round(e.weight / total, 4),
                "fallback": e.fallback,
                "params": dict(e.params),
                "breaker": e.breaker.state,
                "source": "table" if self._from_table else "settings",
            }
            for e in endpoints
        ]


def _text(key: Any) -> str:
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)


def _remove_label(name: str) -> None:
    for metric in (MODEL_WEIGHT, BREAKER_STATE):
        try:
            metric.remove(name)
        except KeyError:
            pass
