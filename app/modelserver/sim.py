"""An OpenAI-compatible model simulator with repeatable latency and faults.

It answers ``/v1/chat/completions`` with plausible support answers (see
``app.modelserver.answers``) after a configurable latency, and injects errors,
rate limits, hangs and malformed JSON at configured rates drawn from a seeded
generator, so load and fault tests repeat run after run. Tests read what it
received and change its behaviour at run time through ``/_sim/*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import random
import signal
import time
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TextIO, cast

from aiohttp import web

from app.modelserver.answers import simulate_answer_json

LatencyKind = Literal["fixed", "uniform", "lognormal"]
Outcome = Literal["ok", "error", "rate_limited", "hang", "malformed"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error", "rate_limited", "hang", "malformed")

_LATENCY_FORMS = "fixed:MS, uniform:LO_MS,HI_MS or lognormal:MEDIAN_MS,SIGMA"
_ARITY: dict[str, int] = {"fixed": 1, "uniform": 2, "lognormal": 2}
_ERROR_STATUSES = (500, 502, 503)


@dataclass(frozen=True, kw_only=True)
class Latency:
    """How long the simulated model takes to answer; parameters in milliseconds.

    ``fixed`` takes ``(ms,)``, ``uniform`` ``(low_ms, high_ms)`` and ``lognormal``
    ``(median_ms, sigma)``; ``str()`` gives back the ``parse_latency`` form.
    """

    kind: LatencyKind
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind not in _ARITY:
            raise ValueError(f"unknown latency kind {self.kind!r}; use {_LATENCY_FORMS}")
        if len(self.params) != _ARITY[self.kind]:
            raise ValueError(
                f"latency {self.kind} takes {_ARITY[self.kind]} number(s), "
                f"got {len(self.params)}; use {_LATENCY_FORMS}"
            )
        if not all(math.isfinite(p) and p >= 0 for p in self.params):
            raise ValueError(f"latency {self} needs finite numbers >= 0")
        if self.kind == "uniform" and self.params[0] > self.params[1]:
            raise ValueError(f"latency {self}: the low bound is above the high bound")
        if self.kind == "lognormal" and self.params[0] == 0:
            raise ValueError(f"latency {self}: the median must be above 0 ms")

    def sample(self, rng: random.Random) -> float:
        """One latency in seconds, drawn from ``rng``."""
        if self.kind == "fixed":
            return self.params[0] / 1000
        if self.kind == "uniform":
            return rng.uniform(self.params[0], self.params[1]) / 1000
        median_ms, sigma = self.params
        return rng.lognormvariate(math.log(median_ms), sigma) / 1000

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{p:g}' for p in self.params)}"


def parse_latency(spec: str) -> Latency:
    """The ``Latency`` of ``fixed:MS``, ``uniform:LO,HI`` or ``lognormal:MEDIAN,SIGMA``."""
    kind, sep, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in _ARITY:
        raise ValueError(f"bad latency {spec!r}; use {_LATENCY_FORMS}, e.g. fixed:200")
    try:
        params = tuple(float(part) for part in rest.split(","))
    except ValueError:
        raise ValueError(
            f"bad latency {spec!r}: the parameters must be numbers; use {_LATENCY_FORMS}"
        ) from None
    return Latency(kind=cast(LatencyKind, kind), params=params)


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """What the simulator answers, how slowly, and how often it fails.

    The fault rates are probabilities per request; one draw picks at most one fault,
    so their sum must not exceed 1. ``log_limit`` bounds the in-memory request log
    (oldest entries go first) so long benchmarks do not grow it without end.
    """

    model: str = "flowdesk-sim"
    latency: Latency = dataclasses.field(default_factory=lambda: parse_latency("fixed:50"))
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    hang_rate: float = 0.0
    hang_seconds: float = 300.0
    malformed_rate: float = 0.0
    seed: int | None = None
    log_path: str | None = None
    log_limit: int = 100_000

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("model must be a non-empty name")
        if not isinstance(self.latency, Latency):
            raise ValueError("latency must be a Latency; build one with parse_latency('fixed:50')")
        for name in ("error_rate", "rate_limit_rate", "hang_rate", "malformed_rate"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability from 0 to 1, got {value!r}")
        if self.fault_rate > 1.0 + 1e-9:
            raise ValueError(
                f"the fault rates add up to {self.fault_rate:g}; one request gets "
                "at most one fault, so keep their sum at 1 or below"
            )
        if not _is_int(self.retry_after) or self.retry_after < 0:
            raise ValueError(f"retry_after must be whole seconds >= 0, got {self.retry_after!r}")
        if not _is_number(self.hang_seconds) or not 0 <= self.hang_seconds < math.inf:
            raise ValueError(f"hang_seconds must be >= 0, got {self.hang_seconds!r}")
        if self.seed is not None and not _is_int(self.seed):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        if not _is_int(self.log_limit) or self.log_limit < 1:
            raise ValueError(f"log_limit must be an integer >= 1, got {self.log_limit!r}")

    @property
    def fault_rate(self) -> float:
        """The probability that a request gets any fault."""
        return self.error_rate + self.rate_limit_rate + self.hang_rate + self.malformed_rate

    def to_json(self) -> dict[str, Any]:
        """The config as JSON-ready values, latency in its string form."""
        data = dataclasses.asdict(self)
        data["latency"] = str(self.latency)
        return data

    def updated(self, changes: Mapping[str, Any]) -> SimConfig:
        """A copy with ``changes`` (JSON values, latency as a string) applied and validated."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(
                f"cannot change {', '.join(sorted(unknown))} at run time; "
                f"changeable: {', '.join(sorted(_UPDATABLE))}"
            )
        values = dict(changes)
        if "latency" in values:
            if not isinstance(values["latency"], str):
                raise ValueError(
                    f"latency must be a string such as 'fixed:200'; use {_LATENCY_FORMS}"
                )
            values["latency"] = parse_latency(values["latency"])
        # JSON has one number type; whole floats are fine where an int is expected.
        for name in ("retry_after", "seed"):
            if isinstance(values.get(name), float) and values[name].is_integer():
                values[name] = int(values[name])
        return dataclasses.replace(self, **values)


