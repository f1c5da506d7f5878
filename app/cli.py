"""The ``flowdesk`` command: dev stack, worker, model server, load generator.

Heavy imports happen inside each command, so ``flowdesk --help`` is instant and
the worker's settings are read only by the command that runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from app.errors import ConfigurationError, FlowdeskError

DEFAULT_CHANNELS = "chat,email,voice"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowdesk", description="Real-time GenAI customer support on Kafka."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev", help="run the embedded stack: broker, Redis, model server, workers"
    )
    dev.add_argument("--workers", type=_positive_int, default=1, help="Faust workers (1)")
    dev.add_argument("--demo", action="store_true", help="send demo traffic and show answers")
    dev.add_argument(
        "--backend", choices=("llama", "sim"), default="llama", help="model server backend"
    )
    dev.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="embedded broker: Tansu, or Apache Kafka (needs Java 17+; Maven on first run)",
    )
    dev.add_argument("--rate", type=_rate, default=1.0, help="demo queries per second (1)")
    dev.add_argument("--count", type=_positive_int, default=10_000, help="demo queries (10000)")
    dev.add_argument("--log-dir", default=".flowdesk/logs", help="process logs (.flowdesk/logs)")
    dev.add_argument(
        "--free-ports",
        action="store_true",
        help="start the broker, Redis and model server on free ports, not 9092, 6379, 8000",
    )

    commands.add_parser(
        "worker", help="run one Faust worker (same as: faust -A app.main worker)", add_help=False
    )

    model = commands.add_parser("model-server", help="serve the OpenAI-compatible API")
    model.add_argument("--backend", choices=("llama", "sim"), default="llama")
    model.add_argument("--host", default="127.0.0.1")
    model.add_argument("--port", type=int, default=8000)
    llama = model.add_argument_group("llama backend")
    llama.add_argument("--model", dest="model_path", help="GGUF file (the bundled SmolLM2)")
    llama.add_argument("--parallel", type=_positive_int, default=4, help="request slots (4)")
    llama.add_argument("--ctx-size", type=_positive_int, default=4096, help="context (4096)")
    llama.add_argument(
        "--threads", type=_positive_int, default=None, help="CPU threads (all cores but one)"
    )
    sim = model.add_argument_group("sim backend")
    sim.add_argument("--model-name", default="flowdesk-sim", help="model name it reports")
    sim.add_argument(
        "--latency",
        default="fixed:50",
        help="fixed:MS | uniform:LO,HI | lognormal:MEDIAN_MS,SIGMA (fixed:50)",
    )
    sim.add_argument("--error-rate", type=_probability, default=0.0, help="share of HTTP 5xx")
    sim.add_argument("--rate-limit-rate", type=_probability, default=0.0, help="share of 429")
    sim.add_argument("--retry-after", type=int, default=1, help="Retry-After of a 429, s")
    sim.add_argument("--hang-rate", type=_probability, default=0.0, help="share that hang")
    sim.add_argument("--hang-seconds", type=float, default=300.0, help="how long a hang lasts")
    sim.add_argument("--malformed-rate", type=_probability, default=0.0, help="bad JSON share")
    sim.add_argument("--seed", type=int, default=None, help="seed for repeatable faults")
    sim.add_argument("--log-path", default=None, help="also log requests to this JSONL file")

    loadgen = commands.add_parser("loadgen", help="send realistic synthetic traffic")
    loadgen.add_argument("--rate", type=_rate, required=True, help="queries per second")
    loadgen.add_argument("--count", type=int, required=True, help="queries to send")
    loadgen.add_argument("--channels", default=DEFAULT_CHANNELS, help=DEFAULT_CHANNELS)
    loadgen.add_argument("--customers", type=_positive_int, default=200, help="customers (200)")
    loadgen.add_argument("--seed", type=int, default=None, help="seed for repeatable traffic")
    loadgen.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench = commands.add_parser(
        "bench", help="measure the pipeline against its baselines on the simulator"
    )
    bench.add_argument("--count", type=_positive_int, default=2000, help="queries (2000)")
    bench.add_argument("--latency", type=float, default=200.0, help="model latency, ms (200)")
    bench.add_argument("--capacity", type=_positive_int, default=64, help="in flight (64)")
    bench.add_argument(
        "--naive-count", type=_positive_int, default=50, help="queries for the naive run (50)"
    )
    bench.add_argument(
        "--latency-count",
        type=_positive_int,
        default=1000,
        help="queries for the half-capacity latency run (1000)",
    )
    bench.add_argument(
        "--scale",
        default="",
        metavar="N,N,...",
        help="also run the pipeline on N workers for each N, e.g. 1,2,3 (none)",
    )
    bench.add_argument(
        "--takeover",
        action="store_true",
        help="also run the takeover phase: two workers, one SIGKILLed under steady traffic",
    )
    bench.add_argument(
        "--takeover-rate",
        type=_rate,
        default=None,
        help="takeover phase: queries per second (half of one worker: capacity / 2 / latency)",
    )
    bench.add_argument(
        "--takeover-seconds",
        type=_rate,
        default=30.0,
        help="takeover phase: how long queries are sent, s; the kill comes after a third (30)",
    )
    bench.add_argument(
        "--warmup",
        type=_non_negative_int,
        default=200,
        help="queries each phase runs first and does not count, at most its own count; "
        "0 measures from a cold start (200)",
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="sample the pipeline phase's worker with py-spy and print where its CPU goes",
    )
    bench.add_argument("--json", dest="json_path", help="also write the results to this file")

    models = commands.add_parser(
        "models", help="list and change the model variants, at run time (support.models)"
    )
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the variants in force and their traffic shares")
    listing.add_argument("--json", action="store_true", help="as JSON")
    define = actions.add_parser("set", help="add a variant, or replace one (same name@version)")
    define.add_argument("name", help="model name recorded on responses")
    define.add_argument("version", help="version recorded on responses")
    define.add_argument("--base-url", required=True, help="OpenAI-compatible API root")
    define.add_argument("--model", default="", help="name sent to the server (NAME)")
    define.add_argument("--weight", type=float, default=1.0, help="traffic weight (1)")
    define.add_argument(
        "--fallback", action="store_true", help="no share of traffic; answers when others fail"
    )
    define.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="temperature=0.3 ..."
    )
    define.add_argument(
        "--api-key-env", default="", help="variable holding its API key on the workers"
    )
    weight = actions.add_parser("weight", help="change a variant's traffic weight")
    weight.add_argument("name")
    weight.add_argument("version")
    weight.add_argument("weight", type=float)
    for action, text in (
        ("drain", "weight 0: no new queries; those in flight finish"),
        ("remove", "stop serving a variant (drain it first)"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("name")
        sub.add_argument("version")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Everything after `worker` belongs to Faust's own command line.
    if args_list[:1] == ["worker"]:
        run_worker(args_list[1:])
        return
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "dev":
            run_dev(args)
        elif args.command == "model-server":
            run_model_server(args)
        elif args.command == "loadgen":
            run_loadgen_command(args)
        elif args.command == "bench":
            run_bench_command(args)
        elif args.command == "models":
            run_models_command(args)
    except FlowdeskError as exc:
        print(f"flowdesk {args.command}: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def run_worker(faust_args: list[str]) -> None:
    """One Faust worker; any extra arguments go to Faust's ``worker`` command.

    The log format and level are FLOWDESK_LOG_FORMAT and FLOWDESK_LOG_LEVEL. With JSON
    logs Faust's text banner is left out, so that every line the worker writes is JSON.
    The event loop (FLOWDESK_EVENT_LOOP) is chosen before the app exists, so that the
    worker's loop and, with FLOWDESK_CONSUMER_THREAD=true, its consumer thread's loop are
    both of that kind; so is the interpreter's switch interval (FLOWDESK_SWITCH_INTERVAL).
    """
    from app.settings import get_settings

    settings = get_settings()
    use_event_loop(settings.event_loop)
    sys.setswitchinterval(settings.switch_interval)
    from app.main import app

    quiet = ["--quiet"] if settings.log_format == "json" else []
    sys.argv = ["flowdesk", *quiet, "worker", *faust_args]
    app.main()


def use_event_loop(kind: str) -> None:
    """Make new event loops of ``kind``: "uvloop", or "asyncio" (the standard library's)."""
    if kind == "asyncio":
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
        return
    try:
        import uvloop
    except ImportError as exc:
        raise ConfigurationError(
            "FLOWDESK_EVENT_LOOP=uvloop needs uvloop, which has no build for this platform;"
            " install it or set FLOWDESK_EVENT_LOOP=asyncio"
        ) from exc
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_model_server(args: argparse.Namespace) -> None:
    if args.backend == "llama":
        from app.modelserver.llama import run_llama

        run_llama(
            model_path=args.model_path,
            host=args.host,
            port=args.port,
            parallel=args.parallel,
            ctx_size=args.ctx_size,
            threads=args.threads,
        )
        return
    from app.modelserver.sim import SimConfig, parse_latency, run_sim

    try:
        config = SimConfig(
            model=args.model_name,
            latency=parse_latency(args.latency),
            error_rate=args.error_rate,
            rate_limit_rate=args.rate_limit_rate,
            retry_after=args.retry_after,
            hang_rate=args.hang_rate,
            hang_seconds=args.hang_seconds,
            malformed_rate=args.malformed_rate,
            seed=args.seed,
            log_path=args.log_path,
        )
    except ValueError as exc:
        print(f"flowdesk model-server: {exc}", file=sys.stderr)
        sys.exit(2)
    run_sim(config=config, host=args.host, port=args.port)


def _channels(text: str) -> list[str]:
    channels = [c.strip() for c in text.split(",") if c.strip()]
    unknown = sorted(set(channels) - {"chat", "email", "voice"})
    if unknown or not channels:
        raise SystemExit(
            f"flowdesk loadgen: --channels takes a comma list of chat, email, voice; got {text!r}"
        )
    return channels


def run_loadgen_command(args: argparse.Namespace) -> None:
    from app.loadgen import run_loadgen
    from app.main import client_security
    from app.settings import get_settings
    from app.topics import ensure_topics

    settings = get_settings()
    channels = _channels(args.channels)

    async def go() -> None:
        await ensure_topics(settings)
        report = await run_loadgen(
            bootstrap_servers=settings.bootstrap_servers,
            rate=args.rate,
            count=args.count,
            channels=channels,
            customers=args.customers,
            seed=args.seed,
            progress=not args.no_progress,
            producer_options=client_security(settings),
        )
        print(report.summary())

    asyncio.run(go())


def run_bench_command(args: argparse.Namespace) -> None:
    import json

    from app.bench import BenchConfig, format_table, parse_worker_counts, run_bench

    config = BenchConfig(
        count=args.count,
        latency_ms=args.latency,
        capacity=args.capacity,
        naive_count=args.naive_count,
        latency_count=args.latency_count,
        scale=parse_worker_counts(args.scale) if args.scale else (),
        takeover=args.takeover,
        takeover_rate=args.takeover_rate,
        takeover_seconds=args.takeover_seconds,
        profile=args.profile,
        warmup=args.warmup,
    )
    report = run_bench(config)
    print(format_table(report))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json_path}")


