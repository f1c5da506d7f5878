"""Supervision of the embedded stack: a dead child is restarted, as Kubernetes would.

``flowdesk dev`` watches every process it started. A process that may be restarted
(a worker, Redis, the model server) is started again after a back-off that doubles
from ``initial`` to ``cap`` while it keeps dying soon after a start, and goes back to
``initial`` once it has stayed up for ``reset_after`` seconds: Kubernetes'
CrashLoopBackOff, shorter. One that may not (the in-memory broker, whose topics a
new one would not have) stops the stack with an error saying why.

The back-off policy and one supervision step are plain objects driven by a clock, so
they are tested without waiting; :func:`supervise` and :func:`supervise_async` are
the loops around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import NoReturn

from app.errors import StackError
from app.stack import ManagedProcess, Stack


@dataclass(kw_only=True)
class RestartBackoff:
    """The wait before each restart of one process."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    #: Up this long after a start, the process counts as recovered: the next death
    #: waits ``initial`` again.
    reset_after: float = 60.0
    _next: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError(f"initial must be above 0, got {self.initial}")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")
        if self.cap < self.initial:
            raise ValueError(f"cap ({self.cap}) must be at least initial ({self.initial})")
        if self.reset_after < 0:
            raise ValueError(f"reset_after must be 0 or more, got {self.reset_after}")
        self._next = self.initial

    def delay(self, *, uptime: float) -> float:
        """Seconds to wait before restarting a process that died ``uptime`` s after its start."""
        if uptime >= self.reset_after:
            self._next = self.initial
        delay = self._next
        self._next = min(self.cap, delay * self.factor)
        return delay


def describe_exit(returncode: int | None) -> str:
    """How a child ended, from ``Popen.returncode`` (negative: killed by that signal)."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


@dataclass(kw_only=True)
class Watched:
    """One supervised process and its restart history."""

    process: ManagedProcess
    #: None: restarted when it dies; else the reason it is not, for the error that stops
    #: the stack.
    fatal: str | None
    backoff: RestartBackoff
    started_at: float
    restarts: int = 0
    #: When the pending restart is due, or None when none is pending.
    restart_at: float | None = None
    #: False from a restart until the process is healthy again.
    healthy: bool = True


class Supervisor:
    """Restarts the stack's dead processes; :meth:`check` is one step of the loop."""

    def __init__(
        self,
        *,
        stack: Stack,
        say: Callable[[str], None],
        backoff: Callable[[], RestartBackoff] = RestartBackoff,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.say = say
        self.backoff = backoff
        self.clock = clock
        self.watched: list[Watched] = []

    def watch(
        self, process: ManagedProcess, *, fatal: str | None = None, started_at: float | None = None
    ) -> None:
        """Supervise ``process``, started at ``started_at`` on the clock (default: now);
        ``fatal``: do not restart it, stop the stack with this reason when it dies."""
        begun = self.clock() if started_at is None else started_at
        self.watched.append(
            Watched(process=process, fatal=fatal, backoff=self.backoff(), started_at=begun)
        )

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts so far, by process name, of the processes restarted at least once."""
        return {w.process.name: w.restarts for w in self.watched if w.restarts}

    def summary(self) -> str:
        counts = self.restarts
        if not counts:
            return "no process was restarted"
        return "restarts: " + ", ".join(f"{name} {n}" for name, n in counts.items())

    def check(self) -> None:
        """Notice deaths, schedule and make restarts, report recoveries.

        Raises StackError when a process that may not be restarted has died.
        """
        for watched in self.watched:
            now = self.clock()
            if watched.restart_at is not None:
                if now >= watched.restart_at:
                    self._restart(watched, now)
            elif not watched.process.alive():
                self._died(watched, now)
            elif not watched.healthy and watched.process.healthy():
                watched.healthy = True
                self.say(
                    f"{watched.process.name} healthy again, "
                    f"{now - watched.started_at:.1f} s after restart {watched.restarts}"
                )

    def _died(self, watched: Watched, now: float) -> None:
        process = watched.process
        how = describe_exit(process.popen.returncode if process.popen else None)
        uptime = now - watched.started_at
        if watched.fatal is not None:
            raise StackError(
                f"{process.name} (pid {process.pid}) {how}; {watched.fatal}; "
                f"its log: {process.log_path}\n{process.log_tail()}"
            )
        delay = watched.backoff.delay(uptime=uptime)
        watched.restart_at = now + delay
        self.say(
            f"{process.name} (pid {process.pid}) {how} after {uptime:.1f} s up; "
            f"restart {watched.restarts + 1} in {delay:g} s (its log: {process.log_path})"
        )

    def _restart(self, watched: Watched, now: float) -> None:
        try:
            self.stack.restart(watched.process)
        except OSError as exc:  # its program is gone, its log cannot be written...
            raise StackError(f"{watched.process.name} could not be restarted: {exc}") from exc
        watched.restarts += 1
        watched.restart_at = None
        watched.started_at = now
        watched.healthy = False
        self.say(
            f"{watched.process.name} restarted (pid {watched.process.pid}), "
            f"restart {watched.restarts}"
        )


#: Seconds between two supervision steps.
INTERVAL = 0.5


def supervise(supervisor: Supervisor, *, interval: float = INTERVAL) -> NoReturn:
    """Watch until interrupted (KeyboardInterrupt) or a fatal death (StackError)."""
    while True:
        supervisor.check()
        time.sleep(interval)


async def supervise_async(supervisor: Supervisor, *, interval: float = INTERVAL) -> NoReturn:
    """:func:`supervise` beside other tasks. A step blocks the loop briefly (a process
    start, a health probe of a restarted process), which the demo's printing can afford."""
    while True:
        supervisor.check()
        await asyncio.sleep(interval)


class StopSignals:
    """SIGINT and SIGTERM raise KeyboardInterrupt, except while held.

    Held while a child is being started and recorded, so that an interrupt cannot leave
    a child that nobody stops, and while the stack stops, so that a second Ctrl-C cannot
    cut the stop short.
    """

    def __init__(self) -> None:
        self._held = 0
        self.pending = False

    def install(self) -> None:
        # Replaces SIG_IGN too: a shell starts a background command with SIGINT ignored,
        # and Ctrl-C (or kill -INT) must stop the stack all the same.
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._held:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Defer the interrupt to the end of the block (raised there, once)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self.pending:
                self.pending = False
                raise KeyboardInterrupt
