"""Summing py-spy's collapsed stacks (``flowdesk bench --profile``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.profile import Frame, parse_frame, read_collapsed, summary

STACKS = (
    'process 12:"python -m app.cli worker";run (asyncio/runners.py);'
    "handle (agents/inference.py);encode (app/codecs.py) 30\n"
    """\
run (asyncio/runners.py);handle (agents/inference.py);send (faust/topics.py) 50
run (asyncio/runners.py);EpollSelector.select (selectors.py) 20
not a stack line
"""
)


def test_frames_parse_with_their_package() -> None:
    frame = parse_frame("Consumer.getmany (aiokafka/consumer/consumer.py)")
    assert frame == Frame("Consumer.getmany", "aiokafka/consumer/consumer.py")
    assert frame.package == "aiokafka"
    assert parse_frame("EpollSelector.select (selectors.py)").package == "stdlib"
    assert parse_frame("run (asyncio/runners.py)").package == "stdlib"
    assert parse_frame("handle (agents/inference.py)").package == "agents"
    assert parse_frame("<module> (spin.py)").package == "spin"
    assert parse_frame("odd").package == "?"


def test_own_and_total_time_are_shares_of_all_samples(tmp_path: Path) -> None:
    path = tmp_path / "profile.txt"
    path.write_text(STACKS)
    result = summary(read_collapsed(path), top=3)
    assert result["samples"] == 100
    own = {row["function"]: row["percent"] for row in result["own"]}  # type: ignore[union-attr]
    assert own == {"send": 50.0, "encode": 30.0, "EpollSelector.select": 20.0}
    total = {row["function"]: row["percent"] for row in result["total"]}  # type: ignore[union-attr]
    assert total == {"handle": 80.0, "encode": 30.0}, "flowdesk's own functions only"
    assert result["packages"] == {"faust": 50.0, "app": 30.0, "stdlib": 20.0}


def test_an_empty_profile_has_no_shares(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert summary(read_collapsed(path)) == {"samples": 0, "own": [], "total": [], "packages": {}}


@pytest.mark.parametrize("line", ["run (asyncio/runners.py) x", " 5"])
def test_lines_that_are_not_stacks_are_skipped(tmp_path: Path, line: str) -> None:
    path = tmp_path / "odd.txt"
    path.write_text(line + "\n")
    assert read_collapsed(path).samples == 0