def run_models_command(args: argparse.Namespace) -> None:
    import json

    from pydantic import ValidationError

    from app import modelctl
    from app.catalog import ModelDefinition
    from app.settings import get_settings

    settings = get_settings()

    async def go() -> None:
        if args.action == "set":
            try:
                definition = ModelDefinition(
                    name=args.name,
                    version=args.version,
                    base_url=args.base_url,
                    model=args.model,
                    weight=args.weight,
                    fallback=args.fallback,
                    params=dict(modelctl.parse_param(p) for p in args.param),
                    api_key_env=args.api_key_env,
                )
            except ValidationError as exc:
                raise ConfigurationError(f"invalid model definition: {exc}") from exc
            await modelctl.define(settings, definition)
            print(f"sent {definition.id}; workers serve it within a second")
        elif args.action in ("weight", "drain"):
            weight = 0.0 if args.action == "drain" else args.weight
            changed = await modelctl.set_weight(settings, args.name, args.version, weight)
            print(f"sent {changed.id} with weight {changed.weight:g}")
        elif args.action == "remove":
            await modelctl.remove(settings, args.name, args.version)
            print(f"removed {args.name}@{args.version}")
        definitions = await modelctl.read_definitions(settings)
        if args.action == "list" and args.json:
            print(json.dumps([d.model_dump(mode="json") for d in definitions.values()], indent=2))
        else:
            print(modelctl.format_definitions(definitions.values()))

    asyncio.run(go())


