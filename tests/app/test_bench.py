"""``flowdesk bench``: its arithmetic, and one small real run of every phase."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.bench import BenchConfig, PhaseResult, format_table


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


@pytest.mark.parametrize("kwargs", [{"count": 0}, {"capacity": 0}, {"latency_ms": -1}])
def test_config_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BenchConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.integration
def test_a_small_bench_runs_every_phase_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "app.cli", "bench", "--count", "40", "--latency", "20"]
    argv += ["--capacity", "8", "--naive-count", "5", "--latency-count", "40", "--json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    phases = {row["phase"]: row for row in report["phases"]}
    assert list(phases) == ["direct", "pipeline", "pipeline@half", "naive"]
    assert [phases[p]["queries"] for p in phases] == [40, 40, 40, 5]
    for name in ("pipeline", "pipeline@half", "naive"):
        row = phases[name]
        assert row["escalated"] == 0, row
        assert row["p50_ms"] >= 20, "no answer can beat the model's own latency"
        assert 0 <= row["added_p50_ms"] <= row["p50_ms"]
    # Eight in flight against one at a time: the window must show.
    assert report["ratios"]["pipeline_vs_naive_throughput"] > 2
    table = format_table(report)
    assert "pipeline@half" in table and "added p99 at half capacity" in table
    assert "direct" in done.stdout
