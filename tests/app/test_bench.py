"""``flowdesk bench``: its arithmetic, and one small real run of every phase."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.bench import (
    BenchConfig,
    PhaseResult,
    format_table,
    hop_latencies,
    in_flight_latencies,
    largest_gap,
    parse_worker_counts,
)
from app.errors import ConfigurationError


def test_a_phase_summary_reports_added_latency_only_where_measured() -> None:
    direct = PhaseResult(name="direct", queries=4, seconds=2.0, latencies_ms=[200, 201, 202, 250])
    row = direct.summary()
    assert row["throughput_qps"] == 2.0
    assert row["p99_ms"] == 250
    assert row["added_p99_ms"] is None
    piped = PhaseResult(
        name="pipeline", queries=2, seconds=1.0, latencies_ms=[210, 230], added_ms=[10, 30]
    )
    assert piped.summary()["added_p50_ms"] == 10
    assert piped.summary()["added_p99_ms"] == 30


def test_each_hop_s_latency_comes_from_the_record_timestamps() -> None:
    hops = hop_latencies(
        inbound={"a": 1000, "b": 2000, "lost": 3000},
        queries={"a": 1010, "b": 2030, "lost": 3010},
        outcomes={"a": 1230, "b": 2240},
        # (response timestamp, model call ms); "lost" never reached the outcomes topic
        responses={"a": (1235, 200.0), "b": (2250, 190.0), "lost": (3300, 200.0)},
    )
    assert hops == {"ingest": [10, 30], "inference": [20.0, 20.0], "router": [5, 10]}
    # Together: the response's timestamp minus the inbound one, minus the model call.
    assert [sum(times) for times in zip(*hops.values(), strict=True)] == [35, 60]


@pytest.mark.parametrize(
    "kwargs", [{"count": 0}, {"capacity": 0}, {"latency_ms": -1}, {"warmup": -1}]
)
def test_config_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BenchConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.integration
def test_a_small_bench_runs_every_phase_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "app.cli", "bench", "--count", "40", "--latency", "20"]
    argv += ["--capacity", "8", "--naive-count", "5", "--latency-count", "40", "--warmup", "10"]
    argv += ["--json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    phases = {row["phase"]: row for row in report["phases"]}
    assert list(phases) == ["direct", "pipeline", "pipeline@half", "naive"]
    assert [phases[p]["queries"] for p in phases] == [40, 40, 40, 5]
    # Each phase first ran up to 10 queries more, not counted.
    assert [phases[p]["warmup"] for p in phases] == [10, 10, 10, 5]
    for name in ("pipeline", "pipeline@half", "naive"):
        row = phases[name]
        assert row["escalated"] == 0, row
        assert row["p50_ms"] >= 20, "no answer can beat the model's own latency"
        assert 0 <= row["added_p50_ms"] <= row["p50_ms"]
        # The cold start: the warm-up's first query waited for the model at least.
        assert row["first_outcome_s"] >= 0.02, row
        # Where the added latency went: each hop, from the records' timestamps.
        hops = row["hops_ms"]
        assert list(hops) == ["ingest", "inference", "router"], row
        assert all(hops[hop]["p50"] >= -1 for hop in hops), row  # ms rounding
        assert sum(hops[hop]["p50"] for hop in hops) <= row["added_p99_ms"] * 3, row
    # Eight in flight against one at a time: the window must show.
    assert report["ratios"]["pipeline_vs_naive_throughput"] > 2
    table = format_table(report)
    assert "pipeline@half" in table and "added p99 at half capacity" in table
    assert "warm-up queries, not counted" in table and "pipeline@half " in table
    assert "added latency at half capacity by hop" in table
    assert "direct" in done.stdout


def test_worker_counts_parse_and_reject_nonsense() -> None:
    assert parse_worker_counts("1,2,3") == (1, 2, 3)
    assert parse_worker_counts("2") == (2,)
    for text in ("1,x", "0,1", "1,1", ""):
        with pytest.raises(ConfigurationError):
            parse_worker_counts(text)


def test_the_largest_gap_counts_the_wait_from_the_start() -> None:
    # Silent for 4 s after the kill at 1000, then steady.
    assert largest_gap([500, 5000, 5100, 5300], start_ms=1000) == 4.0
    assert largest_gap([1000, 1500, 3500], start_ms=1000) == 2.0
    assert largest_gap([100, 200, 900], start_ms=100, end_ms=800) == 0.1
    assert largest_gap([], start_ms=1000) == 0.0


def test_half_capacity_rate_and_scale_validation() -> None:
    assert BenchConfig(capacity=64, latency_ms=200).half_capacity_rate == 160
    with pytest.raises(ValueError):
        BenchConfig(scale=(1, 1))
    with pytest.raises(ValueError):
        BenchConfig(takeover_rate=0)


def test_the_queries_in_flight_at_the_kill_wait_from_the_kill() -> None:
    sent = {"early": 100, "answered-before": 500, "slow": 900, "lost": 950, "after": 1200}
    answered = {"early": 300, "answered-before": 990, "slow": 4000, "after": 1300}
    # Killed at 1000: answered-before was answered 10 ms earlier, after came later.
    assert in_flight_latencies(sent, answered, killed_ms=1000) == ([3000.0], 1)
    assert in_flight_latencies({}, {}, killed_ms=1000) == ([], 0)
    # One answered at the very moment of the kill was in flight: it waited 0 ms.
    assert in_flight_latencies({"q": 10}, {"q": 1000}, killed_ms=1000) == ([0.0], 0)


@pytest.mark.integration
def test_the_scale_out_phases_and_the_takeover_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "app.cli", "bench", "--count", "60", "--latency", "20"]
    argv += ["--capacity", "8", "--naive-count", "5", "--latency-count", "20"]
    argv += ["--scale", "1,3", "--takeover", "--takeover-rate", "20", "--takeover-seconds", "15"]
    argv += ["--json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    phases = {row["phase"]: row for row in report["phases"]}
    assert phases["workers=1"]["queries"] == phases["workers=3"]["queries"] == 60
    assert report["ratios"]["throughput_3_vs_1"] > 0
    takeover = report["takeover"]
    assert takeover["queries"] == 300 and takeover["killed_after"] == 100
    assert takeover["lost"] == 0 and takeover["duplicated"] == 0, takeover
    # The group notices a killed member only when its session (6 s) times out.
    assert 3 < takeover["takeover_seconds"] < 90, takeover
    assert takeover["in_flight"] > 0 and takeover["in_flight_unanswered"] == 0, takeover
    assert takeover["in_flight_p50_ms"] <= takeover["in_flight_max_ms"], takeover
    assert "takeover: 2 workers" in done.stdout
    assert "queries in flight at the kill" in done.stdout
