"""aiokafka's choice of what to fetch next, in fewer Python steps.

Before every fetch, aiokafka's fetcher walks each assigned partition and decides what it
needs: a fetch from its leader, an offset reset, a wait for records not yet consumed, or
nothing while it is paused (``Fetcher._get_actions_per_node``). A worker owns about 140
partitions (the topics of its agents, and the changelogs of its tables, paused once
recovered) and walks them each time a fetch returns or records are consumed: 280 times
a second at 160 queries a second, 123 µs each, about 3% of a core.
``actions_per_node`` takes the same decisions in the same order with fewer lookups, and
leaves the rare cases to aiokafka's own code: a cached preferred read replica (KIP-392),
or debug logging, which aiokafka writes per partition.

``install()`` puts it in place of aiokafka's method (``FLOWDESK_KAFKA_FAST_FETCH``);
``uninstall()`` restores it. The tests check both return the same answer, state by state.
"""

from __future__ import annotations

import collections
import logging
import random
from typing import Any

from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.consumer.fetcher import FetchRequest

_ORIGINAL = aiokafka_fetcher.Fetcher._get_actions_per_node
_log = aiokafka_fetcher.log


def actions_per_node(self: Any, assignment: Any) -> tuple[Any, ...]:
    """``Fetcher._get_actions_per_node``: for each assigned partition the action it
    needs, grouped by the node to send it to."""
    if self._preferred_read_replica or _log.isEnabledFor(logging.DEBUG):
        return _ORIGINAL(self, assignment)
    fetchable: dict[int, list[tuple[Any, int]]] = collections.defaultdict(list)
    awaiting_reset: dict[int, list[Any]] = collections.defaultdict(list)
    backoff_by_nodes: dict[int | None, list[float]] = collections.defaultdict(list)
    resume_futures = []
    invalid_metadata = False
    records = self._records
    in_flight = self._in_flight
    topics = self._client.cluster._partitions
    states = assignment._tp_state

    for tp in assignment.tps:
        state = states.get(tp)
        # Fetcher._select_read_replica without a preferred replica:
        # ClusterMetadata.leader_for_partition.
        partitions = topics.get(tp.topic)
        metadata = None if partitions is None else partitions.get(tp.partition)
        node_id = None if metadata is None else metadata.leader
        if tp in records:
            backoff = records[tp].calculate_backoff()
            if backoff:
                backoff_by_nodes[node_id].append(backoff)
        elif node_id in in_flight:
            continue
        elif node_id is None or node_id == -1:
            invalid_metadata = True
        elif state._position is None:
            # aiokafka asks the leader again, as its node may be a preferred replica;
            # without one it is the leader, found valid just above.
            awaiting_reset[node_id].append(tp)
        elif state._paused:
            resume_futures.append(state._resume_fut)
        else:
            fetchable[node_id].append((tp, state._position))

    fetch_requests = []
    limit = self._max_partition_fetch_bytes
    for node_id, partition_data in fetchable.items():
        if node_id in backoff_by_nodes or node_id in awaiting_reset:
            continue
        random.shuffle(partition_data)
        by_topics: dict[str, list[tuple[int, int, int]]] = collections.defaultdict(list)
        for tp, position in partition_data:
            by_topics[tp.topic].append((tp.partition, position, limit))
        request = FetchRequest(
            self._fetch_max_wait_ms,
            self._fetch_min_bytes,
            self._fetch_max_bytes,
            self._isolation_level,
            list(by_topics.items()),
            rack_id=self._client_rack or "",
        )
        fetch_requests.append((node_id, request))

    if backoff_by_nodes:
        backoff = min(map(max, backoff_by_nodes.values()))
    else:
        backoff = self._fetcher_timeout
    return fetch_requests, awaiting_reset, backoff, invalid_metadata, resume_futures


def install() -> None:
    aiokafka_fetcher.Fetcher._get_actions_per_node = actions_per_node


def uninstall() -> None:
    aiokafka_fetcher.Fetcher._get_actions_per_node = _ORIGINAL


def installed() -> bool:
    return aiokafka_fetcher.Fetcher._get_actions_per_node is actions_per_node
