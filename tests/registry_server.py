"""A minimal in-memory schema registry that speaks the Confluent REST API.

Enough of it for flowdesk's codecs and tests: registering a schema under a
subject (the same schema text gets the same id, a new one the next id; ids are
global across subjects), fetching a schema by id, and listing subjects and their
versions. Schemas are checked to be valid Avro (422 otherwise); compatibility is
not checked (the registry's ``NONE`` level). Every request is counted, so tests
can see how often a client asked.

In a test: ``async with RegistryServer() as registry: ... registry.url``.
As a process: ``python tests/registry_server.py --port 8081``; it prints
``registry listening on http://127.0.0.1:8081`` once it serves and stops on
SIGINT or SIGTERM. Only aiohttp and fastavro are needed, not flowdesk itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import fastavro
from aiohttp import web

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@dataclass
class RegistryState:
    """The registry's contents and the requests it has seen."""

    #: Schema text by id; ids start at 1 and are shared by all subjects.
    schemas: dict[int, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    #: Each subject's versions, oldest first, as schema ids.
    subjects: dict[str, list[int]] = field(default_factory=dict)
    #: Requests seen, by ``(method, path)`` with the path as sent.
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)

    def register(self, subject: str, text: str) -> int:
        schema_id = self.ids.get(text)
        if schema_id is None:
            schema_id = len(self.schemas) + 1
            self.schemas[schema_id] = text
            self.ids[text] = schema_id
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id


_STATE = web.AppKey("flowdesk_registry_state", RegistryState)


def _answer(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type=CONTENT_TYPE)


def _error(status: int, error_code: int, message: str) -> web.Response:
    return _answer({"error_code": error_code, "message": message}, status)


@web.middleware
async def _count(request: web.Request, handler: Any) -> web.StreamResponse:
    request.app[_STATE].requests[(request.method, request.path)] += 1
    response: web.StreamResponse = await handler(request)
    return response


async def _register(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    try:
        body = json.loads(await request.read())
        text = body["schema"]
        if not isinstance(text, str):
            raise TypeError("schema is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        return _error(422, 42201, f"Invalid schema: the body must be {{'schema': '...'}} ({exc})")
    if body.get("schemaType", "AVRO") != "AVRO":
        return _error(
            422, 42201, f"Invalid schema: only AVRO is supported, not {body['schemaType']}"
        )
    try:
        fastavro.parse_schema(json.loads(text))
    except Exception as exc:  # json and fastavro raise several kinds
        return _error(422, 42201, f"Invalid schema {text}: {exc}")
    return _answer({"id": state.register(request.match_info["subject"], text)})


async def _schema_by_id(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    try:
        schema_id = int(request.match_info["id"])
    except ValueError:
        return _error(404, 40403, "Schema not found")
    text = state.schemas.get(schema_id)
    if text is None:
        return _error(404, 40403, f"Schema {schema_id} not found")
    return _answer({"schema": text})


async def _subjects(request: web.Request) -> web.Response:
    return _answer(sorted(request.app[_STATE].subjects))


async def _versions(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    versions = request.app[_STATE].subjects.get(subject)
    if versions is None:
        return _error(404, 40401, f"Subject '{subject}' not found.")
    return _answer(list(range(1, len(versions) + 1)))


async def _root(request: web.Request) -> web.Response:
    return _answer({})


def make_app(state: RegistryState) -> web.Application:
    """The registry as an aiohttp application serving ``state``."""
    app = web.Application(middlewares=[_count])
    app[_STATE] = state
    app.router.add_get("/", _root)
    app.router.add_post("/subjects/{subject}/versions", _register)
    app.router.add_get("/schemas/ids/{id}", _schema_by_id)
    app.router.add_get("/subjects", _subjects)
    app.router.add_get("/subjects/{subject}/versions", _versions)
    return app


class RegistryServer:
    """The registry on a TCP port inside the running event loop.

    ``port=0`` picks a free port; ``port`` and ``url`` give the real one after
    ``start()``. ``state`` holds the schemas and the request counts.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.state = RegistryState()

    async def start(self) -> None:
        """Start serving; does nothing if already started."""
        if self._runner is not None:
            return
        runner = web.AppRunner(make_app(self.state), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving; does nothing if not started."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> RegistryServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port (the real one when created with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the registry has no port yet; await start() first")
        return self._port

    @property
    def url(self) -> str:
        """The registry root, e.g. ``http://127.0.0.1:8081``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def count(self, method: str, path: str) -> int:
        """How many ``method`` requests for ``path`` the registry has seen."""
        return self.state.requests[(method, path)]


async def _serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = RegistryServer(host=host, port=port)
    try:
        await server.start()
        print(f"registry listening on {server.url}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port, 0 for a free one (8081)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
