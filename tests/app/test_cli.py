"""The ``flowdesk`` command as a user runs it: dev, loadgen, argument errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import Cluster, StartWorker

from app.cli import build_parser
from app.stack import free_port, http_ok


def flowdesk(
    *args: str, env: dict[str, str] | None = None, sigint_ignored: bool = False
) -> subprocess.Popen[str]:
    """``flowdesk ARGS`` in a session of its own; ``sigint_ignored``: started the way a
    shell starts a command in the background, with SIGINT ignored."""

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        preexec_fn=ignore_sigint if sigint_ignored else None,
    )


def test_bad_arguments_are_refused_with_a_reason() -> None:
    parser = build_parser()
    for argv in (["dev", "--workers", "0"], ["loadgen", "--rate", "0", "--count", "1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "model-server", "--backend", "sim", "--latency", "x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "latency" in done.stderr


@pytest.mark.integration
def test_dev_uses_configured_services_starts_workers_and_stops_them(
    cluster: Cluster, topics: None, tmp_path
) -> None:
    web_port = free_port()
    env = {**cluster.env, "FLOWDESK_WEB_PORT": str(web_port)}
    # Started as a script starting it in the background would: Ctrl-C still stops it.
    proc = flowdesk(
        "dev", "--workers", "1", "--log-dir", str(tmp_path), env=env, sigint_ignored=True
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    output = "".join(lines)
    try:
        assert "ready in" in output, output
        # The broker, Redis and model server were configured, so dev starts none of them.
        assert "broker " not in output and "redis " not in output, output
        assert f"http://127.0.0.1:{web_port}/" in output
        assert http_ok(f"http://127.0.0.1:{web_port}/health")
        assert http_ok(f"http://127.0.0.1:{web_port}/ready")
    finally:
        os.kill(proc.pid, signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # Not left running: its worker would join the next tests' consumer group.
            proc.terminate()  # flowdesk dev stops what it started on SIGTERM too
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
            raise
    assert "stopped" in rest
    assert not http_ok(f"http://127.0.0.1:{web_port}/health"), "the worker was stopped"


@pytest.mark.integration
def test_loadgen_sends_and_reports(cluster: Cluster, topics: None) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "loadgen",
            "--rate",
            "500",
            "--count",
            "30",
            "--channels",
            "chat,email",
            "--customers",
            "5",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **cluster.env},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b30\b", done.stdout), done.stdout


@pytest.mark.parametrize(
    ("kind", "loop"), [("uvloop", "uvloop.Loop"), ("asyncio", "asyncio.unix_events")]
)
def test_the_worker_runs_on_the_configured_event_loop(
    start_worker: StartWorker, kind: str, loop: str
) -> None:
    worker = start_worker(FLOWDESK_EVENT_LOOP=kind)
    assert f"event loop: {loop}" in worker.log_path.read_text()


def test_the_worker_takes_its_switch_interval_from_the_settings(
    start_worker: StartWorker,
) -> None:
    worker = start_worker(FLOWDESK_SWITCH_INTERVAL="0.002")
    log = worker.log_path.read_text()
    assert "interpreter switch interval 0.002 s" in log
    # Once started, what the start-up made is left out of garbage collection.
    frozen = re.search(r"(\d+) objects of the start-up left out of garbage collection", log)
    assert frozen is not None and int(frozen.group(1)) > 10_000


def test_an_unknown_event_loop_is_refused() -> None:
    proc = flowdesk("worker", env={"FLOWDESK_EVENT_LOOP": "trio"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "event_loop" in out and "uvloop" in out