_UPDATABLE = frozenset(
    {
        "model",
        "latency",
        "error_rate",
        "rate_limit_rate",
        "retry_after",
        "hang_rate",
        "hang_seconds",
        "malformed_rate",
        "seed",
    }
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _SimState:
    """The mutable side of one simulator app: config, generator, log and counters."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.requests: deque[dict[str, Any]] = deque(maxlen=config.log_limit)
        self.outcomes: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})
        self.rejected = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.log_file: TextIO | None = None

    def draw(self) -> tuple[Outcome, float]:
        """This request's fault (or "ok") and latency in seconds, from one generator."""
        config = self.config
        u = self.rng.random()
        delay = config.latency.sample(self.rng)
        faults: tuple[tuple[Outcome, float], ...] = (
            ("error", config.error_rate),
            ("rate_limited", config.rate_limit_rate),
            ("hang", config.hang_rate),
            ("malformed", config.malformed_rate),
        )
        for outcome, rate in faults:
            if u < rate:
                return outcome, delay
            u -= rate
        return "ok", delay

    def stats(self) -> dict[str, Any]:
        return {
            "outcomes": dict(self.outcomes),
            "total": sum(self.outcomes.values()),
            "rejected": self.rejected,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
        }


_STATE = web.AppKey("flowdesk_sim_state", _SimState)


def _error(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _text_of(content: Any) -> str:
    # OpenAI allows content as a list of parts; only text parts carry words.
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


@lru_cache(maxsize=4096)
def _answer(text: str) -> str:
    # Benchmarks send the same few texts many times; the answer is a pure function.
    return simulate_answer_json(text)


def _completion(model: str, content: str, messages: list[Any]) -> dict[str, Any]:
    prompt_chars = sum(len(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))
    prompt_tokens = prompt_chars // 4 + 1
    completion_tokens = len(content) // 4 + 1
    return {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _parse_request(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The request body, or None and what is wrong with it."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None, "the request body is not valid JSON"
    if not isinstance(body, dict):
        return None, "the request body must be a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None, "'messages' is required: a non-empty list of {role, content} objects"
    if not all(isinstance(m, dict) for m in messages):
        return None, "every item of 'messages' must be an object with 'role' and 'content'"
    if body.get("stream"):
        return None, "the simulator does not stream; send 'stream': false or leave it out"
    return body, ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return _text_of(messages[-1].get("content"))


async def _chat_completions(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    received = time.time()
    state.in_flight += 1
    state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
    try:
        body, problem = _parse_request(await request.read())
        if body is None:
            state.rejected += 1
            return _error(400, problem, "invalid_request_error")
        # A config change during this request's sleep must not change its answer.
        config = state.config
        outcome, delay = state.draw()
        status = 200
        if outcome == "error":
            status = state.rng.choice(_ERROR_STATUSES)
        elif outcome == "rate_limited":
            status = 429
        messages: list[dict[str, Any]] = body["messages"]
        entry = {
            "received_at": received,
            "model": body.get("model"),
            "messages": messages,
            # Sampling parameters and response_format: what the client asked for.
            "params": {k: v for k, v in body.items() if k not in ("model", "messages")},
            "outcome": outcome,
            "status": status,
        }
        state.requests.append(entry)
        state.outcomes[outcome] += 1
        if state.log_file is not None:
            state.log_file.write(json.dumps(entry) + "\n")

        if outcome == "rate_limited":
            # Rejected at the door, as gateways do, so no model latency.
            return _error(
                429,
                f"Rate limit reached (simulated). Retry after {config.retry_after} s.",
                "rate_limit_error",
                "rate_limit_exceeded",
                headers={"Retry-After": str(config.retry_after)},
            )
        await asyncio.sleep(config.hang_seconds if outcome == "hang" else delay)
        if outcome == "error":
            return _error(status, "The model server had an error (simulated).", "server_error")
        content = _answer(_last_user_text(messages))
        if outcome == "malformed":
            # Any proper prefix of a JSON object is invalid JSON: like a reply cut off mid-way.
            content = content[: len(content) // 2]
        return web.json_response(_completion(config.model, content, messages))
    finally:
        state.in_flight -= 1


async def _models(request: web.Request) -> web.Response:
    model = request.app[_STATE].config.model
    return web.json_response(
        {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "flowdesk-sim"}]}
    )


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _get_requests(request: web.Request) -> web.Response:
    return web.json_response({"requests": list(request.app[_STATE].requests)})


async def _clear_requests(request: web.Request) -> web.Response:
    request.app[_STATE].requests.clear()
    return web.json_response({"requests": []})


async def _get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATE].config.to_json())


async def _set_config(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    try:
        changes = json.loads(await request.read())
    except ValueError:
        return _error(
            400, "the body must be a JSON object of config fields", "invalid_request_error"
        )
    if not isinstance(changes, dict):
        return _error(
            400, "the body must be a JSON object of config fields", "invalid_request_error"
        )
    try:
        config = state.config.updated(changes)
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc), "invalid_request_error")
    state.config = config
    if "seed" in changes:
        state.rng.seed(config.seed)
    return web.json_response(config.to_json())


async def _get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATE].stats())


