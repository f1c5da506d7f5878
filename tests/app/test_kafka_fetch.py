"""``kafka_fetch.actions_per_node`` decides what aiokafka's own method decides, state by state."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.cluster import ClusterMetadata
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import Assignment
from aiokafka.protocol.metadata import MetadataResponse_v0
from aiokafka.structs import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from app import kafka_fetch
from app.main import create_app
from app.settings import Settings

TOPICS = ("queries", "outcomes", "changelog")
NODES = (0, 1, 2)


@dataclass
class _Buffered:
    """Records fetched and not consumed yet (aiokafka's FetchResult), a fixed backoff."""

    backoff: float

    def calculate_backoff(self) -> float:
        return self.backoff


@dataclass
class _Client:
    cluster: ClusterMetadata


def _cluster(leaders: dict[str, dict[int, int]]) -> ClusterMetadata:
    cluster = ClusterMetadata()
    cluster.update_metadata(
        MetadataResponse_v0(
            [(node, "127.0.0.1", 9092 + node) for node in NODES],
            [
                (0, topic, [(0, p, leader, [leader], [leader]) for p, leader in parts.items()])
                for topic, parts in leaders.items()
            ],
        )
    )
    return cluster


@dataclass
class _State:
    """Partitions of an assignment, each in one of the states a partition can be in."""

    leaders: dict[str, dict[int, int]]
    #: (partition, position or None, paused, backoff of buffered records or None)
    partitions: list[tuple[TopicPartition, int | None, bool, float | None]]
    in_flight: set[int]
    options: dict[str, Any]
    preferred: dict[TopicPartition, tuple[int, float]]


@st.composite
def states(draw: st.DrawFn) -> _State:
    tps = draw(
        st.sets(
            st.builds(TopicPartition, st.sampled_from(TOPICS), st.integers(0, 5)),
            min_size=1,
            max_size=30,
        )
    )
    leader = st.sampled_from((*NODES, -1))
    # Some partitions are missing from the metadata (no leader known), some topics too.
    known = draw(st.sets(st.sampled_from(TOPICS)))
    leaders = {
        topic: {
            tp.partition: draw(leader) for tp in tps if tp.topic == topic and draw(st.booleans())
        }
        for topic in known
    }
    partitions = [
        (
            tp,
            draw(st.one_of(st.none(), st.integers(0, 10**6))),
            draw(st.integers(0, 3)) == 0,
            draw(st.one_of(st.none(), st.none(), st.sampled_from((0.0, 0.05, 0.2)))),
        )
        for tp in sorted(tps)
    ]
    options = {
        "_max_partition_fetch_bytes": draw(st.integers(1, 2**20)),
        "_fetch_max_wait_ms": draw(st.integers(0, 1500)),
        "_fetch_min_bytes": draw(st.integers(1, 10)),
        "_fetch_max_bytes": draw(st.integers(1, 2**26)),
        "_isolation_level": draw(st.sampled_from((0, 1))),
        "_client_rack": draw(st.sampled_from((None, "", "rack-a"))),
        "_fetcher_timeout": 0.2,
    }
    in_flight = draw(st.sets(st.sampled_from(NODES)))
    return _State(leaders, partitions, in_flight, options, preferred={})


def _fetcher(state: _State) -> tuple[Fetcher, Assignment]:
    """aiokafka's fetcher (its attributes only) and assignment in ``state``."""
    assignment = Assignment([tp for tp, *_ in state.partitions])
    fetcher = Fetcher.__new__(Fetcher)
    fetcher._client = _Client(_cluster(state.leaders))
    fetcher._records = {}
    fetcher._preferred_read_replica = dict(state.preferred)
    fetcher._in_flight = set(state.in_flight)
    for name, value in state.options.items():
        setattr(fetcher, name, value)
    for tp, position, paused, backoff in state.partitions:
        tp_state = assignment.state_value(tp)
        if position is not None:
            tp_state.reset_to(position)
        if paused:
            tp_state.pause()
        if backoff is not None:
            fetcher._records[tp] = _Buffered(backoff)
    return fetcher, assignment


def _comparable(actions: tuple[Any, ...]) -> tuple[Any, ...]:
    requests, resets, backoff, invalid, resume = actions
    return (
        [(node, vars(request)) for node, request in requests],
        dict(resets),
        backoff,
        invalid,
        [id(future) for future in resume],
    )


def _both(state: _State) -> list[tuple[Any, ...]]:
    """What aiokafka's method and ours return for ``state``."""

    async def run() -> list[tuple[Any, ...]]:
        fetcher, assignment = _fetcher(state)  # its futures need a running loop
        answers = []
        for method in (kafka_fetch._ORIGINAL, kafka_fetch.actions_per_node):
            # Both shuffle each request's partitions: with one seed, in the same order.
            random.seed(7)
            answers.append(_comparable(method(fetcher, assignment)))
        return answers

    return asyncio.run(run())


@settings(max_examples=400, deadline=None)
@given(states())
def test_the_same_actions_as_aiokafka_in_every_state(state: _State) -> None:
    original, fast = _both(state)
    assert fast == original


@settings(max_examples=50, deadline=None)
@given(states(), st.sampled_from(NODES))
def test_a_cached_preferred_replica_is_left_to_aiokafka(state: _State, node: int) -> None:
    state.preferred = {state.partitions[0][0]: (node, float("inf"))}
    original, fast = _both(state)
    assert fast == original


async def test_debug_logging_is_left_to_aiokafka(caplog: pytest.LogCaptureFixture) -> None:
    tp = TopicPartition("queries", 0)
    options = {
        "_max_partition_fetch_bytes": 1024,
        "_fetch_max_wait_ms": 5,
        "_fetch_min_bytes": 1,
        "_fetch_max_bytes": 2**20,
        "_isolation_level": 0,
        "_client_rack": None,
        "_fetcher_timeout": 0.2,
    }
    state = _State({"queries": {0: 1}}, [(tp, 5, False, None)], set(), options, preferred={})
    fetcher, assignment = _fetcher(state)
    with caplog.at_level(logging.DEBUG, logger="aiokafka.consumer.fetcher"):
        requests, *_ = kafka_fetch.actions_per_node(fetcher, assignment)
    assert [(node, request.topics) for node, request in requests] == [
        (1, [("queries", [(0, 5, 1024)])])
    ]
    assert "Adding fetch request for partition" in caplog.text


def test_install_and_uninstall() -> None:
    was = kafka_fetch.installed()
    try:
        kafka_fetch.install()
        assert kafka_fetch.installed()
        assert Fetcher._get_actions_per_node is kafka_fetch.actions_per_node
        kafka_fetch.uninstall()
        assert not kafka_fetch.installed()
        assert Fetcher._get_actions_per_node is kafka_fetch._ORIGINAL
    finally:
        (kafka_fetch.install if was else kafka_fetch.uninstall)()


def test_the_app_installs_it_unless_told_not_to(tmp_path: Path) -> None:
    was = kafka_fetch.installed()
    try:
        create_app(Settings(kafka_fast_fetch=False, data_dir=str(tmp_path)))
        assert not kafka_fetch.installed()
        create_app(Settings(data_dir=str(tmp_path)))
        assert kafka_fetch.installed()
    finally:
        (kafka_fetch.install if was else kafka_fetch.uninstall)()
