"""The drift monitor's steps, as plain functions: signals in, closed windows judged.

The router turns each outcome into a signal (``signal_of``): the model variant
that produced it and the binned features of ``app.drift``. The monitor agent
counts signals in a tumbling window per variant; when a signal of a later window
arrives, the window before it is closed and judged (``judge``): the first window
with enough queries becomes the variant's baseline, each later one is compared
with it, and a report whose score reaches the threshold is published.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.drift import NO_MODEL_CALL, DriftReport, Window, drift_report, features
from app.errors import DecodeError
from app.records import Outcome

#: The variant of outcomes no model was asked for (escalated before any call).
NO_MODEL = "none"


def variant_of(outcome: Outcome) -> str:
    if not outcome.model:
        return NO_MODEL
    return f"{outcome.model}@{outcome.model_version}"


def signal_of(outcome: Outcome) -> tuple[str, dict[str, str]]:
    """The variant and the feature labels of one outcome."""
    labels = features(
        question=outcome.question or outcome.text,
        intent=outcome.query_intent,
        sentiment=outcome.sentiment,
        route=outcome.route,
        reason=outcome.reason,
        answer=outcome.text if outcome.route == "response" else "",
        model_latency_ms=outcome.model_latency_ms,
    )
    if labels.get("latency") == NO_MODEL_CALL:
        # A cached answer or an escalation before any call says nothing of the
        # model's latency; counting it would make a cache warming up look like drift.
        del labels["latency"]
    return variant_of(outcome), labels


#: Most outcomes' labels in one signal record; a larger batch goes out as several.
SIGNALS_PER_RECORD = 500


def encode_signals(batch: Sequence[Mapping[str, str]]) -> bytes:
    """One signal record: the labels of several outcomes, as a JSON array."""
    return json.dumps(list(batch), separators=(",", ":"), sort_keys=True).encode()


def decode_signals(value: bytes | None) -> list[dict[str, str]]:
    """The labels in a signal record: a JSON array of them, or one outcome's object."""
    try:
        data = json.loads(value or b"")
    except ValueError as exc:
        raise DecodeError(f"a drift signal must be JSON: {exc}") from exc
    batch = data if isinstance(data, list) else [data]
    if not batch:
        raise DecodeError("a drift signal holds no labels")
    for labels in batch:
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise DecodeError("a drift signal must map feature names to labels")
    return batch


@dataclass
class _Batch:
    labels: list[dict[str, str]]
    #: When the latest of them was added, epoch s: the record's timestamp.
    at: float


class SignalBatches:
    """Outcomes' labels held per variant and drift window until they are sent.

    The router adds one per outcome and sends what it holds about once a second, one
    record per variant and window instead of one per outcome. Each record carries
    the time of its latest outcome, so the monitor counts it in the window its
    outcomes fell in. What is held when a worker dies is lost (the monitor's counts
    may lose as much on a crash already).
    """

    def __init__(self, *, window: float) -> None:
        if window <= 0:
            raise ValueError(f"window must be above 0, got {window}")
        self.window = window
        self._held: dict[tuple[str, float], _Batch] = {}

    def __len__(self) -> int:
        return sum(len(batch.labels) for batch in self._held.values())

    def add(self, variant: str, labels: dict[str, str], *, at: float) -> None:
        key = (variant, window_start(at, self.window))
        batch = self._held.get(key)
        if batch is None:
            self._held[key] = _Batch([labels], at)
        else:
            batch.labels.append(labels)
            batch.at = max(batch.at, at)

    def take(self) -> list[tuple[str, bytes, float]]:
        """(variant, record value, timestamp) for all held, oldest window first; then
        nothing is held."""
        held, self._held = self._held, {}
        records = []
        for (variant, _), batch in sorted(held.items(), key=lambda item: item[0][1]):
            for i in range(0, len(batch.labels), SIGNALS_PER_RECORD):
                chunk = batch.labels[i : i + SIGNALS_PER_RECORD]
                records.append((variant, encode_signals(chunk), batch.at))
        return records


def window_start(at: float, size: float) -> float:
    """The start of the tumbling window of ``size`` seconds that holds ``at``."""
    return math.floor(at / size) * size


@dataclass(frozen=True, slots=True)
class Judgement:
    """What closing one window decided."""

    state: dict[str, Any]
    #: The comparison with the baseline; None when the window became the baseline
    #: or had too few queries.
    report: DriftReport | None = None

    @property
    def alert(self) -> bool:
        return self.report is not None and bool(self.report["drifting"])


def judge(
    state: Mapping[str, Any] | None,
    closed: Window,
    *,
    variant: str,
    start: float,
    size: float,
    threshold: float,
    min_samples: int,
) -> Judgement:
    """Judge the window ``[start, start + size)`` of ``variant`` that just closed.

    ``state`` is the variant's monitor state (``{"baseline": window or None}``);
    the returned state is to be written back.
    """
    new = dict(state or {})
    if closed["n"] < min_samples:
        return Judgement(new)
    baseline = new.get("baseline")
    if baseline is None:
        new["baseline"] = closed
        new["baseline_start"] = start
        return Judgement(new)
    report = drift_report(
        variant=variant,
        window_start=start,
        window_end=start + size,
        baseline=baseline,
        current=closed,
        threshold=threshold,
        min_samples=min_samples,
    )
    return Judgement(new, report)