# --- flowdesk dev ------------------------------------------------------------------------

#: Why the embedded broker is not restarted when it dies.
BROKER_NOT_RESTARTED = (
    "Tansu keeps its topics, offsets and tables in memory only, so a new broker would "
    "start without them: stopping everything; run flowdesk dev again"
)


def run_dev(args: argparse.Namespace) -> None:
    """Start what is not configured elsewhere, print the addresses, supervise until Ctrl-C."""
    from app.stack import (
        BROKER_START_TIMEOUT,
        ManagedProcess,
        Stack,
        broker_process,
        free_port,
        model_server_process,
        redis_process,
        worker_process,
    )
    from app.supervisor import StopSignals, Supervisor, supervise, supervise_async

    log_dir = Path(args.log_dir)
    env: dict[str, str] = {}
    started = time.monotonic()
    stop_signals = StopSignals()
    stop_signals.install()
    stack = Stack(log_dir=log_dir, guard=stop_signals.held)
    supervisor = Supervisor(stack=stack, say=_say)

    def start(
        process: ManagedProcess, *, timeout: float, fatal: str | None = None
    ) -> ManagedProcess:
        begun = time.monotonic()
        stack.start(process, timeout=timeout)
        supervisor.watch(process, fatal=fatal, started_at=begun)
        return process

    def port(default: int, variable: str, what: str) -> int:
        if args.free_ports:
            return free_port()
        _need_free_port(default, variable, what)
        return default

    try:
        # A setting given in the environment means "use that one, start nothing".
        if "FLOWDESK_KAFKA_URL" not in os.environ:
            broker_port = port(9092, "FLOWDESK_KAFKA_URL", "a Kafka broker")
            proc = start(
                broker_process(port=broker_port, log_dir=log_dir, kind=args.broker),
                timeout=BROKER_START_TIMEOUT[args.broker],
                fatal=_BROKER_NOT_RESTARTED[args.broker],
            )
            env["FLOWDESK_KAFKA_URL"] = proc.address
            _say(f"broker        {proc.address}   ({_BROKER_NAMES[args.broker]}; pid {proc.pid})")
        if "FLOWDESK_REDIS_URL" not in os.environ:
            redis_port = port(6379, "FLOWDESK_REDIS_URL", "Redis")
            proc = start(redis_process(port=redis_port, log_dir=log_dir), timeout=30)
            env["FLOWDESK_REDIS_URL"] = proc.address
            _say(f"redis         {proc.address}   (pid {proc.pid})")
        if "FLOWDESK_LLM_BASE_URL" not in os.environ:
            model_port = port(8000, "FLOWDESK_LLM_BASE_URL", "a model server")
            proc = start(
                model_server_process(port=model_port, log_dir=log_dir, backend=args.backend),
                timeout=120,
            )
            env["FLOWDESK_LLM_BASE_URL"] = proc.address
            if args.backend == "sim":
                env.setdefault("FLOWDESK_LLM_MODEL", "flowdesk-sim")
            _say(f"model server  {proc.address}   ({args.backend}; pid {proc.pid})")
        os.environ.update(env)

        from app.settings import get_settings
        from app.topics import ensure_topics

        settings = get_settings()
        asyncio.run(ensure_topics(settings))
        base_port = settings.web_port
        for index in range(args.workers):
            web_port = base_port + index
            _need_free_port(web_port, "FLOWDESK_WEB_PORT", "a worker")
            proc = start(worker_process(web_port=web_port, log_dir=log_dir, env=env), timeout=90)
            _say(f"worker {index + 1}      {proc.address}   (/health /ready; pid {proc.pid})")
        _say(f"logs          {log_dir}/")
        _say(f"ready in {time.monotonic() - started:.1f} s; Ctrl-C stops everything")
        if args.demo:
            from app.demo import run_demo

            async def demo() -> None:
                await asyncio.gather(
                    run_demo(settings=settings, rate=args.rate, count=args.count),
                    supervise_async(supervisor),
                )

            asyncio.run(demo())
        else:
            supervise(supervisor)
    except KeyboardInterrupt:
        _say("stopping...")
    except FlowdeskError:
        _say("stopping...")
        raise  # its message is the last thing printed
    finally:
        # Every child is stopped, whatever arrives meanwhile (a second Ctrl-C included).
        with contextlib.suppress(KeyboardInterrupt), stop_signals.held():
            stack.stop()
        _say(f"stopped; {supervisor.summary()}")


_BROKER_NAMES = {"tansu": "Tansu, in memory", "kafka": "Apache Kafka, KRaft, data in a temp dir"}
_BROKER_NOT_RESTARTED = {
    "tansu": BROKER_NOT_RESTARTED,
    "kafka": "the embedded Kafka's data folder goes when it stops, so a new broker would "
    "start without its topics, offsets and tables: stopping everything; run flowdesk dev again",
}


def _need_free_port(port: int, variable: str, what: str) -> None:
    from app.errors import StackError
    from app.stack import port_open

    if port_open("127.0.0.1", port):
        raise StackError(
            f"port {port} is already in use; stop what listens there, or set {variable} "
            f"to use {what} that already runs"
        )


def _say(text: str) -> None:
    print(f"flowdesk dev: {text}", flush=True)


if __name__ == "__main__":
    main()
