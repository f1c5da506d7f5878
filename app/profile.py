"""Where a worker's time goes: py-spy attached to a running worker, and a summary.

``flowdesk bench --profile`` samples the worker of the saturated pipeline phase.
py-spy reads the process from outside (no code in the worker changes; it pauses
the worker for each of 100 samples a second); idle threads, such as the event loop
waiting in ``epoll``, are not sampled, so the samples are where CPU goes. The raw
stacks are kept next to the bench logs (``profile.txt``, the collapsed format
that flame graph tools read) and summed here by function and by package.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from app.errors import ConfigurationError

#: flowdesk's own packages, whose functions the summary ranks with their callees.
OWN_PACKAGES = frozenset({"app", "agents", "tables"})


def py_spy() -> str:
    """The py-spy executable next to this Python, or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ConfigurationError(
            "--profile needs py-spy: pip install -e '.[dev]', or pip install py-spy"
        )
    return found


class Sampler:
    """``py-spy record`` on one process, from ``start()`` until ``stop()``."""

    def __init__(self, *, pid: int, output: Path, rate: int = 100) -> None:
        self.output = output
        self._argv = [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--nolineno",
            "--rate",
            str(rate),
            "--output",
            str(output),
        ]
        self._log = output.with_suffix(".log")
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self._log, "wb") as log:
            self._popen = subprocess.Popen(
                self._argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    @property
    def started(self) -> bool:
        return self._popen is not None

    def stop(self) -> Path:
        """Stop sampling; py-spy writes its file on SIGINT. Returns the file."""
        if self._popen is None:
            raise RuntimeError("the sampler was never started")
        self._popen.send_signal(signal.SIGINT)
        try:
            self._popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        if not self.output.exists():
            raise ConfigurationError(
                f"py-spy wrote no profile; its output is in {self._log}: "
                + self._log.read_text(errors="replace")[-500:]
            )
        return self.output


@dataclass(frozen=True)
class Frame:
    function: str
    #: Where it is defined, shortened by py-spy to the package path (``faust/streams.py``).
    where: str

    @property
    def package(self) -> str:
        """The top-level package: ``faust``, ``aiokafka``, ``app``; ``stdlib`` for Python's own."""
        head = self.where.replace("\\", "/").split("/", 1)[0].removesuffix(".py")
        if not head:
            return "?"
        return "stdlib" if head in sys.stdlib_module_names else head


def parse_frame(text: str) -> Frame:
    """``handle (agents/inference.py)`` → Frame("handle", "agents/inference.py")."""
    function, _, rest = text.rpartition(" (")
    if not function or not rest.endswith(")"):
        return Frame(text, "")
    return Frame(function, rest[:-1])


@dataclass
class Profile:
    samples: int
    #: Samples whose innermost frame is this function: time spent in its own code.
    own: Counter[Frame]
    #: Samples with this function anywhere on the stack: time in it and what it calls.
    total: Counter[Frame]
    #: Own samples summed by the package of the innermost frame.
    packages: Counter[str]


def read_collapsed(path: Path) -> Profile:
    """Sum a collapsed-stack file (``frame;frame;... count`` per line, outermost first)."""
    own: Counter[Frame] = Counter()
    total: Counter[Frame] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [parse_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.function.startswith("thread ")]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        packages[frames[-1].package] += count
        for frame in set(frames):
            total[frame] += count
    return Profile(samples=samples, own=own, total=total, packages=packages)


def summary(profile: Profile, *, top: int = 12) -> dict[str, object]:
    """The top functions by own share of samples, flowdesk's own functions by share with
    their callees, and the shares by package."""

    def share(count: int) -> float:
        return round(100 * count / profile.samples, 1) if profile.samples else 0.0

    def rows(counter: Counter[Frame]) -> list[dict[str, object]]:
        return [
            {"function": f.function, "where": f.where, "percent": share(n)}
            for f, n in counter.most_common(top)
        ]

    ours = Counter(
        {
            f: n
            for f, n in profile.total.items()
            if f.package in OWN_PACKAGES and f.where != "app/cli.py"  # the entry point
        }
    )
    return {
        "samples": profile.samples,
        "own": rows(profile.own),
        # The event loop and Faust's worker frames hold every sample; flowdesk's own
        # functions show which stage the time goes to.
        "total": rows(ours),
        "packages": {name: share(n) for name, n in profile.packages.most_common()},
    }
