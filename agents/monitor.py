"""Drift monitor: per model variant, tumbling windows of features compared with a baseline.

The router sends the signals of its outcomes to ``flowdesk.signals`` about once a
second, one record per variant and window (``app.monitor.SignalBatches``), keyed by
variant and stamped with the time of its latest outcome. Here each signal is counted
in its window (in memory, written to the table at most
once a second: ``WRITE_EVERY``); the first signal of a later window
closes the one before, which is judged (``app.monitor.judge``). Scores are
exported as metrics; a window whose score reaches ``FLOWDESK_DRIFT_THRESHOLD`` is
published to ``support.monitoring`` as JSON.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from faust import StreamT

from app.acks import acked_when_done
from app.dlq import dead_letter
from app.drift import Window, add_all
from app.main import app
from app.metrics import DRIFT_ALERTS, DRIFT_FEATURE_SCORE, DRIFT_SCORE, EVENTS
from app.monitor import decode_signals, judge, window_start
from app.settings import get_settings
from app.topics import monitoring_topic, signals_topic
from tables.drift import drift_state, drift_windows

logger = logging.getLogger(__name__)
settings = get_settings()


#: How often, at most, a variant's open window is written to its table, s. Each write
#: is a changelog record holding the whole window, and a worker taking the partition
#: over reads every one back; counting in memory between writes keeps that to one a
#: second rather than one per query. A crash loses at most this much of the counts.
WRITE_EVERY = 1.0


@dataclass
class _OpenWindow:
    """A variant's open window as counted here, ahead of its table."""

    start: float
    counts: Window
    #: When its counts last went to the table (monotonic s); 0: not yet.
    written_at: float = 0.0


#: variant -> its open window; forgotten on a rebalance, when the table, not this
#: worker, may hold the newest counts of a partition that comes back.
open_windows: dict[str, _OpenWindow] = {}


@app.on_partitions_revoked.connect
async def forget_open_windows(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    open_windows.clear()


@app.agent(signals_topic)
async def monitor(stream: StreamT) -> None:
    size = settings.drift_window
    async for event in acked_when_done(stream):
        message = event.message
        try:
            batch = decode_signals(message.value)
            variant = (message.key or b"none").decode("utf-8", "replace")
            start = window_start(message.timestamp, size)
            before = drift_state.get(variant) or {}
            state = dict(before)
            opened = state.get("open")
            if opened is not None and start > opened:
                counted = open_windows.pop(variant, None)
                if counted is not None and counted.start == opened:
                    closed = counted.counts
                else:  # counted before a restart: in the table
                    # Read the closed window at its middle: clear of float edges.
                    closed = drift_windows[variant].delta(message.timestamp - opened - size / 2)
                logger.info(
                    "drift window of %s from %s closed with %d queries",
                    variant,
                    opened,
                    closed["n"],
                )
                judgement = judge(
                    state,
                    closed,
                    variant=variant,
                    start=opened,
                    size=size,
                    threshold=settings.drift_threshold,
                    min_samples=settings.drift_min_samples,
                )
                state = judgement.state
                report = judgement.report
                if report is not None:
                    DRIFT_SCORE.labels(variant=variant).set(report["score"])
                    for feature, value in report["scores"].items():
                        DRIFT_FEATURE_SCORE.labels(variant=variant, feature=feature).set(value)
                if judgement.alert and report is not None:
                    DRIFT_ALERTS.labels(variant=variant).inc()
                    logger.warning(
                        "drift of %s: score %.3f in %s",
                        variant,
                        report["score"],
                        report["drifting"],
                    )
                    await monitoring_topic.send(key=message.key, value=json.dumps(report).encode())
            if opened is None or start > opened:
                state["open"] = start
            if start < state["open"]:
                # Late for a window already judged: counted in its own, unread.
                drift_windows[variant] = add_all(drift_windows[variant].current(), batch)
            else:
                window = open_windows.get(variant)
                if window is None or window.start != start:
                    # Resumes what the table holds: counts from before a restart.
                    window = _OpenWindow(start, drift_windows[variant].current())
                    open_windows[variant] = window
                window.counts = add_all(window.counts, batch)
                if time.monotonic() - window.written_at >= WRITE_EVERY:
                    # Assigned: a value changed in place would miss the changelog.
                    drift_windows[variant] = window.counts
                    window.written_at = time.monotonic()
            if state != before:
                drift_state[variant] = state
        except Exception as exc:  # bad input, or a bug: park it, never stop the stream
            await dead_letter(event, exc)
            continue
        EVENTS.labels(stage="monitor", result="counted").inc(len(batch))