async def _reset_stats(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    state.outcomes = Counter({outcome: 0 for outcome in OUTCOMES})
    state.rejected = 0
    state.peak_in_flight = state.in_flight
    return web.json_response(state.stats())


def make_app(config: SimConfig) -> web.Application:
    """The simulator as an aiohttp application (routes under ``/v1``, ``/health``, ``/_sim``)."""
    app = web.Application()
    state = _SimState(config)
    app[_STATE] = state
    if config.log_path is not None:
        # Line-buffered so a test or `tail -f` sees each request as it arrives.
        state.log_file = open(config.log_path, "a", encoding="utf-8", buffering=1)

        async def close_log(app: web.Application) -> None:
            if state.log_file is not None:
                state.log_file.close()
                state.log_file = None

        app.on_cleanup.append(close_log)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/health", _health)
    app.router.add_get("/_sim/requests", _get_requests)
    app.router.add_delete("/_sim/requests", _clear_requests)
    app.router.add_get("/_sim/config", _get_config)
    app.router.add_post("/_sim/config", _set_config)
    app.router.add_get("/_sim/stats", _get_stats)
    app.router.add_delete("/_sim/stats", _reset_stats)
    return app


class SimServer:
    """The simulator on a TCP port inside the running event loop (tests, ``flowdesk bench``).

    ``port=0`` picks a free port; ``port`` and ``base_url`` give the real one after
    ``start()``. Usable as ``async with SimServer(config=...) as sim:``.
    """

    def __init__(self, *, config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self._config = config
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self) -> None:
        """Start serving; does nothing if already started."""
        if self._runner is not None:
            return
        runner = web.AppRunner(
            make_app(self._config),
            access_log=None,
            # A client that gave up (a hang it timed out on) frees its handler, so the
            # in-flight count means open requests and stop() need not wait for hangs.
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        # The default backlog of 128 drops connection bursts that benchmarks make.
        site = web.TCPSite(runner, self._host, self._requested_port, backlog=4096)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                exc.errno,
                f"the simulator cannot listen on {self._host}:{self._requested_port} "
                f"({exc.strerror}); choose another port or stop what is using it",
            ) from exc
        self._port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving; does nothing if not started."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port (the real one when created with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the simulator has no port yet; await start() first")
        return self._port

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:8000`` (``/_sim`` and ``/health`` live here)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:8000/v1``."""
        return f"{self.url}/v1"

    @property
    def config(self) -> SimConfig:
        """The current config, including changes made through ``POST /_sim/config``."""
        if self._runner is None:
            return self._config
        return self._runner.app[_STATE].config


def run_sim(*, config: SimConfig, host: str, port: int) -> None:
    """Serve the simulator until SIGINT or SIGTERM (blocking; for the CLI)."""
    asyncio.run(_serve_until_signal(SimServer(config=config, host=host, port=port)))


async def _serve_until_signal(server: SimServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
        config = server.config
        print(
            f"flowdesk sim: model {config.model!r} on {server.base_url} "
            f"(latency {config.latency}, fault rate {config.fault_rate:g}); Ctrl-C stops",
            flush=True,
        )
        await stop.wait()
    finally:
        await server.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
